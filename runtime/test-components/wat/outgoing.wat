  ;; outgoing: tries `GET http://HOST:PORT/` for a request `...?HOST:PORT` (`127.0.0.1:9` without
  ;; a query), waits for the answer and says how it went:
  ;; `outgoing: sent` (200) when a response came, or
  ;; `outgoing: error N` (502) with N the wasi:http error-code case (15 = HTTP-request-denied).
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-request" (func $request_new (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-scheme" (func $set_scheme (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-authority" (func $set_authority (param i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-path-with-query" (func $set_path (param i32 i32 i32 i32) (result i32)))
  (import "wasi:http/outgoing-handler@0.2.12" "handle" (func $send (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-request.path-with-query" (func $path (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]future-incoming-response.subscribe" (func $subscribe (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]future-incoming-response.get" (func $get (param i32 i32)))
  (import "wasi:io/poll@0.2.12" "[method]pollable.block" (func $block (param i32)))
  (data (i32.const 256) "outgoing: sent\n")
  (data (i32.const 288) "outgoing: error 00\n")
  (data (i32.const 320) "127.0.0.1:9/")
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (local $code i32) (local $req i32) (local $future i32)
    (local $p i32) (local $n i32) (local $i i32) (local $to i32) (local $to_len i32)
    ;; The authority: what follows `?`, else 127.0.0.1:9.
    (local.set $to (i32.const 320))
    (local.set $to_len (i32.const 11))
    (call $path (local.get $request) (i32.const 48))
    (local.set $p (i32.load (i32.const 52)))
    (local.set $n (i32.load (i32.const 56)))
    (block $none
      (loop $scan
        (br_if $none (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.eq (i32.load8_u (i32.add (local.get $p) (local.get $i))) (i32.const 63))
          (then
            (local.set $to (i32.add (local.get $p) (i32.add (local.get $i) (i32.const 1))))
            (local.set $to_len (i32.sub (local.get $n) (i32.add (local.get $i) (i32.const 1))))
            (br $none)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (local.set $req (call $request_new (call $fields_new)))
    (drop (call $set_scheme (local.get $req) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)))
    (drop (call $set_authority (local.get $req) (i32.const 1) (local.get $to) (local.get $to_len)))
    (drop (call $set_path (local.get $req) (i32.const 1) (i32.const 331) (i32.const 1)))
    (call $send (local.get $req) (i32.const 0) (i32.const 0) (i32.const 64))
    ;; result<future-incoming-response, error-code>: the case at 64, the payload at 72.
    (if (i32.load8_u (i32.const 64))
      (then (local.set $code (i32.load8_u (i32.const 72))))
      (else
        (local.set $future (i32.load (i32.const 72)))
        (call $block (call $subscribe (local.get $future)))
        ;; option<result<result<incoming-response, error-code>>> at 64: some at 64, the outer
        ;; result's case at 72, the inner result's case at 80, its payload at 88.
        (call $get (local.get $future) (i32.const 64))
        (if (i32.eqz (i32.load8_u (i32.const 80)))
          (then
            (call $respond (local.get $out) (i32.const 200) (i32.const 256) (i32.const 15))
            (return)))
        (local.set $code (i32.load8_u (i32.const 88)))))
    (i32.store8 (i32.const 304) (i32.add (i32.const 48) (i32.div_u (local.get $code) (i32.const 10))))
    (i32.store8 (i32.const 305) (i32.add (i32.const 48) (i32.rem_u (local.get $code) (i32.const 10))))
    (call $respond (local.get $out) (i32.const 502) (i32.const 288) (i32.const 19)))
