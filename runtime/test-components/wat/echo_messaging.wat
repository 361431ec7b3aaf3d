;; Flotilla test component `echo_messaging`: wasmCloud's echo-messaging. It exports
;; wasmcloud:messaging/handler@0.2.0 and serves no HTTP: each message is published back, body
;; unchanged, to its reply-to subject (when it has one) through wasmcloud:messaging/consumer.
;; A body of `trap` traps, `spin` loops until its deadline, `fail` answers an error.
(module
  (import "wasmcloud:messaging/consumer@0.2.0" "publish" (func $publish (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 256) "trap")
  (data (i32.const 260) "spin")
  (data (i32.const 264) "fail")
  (data (i32.const 272) "asked to fail")
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32) (result i32)
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
  ;; Whether the body (ptr, len) is the 4-byte word at `word`.
  (func $is (param $ptr i32) (param $len i32) (param $word i32) (result i32)
    (if (i32.ne (local.get $len) (i32.const 4)) (then (return (i32.const 0))))
    (i32.eq (i32.load (local.get $ptr)) (i32.load (local.get $word))))
  (func (export "wasmcloud:messaging/handler@0.2.0#handle-message")
    (param $subject i32) (param $subject_len i32) (param $body i32) (param $body_len i32)
    (param $has_reply i32) (param $reply i32) (param $reply_len i32) (result i32)
    (if (call $is (local.get $body) (local.get $body_len) (i32.const 256)) (then unreachable))
    (if (call $is (local.get $body) (local.get $body_len) (i32.const 260))
      (then (loop $forever (br $forever))))
    (if (call $is (local.get $body) (local.get $body_len) (i32.const 264))
      (then
        (i32.store8 (i32.const 128) (i32.const 1))
        (i32.store (i32.const 132) (i32.const 272))
        (i32.store (i32.const 136) (i32.const 13))
        (return (i32.const 128))))
    (if (local.get $has_reply)
      (then
        ;; broker-message{subject: reply-to, body, reply-to: none}; result<_, string> at 96.
        (call $publish (local.get $reply) (local.get $reply_len) (local.get $body) (local.get $body_len)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 96))
        (if (i32.load8_u (i32.const 96))
          (then
            (i32.store8 (i32.const 128) (i32.const 1))
            (i32.store (i32.const 132) (i32.load (i32.const 100)))
            (i32.store (i32.const 136) (i32.load (i32.const 104)))
            (return (i32.const 128))))))
    (i32.store8 (i32.const 128) (i32.const 0))
    (i32.const 128)))
