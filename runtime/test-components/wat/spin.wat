  ;; spin: loops forever; only the host's CPU deadline stops it.
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (loop $forever (br $forever)))
