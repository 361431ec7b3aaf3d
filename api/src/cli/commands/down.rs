//! `flotilla down [--all] [--data-dir D]`: stop local hosts started by `flotilla up`.

use std::path::Path;

use crate::up::{daemon, local};

pub fn run(all: bool, data_dir: Option<&Path>) -> super::Outcome {
    let running = local::running(&local::home());
    let nodes = daemon::to_stop(running, data_dir, all)?;
    for line in daemon::stop(&nodes) {
        println!("{line}");
    }
    Ok(())
}
