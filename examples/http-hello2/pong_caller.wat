;; Flotilla test component `pong_caller`.
(module
  (import "example:pong/pingpong" "ping" (func $ping (param i32)))
  ;; --- prelude shared by every Flotilla test component ---------------------------------
  ;; Scratch space for return areas: 16..127. Static data: 256..4095. Heap: 4096 and up.
  (import "wasi:http/types@0.2.12" "[constructor]fields" (func $fields_new (result i32)))
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-response" (func $resp_new (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.set-status-code" (func $set_status (param i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.body" (func $resp_body (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-body.write" (func $body_write (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]outgoing-body.finish" (func $body_finish (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]response-outparam.set" (func $outparam_set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush" (func $stream_write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream" (func $stream_drop (param i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))

  ;; A bump allocator: the instance lives for one request.
  (func $cabi_realloc (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32) (result i32)
    (local $ptr i32) (local $end i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $ptr) (local.get $new_size)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1)))
                    (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (if (local.get $old_size)
      (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old_size))))
    (local.get $ptr))

  ;; Starts a response with `status`: sets the outparam and returns (body, stream).
  (func $start (param $out i32) (param $status i32) (result i32 i32)
    (local $resp i32) (local $body i32)
    (local.set $resp (call $resp_new (call $fields_new)))
    (drop (call $set_status (local.get $resp) (local.get $status)))
    (call $resp_body (local.get $resp) (i32.const 16))
    (local.set $body (i32.load (i32.const 20)))
    (call $outparam_set (local.get $out) (i32.const 0) (local.get $resp)
      (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $body_write (local.get $body) (i32.const 16))
    (local.get $body)
    (i32.load (i32.const 20)))

  ;; Writes `len` bytes at `ptr`, in chunks of at most 4096 bytes.
  (func $write (param $stream i32) (param $ptr i32) (param $len i32)
    (local $n i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (local.set $n (select (i32.const 4096) (local.get $len) (i32.gt_u (local.get $len) (i32.const 4096))))
        (call $stream_write (local.get $stream) (local.get $ptr) (local.get $n) (i32.const 24))
        (local.set $ptr (i32.add (local.get $ptr) (local.get $n)))
        (local.set $len (i32.sub (local.get $len) (local.get $n)))
        (br $more))))

  ;; Drops the stream and finishes the body.
  (func $finish (param $body i32) (param $stream i32)
    (call $stream_drop (local.get $stream))
    (call $body_finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 32)))

  ;; A whole response: status and a body of `len` bytes at `ptr`.
  (func $respond (param $out i32) (param $status i32) (param $ptr i32) (param $len i32)
    (local $body i32) (local $stream i32)
    (call $start (local.get $out) (local.get $status))
    (local.set $stream)
    (local.set $body)
    (call $write (local.get $stream) (local.get $ptr) (local.get $len))
    (call $finish (local.get $body) (local.get $stream)))
  ;; --- end of prelude -------------------------------------------------------------------

  ;; The part of the string at (ptr, len) after its last `/` (all of it when there is none).
  (func $last_segment (param $ptr i32) (param $len i32) (result i32 i32)
    (local $i i32)
    (local.set $i (local.get $len))
    (block $found
      (loop $back
        (br_if $found (i32.eqz (local.get $i)))
        (br_if $found (i32.eq (i32.load8_u (i32.add (local.get $ptr) (i32.sub (local.get $i) (i32.const 1)))) (i32.const 47)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br $back)))
    (i32.add (local.get $ptr) (local.get $i))
    (i32.sub (local.get $len) (local.get $i)))

  ;; pong_caller: wasmCloud's composition/http-hello2. Calls `example:pong/pingpong.ping` on the
  ;; component it links to, then answers 200 `Hello World! I got pong PONG` (a failed call fails
  ;; the request before anything is sent).
  (data (i32.const 256) "Hello World! I got pong ")
  (data (i32.const 300) "\n")
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (local $body i32) (local $stream i32)
    (call $ping (i32.const 64))
    (call $start (local.get $out) (i32.const 200))
    (local.set $stream)
    (local.set $body)
    (call $write (local.get $stream) (i32.const 256) (i32.const 24))
    (call $write (local.get $stream) (i32.load (i32.const 64)) (i32.load (i32.const 68)))
    (call $write (local.get $stream) (i32.const 300) (i32.const 1))
    (call $finish (local.get $body) (local.get $stream)))
)
