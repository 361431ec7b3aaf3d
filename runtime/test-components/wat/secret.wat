  ;; secret: `.../NAME` (NAME is what follows the last `/`) reveals the secret the component's manifest names NAME and answers its
  ;; value; 404 `not-found` when it may not or it does not exist, 502 with the host's reason
  ;; when it cannot be opened. A revealed secret is logged by name (never by value) through
  ;; wasi:logging.
  (import "wasi:http/types@0.2.12" "[method]incoming-request.path-with-query" (func $path (param i32 i32)))
  (import "wasmcloud:secrets/store@0.1.0-draft" "get" (func $secret_get (param i32 i32 i32)))
  (import "wasmcloud:secrets/store@0.1.0-draft" "[resource-drop]secret" (func $secret_drop (param i32)))
  (import "wasmcloud:secrets/reveal@0.1.0-draft" "reveal" (func $reveal (param i32 i32)))
  (import "wasi:logging/logging@0.1.0-draft" "log" (func $log (param i32 i32 i32 i32 i32)))
  (data (i32.const 256) "not-found\n")
  (data (i32.const 272) "secret")
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (local $handle i32) (local $name i32) (local $name_len i32)
    (call $path (local.get $request) (i32.const 48))
    (call $last_segment (i32.load (i32.const 52)) (i32.load (i32.const 56)))
    (local.set $name_len)
    (local.set $name)
    (call $secret_get (local.get $name) (local.get $name_len) (i32.const 64))
    (if (i32.load8_u (i32.const 64))
      (then
        (if (i32.eq (i32.load8_u (i32.const 68)) (i32.const 2))
          (then (call $respond (local.get $out) (i32.const 404) (i32.const 256) (i32.const 10)))
          (else (call $respond (local.get $out) (i32.const 502) (i32.load (i32.const 72)) (i32.load (i32.const 76)))))
        (return)))
    (local.set $handle (i32.load (i32.const 68)))
    (call $log (i32.const 2) (i32.const 272) (i32.const 6) (local.get $name) (local.get $name_len))
    (call $reveal (local.get $handle) (i32.const 96))
    (call $respond (local.get $out) (i32.const 200) (i32.load (i32.const 100)) (i32.load (i32.const 104)))
    (call $secret_drop (local.get $handle)))
