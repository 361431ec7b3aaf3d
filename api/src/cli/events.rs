//! `flotilla events [--follow] [--from N]`: the audit log, and new events as they are
//! applied (read from the API's server-sent event stream).

use serde_json::Value;

use super::Api;

/// Prints events from `from`; with `follow`, keeps printing new ones until interrupted.
/// `print` gets each event as the API shows it.
pub async fn events(
    api: &Api,
    from: u64,
    follow: bool,
    mut print: impl FnMut(&Value),
) -> Result<(), String> {
    if !follow {
        // Page through the log: the API answers at most PAGE events at a time.
        const PAGE: u64 = 10_000;
        let mut next = from.max(1);
        loop {
            let answer = api
                .get(&format!("/v1/events?from={next}&limit={PAGE}"))
                .await?;
            let page = answer.as_array().cloned().unwrap_or_default();
            for e in &page {
                print(e);
            }
            match page.last().and_then(|e| e["index"].as_u64()) {
                Some(last) if page.len() as u64 == PAGE => next = last + 1,
                _ => return Ok(()),
            }
        }
    }
    // A follow has no overall timeout: a fresh client without one.
    let http = reqwest::Client::new();
    let mut response = http
        .get(api.url(&format!("/v1/events/stream?from={from}")))
        .send()
        .await
        .map_err(|e| format!("cannot reach the API at {}: {e}", api.addr))?;
    if !response.status().is_success() {
        return Err(format!("the event stream answered {}", response.status()));
    }
    let mut parser = SseParser::default();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("the event stream broke: {e}"))?
    {
        for data in parser.feed(&chunk) {
            match serde_json::from_str::<Value>(&data) {
                Ok(event) => print(&event),
                Err(e) => return Err(format!("the event stream sent bad JSON: {e}")),
            }
        }
    }
    Err("the node closed the event stream".to_string())
}

/// Splits a server-sent event stream into the `data` of each event (comments and keep-alives
/// are skipped; multi-line data is joined with newlines).
#[derive(Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    data: Vec<String>,
}

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(self.data.join("\n"));
                    self.data.clear();
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                self.data
                    .push(value.strip_prefix(' ').unwrap_or(value).to_string());
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let mut p = SseParser::default();
        assert!(p
            .feed(b": keep-alive\n\nid: 1\nevent: host_joined\nda")
            .is_empty());
        assert_eq!(p.feed(b"ta: {\"index\":1}\n\n"), vec!["{\"index\":1}"]);
        assert_eq!(
            p.feed(b"data: a\r\ndata: b\r\n\r\ndata: c\n\n"),
            vec!["a\nb", "c"]
        );
    }
}
