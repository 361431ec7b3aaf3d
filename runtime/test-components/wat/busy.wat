  ;; busy: works for the number of milliseconds given by the digits of the path (`/busy?ms=250`),
  ;; then answers 200.
  (import "wasi:http/types@0.2.12" "[method]incoming-request.path-with-query" (func $path (param i32 i32)))
  (import "wasi:clocks/monotonic-clock@0.2.12" "now" (func $now (result i64)))
  (data (i32.const 256) "done\n")
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (local $ptr i32) (local $end i32) (local $ms i64) (local $c i32) (local $deadline i64)
    (call $path (local.get $request) (i32.const 48))
    (if (i32.load8_u (i32.const 48))
      (then
        (local.set $ptr (i32.load (i32.const 52)))
        (local.set $end (i32.add (local.get $ptr) (i32.load (i32.const 56))))
        (block $done
          (loop $digit
            (br_if $done (i32.ge_u (local.get $ptr) (local.get $end)))
            (local.set $c (i32.sub (i32.load8_u (local.get $ptr)) (i32.const 48)))
            (if (i32.lt_u (local.get $c) (i32.const 10))
              (then (local.set $ms (i64.add (i64.mul (local.get $ms) (i64.const 10)) (i64.extend_i32_u (local.get $c))))))
            (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
            (br $digit)))))
    (local.set $deadline (i64.add (call $now) (i64.mul (local.get $ms) (i64.const 1000000))))
    (loop $work
      (br_if $work (i64.lt_u (call $now) (local.get $deadline))))
    (call $respond (local.get $out) (i32.const 200) (i32.const 256) (i32.const 5)))
