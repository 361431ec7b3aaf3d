//! `flotilla token rotate`: a new API token on every node.

use crate::cli::args::TokenCommand;
use crate::cli::client::who;

pub async fn run(command: TokenCommand) -> super::Outcome {
    match command {
        TokenCommand::Rotate { target } => {
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
