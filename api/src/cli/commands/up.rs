//! `flotilla up`: a host in the foreground, or detached with `-d` (then this returns once the
//! host is ready).

use std::time::Duration;

use consensus::node::LogConfig;

use crate::cli::args::UpArgs;
use crate::up::{daemon, local, HostConfig, Membership};

/// What the node logs unless `RUST_LOG` says otherwise.
const DEFAULT_LOG_FILTER: &str = "info,openraft=error,sled=warn";

/// Has mimalloc (the binary's allocator) give back now what this thread freed: a compile of a
/// large component frees hundreds of MB, which mimalloc would otherwise keep (after compiling
/// the Python example a node held 460 MB more than after a restart that loaded the same code).
fn return_freed_memory() {
    // SAFETY: mi_collect only walks mimalloc's own structures of the calling thread.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

pub async fn run(args: UpArgs) -> super::Outcome {
    let home = local::home();
    let plan = local::plan_up(
        &home,
        args.data_dir.clone(),
        args.listen.clone(),
        args.join.clone(),
        args.join_credential.clone(),
    )?;
    if args.detach {
        let given = daemon::Given {
            data_dir: args.data_dir.is_some(),
            listen: args.listen.is_some(),
            join: args.join.is_some(),
        };
        let own_args: Vec<String> = std::env::args().skip(1).collect();
        let started = daemon::detach(&plan, &own_args, given).await?;
        println!(
            "host {} is up (pid {}): API https://{}",
            started.host, started.pid, plan.listen
        );
        if let Some(join) = &plan.join {
            println!("  joined the cluster at {join}");
        }
        println!(
            "  data: {}\n  log:  {}\n  stop it with: flotilla down --data-dir {}",
            plan.data_dir.display(),
            consensus::data_dir::log_file(&plan.data_dir).display(),
            plan.data_dir.display()
        );
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| DEFAULT_LOG_FILTER.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // No guest may call this node's own ports (its API and Raft, its HTTPS listener).
    let node_addresses = [Some(plan.listen.as_str()), args.https_listen.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(|a| std::net::ToSocketAddrs::to_socket_addrs(a).ok())
        .flatten()
        .collect();
    let config = HostConfig {
        log: LogConfig {
            data_dir: plan.data_dir,
            listen: plan.listen,
            labels: args.labels.into_iter().collect(),
            voters: args.voters,
            snapshot_every: args.snapshot_every,
            lost_after: Duration::from_millis(args.lost_after_ms),
            replace_voter_after: Duration::from_millis(args.replace_voter_after_ms),
            voter_spread_label: args.voter_spread_label,
            standbys: args.standbys,
        },
        domain: args.domain,
        queue_wait: Duration::from_millis(args.queue_wait_ms),
        engine: runtime::engine::EngineConfig {
            max_memory_bytes: args.max_memory_mib << 20,
            max_component_instance_bytes: args.max_instance_metadata_kib << 10,
            cpu_deadline: Duration::from_millis(args.cpu_deadline_ms),
            baseline_tier: !args.no_baseline_tier,
            after_compile: Some(return_freed_memory),
            node_addresses,
            ..Default::default()
        },
        registry: args.registry.config(args.max_component_mib << 20)?,
        app_log_bytes: args.app_log_kib << 10,
        kv_quota_bytes: args.kv_quota_mib << 20,
        protect_metrics: args.protect_metrics,
        insecure_http_api: args.insecure_http_api,
        tls_names: args.tls_san,
        tls: crate::up::tls::TlsConfig {
            listen: args.https_listen,
            default: args
                .tls_cert
                .zip(args.tls_key)
                .map(|(cert, key)| crate::up::tls::CertFiles { cert, key }),
            by_name: args.tls_sni.into_iter().collect(),
        },
    };
    let membership = Membership {
        join: plan.join,
        credential: plan.credential,
        name: args.name,
        role: args.role.into(),
    };
    crate::up::run(config, membership, &home).await
}
