//! `flotilla token`: rotate the admin token; create, list and revoke scoped tokens.

use crate::cli::args::{Target, TokenCommand};
use crate::cli::client::{segment, who};
use crate::cli::render;

pub async fn run(command: TokenCommand, target: &Target) -> super::Outcome {
    let api = target.api();
    match command {
        TokenCommand::Rotate {} => {
            let request = api
                .http()
                .post(api.url("/v1/token/rotate"))
                .query(&[("who", who())]);
            let answer: wire::RotatedToken = api.call(request).await?;
            super::show(target.output, &answer, |a| format!("{}\n", a.token));
        }
        TokenCommand::Create {
            scope,
            apps,
            ttl,
            name,
        } => {
            let body = wire::TokenRequest {
                name: name.unwrap_or_else(|| scope.clone()),
                scope,
                apps,
                ttl_ms: ttl.map(|t| t.as_millis() as u64),
            };
            let request = api
                .http()
                .post(api.url("/v1/tokens"))
                .query(&[("who", who())])
                .json(&body);
            let answer: wire::TokenCreated = api.call(request).await?;
            super::show(target.output, &answer, |a| format!("{}\n", a.token));
        }
        TokenCommand::List {} => {
            let answer: wire::TokenList = api.get("/v1/tokens").await?;
            super::show(target.output, &answer, render::tokens);
        }
        TokenCommand::Revoke { id } => {
            let request = api
                .http()
                .delete(api.url(&format!("/v1/tokens/{}", segment(&id))))
                .query(&[("who", who())]);
            let answer: wire::Committed = api.call(request).await?;
            super::show(target.output, &answer, |a| {
                format!("revoked token {id} (event {})\n", a.index)
            });
        }
    }
    Ok(())
}
