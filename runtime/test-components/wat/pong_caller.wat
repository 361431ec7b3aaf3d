  ;; pong_caller: wasmCloud's composition/http-hello2. Calls `example:pong/pingpong.ping` on the
  ;; component it links to, then answers 200 `Hello World! I got pong PONG` (a failed call fails
  ;; the request before anything is sent).
  (import "example:pong/pingpong" "ping" (func $ping (param i32)))
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
