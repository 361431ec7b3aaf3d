//! `flotilla events [--follow] [--from N]`: the audit log, and new events as they are
//! applied (read from the API's server-sent event stream).

use crate::cli::args::{Output, Target};
use crate::cli::client::Api;
use crate::cli::render;

/// Most events one `GET /v1/events` answers; the command pages through the rest.
const PAGE: u64 = 10_000;

pub async fn run(target: &Target, from: u64, follow: bool) -> super::Outcome {
    let api = target.api();
    let print = |e: &wire::EventRecord| match target.output {
        Output::Json => println!("{}", serde_json::to_string(e).expect("events serialize")),
        Output::Table => print!("{}", render::event(e)),
    };
    if follow {
        follow_stream(&api, from, print).await
    } else {
        page_through(&api, from, print).await
    }
}

/// Prints every event from `from` to the last one applied.
async fn page_through(api: &Api, from: u64, print: impl Fn(&wire::EventRecord)) -> super::Outcome {
    let mut next = from.max(1);
    loop {
        let page: Vec<wire::EventRecord> = api
            .get(&format!("/v1/events?from={next}&limit={PAGE}"))
            .await?;
        for e in &page {
            print(e);
        }
        match page.last().map(|e| e.index) {
            Some(last) if page.len() as u64 == PAGE => next = last + 1,
            _ => return Ok(()),
        }
    }
}

/// Prints events from `from` as the node streams them, until the stream ends.
async fn follow_stream(api: &Api, from: u64, print: impl Fn(&wire::EventRecord)) -> super::Outcome {
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    // A follow has no overall timeout.
    let response = api
        .authorized(
            api.streaming()
                .get(api.url(&format!("/v1/events/stream?from={from}"))),
        )
        .send()
        .await
        .map_err(|e| api.unreachable(&e))?;
    if !response.status().is_success() {
        return Err(format!("the event stream answered {}", response.status()));
    }
    let mut stream = response.bytes_stream().eventsource();
    while let Some(event) = stream.next().await {
        let event = event.map_err(|e| format!("the event stream broke: {e}"))?;
        let record: wire::EventRecord = serde_json::from_str(&event.data)
            .map_err(|e| format!("the event stream sent bad JSON: {e}"))?;
        print(&record);
    }
    Err("the node closed the event stream".to_string())
}
