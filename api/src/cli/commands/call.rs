//! `flotilla call APP COMPONENT FUNCTION [ARGS]…`: an exported function of a running component,
//! its results printed as JSON.

use crate::cli::args::Target;
use crate::cli::client::segment;

/// An argument as JSON: itself when it parses as JSON, else the word as a string.
fn argument(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

pub async fn run(
    app: &str,
    component: String,
    function: String,
    args: &[String],
    target: &Target,
) -> super::Outcome {
    let api = target.api();
    let body = wire::CallRequest {
        component,
        function,
        args: args.iter().map(|a| argument(a)).collect(),
    };
    let request = api
        .http()
        .post(api.url(&format!("/v1/apps/{}/call", segment(app))))
        .json(&body);
    let answer: wire::CallAnswer = api.call(request).await?;
    super::show(target.output, &answer, |a| {
        let lines: Vec<String> = a
            .results
            .iter()
            .map(|r| serde_json::to_string(r).expect("JSON prints"))
            .collect();
        format!("{}\n", lines.join("\n"))
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn words_that_are_not_json_are_strings() {
        assert_eq!(super::argument("3"), serde_json::json!(3));
        assert_eq!(super::argument("Ferris"), serde_json::json!("Ferris"));
        assert_eq!(super::argument("[1,2]"), serde_json::json!([1, 2]));
    }
}
