//! # test-components — wasi:http guests for Flotilla's tests, built from WAT
//!
//! Owns the WebAssembly text of small wasi:http 0.2 components (hello, echo, busy, spin,
//! memory hog, trap, outgoing, config, secret, logger, log flood, key-value counter) and turns it into component binaries with `wat` and
//! `wit-component`, without any wasm compiler target. Each component is the shared prelude
//! (`wat/prelude.wat`: imports, a bump allocator, response helpers) plus its own handler.
//!
//! Must never: be a dependency of production code paths; it exists for tests, examples and
//! benchmarks (`examples/hello-world/hello.wasm`, `examples/config-secrets-logs/secret.wasm` and
//! `examples/keyvalue-counter/counter.wasm` are built from here).

use std::path::Path;

use anyhow::{Context, Result};
use wit_component::{ComponentEncoder, StringEncoding};

const PRELUDE: &str = include_str!("../wat/prelude.wat");

/// Folders of `runtime/wit/deps` whose packages guests may import.
const HOSTED_PACKAGES: [&str; 7] = [
    "wasi-config-0.2.0-draft",
    "wasi-logging-0.1.0-draft",
    "wasmcloud-secrets-0.1.0-draft",
    "wasi-keyvalue-0.2.0-draft",
    "wasmcloud-bus-1.0.0",
    "wasmcloud-bus-2.0.0",
    "wasmcloud-messaging-0.2.0",
];

/// A test guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Guest {
    /// 200 with `Hello from Flotilla!`.
    Hello,
    /// 200 with the method and path, the headers, and the body back.
    Echo,
    /// Works for the milliseconds given by the digits of the path, then 200.
    Busy,
    /// Loops forever.
    Spin,
    /// Grows memory until refused, then traps.
    MemoryHog,
    /// Traps (`unreachable`).
    Trap,
    /// Tries an outgoing HTTP request and reports the outcome.
    Outgoing,
    /// Answers a value of its config (`/KEY`, through store and runtime) or all of it (`/`).
    Config,
    /// Reveals the secret its manifest names as the path (`/NAME`) and answers its value.
    Secret,
    /// Writes one line each to stdout, stderr and wasi:logging, naming the path.
    Logger,
    /// Writes log lines in a loop that never ends.
    LogFlood,
    /// wasmCloud's http-keyvalue-counter: increments the key named by the path through the
    /// linked key-value store (`?link_name=NAME` picks the link) and answers `Counter PATH: N`.
    Counter,
    /// A key-value watcher (no HTTP): logs each `on-set` (context: the key, message: the
    /// value) and `on-delete` (message `deleted`).
    Watcher,
    /// wasmCloud's echo-messaging (no HTTP): publishes each message's body to its reply-to;
    /// a body of `trap`, `spin` or `fail` traps, loops or answers an error.
    EchoMessaging,
    /// A custom export (no HTTP), `example:calc/ops@0.1.0`: add, greet, crash.
    Calc,
    /// wasmCloud's composition/http-hello2: answers `Hello World! I got pong PONG` with what
    /// `example:pong/pingpong.ping` of the component it links to returns.
    PongCaller,
    /// wasmCloud's composition/pong (no HTTP): `ping` answers its config's `PONG` (`pong`
    /// when unset); `trap` traps, `spin` loops forever.
    Pong,
    /// Exports `example:pong/pingpong` with `ping: func() -> u32`: a callee that does not match
    /// what [`Guest::PongCaller`] imports.
    PongU32,
}

impl Guest {
    pub const ALL: [Guest; 18] = [
        Guest::Hello,
        Guest::Echo,
        Guest::Busy,
        Guest::Spin,
        Guest::MemoryHog,
        Guest::Trap,
        Guest::Outgoing,
        Guest::Config,
        Guest::Secret,
        Guest::Logger,
        Guest::LogFlood,
        Guest::Counter,
        Guest::Watcher,
        Guest::EchoMessaging,
        Guest::Calc,
        Guest::PongCaller,
        Guest::Pong,
        Guest::PongU32,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Guest::Hello => "hello",
            Guest::Echo => "echo",
            Guest::Busy => "busy",
            Guest::Spin => "spin",
            Guest::MemoryHog => "memory_hog",
            Guest::Trap => "trap",
            Guest::Outgoing => "outgoing",
            Guest::Config => "config",
            Guest::Secret => "secret",
            Guest::Logger => "logger",
            Guest::LogFlood => "log_flood",
            Guest::Counter => "counter",
            Guest::Watcher => "watcher",
            Guest::EchoMessaging => "echo_messaging",
            Guest::Calc => "calc",
            Guest::PongCaller => "pong_caller",
            Guest::Pong => "pong",
            Guest::PongU32 => "pong_u32",
        }
    }

    fn handler(self) -> &'static str {
        match self {
            Guest::Hello => include_str!("../wat/hello.wat"),
            Guest::Echo => include_str!("../wat/echo.wat"),
            Guest::Busy => include_str!("../wat/busy.wat"),
            Guest::Spin => include_str!("../wat/spin.wat"),
            Guest::MemoryHog => include_str!("../wat/memory_hog.wat"),
            Guest::Trap => include_str!("../wat/trap.wat"),
            Guest::Outgoing => include_str!("../wat/outgoing.wat"),
            Guest::Config => include_str!("../wat/config.wat"),
            Guest::Secret => include_str!("../wat/secret.wat"),
            Guest::Logger => include_str!("../wat/logger.wat"),
            Guest::LogFlood => include_str!("../wat/log_flood.wat"),
            Guest::Counter => include_str!("../wat/counter.wat"),
            Guest::Watcher => include_str!("../wat/watcher.wat"),
            Guest::EchoMessaging => include_str!("../wat/echo_messaging.wat"),
            Guest::Calc => include_str!("../wat/calc.wat"),
            Guest::PongCaller => include_str!("../wat/pong_caller.wat"),
            Guest::Pong => include_str!("../wat/pong.wat"),
            Guest::PongU32 => include_str!("../wat/pong_u32.wat"),
        }
    }

    /// The whole core module in WebAssembly text: the handler's own imports (which must come
    /// before any function), the prelude, then the rest of the handler.
    pub fn source(self) -> String {
        if !self.serves_http() {
            // Not a wasi:http guest: its text is the whole module.
            return self.handler().to_string();
        }
        let (imports, rest): (Vec<&str>, Vec<&str>) = self
            .handler()
            .lines()
            .partition(|l| l.trim_start().starts_with("(import "));
        let imports: String = imports.iter().map(|l| format!("{l}\n")).collect();
        let rest: String = rest.iter().map(|l| format!("{l}\n")).collect();
        format!(
            ";; Flotilla test component `{}`.\n(module\n{imports}{PRELUDE}\n{rest})\n",
            self.name()
        )
    }

    /// The world of `runtime/test-components/wit` it is built for.
    pub fn world(self) -> &'static str {
        match self {
            Guest::Watcher => "watcher",
            Guest::EchoMessaging => "messaging-handler",
            Guest::Calc => "calc",
            Guest::PongCaller => "pong-caller",
            Guest::Pong => "pong",
            Guest::PongU32 => "pong-u32",
            _ => HTTP_WORLD,
        }
    }

    /// Whether it is a wasi:http guest, built on the shared prelude.
    fn serves_http(self) -> bool {
        matches!(self.world(), HTTP_WORLD | "pong-caller")
    }

    /// The folder of WIT its world is in (under `runtime/test-components`).
    fn wit_dir(self) -> &'static str {
        match self {
            Guest::PongU32 => "wit-pong-u32",
            _ => "wit",
        }
    }

    /// The component binary.
    pub fn build(self) -> Result<Vec<u8>> {
        component_of_world(&self.source(), self.wit_dir(), self.world())
            .with_context(|| format!("building test component {}", self.name()))
    }
}

/// Builds a wasi:http component from the text of a core module that imports wasi:http 0.2.12
/// interfaces with the canonical ABI and exports `wasi:http/incoming-handler@0.2.12#handle`,
/// `memory` and `cabi_realloc`.
pub fn component_from_wat(wat: &str) -> Result<Vec<u8>> {
    component_of_world(wat, "wit", HTTP_WORLD)
}

/// `caller` composed with `callee` into one component (as `wac plug` or `wasm-tools compose`
/// would): the callee's exports satisfy the caller's imports of them, so the result imports
/// only what both import from the host. wasmCloud's composition example runs such a
/// component (`composition/wadm.yaml`).
pub fn composed(caller: Guest, callee: Guest) -> Result<Vec<u8>> {
    static COMPOSITIONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COMPOSITIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("flotilla-compose-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (caller_path, callee_path) = (dir.join("caller.wasm"), dir.join("callee.wasm"));
    std::fs::write(&caller_path, caller.build()?)?;
    std::fs::write(&callee_path, callee.build()?)?;
    let config = wasm_compose::config::Config {
        dir: dir.clone(),
        definitions: vec![callee_path],
        ..Default::default()
    };
    let composed = wasm_compose::composer::ComponentComposer::new(&caller_path, &config)
        .compose()
        .with_context(|| format!("composing {} with {}", caller.name(), callee.name()));
    std::fs::remove_dir_all(&dir)?;
    composed
}

/// The world of the wasi:http guests.
const HTTP_WORLD: &str = "guest";

/// Builds a component of `world` (of the WIT folder `wit_dir` of `runtime/test-components`)
/// from a core module's text.
fn component_of_world(wat: &str, wit_dir: &str, world: &str) -> Result<Vec<u8>> {
    let mut module = wat::parse_str(wat).context("parsing the WAT")?;
    let mut resolve = wit_parser::Resolve::default();
    // The config, secrets and logging packages are the ones the runtime hosts, vendored once
    // under `runtime/wit/deps`.
    let hosted = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/deps");
    for package in HOSTED_PACKAGES {
        resolve
            .push_dir(hosted.join(package))
            .with_context(|| format!("loading the WIT of {package}"))?;
    }
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join(wit_dir);
    let (package, _) = resolve.push_dir(&wit).context("loading the WIT")?;
    let world = resolve.select_world(&[package], Some(world))?;
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)?;
    ComponentEncoder::default()
        .module(&module)?
        .validate(true)
        .encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_composed_with_its_callee_imports_no_longer_the_linked_interface() {
        let bytes = composed(Guest::PongCaller, Guest::Pong).unwrap();
        let decoded = wit_parser::decoding::decode(&bytes).unwrap();
        let wit_parser::decoding::DecodedWasm::Component(resolve, world) = decoded else {
            panic!("a component");
        };
        let imports: Vec<String> = resolve.worlds[world]
            .imports
            .keys()
            .map(|k| resolve.name_world_key(k))
            .collect();
        assert!(
            !imports.iter().any(|i| i.starts_with("example:pong")),
            "{imports:?}"
        );
        assert!(
            imports.iter().any(|i| i.starts_with("wasi:config/store")),
            "{imports:?}"
        );
    }

    #[test]
    fn every_guest_builds_into_a_valid_component() {
        for guest in Guest::ALL {
            let bytes = guest
                .build()
                .unwrap_or_else(|e| panic!("{}: {e:#}", guest.name()));
            assert_eq!(
                &bytes[..8],
                b"\0asm\x0d\0\x01\0",
                "{} is a component",
                guest.name()
            );
        }
    }

    /// The components shipped under `examples/` are exactly what their sources beside them
    /// build.
    #[test]
    fn the_shipped_examples_are_built_from_their_sources() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        for (guest, dir, stem) in [
            (Guest::Hello, "hello-world", "hello"),
            (Guest::Secret, "config-secrets-logs", "secret"),
            (Guest::Counter, "keyvalue-counter", "counter"),
            (Guest::PongCaller, "http-hello2", "pong_caller"),
            (Guest::Pong, "http-hello2", "pong"),
        ] {
            let dir = examples.join(dir);
            let source = std::fs::read_to_string(dir.join(format!("{stem}.wat"))).expect("source");
            assert_eq!(
                source,
                guest.source(),
                "{stem}.wat is the {} guest's source",
                guest.name()
            );
            let shipped = std::fs::read(dir.join(format!("{stem}.wasm"))).expect("binary");
            assert!(
                shipped == guest.build().unwrap(),
                "{stem}.wasm is stale: rebuild it with build-test-component"
            );
        }
        let composed = std::fs::read(examples.join("http-hello2/composed.wasm")).expect("binary");
        assert!(
            composed == super::composed(Guest::PongCaller, Guest::Pong).unwrap(),
            "composed.wasm is stale: rebuild it with build-test-component pong_composed"
        );
    }
}
