//! `flotilla-bench registry`: deploy → first 200 of a component named by an OCI reference (a
//! real `docker-registry` on loopback) against the same component uploaded to a node and named
//! by its digest, in the same run on the same 3-node cluster.
//!
//! Each round deploys bytes no node has seen (the hello component with a round-numbered custom
//! section), so both paths include fetching and compiling; the OCI path adds resolving the tag,
//! pulling the manifest and layer and verifying them on the deploying node.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flotilla_tests::harness::{flotilla_bin, Registry};
use flotilla_tests::manifest_with_image;

use crate::tools::{authorized, ms, wait_until};

/// How long one deploy may take to answer its first request before the run fails.
const FIRST_200_WITHIN: Duration = Duration::from_secs(60);
/// Replicas of each benchmark app (one per node).
const REPLICAS: u32 = 3;

/// The hello component made distinct by a custom section naming `round` (a component may
/// carry custom sections anywhere; the guest's behaviour is unchanged).
fn distinct_hello(hello: &[u8], round: usize) -> Vec<u8> {
    let name = b"flotilla-bench-round";
    let payload = round.to_string();
    let mut body = Vec::new();
    leb128(&mut body, name.len());
    body.extend_from_slice(name);
    body.extend_from_slice(payload.as_bytes());
    let mut bytes = hello.to_vec();
    bytes.push(0); // custom section id
    leb128(&mut bytes, body.len());
    bytes.extend_from_slice(&body);
    bytes
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `flotilla push FILE REFERENCE`, not measured.
fn push(file: &Path, reference: &str) -> Result<(), String> {
    let out = Command::new(flotilla_bin())
        .arg("push")
        .arg(file)
        .arg(reference)
        .output()
        .map_err(|e| format!("flotilla push: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "flotilla push {reference}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Deploys `manifest` through `deploy_to` and answers the time until `app` answers 200
/// through `serve_from`.
async fn deploy_until_served(
    http: &reqwest::Client,
    deploy_to: &str,
    serve_from: &str,
    app: &str,
    manifest: String,
    started: Instant,
) -> Result<Duration, String> {
    crate::tools::deploy(http, deploy_to, app, manifest).await?;
    wait_until("the first 200", FIRST_200_WITHIN, async || {
        http.get(format!("http://{serve_from}/"))
            .header("host", format!("{app}.localhost"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await?;
    Ok(started.elapsed())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Runs the comparison and prints it.
pub async fn registry_bench(work_dir: PathBuf, rounds: usize) -> Result<(), String> {
    std::fs::create_dir_all(&work_dir).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir_in(&work_dir).map_err(|e| e.to_string())?;
    let registry = tokio::task::block_in_place(|| Registry::start(None));
    let cluster = crate::tools::three_nodes(dir.path(), &[])?;
    let addrs = cluster.addrs();
    let http = authorized(&cluster.token())?;
    let hello = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-world/hello.wasm"),
    )
    .map_err(|e| format!("examples/hello-world/hello.wasm: {e}"))?;

    let (mut by_upload, mut by_reference) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Baseline: upload to node 1, deploy by digest through node 2, request through node 3.
        let bytes = distinct_hello(&hello, 2 * round);
        let started = Instant::now();
        let digest = crate::tools::upload(&http, &addrs[0], bytes).await?;
        let app = format!("uploaded-{round}");
        let manifest = manifest_with_image(&app, "v1", &digest, REPLICAS);
        by_upload
            .push(deploy_until_served(&http, &addrs[1], &addrs[2], &app, manifest, started).await?);

        // OCI: pushed beforehand (not measured), deployed by tag through node 2.
        let file = dir.path().join(format!("hello-{round}.wasm"));
        std::fs::write(&file, distinct_hello(&hello, 2 * round + 1)).map_err(|e| e.to_string())?;
        let reference = format!("{}/bench/hello-{round}:v1", registry.addr);
        tokio::task::block_in_place(|| push(&file, &reference))?;
        let app = format!("pulled-{round}");
        let manifest = manifest_with_image(&app, "v1", &reference, REPLICAS);
        by_reference.push(
            deploy_until_served(&http, &addrs[1], &addrs[2], &app, manifest, Instant::now())
                .await?,
        );
    }
    let (upload, reference) = (median(by_upload), median(by_reference));
    println!("deploy → first 200 of new bytes on a 3-node cluster, median of {rounds} rounds\n");
    println!("| path | median (ms) | ratio |");
    println!("|---|---|---|");
    println!(
        "| upload to a node + deploy by digest (baseline) | {:.1} | 1.00× |",
        ms(upload)
    );
    println!(
        "| deploy by OCI tag (resolve, pull, verify, then propose) | {:.1} | {:.2}× |",
        ms(reference),
        reference.as_secs_f64() / upload.as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_distinct_component_still_parses_and_differs() {
        let hello = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../examples/hello-world/hello.wasm"),
        )
        .unwrap();
        let (a, b) = (
            super::distinct_hello(&hello, 0),
            super::distinct_hello(&hello, 300),
        );
        assert_ne!(a, b);
        let engine =
            runtime::engine::WasmEngine::new(runtime::engine::EngineConfig::default()).unwrap();
        for bytes in [a, b] {
            engine
                .compile(&scheduler::Digest::of(&bytes), &bytes)
                .expect("still a valid component");
        }
    }
}
