//! `flotilla replay --data-dir D [--at N]`: the state rebuilt offline from a stopped node's
//! audit log.

use std::path::Path;

use crate::cli::args::Output;

pub fn run(data_dir: &Path, at: Option<u64>, output: Output) -> super::Outcome {
    let machine = crate::replay::replay(data_dir, at)?;
    let report = crate::replay::report(&machine);
    super::show(output, &report, crate::replay::render_text);
    Ok(())
}
