//! `flotilla config put|get|list|delete`: named configs, which manifests reference by `name`
//! without `properties`.

use std::collections::BTreeMap;

use crate::cli::args::{ConfigCommand, Target};
use crate::cli::client::{segment, who};
use crate::cli::render;

pub async fn run(command: ConfigCommand, target: &Target) -> super::Outcome {
    let api = target.api();
    match command {
        ConfigCommand::Put { name, properties } => {
            let body = wire::ConfigPut {
                properties: properties.into_iter().collect::<BTreeMap<_, _>>(),
            };
            let request = api
                .http()
                .put(api.url(&format!("/v1/configs/{}", segment(&name))))
                .query(&[("who", who())])
                .json(&body);
            let answer: wire::Committed = api.call(request).await?;
            super::show(target.output, &answer, |a| {
                format!("config {name} written (event {})\n", a.index)
            });
        }
        ConfigCommand::Get { name } => {
            let answer: wire::ConfigInfo =
                api.get(&format!("/v1/configs/{}", segment(&name))).await?;
            super::show(target.output, &answer, render::config);
        }
        ConfigCommand::List {} => {
            let answer: wire::ConfigList = api.get("/v1/configs").await?;
            super::show(target.output, &answer, render::configs);
        }
        ConfigCommand::Delete { name, force } => {
            let request = api
                .http()
                .delete(api.url(&format!("/v1/configs/{}", segment(&name))))
                .query(&[("who", who()), ("force", force.to_string())]);
            let answer: wire::Committed = api.call(request).await?;
            super::show(target.output, &answer, |a| {
                format!("config {name} deleted (event {})\n", a.index)
            });
        }
    }
    Ok(())
}
