//! The test guests on the real engine, over real HTTP: what each answers, that hostile guests
//! fail only their own request while hello keeps answering, and what config, secrets and log
//! lines reach a guest.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use consensus::secrets::{Sealed, SecretKey};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use runtime::capabilities::{Grants, SecretGrant, SecretVault, VaultError};
use runtime::compiler::Tier;
use runtime::engine::{EngineConfig, GuestContext, Prepared, WasmEngine};
use runtime::invoke::invoke;
use runtime::logs::{HostLogs, Level, LineOrigin, LogQuery, LogSink, Stream};
use scheduler::Digest;
use test_components::Guest;
use zeroize::Zeroizing;

/// Secrets sealed with a real cluster key and opened as a host opens them, without a cluster.
struct SealedSecrets {
    key: SecretKey,
    sealed: BTreeMap<String, Sealed>,
}

impl SealedSecrets {
    fn with(values: &[(&str, &str)]) -> Arc<SealedSecrets> {
        let key = SecretKey::derive("test cluster secret");
        let sealed = values
            .iter()
            .map(|(name, value)| (name.to_string(), key.seal(name, 1, value.as_bytes())))
            .collect();
        Arc::new(SealedSecrets { key, sealed })
    }
}

impl SecretVault for SealedSecrets {
    fn open(&self, name: &str, version: Option<u64>) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if version.is_some_and(|v| v != 1) {
            return Err(VaultError::NotFound);
        }
        let sealed = self.sealed.get(name).ok_or(VaultError::NotFound)?;
        self.key
            .open(name, 1, sealed)
            .map_err(|e| VaultError::Unavailable(e.to_string()))
    }
}

/// What the served guests are granted and where their lines and secrets come from.
struct Served {
    grants: Grants,
    logs: Arc<HostLogs>,
    vault: Arc<dyn SecretVault>,
}

impl Served {
    fn plain(allow_outgoing: bool) -> Served {
        Served {
            grants: Grants {
                allow_outgoing,
                ..Grants::default()
            },
            logs: HostLogs::new("test-host", runtime::logs::DEFAULT_APP_LOG_BYTES),
            vault: SealedSecrets::with(&[]),
        }
    }
}

/// Serves each guest under `/<name>...` on a loopback port; returns the base URL.
async fn serve(config: EngineConfig, allow_outgoing: bool) -> String {
    serve_with(config, Served::plain(allow_outgoing)).await
}

/// [`serve`], each guest compiled by `tier`.
async fn serve_on(config: EngineConfig, tier: Tier) -> String {
    serve_compiled(config, Served::plain(false), tier).await
}

/// [`serve`] with grants, a log buffer and secrets of the caller's.
async fn serve_with(config: EngineConfig, served: Served) -> String {
    serve_compiled(config, served, Tier::Optimized).await
}

async fn serve_compiled(config: EngineConfig, served: Served, tier: Tier) -> String {
    let engine = WasmEngine::new(config).expect("engine");
    let mut guests = BTreeMap::new();
    // A caller of another component links only with its callee (see `replicas`' tests).
    for guest in Guest::ALL.into_iter().filter(|g| *g != Guest::PongCaller) {
        let bytes = guest.build().expect("guest builds");
        let digest = Digest::of(&bytes);
        let component = match tier {
            Tier::Optimized => engine.compile(&digest, &bytes).expect("compiles"),
            Tier::Baseline => engine.compile_first(&digest, &bytes).expect("compiles"),
        };
        assert_eq!(engine.tier_of(&component), tier);
        guests.insert(
            guest.name().to_string(),
            engine
                .prepare(&component, served.grants.clone())
                .expect("links"),
        );
    }
    let guests: Arc<BTreeMap<String, Prepared>> = Arc::new(guests);
    let served = Arc::new(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (engine, guests, served) = (engine.clone(), guests.clone(), served.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (engine, guests, served) = (engine.clone(), guests.clone(), served.clone());
                    async move {
                        let name = req
                            .uri()
                            .path()
                            .trim_start_matches('/')
                            .split(['/', '?'])
                            .next()
                            .unwrap_or("")
                            .to_string();
                        let prepared = guests.get(&name).expect("a known guest").clone();
                        let origin = LineOrigin {
                            app: "app".to_string(),
                            component: name.clone(),
                            request: req.uri().path().to_string(),
                        };
                        let context = GuestContext {
                            sink: LogSink::new(served.logs.clone(), origin),
                            vault: served.vault.clone(),
                            backends: runtime::capabilities::Backends::new(None),
                        };
                        Ok::<_, Infallible>(invoke(&engine, &prepared, context, req).await)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

async fn get(url: &str) -> (u16, String) {
    let r = consensus::http_client::builder()
        .build()
        .expect("HTTP client")
        .get(url)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.unwrap())
}

fn quick_deadline() -> EngineConfig {
    EngineConfig {
        cpu_deadline: Duration::from_millis(500),
        max_memory_bytes: 16 << 20,
        ..EngineConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_answer_as_written() {
    let base = serve(quick_deadline(), false).await;
    hello_and_busy_answer(&base).await;

    let r = consensus::http_client::builder()
        .build()
        .expect("HTTP client")
        .post(format!("{base}/echo/some/path?x=1"))
        .header("x-test", "yes")
        .body("the body")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    assert!(text.starts_with("POST /echo/some/path?x=1\n"), "{text}");
    assert!(text.contains("x-test: yes\n"), "{text}");
    assert!(text.ends_with("\n\nthe body"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_guests_fail_only_their_own_request() {
    hostile_guests_fail_alone(serve(quick_deadline(), false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_guests_on_baseline_code_fail_only_their_own_request() {
    // Winch's code must keep the same bounds: the epoch deadline, the memory cap, traps.
    hostile_guests_fail_alone(serve_on(quick_deadline(), Tier::Baseline).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_on_baseline_code_answer_as_on_optimized_code() {
    hello_and_busy_answer(&serve_on(quick_deadline(), Tier::Baseline).await).await;
}

async fn hello_and_busy_answer(base: &str) {
    assert_eq!(
        get(&format!("{base}/hello")).await,
        (200, "Hello from Flotilla!\n".to_string())
    );
    assert_eq!(
        get(&format!("{base}/busy?ms=30")).await,
        (200, "done\n".to_string())
    );
}

async fn hostile_guests_fail_alone(base: String) {
    let hello = format!("{base}/hello");
    let steady = tokio::spawn(async move {
        let mut answers = Vec::new();
        for _ in 0..40 {
            answers.push(get(&hello).await.0);
            tokio::task::yield_now().await;
        }
        answers
    });
    let (spin_url, hog_url, trap_url) = (
        format!("{base}/spin"),
        format!("{base}/memory_hog"),
        format!("{base}/trap"),
    );
    let (spin, hog, trap) = tokio::join!(get(&spin_url), get(&hog_url), get(&trap_url));
    assert_eq!(spin.0, 504, "{}", spin.1);
    assert!(spin.1.contains("CPU deadline"), "{}", spin.1);
    assert_eq!(hog.0, 500, "{}", hog.1);
    assert_eq!(trap.0, 500, "{}", trap.1);
    assert!(trap.1.contains("trapped"), "{}", trap.1);
    let answers = steady.await.unwrap();
    assert!(
        answers.iter().all(|&s| s == 200),
        "hello kept answering: {answers:?}"
    );
    // And after all that, hello still answers.
    assert_eq!(get(&format!("{base}/hello")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_http_is_denied_without_a_link() {
    let base = serve(quick_deadline(), false).await;
    assert_eq!(
        get(&format!("{base}/outgoing")).await,
        (502, "outgoing: error 15\n".to_string())
    );
}

#[test]
fn compiled_components_are_cached_on_disk_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..EngineConfig::default()
    };
    let bytes = Guest::Hello.build().unwrap();
    let engine = WasmEngine::new(config.clone()).unwrap();
    let digest = Digest::of(&bytes);
    engine.compile(&digest, &bytes).unwrap();
    let cached: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0]
        .to_string_lossy()
        .starts_with(&format!("{}-", digest.hex())));
    // A second engine (a restart) loads it instead of compiling: garbage under the digest's
    // name would fail to load and be recompiled, so load a real one and check it links.
    let again = WasmEngine::new(config).unwrap();
    let component = again
        .compile(&digest, b"not even wasm")
        .expect("loaded from the cache, not compiled");
    again.prepare(&component, Grants::default()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_http_is_attempted_when_linked() {
    // With an http-client link the request is really sent: nothing listens on port 9, so the
    // connection is refused (error-code case 6) rather than denied (15).
    let base = serve(quick_deadline(), true).await;
    assert_eq!(
        get(&format!("{base}/outgoing")).await,
        (502, "outgoing: error 06\n".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reaches_the_guest_through_store_and_runtime() {
    let served = Served {
        grants: Grants {
            config: BTreeMap::from([
                ("colour".to_string(), "green".to_string()),
                ("greeting".to_string(), "hi".to_string()),
            ]),
            ..Grants::default()
        },
        ..Served::plain(false)
    };
    let base = serve_with(quick_deadline(), served).await;
    assert_eq!(
        get(&format!("{base}/config/")).await,
        (200, "colour=green\ngreeting=hi\n".to_string()),
        "get-all in key order"
    );
    assert_eq!(
        get(&format!("{base}/config/colour")).await,
        (200, "green\ngreen\n".to_string()),
        "through wasi:config/store, then wasi:config/runtime"
    );
    assert_eq!(get(&format!("{base}/config/missing")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_referenced_secrets_are_revealed() {
    let served = Served {
        grants: Grants {
            secrets: BTreeMap::from([
                (
                    "db".to_string(),
                    SecretGrant {
                        key: "db-password".to_string(),
                        field: None,
                        version: None,
                    },
                ),
                (
                    "gone".to_string(),
                    SecretGrant {
                        key: "deleted-one".to_string(),
                        field: None,
                        version: None,
                    },
                ),
            ]),
            ..Grants::default()
        },
        vault: SealedSecrets::with(&[("db-password", "hunter2"), ("other", "not yours")]),
        ..Served::plain(false)
    };
    let base = serve_with(quick_deadline(), served).await;
    assert_eq!(
        get(&format!("{base}/secret/db")).await,
        (200, "hunter2".to_string())
    );
    assert_eq!(
        get(&format!("{base}/secret/other")).await,
        (404, "not-found\n".to_string()),
        "a secret the component does not reference is not found"
    );
    assert_eq!(get(&format!("{base}/secret/gone")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_stderr_and_wasi_logging_become_lines_of_the_request() {
    let served = Served::plain(false);
    let logs = served.logs.clone();
    let base = serve_with(quick_deadline(), served).await;
    assert_eq!(
        get(&format!("{base}/logger/mark-1")).await,
        (200, "logged\n".to_string())
    );
    let lines = logs.read("app", &LogQuery::default());
    let seen: Vec<_> = lines
        .iter()
        .map(|l| (l.stream, l.level, l.context.as_str(), l.message.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (Stream::Stdout, Level::Info, "", "to stdout /logger/mark-1"),
            (Stream::Stderr, Level::Error, "", "to stderr /logger/mark-1"),
            (Stream::Logging, Level::Warn, "logger", "/logger/mark-1"),
        ]
    );
    assert!(lines.iter().all(|l| l.request == "/logger/mark-1"
        && l.component == "logger"
        && l.host == "test-host"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_stays_under_the_cap_and_hello_keeps_answering() {
    /// A small cap, so that the flood overflows it many times over within its deadline.
    const CAP_BYTES: usize = 64 << 10;
    let served = Served {
        logs: HostLogs::new("test-host", CAP_BYTES),
        ..Served::plain(false)
    };
    let logs = served.logs.clone();
    let base = serve_with(quick_deadline(), served).await;
    let hello = format!("{base}/hello");
    let steady = tokio::spawn(async move {
        let mut answers = Vec::new();
        for _ in 0..20 {
            answers.push(get(&hello).await.0);
        }
        answers
    });
    let flood = get(&format!("{base}/log_flood")).await;
    assert_eq!(
        flood.0, 504,
        "the flood ends at its CPU deadline: {}",
        flood.1
    );
    let answers = steady.await.unwrap();
    assert!(answers.iter().all(|&s| s == 200), "{answers:?}");
    let (kept, bytes, dropped) = logs.usage()["app"];
    assert!(bytes <= CAP_BYTES, "{bytes} bytes kept");
    assert!(dropped > 0 && kept > 0, "kept {kept}, dropped {dropped}");
    assert_eq!(logs.dropped_total(), dropped);
}

#[test]
fn a_failed_optimizing_compile_is_not_retried_and_does_not_mark_the_component_failed() {
    let engine = WasmEngine::new(EngineConfig::default()).unwrap();
    let garbage = b"not wasm at all".to_vec();
    let digest = Digest::of(&garbage);
    let first = engine.compile_optimized(&digest, &garbage).unwrap_err();
    let again = engine.compile_optimized(&digest, &garbage).unwrap_err();
    assert_eq!(first, again);
    assert_eq!(
        engine.compilations(),
        1,
        "answered from memory the second time"
    );
    // What starts replicas (compile_first) keeps its own memory: a component serving on
    // baseline code is not marked as one that does not compile.
    assert_eq!(engine.failed(&digest), None);
}
