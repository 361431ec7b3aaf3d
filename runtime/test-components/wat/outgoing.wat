  ;; outgoing: tries an outgoing HTTP request and says how it went: `outgoing: sent` (200), or
  ;; `outgoing: error N` (502) with N the wasi:http error-code case (15 = HTTP-request-denied).
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-request" (func $request_new (param i32) (result i32)))
  (import "wasi:http/outgoing-handler@0.2.12" "handle" (func $send (param i32 i32 i32 i32)))
  (data (i32.const 256) "outgoing: sent\n")
  (data (i32.const 288) "outgoing: error 00\n")
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (local $code i32)
    (call $send (call $request_new (call $fields_new)) (i32.const 0) (i32.const 0) (i32.const 64))
    (if (i32.eqz (i32.load8_u (i32.const 64)))
      (then (call $respond (local.get $out) (i32.const 200) (i32.const 256) (i32.const 15)))
      (else
        (local.set $code (i32.load8_u (i32.const 72)))
        (i32.store8 (i32.const 304) (i32.add (i32.const 48) (i32.div_u (local.get $code) (i32.const 10))))
        (i32.store8 (i32.const 305) (i32.add (i32.const 48) (i32.rem_u (local.get $code) (i32.const 10))))
        (call $respond (local.get $out) (i32.const 502) (i32.const 288) (i32.const 19)))))
