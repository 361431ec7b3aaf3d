//! `flotilla app logs APP`: every host's lines of an app in time order, once or followed
//! (the API's server-sent events).

use std::time::Duration;

use crate::cli::args::{Output, Target};
use crate::cli::client::segment;
use crate::cli::render;

/// What `app logs` was asked for.
pub struct LogsRequest {
    pub app: String,
    pub follow: bool,
    pub host: Option<String>,
    pub since: Option<Duration>,
    pub limit: usize,
}

pub async fn run(target: &Target, request: LogsRequest) -> super::Outcome {
    let api = target.api();
    let mut query = vec![("limit", request.limit.to_string())];
    if let Some(host) = &request.host {
        query.push(("host", host.clone()));
    }
    if let Some(age) = request.since {
        let since = consensus::node::now_millis().saturating_sub(age.as_millis() as u64);
        query.push(("since", since.to_string()));
    }
    let path = format!("/v1/apps/{}/logs", segment(&request.app));
    let print = |line: &wire::LogLine| match target.output {
        Output::Json => println!("{}", serde_json::to_string(line).expect("lines serialize")),
        Output::Table => print!("{}", render::log_line(line)),
    };
    if !request.follow {
        let answer: wire::AppLogs = api
            .call(api.http().get(api.url(&path)).query(&query))
            .await?;
        for line in &answer.lines {
            print(line);
        }
        if !answer.unreachable.is_empty() {
            eprintln!(
                "warning: no answer from host(s) {}: their lines are missing",
                answer.unreachable.join(", ")
            );
        }
        return Ok(());
    }
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    query.push(("follow", "true".to_string()));
    // A follow has no overall timeout.
    let response = api
        .authorized(api.streaming().get(api.url(&path)).query(&query))
        .send()
        .await
        .map_err(|e| api.unreachable(&e))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        return Err(crate::cli::client::describe_error(status, &body));
    }
    let mut stream = response.bytes_stream().eventsource();
    while let Some(event) = stream.next().await {
        let event = event.map_err(|e| format!("the log stream broke: {e}"))?;
        let line: wire::LogLine = serde_json::from_str(&event.data)
            .map_err(|e| format!("the log stream sent bad JSON: {e}"))?;
        print(&line);
    }
    Err("the node closed the log stream".to_string())
}
