  ;; trap: fails with `unreachable` before answering.
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    unreachable)
