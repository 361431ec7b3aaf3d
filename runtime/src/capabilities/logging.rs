//! `wasi:logging/logging@0.1.0-draft`: each call is one line in the host's log buffer.

use super::bindings::wasi::logging::logging;
use crate::engine::GuestState;
use crate::logs::{Level, Stream};

impl logging::Host for GuestState {
    fn log(&mut self, level: logging::Level, context: String, message: String) {
        let level = match level {
            logging::Level::Trace => Level::Trace,
            logging::Level::Debug => Level::Debug,
            logging::Level::Info => Level::Info,
            logging::Level::Warn => Level::Warn,
            logging::Level::Error => Level::Error,
            logging::Level::Critical => Level::Critical,
        };
        self.sink.log(level, Stream::Logging, &context, &message);
    }
}
