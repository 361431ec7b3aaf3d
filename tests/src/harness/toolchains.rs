//! Large guests built the way users build them: the Python example with componentize-py (PyPI)
//! and the JavaScript one with jco / componentize-js (npm), from the sources under `examples/`.
//! Toolchains are installed under `target/toolchains/` on first use and the built components
//! are cached there by the hash of their source, so a second run builds nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use scheduler::Digest;

/// componentize-py, the version the issue was measured with.
pub const COMPONENTIZE_PY: &str = "0.25.1";
/// jco; 1.35.0 cannot read a WIT folder here.
pub const JCO: &str = "1.34.0";
/// s3s-fs, the s3s project's S3-compatible server on a folder (crates.io; Debian packages no S3
/// server): the newest release that builds with rustc 1.95.
pub const S3S_FS: &str = "0.14.1";
/// The wasi:http world both guests target: the WIT of the wasmtime-wasi-http crate we link.
pub const WORLD: &str = "wasi:http/proxy@0.2.12";
/// The crate whose WIT folder the guests are built against.
const WIT_CRATE: &str = "wasmtime-wasi-http";

/// A guest language with a real toolchain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toolchain {
    Python,
    JavaScript,
}

/// Why a toolchain could not be installed (a test skips with this message; a build that
/// fails with an installed toolchain is an error instead).
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an example was not built.
#[derive(Debug)]
pub enum BuildError {
    /// The toolchain cannot be installed on this machine.
    Unavailable(Unavailable),
    /// The toolchain ran and failed.
    Failed(String),
}

impl From<Unavailable> for BuildError {
    fn from(e: Unavailable) -> Self {
        BuildError::Unavailable(e)
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Unavailable(e) => write!(f, "toolchain unavailable: {e}"),
            BuildError::Failed(e) => f.write_str(e),
        }
    }
}

impl Toolchain {
    pub const ALL: [Toolchain; 2] = [Toolchain::Python, Toolchain::JavaScript];

    pub fn name(self) -> &'static str {
        match self {
            Toolchain::Python => "python",
            Toolchain::JavaScript => "javascript",
        }
    }

    /// What the example answers every request with, before the path.
    pub fn greeting(self) -> &'static str {
        match self {
            Toolchain::Python => "Hello from Python at ",
            Toolchain::JavaScript => "Hello from JavaScript at ",
        }
    }

    fn source(self) -> PathBuf {
        match self {
            Toolchain::Python => repo().join("examples/python-hello/app.py"),
            Toolchain::JavaScript => repo().join("examples/js-hello/component.js"),
        }
    }

    /// The example component, built now or taken from the cache: its path.
    pub fn build(self) -> Result<PathBuf, BuildError> {
        let source = std::fs::read(self.source())
            .map_err(|e| BuildError::Failed(format!("{}: {e}", self.source().display())))?;
        let version = match self {
            Toolchain::Python => COMPONENTIZE_PY,
            Toolchain::JavaScript => JCO,
        };
        let key = Digest::of(&[source.as_slice(), version.as_bytes(), WORLD.as_bytes()].concat());
        let out = dir().join(format!("{}-{}.wasm", self.name(), &key.hex()[..16]));
        if out.exists() {
            return Ok(out);
        }
        let wit = wit_dir()?;
        let tmp = out.with_extension("tmp.wasm");
        let mut command = match self {
            Toolchain::Python => {
                let mut c = Command::new(componentize_py()?);
                c.arg("-d").arg(&wit).args(["-w", WORLD, "componentize"]);
                c.arg("-p").arg(repo().join("examples/python-hello"));
                c.arg("app").arg("-o").arg(&tmp);
                c
            }
            Toolchain::JavaScript => {
                let mut c = Command::new(jco()?);
                c.arg("componentize")
                    .arg("-w")
                    .arg(&wit)
                    .args(["-n", WORLD]);
                c.arg(self.source()).arg("-o").arg(&tmp);
                c
            }
        };
        run(
            &mut command,
            &format!("building the {} example", self.name()),
        )
        .map_err(|e| BuildError::Failed(e.0))?;
        std::fs::rename(&tmp, &out).map_err(|e| BuildError::Failed(e.to_string()))?;
        Ok(out)
    }
}

/// The bytes of an example the toolchain built, or `None` (after saying the test is skipped,
/// and why) when the toolchain cannot be installed here; a build that fails is a test failure.
pub fn wasm_or_skip(built: Result<PathBuf, BuildError>) -> Option<Vec<u8>> {
    match built {
        Ok(path) => {
            Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        }
        Err(BuildError::Unavailable(why)) => {
            eprintln!("SKIPPED: the toolchain: {why}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// The Python key-value example (`examples/python-keyvalue`), built with componentize-py against
/// its own world (wasi:http plus the key-value and link-selection packages Flotilla vendors, as
/// its README assembles them), or taken from the cache: its path.
pub fn build_python_keyvalue() -> Result<PathBuf, BuildError> {
    build_python_example(
        "python-keyvalue",
        "keyvalue-app",
        &["wasi-keyvalue-0.2.0-draft", "wasmcloud-bus-2.0.0"],
    )
}

/// The Python port of wasmCloud's sqldb-postgres-query (`examples/python-postgres`), built
/// against the example's own WIT and the wasmcloud:postgres package Flotilla vendors.
pub fn build_python_postgres() -> Result<PathBuf, BuildError> {
    build_python_example(
        "python-postgres",
        "component",
        &["wasmcloud-postgres-0.1.1-draft"],
    )
}

/// The Python port of wasmCloud's blobby (`examples/python-blobby`): wasi:http and the
/// wasi:blobstore package Flotilla vendors (with the wasi:io version it uses).
pub fn build_python_blobby() -> Result<PathBuf, BuildError> {
    build_python_example(
        "python-blobby",
        "blobby",
        &["wasi-blobstore-0.2.0-draft", "wasi-io-0.2.6"],
    )
}

/// The Python port of wasmCloud's http-blobstore (`examples/python-http-blobstore`): wasi:http,
/// wasi:blobstore (with its wasi:io) and wasi:config's legacy `runtime` interface.
pub fn build_python_http_blobstore() -> Result<PathBuf, BuildError> {
    build_python_example(
        "python-http-blobstore",
        "http-blobstore",
        &[
            "wasi-blobstore-0.2.0-draft",
            "wasi-io-0.2.6",
            "wasi-config-0.2.0-draft",
        ],
    )
}

/// The Python port of wasmCloud's keyvalue-messaging (`examples/python-keyvalue-messaging`): a
/// message handler with key-value, messaging, config and link selection; no HTTP.
pub fn build_python_keyvalue_messaging() -> Result<PathBuf, BuildError> {
    build_python_example(
        "python-keyvalue-messaging",
        "demo",
        &[
            "wasi-logging-0.1.0-draft",
            "wasi-config-0.2.0-draft",
            "wasi-keyvalue-0.2.0-draft",
            "wasmcloud-messaging-0.2.0",
            "wasmcloud-bus-1.0.0",
        ],
    )
}

/// The Python port of wasmCloud's http-task-manager (`examples/python-task-manager`): wasi:http,
/// wasi:logging, wasmcloud:postgres, and the example's own `wasmcloud:task-manager` package it
/// exports.
pub fn build_python_task_manager() -> Result<PathBuf, BuildError> {
    build_python_example(
        "python-task-manager",
        "http-task-manager",
        &["wasmcloud-postgres-0.1.1-draft", "wasi-logging-0.1.0-draft"],
    )
}

/// wasmCloud's messaging-image-processor-worker in Python (`examples/python-image-processor`):
/// it imports the task manager's `wasmcloud:task-manager/tasks` (vendored beside it).
pub fn build_python_image_processor() -> Result<PathBuf, BuildError> {
    build_python_example(
        "python-image-processor",
        "component",
        &[
            "wasi-logging-0.1.0-draft",
            "wasi-blobstore-0.2.0-draft",
            "wasi-io-0.2.6",
            "wasmcloud-messaging-0.2.0",
            "wasmcloud-postgres-0.1.1-draft",
        ],
    )
}

/// `examples/NAME/app.py` built with componentize-py against `examples/NAME/wit/world.wit`'s
/// `world`, with wasi:http's WIT and the `packages` vendored under `runtime/wit/deps/` as its
/// dependencies (as the examples' READMEs assemble them), plus the example's own packages under
/// `examples/NAME/wit/deps/`, or taken from the cache: its path.
fn build_python_example(name: &str, world: &str, packages: &[&str]) -> Result<PathBuf, BuildError> {
    // Tests of one binary build the same example at once: one at a time, the others then
    // find it built.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let app_dir = repo().join("examples").join(name);
    let read = |path: PathBuf| {
        std::fs::read(&path).map_err(|e| BuildError::Failed(format!("{}: {e}", path.display())))
    };
    let source = read(app_dir.join("app.py"))?;
    let world_wit = read(app_dir.join("wit/world.wit"))?;
    // The example's own WIT packages (`wit/deps/PACKAGE/*.wit`), vendored beside it.
    let own_deps = app_dir.join("wit/deps");
    let mut own_wit = Vec::new();
    for package in sorted_entries(&own_deps)? {
        for file in sorted_entries(&package)? {
            own_wit.extend(read(file)?);
        }
    }
    let key = Digest::of(
        &[
            source.as_slice(),
            world_wit.as_slice(),
            own_wit.as_slice(),
            COMPONENTIZE_PY.as_bytes(),
        ]
        .concat(),
    );
    let stem = format!("{name}-{}", &key.hex()[..16]);
    let out = dir().join(format!("{stem}.wasm"));
    if out.exists() {
        return Ok(out);
    }
    let wit = dir().join(format!("{stem}-wit"));
    let deps = wit.join("deps");
    let failed = |e: std::io::Error| BuildError::Failed(format!("assembling the WIT: {e}"));
    std::fs::create_dir_all(&deps).map_err(failed)?;
    std::fs::write(wit.join("world.wit"), &world_wit).map_err(failed)?;
    for entry in std::fs::read_dir(wit_dir()?.join("deps")).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        std::fs::copy(entry.path(), deps.join(entry.file_name())).map_err(failed)?;
    }
    let vendored = repo().join("runtime/wit/deps");
    let own: Vec<PathBuf> = sorted_entries(&own_deps)?;
    for package in packages.iter().map(|p| vendored.join(p)).chain(own) {
        let into = deps.join(package.file_name().expect("a package folder"));
        std::fs::create_dir_all(&into).map_err(failed)?;
        for entry in std::fs::read_dir(&package).map_err(failed)? {
            let entry = entry.map_err(failed)?;
            std::fs::copy(entry.path(), into.join(entry.file_name())).map_err(failed)?;
        }
    }
    let tmp = out.with_extension("tmp.wasm");
    let mut command = Command::new(componentize_py()?);
    command
        .arg("-d")
        .arg(&wit)
        .args(["-w", world, "componentize", "-p"])
        .arg(&app_dir)
        .arg("app")
        .arg("-o")
        .arg(&tmp);
    run(&mut command, &format!("building the Python example {name}"))
        .map_err(|e| BuildError::Failed(e.0))?;
    std::fs::rename(&tmp, &out).map_err(|e| BuildError::Failed(e.to_string()))?;
    Ok(out)
}

/// The entries of `dir`, sorted; none when it does not exist.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, BuildError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut paths = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BuildError::Failed(format!("{}: {e}", dir.display())))?;
    paths.sort();
    Ok(paths)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_path_buf()
}

/// `target/toolchains/`.
pub fn dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    target.join("toolchains")
}

fn run(command: &mut Command, what: &str) -> Result<(), Unavailable> {
    let out = command
        .output()
        .map_err(|e| Unavailable(format!("{what}: cannot run {command:?}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(Unavailable(format!(
        "{what} failed ({}):\n{}",
        out.status,
        tail.join("\n")
    )))
}

/// componentize-py in a venv of its own, installed from PyPI when missing.
fn componentize_py() -> Result<PathBuf, Unavailable> {
    let venv = dir().join(format!("componentize-py-{COMPONENTIZE_PY}"));
    let bin = venv.join("bin/componentize-py");
    if bin.exists() {
        return Ok(bin);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    run(
        Command::new(python).args(["-m", "venv"]).arg(&venv),
        "creating a Python venv (python3-venv)",
    )?;
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet"])
            .arg(format!("componentize-py=={COMPONENTIZE_PY}")),
        "installing componentize-py from PyPI",
    )?;
    Ok(bin)
}

/// The s3s-fs server, built from crates.io into `target/toolchains/` when missing (`.ci/run`
/// builds it before the tests, with this same command).
pub fn s3s_fs() -> Result<PathBuf, Unavailable> {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let root = dir().join(format!("s3s-fs-{S3S_FS}"));
    let bin = root.join("bin/s3s-fs");
    if bin.exists() {
        return Ok(bin);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    run(
        Command::new(cargo)
            .args(["install", "--quiet", "--locked", "--features", "binary"])
            .arg(format!("s3s-fs@{S3S_FS}"))
            .arg("--root")
            .arg(&root)
            .arg("--target-dir")
            .arg(dir().join("s3s-fs-build")),
        "building s3s-fs from crates.io",
    )?;
    Ok(bin)
}

/// jco in an npm prefix of its own, installed from the npm registry when missing.
fn jco() -> Result<PathBuf, Unavailable> {
    let prefix = dir().join(format!("jco-{JCO}"));
    let bin = prefix.join("node_modules/.bin/jco");
    if bin.exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&prefix).map_err(|e| Unavailable(e.to_string()))?;
    run(
        Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(format!("@bytecodealliance/jco@{JCO}"))
            .arg("--save-exact"),
        "installing jco from the npm registry",
    )?;
    Ok(bin)
}

/// The wasi:http WIT folder that ships in the wasmtime-wasi-http crate this workspace links,
/// found through `cargo metadata`.
fn wit_dir() -> Result<PathBuf, Unavailable> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(repo().join("Cargo.toml"))
        .output()
        .map_err(|e| Unavailable(format!("cargo metadata: {e}")))?;
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Unavailable(format!("cargo metadata: {e}")))?;
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == WIT_CRATE)
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or_else(|| Unavailable(format!("{WIT_CRATE} is not in cargo metadata")))?;
    let wit = Path::new(manifest)
        .parent()
        .expect("a manifest is in a folder")
        .join("wit");
    if wit.is_dir() {
        Ok(wit)
    } else {
        Err(Unavailable(format!("no WIT folder at {}", wit.display())))
    }
}
