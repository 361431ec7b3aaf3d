  ;; echo: answers 200 with the request's method and path on the first line, then each header
  ;; as `name: value`, an empty line, and the request body.
  (import "wasi:http/types@0.2.12" "[method]incoming-request.method" (func $method (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-request.path-with-query" (func $path (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-request.headers" (func $headers (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]fields.entries" (func $entries (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-request.consume" (func $consume (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-body.stream" (func $body_stream (param i32 i32)))
  (import "wasi:io/streams@0.2.12" "[method]input-stream.blocking-read" (func $read (param i32 i64 i32)))
  (data (i32.const 256) "GETHEADPOSTPUTDELETECONNECTOPTIONSTRACEPATCH :\n")
  ;; (offset, length) of each method name, by wasi:http method case.
  (data (i32.const 512) "\00\01\00\00\03\00\00\00\03\01\00\00\04\00\00\00\07\01\00\00\04\00\00\00\0b\01\00\00\03\00\00\00\0e\01\00\00\06\00\00\00\14\01\00\00\07\00\00\00\1b\01\00\00\07\00\00\00\22\01\00\00\05\00\00\00\27\01\00\00\05\00\00\00")
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (local $body i32) (local $stream i32) (local $case i32) (local $list i32) (local $count i32)
    (local $entry i32) (local $incoming i32) (local $input i32)
    (call $start (local.get $out) (i32.const 200))
    (local.set $stream)
    (local.set $body)
    ;; method
    (call $method (local.get $request) (i32.const 32))
    (local.set $case (i32.load8_u (i32.const 32)))
    (if (i32.eq (local.get $case) (i32.const 9))
      (then (call $write (local.get $stream) (i32.load (i32.const 36)) (i32.load (i32.const 40))))
      (else (call $write (local.get $stream)
              (i32.load (i32.add (i32.const 512) (i32.mul (local.get $case) (i32.const 8))))
              (i32.load (i32.add (i32.const 516) (i32.mul (local.get $case) (i32.const 8)))))))
    (call $write (local.get $stream) (i32.const 300) (i32.const 1))
    ;; path
    (call $path (local.get $request) (i32.const 48))
    (if (i32.load8_u (i32.const 48))
      (then (call $write (local.get $stream) (i32.load (i32.const 52)) (i32.load (i32.const 56)))))
    (call $write (local.get $stream) (i32.const 302) (i32.const 1))
    ;; headers
    (call $entries (call $headers (local.get $request)) (i32.const 64))
    (local.set $list (i32.load (i32.const 64)))
    (local.set $count (i32.load (i32.const 68)))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $count)))
        (call $write (local.get $stream) (i32.load (local.get $list)) (i32.load offset=4 (local.get $list)))
        (call $write (local.get $stream) (i32.const 301) (i32.const 1))
        (call $write (local.get $stream) (i32.const 300) (i32.const 1))
        (call $write (local.get $stream) (i32.load offset=8 (local.get $list)) (i32.load offset=12 (local.get $list)))
        (call $write (local.get $stream) (i32.const 302) (i32.const 1))
        (local.set $list (i32.add (local.get $list) (i32.const 16)))
        (local.set $count (i32.sub (local.get $count) (i32.const 1)))
        (br $next)))
    (call $write (local.get $stream) (i32.const 302) (i32.const 1))
    ;; body
    (call $consume (local.get $request) (i32.const 80))
    (if (i32.eqz (i32.load8_u (i32.const 80)))
      (then
        (local.set $incoming (i32.load (i32.const 84)))
        (call $body_stream (local.get $incoming) (i32.const 88))
        (if (i32.eqz (i32.load8_u (i32.const 88)))
          (then
            (local.set $input (i32.load (i32.const 92)))
            (block $eof
              (loop $chunk
                (call $read (local.get $input) (i64.const 65536) (i32.const 96))
                (br_if $eof (i32.load8_u (i32.const 96)))
                (call $write (local.get $stream) (i32.load (i32.const 100)) (i32.load (i32.const 104)))
                (br $chunk)))))))
    (call $finish (local.get $body) (local.get $stream)))
