//! `flotilla-bench blob`: blob write and read MiB/s through a component — wasmCloud's blobby
//! (in Python, built with componentize-py), which streams an HTTP request's body into an
//! object and an object into the response — on each blobstore backend, against writing and
//! reading the same bytes on that backend directly from this process, in the same run: a file
//! beside blobby's folder (blobstore-fs), the JetStream object store with async-nats
//! (blobstore-nats), signed PUT and GET on the same s3s-fs server (blobstore-s3).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flotilla_tests::harness::toolchains::build_python_blobby;
use flotilla_tests::harness::{S3_ACCESS_KEY, S3_SECRET_KEY};
use flotilla_tests::{Server, ServerKind};
use rusty_s3::S3Action;
use tokio::io::AsyncReadExt;

use crate::tools::{authorized, deploy, upload, wait_serving, wait_until};

/// How long a signed URL of the direct S3 baseline stays valid.
const SIGNATURE_VALIDITY: Duration = Duration::from_secs(300);
/// Requests in a row that must find a just-written object before the new version is measured
/// (a replica of the last version, on another backend, would not find it).
const CONSECUTIVE_FOUND: usize = 10;
/// The longest one object may take to go in or out.
const TRANSFER_WITHIN: Duration = Duration::from_secs(300);

/// MiB/s of one transfer direction, the median of the rounds.
#[derive(Default, Clone, Copy)]
struct Rates {
    write: f64,
    read: f64,
}

fn mib_per_sec(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / took.as_secs_f64().max(1e-9)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Times `rounds` writes and reads of `data` by `write` and `read` (which answers the bytes
/// read, to be checked).
async fn measure<W, R>(
    data: &bytes::Bytes,
    rounds: usize,
    write: W,
    read: R,
) -> Result<Rates, String>
where
    W: AsyncFn(usize, bytes::Bytes) -> Result<(), String>,
    R: AsyncFn(usize) -> Result<usize, String>,
{
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let t = Instant::now();
        write(round, data.clone())
            .await
            .map_err(|e| format!("writing round {round}: {e}"))?;
        writes.push(mib_per_sec(data.len(), t.elapsed()));
        let t = Instant::now();
        let got = read(round)
            .await
            .map_err(|e| format!("reading round {round}: {e}"))?;
        reads.push(mib_per_sec(data.len(), t.elapsed()));
        if got != data.len() {
            return Err(format!("read {got} bytes of {}", data.len()));
        }
    }
    Ok(Rates {
        write: median(writes),
        read: median(reads),
    })
}

/// blobby's manifest with `digest`, one instance on the first node, its HTTP address `addr`,
/// and the blobstore capability `image` with `link_config` (YAML lines).
fn blobby_app(digest: &str, version: &str, addr: &str, image: &str, link_config: &str) -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/python-blobby/wadm.yaml"
    ))
    .expect("examples/python-blobby/wadm.yaml")
    .replace("version: v0.0.1", &format!("version: {version}"))
    .replace("file://./app.wasm", digest)
    .replace(
        "            instances: 100",
        "            instances: 4\n            spread:\n              - name: one\n                requirements:\n                  role: one",
    )
    .replace("0.0.0.0:8000", addr)
    .replace("root: '/tmp/blobstore'", link_config)
    .replace("ghcr.io/wasmcloud/blobstore-fs:0.11.1", image)
}

/// An S3 client of the s3s-fs server: signed URLs for `bucket`'s objects.
struct DirectS3 {
    bucket: rusty_s3::Bucket,
    credentials: rusty_s3::Credentials,
}

impl DirectS3 {
    fn new(endpoint: &str, bucket: &str) -> Result<DirectS3, String> {
        let url = endpoint.parse().map_err(|e| format!("{endpoint}: {e}"))?;
        Ok(DirectS3 {
            bucket: rusty_s3::Bucket::new(
                url,
                rusty_s3::UrlStyle::Path,
                bucket.to_string(),
                "us-east-1",
            )
            .map_err(|e| format!("{e:?}"))?,
            credentials: rusty_s3::Credentials::new(S3_ACCESS_KEY, S3_SECRET_KEY),
        })
    }

    fn create_bucket(&self) -> url::Url {
        rusty_s3::actions::CreateBucket::new(&self.bucket, &self.credentials)
            .sign(SIGNATURE_VALIDITY)
    }

    fn put(&self, name: &str) -> url::Url {
        rusty_s3::actions::PutObject::new(&self.bucket, Some(&self.credentials), name)
            .sign(SIGNATURE_VALIDITY)
    }

    fn get(&self, name: &str) -> url::Url {
        rusty_s3::actions::GetObject::new(&self.bucket, Some(&self.credentials), name)
            .sign(SIGNATURE_VALIDITY)
    }
}

/// A response's body, counted as it streams (never whole in memory).
async fn drain(response: reqwest::Response) -> Result<usize, String> {
    use futures::StreamExt;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    let mut body = response.bytes_stream();
    let mut n = 0;
    while let Some(chunk) = body.next().await {
        n += chunk.map_err(|e| e.to_string())?.len();
    }
    Ok(n)
}

async fn expect_success(sent: reqwest::Result<reqwest::Response>) -> Result<(), String> {
    let response = sent.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        return Ok(());
    }
    Err(format!(
        "answered {}: {}",
        response.status(),
        response.text().await.unwrap_or_default()
    ))
}

/// Through blobby at `addr`: PUT then GET of `/bench-ROUND.bin`.
async fn through_component(
    http: &reqwest::Client,
    addr: &str,
    data: &bytes::Bytes,
    rounds: usize,
) -> Result<Rates, String> {
    let url = |round: usize| format!("http://{addr}/bench-{round}.bin");
    measure(
        data,
        rounds,
        async |round, body| expect_success(http.put(url(round)).body(body).send().await).await,
        async |round| {
            drain(
                http.get(url(round))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?,
            )
            .await
        },
    )
    .await
}

pub async fn blob_bench(work_dir: PathBuf, object_mib: usize, rounds: usize) -> Result<(), String> {
    std::fs::create_dir_all(&work_dir).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir_in(&work_dir).map_err(|e| e.to_string())?;
    let blobby = tokio::task::block_in_place(build_python_blobby).map_err(|e| e.to_string())?;
    let data: bytes::Bytes = (0..object_mib << 20).map(|i| (i % 251) as u8).collect();
    let nats = Server::start(ServerKind::Nats);
    let s3 = Server::start(ServerKind::S3);
    let plain = reqwest::Client::builder()
        .timeout(TRANSFER_WITHIN)
        .build()
        .map_err(|e| e.to_string())?;

    // Directly on each backend.
    let folder = dir.path().join("direct");
    std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
    let file = |round: usize| folder.join(format!("bench-{round}.bin"));
    let direct_fs = measure(
        &data,
        rounds,
        async |round, body| {
            tokio::fs::write(file(round), &body)
                .await
                .map_err(|e| e.to_string())
        },
        async |round| read_file_streaming(&file(round)).await,
    )
    .await
    .map_err(|e| format!("a folder directly: {e}"))?;
    let client = async_nats::connect(nats.url())
        .await
        .map_err(|e| e.to_string())?;
    let jetstream = async_nats::jetstream::new(client);
    let store = jetstream
        .create_object_store(async_nats::jetstream::object_store::Config {
            bucket: "direct".to_string(),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let direct_nats = measure(
        &data,
        rounds,
        async |round, body| {
            let mut reader = body.as_ref();
            store
                .put(format!("bench-{round}.bin").as_str(), &mut reader)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
        async |round| {
            let mut object = store
                .get(format!("bench-{round}.bin"))
                .await
                .map_err(|e| e.to_string())?;
            count(&mut object).await
        },
    )
    .await
    .map_err(|e| format!("NATS directly: {e}"))?;
    let direct = DirectS3::new(&s3.url(), "direct")?;
    expect_success(plain.put(direct.create_bucket()).body("").send().await).await?;
    let direct_s3 = measure(
        &data,
        rounds,
        async |round, body| {
            let name = format!("bench-{round}.bin");
            expect_success(plain.put(direct.put(&name)).body(body).send().await).await
        },
        async |round| {
            let name = format!("bench-{round}.bin");
            drain(
                plain
                    .get(direct.get(&name))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?,
            )
            .await
        },
    )
    .await?;

    // Through blobby on a 3-node cluster, placed on the first node.
    let cluster = crate::tools::three_nodes_one_labelled(dir.path())?;
    let addrs = cluster.addrs();
    let api = authorized(&cluster.token())?;
    let digest = upload(
        &api,
        &addrs[0],
        std::fs::read(&blobby).map_err(|e| e.to_string())?,
    )
    .await?;
    let app_addr = flotilla_tests::free_addr();
    let s3_json = format!(
        "'{{\"access_key_id\":\"{S3_ACCESS_KEY}\",\"secret_access_key\":\"{S3_SECRET_KEY}\",\"endpoint\":\"{}\"}}'",
        s3.url()
    );
    let backends = [
        (
            "blobstore-fs",
            "ghcr.io/wasmcloud/blobstore-fs:0.11.1",
            format!("root: '{}'", dir.path().join("blobby").display()),
            direct_fs,
        ),
        (
            "blobstore-nats",
            "ghcr.io/wasmcloud/blobstore-nats:0.1.0",
            format!("cluster_uri: '{}'", nats.url()),
            direct_nats,
        ),
        (
            "blobstore-s3",
            "ghcr.io/wasmcloud/blobstore-s3:0.12.0",
            format!("config_json: {s3_json}"),
            direct_s3,
        ),
    ];
    let mut rows = Vec::new();
    for (i, (name, image, link_config, direct)) in backends.into_iter().enumerate() {
        let version = format!("v{}", i + 1);
        deploy(
            &api,
            &addrs[0],
            "blobby",
            blobby_app(&digest, &version, &app_addr, image, &link_config),
        )
        .await?;
        // The new version serves, and no replica of the last one (on another backend) is left:
        // an object written now is found by every request.
        wait_serving(&api, &addrs[0], "blobby", &version, TRANSFER_WITHIN).await?;
        let warm = format!("http://{app_addr}/warm-{version}");
        let what = format!("only {version} to answer");
        wait_until(&what, TRANSFER_WITHIN, async || {
            let stored = plain.put(&warm).body("warm").send().await;
            if !stored.is_ok_and(|r| r.status() == reqwest::StatusCode::CREATED) {
                return false;
            }
            for _ in 0..CONSECUTIVE_FOUND {
                let found = plain.get(&warm).send().await;
                if !found.is_ok_and(|r| r.status().is_success()) {
                    return false;
                }
            }
            true
        })
        .await?;
        let component = through_component(&plain, &app_addr, &data, rounds)
            .await
            .map_err(|e| format!("blobby on {name}: {e}"))?;
        rows.push((name, direct, component));
    }

    println!(
        "{object_mib} MiB objects, median of {rounds} rounds; NATS 2.9, s3s-fs {}, blobby in Python; everything on this machine\n",
        flotilla_tests::harness::toolchains::S3S_FS
    );
    println!("| backend | direct write MiB/s | through blobby | ratio | direct read MiB/s | through blobby | ratio |");
    println!("|---|---|---|---|---|---|---|");
    for (name, d, c) in rows {
        println!(
            "| {name} | {:.0} | {:.0} | {:.2}× | {:.0} | {:.0} | {:.2}× |",
            d.write,
            c.write,
            c.write / d.write.max(1e-9),
            d.read,
            c.read,
            c.read / d.read.max(1e-9)
        );
    }
    Ok(())
}

/// Reads a file to its end in chunks: its length.
async fn read_file_streaming(path: &Path) -> Result<usize, String> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    count(&mut file).await
}

/// Reads `reader` to its end in chunks: how many bytes.
async fn count(reader: &mut (impl tokio::io::AsyncRead + Unpin)) -> Result<usize, String> {
    let mut buffer = vec![0u8; 1 << 16];
    let mut n = 0;
    loop {
        match reader.read(&mut buffer).await.map_err(|e| e.to_string())? {
            0 => return Ok(n),
            read => n += read,
        }
    }
}
