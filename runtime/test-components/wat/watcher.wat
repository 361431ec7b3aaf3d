;; Flotilla test component `watcher`: wasmCloud's key-value watcher. It exports
;; wasi:keyvalue/watcher@0.2.0-draft and serves no HTTP: `on-set(bucket, key, value)` logs a
;; wasi:logging line with the key as its context and the value as its message, `on-delete`
;; one with the message `deleted`.
(module
  (import "wasi:logging/logging@0.1.0-draft" "log" (func $log (param i32 i32 i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft" "[resource-drop]bucket" (func $bucket_drop (param i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 256) "deleted")
  ;; A bump allocator: the instance lives for one event.
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
  (func (export "wasi:keyvalue/watcher@0.2.0-draft#on-set") (param $bucket i32) (param $key i32) (param $key_len i32) (param $value i32) (param $value_len i32)
    (call $log (i32.const 2) (local.get $key) (local.get $key_len) (local.get $value) (local.get $value_len))
    (call $bucket_drop (local.get $bucket)))
  (func (export "wasi:keyvalue/watcher@0.2.0-draft#on-delete") (param $bucket i32) (param $key i32) (param $key_len i32)
    (call $log (i32.const 2) (local.get $key) (local.get $key_len) (i32.const 256) (i32.const 7))
    (call $bucket_drop (local.get $bucket))))
