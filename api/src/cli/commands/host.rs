//! `flotilla host label HOST k=v… [--remove k]`.

use crate::cli::args::{HostCommand, Target};
use crate::cli::client::{segment, who};

pub async fn run(command: HostCommand, target: &Target) -> super::Outcome {
    match command {
        HostCommand::Label {
            host,
            labels,
            remove,
        } => {
            if labels.is_empty() && remove.is_empty() {
                return Err("give labels to set (k=v) or --remove k".to_string());
            }
            let api = target.api();
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
            Ok(())
        }
    }
}
