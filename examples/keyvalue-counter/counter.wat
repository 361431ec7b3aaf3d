;; Flotilla test component `counter`.
(module
  (import "wasi:http/types@0.2.12" "[method]incoming-request.path-with-query" (func $path (param i32 i32)))
  (import "wasmcloud:bus/lattice@2.0.0" "[constructor]call-target-interface" (func $target_new (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasmcloud:bus/lattice@2.0.0" "set-link-name" (func $set_link_name (param i32 i32 i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft" "open" (func $open (param i32 i32 i32)))
  (import "wasi:keyvalue/store@0.2.0-draft" "[resource-drop]bucket" (func $bucket_drop (param i32)))
  (import "wasi:keyvalue/atomics@0.2.0-draft" "increment" (func $increment (param i32 i32 i32 i64 i32)))
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

  ;; counter: wasmCloud's http-keyvalue-counter, call for call: `/PATH[?link_name=NAME]` sets the
  ;; link name NAME (default `default`) for wasi:keyvalue/store and atomics through
  ;; wasmcloud:bus/lattice@2.0.0, opens bucket `default`, increments the key PATH by 1 and
  ;; answers `Counter PATH: N`. A failure answers 500 with the host's error string.
  (data (i32.const 256) "wasi")
  (data (i32.const 260) "keyvalue")
  (data (i32.const 268) "store")
  (data (i32.const 273) "atomics")
  (data (i32.const 280) "default")
  (data (i32.const 288) "Counter ")
  (data (i32.const 296) ": ")
  (data (i32.const 300) "link_name=")
  (data (i32.const 312) "keyvalue error\n")
  ;; Whether the `len` bytes at `a` equal those at `b`.
  (func $same (param $a i32) (param $b i32) (param $len i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $len)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $next)))
    (i32.const 0))
  ;; The first index of byte `c` in (ptr, len) at or after `from`, or `len`.
  (func $find (param $ptr i32) (param $len i32) (param $from i32) (param $c i32) (result i32)
    (block $found
      (loop $next
        (br_if $found (i32.ge_u (local.get $from) (local.get $len)))
        (br_if $found (i32.eq (i32.load8_u (i32.add (local.get $ptr) (local.get $from))) (local.get $c)))
        (local.set $from (i32.add (local.get $from) (i32.const 1)))
        (br $next)))
    (local.get $from))
  ;; Answers 500 with the `other(string)` of the wasi:keyvalue error whose tag is at `at`.
  (func $fail (param $out i32) (param $at i32)
    (if (i32.eq (i32.load8_u (local.get $at)) (i32.const 2))
      (then (call $respond (local.get $out) (i32.const 500)
              (i32.load (i32.add (local.get $at) (i32.const 4))) (i32.load (i32.add (local.get $at) (i32.const 8)))))
      (else (call $respond (local.get $out) (i32.const 500) (i32.const 312) (i32.const 15)))))
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (local $p i32) (local $n i32) (local $q i32) (local $i i32) (local $end i32)
    (local $link i32) (local $link_len i32) (local $bucket i32)
    (local $count i64) (local $digits i32) (local $d i32) (local $text i32) (local $at i32)
    (call $path (local.get $request) (i32.const 48))
    (local.set $p (i32.load (i32.const 52)))
    (local.set $n (i32.load (i32.const 56)))
    (local.set $q (call $find (local.get $p) (local.get $n) (i32.const 0) (i32.const 63)))
    (local.set $link (i32.const 280))
    (local.set $link_len (i32.const 7))
    ;; `link_name=NAME` anywhere in the query.
    (local.set $i (i32.add (local.get $q) (i32.const 1)))
    (block $none
      (loop $scan
        (br_if $none (i32.gt_u (i32.add (local.get $i) (i32.const 10)) (local.get $n)))
        (if (call $same (i32.add (local.get $p) (local.get $i)) (i32.const 300) (i32.const 10))
          (then
            (local.set $end (call $find (local.get $p) (local.get $n) (i32.add (local.get $i) (i32.const 10)) (i32.const 38)))
            (local.set $link (i32.add (local.get $p) (i32.add (local.get $i) (i32.const 10))))
            (local.set $link_len (i32.sub (local.get $end) (i32.add (local.get $i) (i32.const 10))))
            (br $none)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.store (i32.const 120) (call $target_new (i32.const 256) (i32.const 4) (i32.const 260) (i32.const 8) (i32.const 268) (i32.const 5)))
    (i32.store (i32.const 124) (call $target_new (i32.const 256) (i32.const 4) (i32.const 260) (i32.const 8) (i32.const 273) (i32.const 7)))
    (call $set_link_name (local.get $link) (local.get $link_len) (i32.const 120) (i32.const 2) (i32.const 64))
    (if (i32.load8_u (i32.const 64))
      (then
        (call $respond (local.get $out) (i32.const 500) (i32.load (i32.const 68)) (i32.load (i32.const 72)))
        (return)))
    (call $open (i32.const 280) (i32.const 7) (i32.const 80))
    (if (i32.load8_u (i32.const 80))
      (then (call $fail (local.get $out) (i32.const 84)) (return)))
    (local.set $bucket (i32.load (i32.const 84)))
    (call $increment (local.get $bucket) (local.get $p) (local.get $q) (i64.const 1) (i32.const 96))
    (call $bucket_drop (local.get $bucket))
    (if (i32.load8_u (i32.const 96))
      (then (call $fail (local.get $out) (i32.const 104)) (return)))
    (local.set $count (i64.load (i32.const 104)))
    ;; The decimal digits of the count, written backwards from 220.
    (local.set $digits (i32.const 220))
    (loop $digit
      (local.set $digits (i32.sub (local.get $digits) (i32.const 1)))
      (i32.store8 (local.get $digits) (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $count) (i64.const 10)))))
      (local.set $count (i64.div_u (local.get $count) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $count) (i64.const 0))))
    (local.set $d (i32.sub (i32.const 220) (local.get $digits)))
    ;; `Counter ` PATH `: ` N `\n`
    (local.set $text (call $cabi_realloc (i32.const 0) (i32.const 0) (i32.const 1)
      (i32.add (i32.add (i32.const 11) (local.get $q)) (local.get $d))))
    (memory.copy (local.get $text) (i32.const 288) (i32.const 8))
    (local.set $at (i32.add (local.get $text) (i32.const 8)))
    (memory.copy (local.get $at) (local.get $p) (local.get $q))
    (local.set $at (i32.add (local.get $at) (local.get $q)))
    (memory.copy (local.get $at) (i32.const 296) (i32.const 2))
    (local.set $at (i32.add (local.get $at) (i32.const 2)))
    (memory.copy (local.get $at) (local.get $digits) (local.get $d))
    (local.set $at (i32.add (local.get $at) (local.get $d)))
    (i32.store8 (local.get $at) (i32.const 10))
    (call $respond (local.get $out) (i32.const 200) (local.get $text)
      (i32.add (i32.add (i32.const 11) (local.get $q)) (local.get $d))))
)
