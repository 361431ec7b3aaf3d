//! `flotilla secret put|list|delete`: the value goes from stdin (or a file) to the API as the
//! request body and is never printed; answers show names, versions, who and when.

use std::io::Read;

use crate::cli::args::{SecretCommand, Target};
use crate::cli::client::{segment, who};
use crate::cli::render;

pub async fn run(command: SecretCommand, target: &Target) -> super::Outcome {
    match command {
        SecretCommand::Put { name, from_file } => {
            let value = zeroize::Zeroizing::new(read_value(from_file.as_deref())?);
            let api = target.api();
            let request = api
                .http()
                .put(api.url(&format!("/v1/secrets/{}", segment(&name))))
                .query(&[("who", who())])
                .header("content-type", "application/octet-stream")
                .body(value.to_vec());
            let answer: wire::SecretWritten = api.call(request).await?;
            super::show(target.output, &answer, |a| {
                format!(
                    "secret {} is at version {} (event {})\n",
                    a.name, a.version, a.index
                )
            });
            Ok(())
        }
        SecretCommand::List {} => {
            let answer: wire::SecretList = target.api().get("/v1/secrets").await?;
            super::show(target.output, &answer, render::secrets);
            Ok(())
        }
        SecretCommand::Delete { name, force } => {
            let api = target.api();
            let request = api
                .http()
                .delete(api.url(&format!("/v1/secrets/{}", segment(&name))))
                .query(&[("who", who()), ("force", force.to_string())]);
            let answer: wire::Committed = api.call(request).await?;
            super::show(target.output, &answer, |a| {
                format!("secret {name} deleted (event {})\n", a.index)
            });
            Ok(())
        }
    }
}

/// The value: the file's bytes, or stdin's (a trailing newline of a terminal is not part of it).
fn read_value(file: Option<&std::path::Path>) -> Result<Vec<u8>, String> {
    let value = match file {
        Some(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        None => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read the value from stdin: {e}"))?;
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) && bytes.ends_with(b"\n") {
                bytes.pop();
            }
            bytes
        }
    };
    if value.is_empty() {
        return Err("the value is empty: pipe it on stdin or pass --from-file".to_string());
    }
    Ok(value)
}
