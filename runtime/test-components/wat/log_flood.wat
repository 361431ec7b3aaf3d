  ;; log_flood: writes lines to stdout and through wasi:logging in a loop that never ends (its
  ;; CPU deadline stops it).
  (import "wasi:cli/stdout@0.2.12" "get-stdout" (func $get_stdout (result i32)))
  (import "wasi:logging/logging@0.1.0-draft" "log" (func $log (param i32 i32 i32 i32 i32)))
  (data (i32.const 256) "flooding the log with one more line of text\nflood")
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $request i32) (param $out i32)
    (local $stdout i32)
    (local.set $stdout (call $get_stdout))
    (loop $forever
      (call $stream_write (local.get $stdout) (i32.const 256) (i32.const 45) (i32.const 96))
      (call $log (i32.const 2) (i32.const 301) (i32.const 5) (i32.const 256) (i32.const 44))
      (br $forever)))
