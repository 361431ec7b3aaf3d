  ;; hello: 200 with a short body.
  (data (i32.const 256) "Hello from Flotilla!\n")
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (call $respond (local.get $out) (i32.const 200) (i32.const 256) (i32.const 21)))
