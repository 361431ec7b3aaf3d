//! # flotilla-tests — multi-process integration tests (not yet built)
//!
//! Will own: tests that start real `flotilla` processes on loopback and drive them over real
//! HTTP (the walkthrough of DESIGN §1, leader loss, restart with data kept).
//!
//! Must never: mock a part that the real system runs, or wait for a condition with a fixed
//! sleep instead of polling with a deadline.
