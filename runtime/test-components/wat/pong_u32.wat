;; Flotilla test component `pong_u32`: exports example:pong/pingpong with `ping: func() -> u32`
;; (42), which does not match what pong_caller imports (`-> string`).
(module
  (memory (export "memory") 1)
  (func (export "example:pong/pingpong#ping") (result i32)
    (i32.const 42)))
