//! # consensus — Flotilla's replicated event log (not yet built)
//!
//! Will own: the versioned event types (app deployed/undeployed/deleted, host joined, labels
//! changed, host lost/returned), the pure `apply(state, event)` state machine whose placements
//! are `scheduler::place(state)`, the openraft storage on sled (log, vote, snapshots), the audit
//! log that keeps every applied event forever, and replay to any index.
//!
//! Must never: read a clock, draw randomness or do I/O inside `apply`; iterate a `HashMap` where
//! state is derived; acknowledge a log entry before sled has flushed it.
//!
//! Nothing is implemented here yet: the issue "Replicated event log" fills this crate.
