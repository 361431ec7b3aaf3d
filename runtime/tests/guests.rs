//! The test guests on the real engine, over real HTTP: what each answers, and that hostile
//! guests fail only their own request while hello keeps answering.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use runtime::engine::{EngineConfig, Prepared, WasmEngine};
use runtime::invoke::invoke;
use scheduler::Digest;
use test_components::Guest;

/// Serves each guest under `/<name>...` on a loopback port; returns the base URL.
async fn serve(config: EngineConfig, allow_outgoing: bool) -> String {
    let engine = WasmEngine::new(config).expect("engine");
    let mut guests = BTreeMap::new();
    for guest in Guest::ALL {
        let bytes = guest.build().expect("guest builds");
        let component = engine
            .compile(&Digest::of(&bytes), &bytes)
            .expect("compiles");
        guests.insert(
            guest.name().to_string(),
            engine.prepare(&component, allow_outgoing).expect("links"),
        );
    }
    let guests: Arc<BTreeMap<String, Prepared>> = Arc::new(guests);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (engine, guests) = (engine.clone(), guests.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (engine, guests) = (engine.clone(), guests.clone());
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
                        Ok::<_, Infallible>(invoke(&engine, &prepared, req).await)
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
    assert_eq!(
        get(&format!("{base}/hello")).await,
        (200, "Hello from Flotilla!\n".to_string())
    );
    assert_eq!(
        get(&format!("{base}/busy?ms=30")).await,
        (200, "done\n".to_string())
    );

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
    let base = serve(quick_deadline(), false).await;
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
    again.prepare(&component, false).unwrap();
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
