//! `flotilla get inventory`: every host counted by zone and state, then a page of hosts with
//! their labels and the replicas on them.

use crate::cli::args::{GetCommand, Target};
use crate::cli::render;

pub async fn run(command: GetCommand, target: &Target) -> super::Outcome {
    match command {
        GetCommand::Inventory {
            summary,
            limit,
            after,
        } => {
            // Only the URL's query is used: it encodes a host name like any other value.
            let mut url = reqwest::Url::parse("https://node/v1/inventory").expect("a valid URL");
            {
                let mut query = url.query_pairs_mut();
                if summary {
                    query.append_pair("summary", "true");
                }
                if let Some(limit) = limit {
                    query.append_pair("limit", &limit.to_string());
                }
                if let Some(after) = &after {
                    query.append_pair("after", after);
                }
            }
            let path = match url.query() {
                Some(q) if !q.is_empty() => format!("/v1/inventory?{q}"),
                _ => "/v1/inventory".to_string(),
            };
            let answer: wire::Inventory = target.api().get(&path).await?;
            super::show(target.output, &answer, render::inventory);
            Ok(())
        }
    }
}
