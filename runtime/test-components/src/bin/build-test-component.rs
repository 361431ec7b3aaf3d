//! Writes a test component's source and binary: `build-test-component NAME OUT_DIR`
//! (`cargo run -p test-components --bin build-test-component -- hello examples/hello-world`).

use std::path::PathBuf;
use std::process::ExitCode;

use test_components::Guest;

/// The name that writes `composed.wasm`: pong_caller composed with pong.
const COMPOSED: &str = "pong_composed";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, out] = args.as_slice() else {
        eprintln!("usage: build-test-component NAME OUT_DIR   (NAME: hello, echo, busy, spin, memory_hog, trap, outgoing, config, secret, logger, log_flood, counter, pong_caller, pong, pong_composed)");
        return ExitCode::from(2);
    };
    if name == COMPOSED {
        // wasmCloud's composition example, pre-composed: pong_caller with pong plugged in.
        let path = PathBuf::from(out).join("composed.wasm");
        return match test_components::composed(Guest::PongCaller, Guest::Pong)
            .map_err(|e| format!("{e:#}"))
            .and_then(|b| std::fs::write(&path, b).map_err(|e| e.to_string()))
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(guest) = Guest::ALL.into_iter().find(|g| g.name() == name) else {
        eprintln!("unknown test component {name}");
        return ExitCode::from(2);
    };
    let out = PathBuf::from(out);
    let bytes = match guest.build() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::FAILURE;
        }
    };
    let stem = if guest == Guest::Hello {
        "hello".to_string()
    } else {
        guest.name().to_string()
    };
    if let Err(e) = std::fs::write(out.join(format!("{stem}.wat")), guest.source())
        .and_then(|()| std::fs::write(out.join(format!("{stem}.wasm")), &bytes))
    {
        eprintln!("writing to {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "{} ({} bytes) written to {}",
        guest.name(),
        bytes.len(),
        out.display()
    );
    ExitCode::SUCCESS
}
