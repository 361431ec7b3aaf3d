//! `flotilla token rotate`: a new API token on every node.

use crate::cli::args::{Target, TokenCommand};
use crate::cli::client::who;

pub async fn run(command: TokenCommand, target: &Target) -> super::Outcome {
    match command {
        TokenCommand::Rotate {} => {
            let api = target.api();
            let request = api
                .http()
                .post(api.url("/v1/token/rotate"))
                .query(&[("who", who())]);
            let answer: wire::RotatedToken = api.call(request).await?;
            super::show(target.output, &answer, |a| format!("{}\n", a.token));
            Ok(())
        }
    }
}
