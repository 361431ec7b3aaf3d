//! `flotilla host label|drain|undrain|remove HOST`.

use std::time::{Duration, Instant};

use crate::cli::args::{HostCommand, Target};
use crate::cli::client::{segment, who, Api};

/// How often `drain --wait` looks at the drain again.
const DRAIN_POLL: Duration = Duration::from_millis(500);

pub async fn run(command: HostCommand, target: &Target) -> super::Outcome {
    let api = target.api();
    match command {
        HostCommand::Label {
            host,
            labels,
            remove,
        } => {
            if labels.is_empty() && remove.is_empty() {
                return Err("give labels to set (k=v) or --remove k".to_string());
            }
            let body = wire::HostLabels {
                set: labels.into_iter().collect(),
                remove,
            };
            let request = api
                .http()
                .post(api.url(&format!("/v1/hosts/{}/labels", segment(&host))))
                .query(&[("who", who())])
                .json(&body);
            let answer: wire::Committed = api.call(request).await?;
            super::show(target.output, &answer, |a| {
                format!("labels of {host} changed (event {})\n", a.index)
            });
        }
        HostCommand::Drain {
            host,
            wait,
            timeout,
        } => {
            let answer = change(&api, &host, "drain").await?;
            super::show(target.output, &answer, |a| {
                format!("host {host} is draining (event {}): it takes no new placements; its replicas start elsewhere before they stop here\n", a.index)
            });
            if wait {
                wait_for_drain(&api, &host, timeout).await?;
            }
        }
        HostCommand::Undrain { host } => {
            let answer = change(&api, &host, "undrain").await?;
            super::show(target.output, &answer, |a| {
                format!("host {host} takes placements again (event {})\n", a.index)
            });
        }
        HostCommand::Remove { host } => {
            let request = api
                .http()
                .delete(api.url(&format!("/v1/hosts/{}", segment(&host))))
                .query(&[("who", who())]);
            let answer: wire::Committed = api.call(request).await?;
            super::show(target.output, &answer, |a| {
                format!("host {host} is removed from the cluster (event {}); its history stays in the audit log\n", a.index)
            });
        }
    }
    Ok(())
}

async fn change(api: &Api, host: &str, action: &str) -> Result<wire::Committed, String> {
    let request = api
        .http()
        .post(api.url(&format!("/v1/hosts/{}/{action}", segment(host))))
        .query(&[("who", who())]);
    api.call(request).await
}

/// Prints what the drain still waits for whenever it changes, until it is complete.
async fn wait_for_drain(api: &Api, host: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let path = format!("/v1/hosts/{}", segment(host));
    let mut shown: Option<Vec<String>> = None;
    loop {
        let status: wire::HostStatus = api.get(&path).await?;
        let Some(drain) = status.drain else {
            return Err(format!(
                "host {host} is no longer drained (undrained meanwhile?)"
            ));
        };
        if drain.complete {
            eprintln!("host {host} is drained: its replicas run on other hosts");
            return Ok(());
        }
        if shown.as_ref() != Some(&drain.waiting) {
            for line in &drain.waiting {
                eprintln!("  waiting: {line}");
            }
            shown = Some(drain.waiting);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "host {host} is still draining after {}; the drain goes on (see `flotilla get inventory`)",
                humantime::format_duration(timeout)
            ));
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}
