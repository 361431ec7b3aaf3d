//! Validates wadm manifests and prints where their replicas would run.
//!
//! ```text
//! cargo run -p scheduler --example place -- [--host ID[:k=v,k=v...]]... MANIFEST...
//! ```
//! Each manifest is deployed in order (a later version of the same app replaces the earlier
//! one, which keeps serving while the new one cannot be placed). Without `--host`, one host
//! named `host-1` without labels is assumed.

use std::collections::BTreeMap;
use std::process::ExitCode;

use scheduler::{parse_manifest, place, App, AppVersion, Host, State};

fn main() -> ExitCode {
    let mut state = State::default();
    let mut manifests = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--host" {
            let Some(spec) = args.next() else {
                eprintln!("--host needs a value: ID[:k=v,k=v...]");
                return ExitCode::from(2);
            };
            let (id, labels) = spec.split_once(':').unwrap_or((&spec, ""));
            let labels: BTreeMap<String, String> = labels
                .split(',')
                .filter(|kv| !kv.is_empty())
                .filter_map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect();
            state
                .hosts
                .insert(id.to_string(), Host { labels, live: true });
        } else {
            manifests.push(arg);
        }
    }
    if manifests.is_empty() {
        eprintln!("usage: place [--host ID[:k=v,...]]... MANIFEST...");
        return ExitCode::from(2);
    }
    if state.hosts.is_empty() {
        state.hosts.insert(
            "host-1".to_string(),
            Host {
                labels: BTreeMap::new(),
                live: true,
            },
        );
    }
    let mut ok = true;
    for path in &manifests {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::from(1);
            }
        };
        match parse_manifest(&bytes) {
            Err(rejected) => {
                ok = false;
                println!("{path}: rejected");
                for d in &rejected.diagnostics {
                    println!("  {d}");
                }
            }
            Ok(parsed) => {
                println!("{path}: valid");
                for w in &parsed.warnings {
                    println!("  {w}");
                }
                let m = parsed.manifest;
                let version = AppVersion {
                    version: m.version().map_or_else(|| path.to_string(), str::to_string),
                    manifest: m.clone(),
                };
                let fallback = state.apps.remove(&m.name).map(|a| a.desired);
                state.apps.insert(
                    m.name.clone(),
                    App {
                        desired: version,
                        fallback,
                        undeployed: false,
                    },
                );
            }
        }
    }
    let placements = place(&state);
    for (name, app) in &placements.apps {
        println!(
            "\napp {name}: {:?} (desired {}, serving {})",
            app.status,
            app.desired_version,
            app.serving_version.as_deref().unwrap_or("-")
        );
        for m in &app.messages {
            println!("  ! {m}");
        }
        for (component, c) in &app.components {
            println!("  {component}: {:?}, {} replicas", c.status, c.total());
            for (host, n) in &c.hosts {
                println!("    {host}: {n}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
