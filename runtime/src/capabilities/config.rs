//! `wasi:config/store@0.2.0-draft` and `wasi:config/runtime@0.2.0-draft`: the component's
//! effective config, read-only; `get-all` answers in key order.

use super::bindings::wasi::config::{runtime, store};
use crate::engine::GuestState;

impl store::Host for GuestState {
    fn get(&mut self, key: String) -> Result<Option<String>, store::Error> {
        Ok(self.grants.config.get(&key).cloned())
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, store::Error> {
        Ok(self.grants.config.clone().into_iter().collect())
    }
}

impl runtime::Host for GuestState {
    fn get(&mut self, key: String) -> Result<Option<String>, runtime::ConfigError> {
        Ok(self.grants.config.get(&key).cloned())
    }

    fn get_all(&mut self) -> Result<Vec<(String, String)>, runtime::ConfigError> {
        Ok(self.grants.config.clone().into_iter().collect())
    }
}
