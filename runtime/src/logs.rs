//! What guests write: stdout, stderr and `wasi:logging` lines, kept per app in a bounded buffer
//! on each host. A full buffer drops its oldest lines (and counts them), so a guest that writes
//! in a tight loop costs its own app its history, never the host its memory.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// Bytes of log lines kept per app on a host unless configured otherwise.
pub const DEFAULT_APP_LOG_BYTES: usize = 1 << 20;
/// A longer line is cut to this many bytes (and marked as cut).
pub const MAX_LINE_BYTES: usize = 8 << 10;
/// What a line costs in the buffer besides its text: its fields and bookkeeping.
const LINE_OVERHEAD_BYTES: usize = 160;
/// Appended to a line cut at [`MAX_LINE_BYTES`].
const CUT_MARK: &str = " …[cut]";

/// How severe a line is (wasi:logging's levels; stdout is `info`, stderr is `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
    /// `wasi:logging/logging.log`.
    Logging,
}

/// One line a guest wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Order on the host that kept it (increasing, never reused while the host runs).
    pub seq: u64,
    /// Wall-clock time it was written, milliseconds since the Unix epoch.
    pub at: u64,
    pub level: Level,
    pub stream: Stream,
    pub host: String,
    pub app: String,
    pub component: String,
    /// The request it was written for.
    pub request: String,
    /// wasi:logging's `context` argument; empty for stdout and stderr.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    pub message: String,
}

impl LogLine {
    fn cost(&self) -> usize {
        LINE_OVERHEAD_BYTES + self.message.len() + self.context.len() + self.request.len()
    }
}

/// Which lines a reader wants.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only lines after this sequence number (a follower's cursor).
    pub after_seq: Option<u64>,
    /// Only lines written at or after this time (milliseconds since the Unix epoch).
    pub since: Option<u64>,
    /// At most this many lines: the newest ones.
    pub limit: Option<usize>,
}

#[derive(Debug, Default)]
struct AppBuffer {
    lines: VecDeque<LogLine>,
    bytes: usize,
    dropped: u64,
}

#[derive(Debug, Default)]
struct Buffers {
    next_seq: u64,
    apps: BTreeMap<String, AppBuffer>,
}

/// The log buffers of one host.
#[derive(Debug)]
pub struct HostLogs {
    host: String,
    /// Names this run of the host: its sequence numbers start again after a restart.
    boot: String,
    cap_bytes: usize,
    buffers: Mutex<Buffers>,
    dropped: AtomicU64,
}

impl HostLogs {
    /// Buffers for `host`, keeping at most `cap_bytes` of lines per app.
    pub fn new(host: &str, cap_bytes: usize) -> Arc<HostLogs> {
        Arc::new(HostLogs {
            host: host.to_string(),
            boot: format!("{host}-{:x}", now_millis()),
            cap_bytes,
            buffers: Mutex::default(),
            dropped: AtomicU64::new(0),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn boot(&self) -> &str {
        &self.boot
    }

    /// Keeps one line, dropping the app's oldest lines while it is over its cap.
    pub fn push(
        &self,
        origin: &LineOrigin,
        level: Level,
        stream: Stream,
        context: &str,
        text: &str,
    ) {
        let message = cut(text);
        let at = now_millis();
        let mut buffers = self.buffers.lock().expect("log buffers lock");
        let seq = buffers.next_seq;
        buffers.next_seq += 1;
        let line = LogLine {
            seq,
            at,
            level,
            stream,
            host: self.host.clone(),
            app: origin.app.clone(),
            component: origin.component.clone(),
            request: origin.request.clone(),
            context: cut(context),
            message,
        };
        let buffer = buffers.apps.entry(origin.app.clone()).or_default();
        buffer.bytes += line.cost();
        buffer.lines.push_back(line);
        let mut dropped = 0;
        while buffer.bytes > self.cap_bytes {
            let Some(old) = buffer.lines.pop_front() else {
                break;
            };
            buffer.bytes -= old.cost();
            dropped += 1;
        }
        buffer.dropped += dropped;
        drop(buffers);
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    /// The app's lines that `query` selects, oldest first.
    pub fn read(&self, app: &str, query: &LogQuery) -> Vec<LogLine> {
        let buffers = self.buffers.lock().expect("log buffers lock");
        let Some(buffer) = buffers.apps.get(app) else {
            return Vec::new();
        };
        let selected: Vec<&LogLine> = buffer
            .lines
            .iter()
            .filter(|l| query.after_seq.is_none_or(|after| l.seq > after))
            .filter(|l| query.since.is_none_or(|since| l.at >= since))
            .collect();
        let skip = query
            .limit
            .map_or(0, |limit| selected.len().saturating_sub(limit));
        selected.into_iter().skip(skip).cloned().collect()
    }

    /// Lines dropped to keep every app under its cap since the host started.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// `(lines kept, bytes kept, lines dropped)` by app.
    pub fn usage(&self) -> BTreeMap<String, (usize, usize, u64)> {
        let buffers = self.buffers.lock().expect("log buffers lock");
        buffers
            .apps
            .iter()
            .map(|(app, b)| (app.clone(), (b.lines.len(), b.bytes, b.dropped)))
            .collect()
    }

    /// Forgets the lines of apps not in `keep` (apps deleted from the state).
    pub fn retain_apps(&self, keep: impl Fn(&str) -> bool) {
        let mut buffers = self.buffers.lock().expect("log buffers lock");
        buffers.apps.retain(|app, _| keep(app));
    }
}

/// Who wrote a line: the app, component and request of one guest instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineOrigin {
    pub app: String,
    pub component: String,
    pub request: String,
}

fn cut(text: &str) -> String {
    if text.len() <= MAX_LINE_BYTES {
        return text.to_string();
    }
    let mut end = MAX_LINE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_MARK}", &text[..end])
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Where one instance's lines go: the host's buffers, tagged with the instance's origin.
#[derive(Debug, Clone)]
pub struct LogSink {
    logs: Arc<HostLogs>,
    origin: Arc<LineOrigin>,
}

impl LogSink {
    pub fn new(logs: Arc<HostLogs>, origin: LineOrigin) -> LogSink {
        LogSink {
            logs,
            origin: Arc::new(origin),
        }
    }

    /// A sink for the lines of `component` (a linked component called within this request).
    pub fn for_component(&self, component: &str) -> LogSink {
        LogSink {
            logs: self.logs.clone(),
            origin: Arc::new(LineOrigin {
                component: component.to_string(),
                ..(*self.origin).clone()
            }),
        }
    }

    /// Which app, component and request the lines are of.
    pub fn origin(&self) -> &LineOrigin {
        &self.origin
    }

    pub fn log(&self, level: Level, stream: Stream, context: &str, message: &str) {
        self.logs
            .push(&self.origin, level, stream, context, message);
    }

    /// A writer that turns bytes into lines of `stream`.
    pub fn writer(&self, stream: Stream) -> LineWriter {
        LineWriter {
            sink: self.clone(),
            stream,
            pending: Vec::new(),
        }
    }
}

/// Splits written bytes into lines (at `\n`) and keeps each as a log line; what is left without
/// a newline is kept when it grows past [`MAX_LINE_BYTES`] or the writer is dropped.
#[derive(Debug)]
pub struct LineWriter {
    sink: LogSink,
    stream: Stream,
    pending: Vec<u8>,
}

impl LineWriter {
    fn level(&self) -> Level {
        match self.stream {
            Stream::Stderr => Level::Error,
            Stream::Stdout | Stream::Logging => Level::Info,
        }
    }

    fn emit(&self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        self.sink.log(self.level(), self.stream, "", text);
    }

    /// Takes `bytes` written by the guest.
    pub fn write(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            if self.pending.is_empty() {
                self.emit(&bytes[..newline]);
            } else {
                self.pending.extend_from_slice(&bytes[..newline]);
                let line = std::mem::take(&mut self.pending);
                self.emit(&line);
            }
            bytes = &bytes[newline + 1..];
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() > MAX_LINE_BYTES {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(app: &str) -> LineOrigin {
        LineOrigin {
            app: app.into(),
            component: "c".into(),
            request: "r1".into(),
        }
    }

    #[test]
    fn writers_split_lines_and_keep_the_rest_until_dropped() {
        let logs = HostLogs::new("h", DEFAULT_APP_LOG_BYTES);
        let sink = LogSink::new(logs.clone(), origin("a"));
        let mut out = sink.writer(Stream::Stdout);
        out.write(b"one\ntw");
        out.write(b"o\r\nthree");
        assert_eq!(logs.read("a", &LogQuery::default()).len(), 2);
        drop(out);
        let lines = logs.read("a", &LogQuery::default());
        let texts: Vec<_> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(texts, ["one", "two", "three"]);
        assert!(lines
            .iter()
            .all(|l| l.level == Level::Info && l.host == "h"));
        assert!(lines.windows(2).all(|w| w[0].seq < w[1].seq));
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_lines_of_that_app_only() {
        let cap = 20 * (LINE_OVERHEAD_BYTES + 10);
        let logs = HostLogs::new("h", cap);
        let quiet = LogSink::new(logs.clone(), origin("quiet"));
        quiet.log(Level::Warn, Stream::Logging, "ctx", "still here");
        let noisy = LogSink::new(logs.clone(), origin("noisy"));
        for i in 0..1000 {
            noisy.log(Level::Info, Stream::Stdout, "", &format!("line {i:04}"));
        }
        let kept = logs.read("noisy", &LogQuery::default());
        assert!(kept.len() < 25, "kept {}", kept.len());
        assert_eq!(kept.last().unwrap().message, "line 0999");
        let (_, bytes, dropped) = logs.usage()["noisy"];
        assert!(bytes <= cap);
        assert_eq!(dropped as usize + kept.len(), 1000);
        assert_eq!(logs.dropped_total(), dropped);
        assert_eq!(
            logs.read("quiet", &LogQuery::default())[0].message,
            "still here"
        );
    }

    #[test]
    fn queries_select_by_cursor_time_and_limit() {
        let logs = HostLogs::new("h", DEFAULT_APP_LOG_BYTES);
        let sink = LogSink::new(logs.clone(), origin("a"));
        for i in 0..5 {
            sink.log(Level::Info, Stream::Stdout, "", &i.to_string());
        }
        let all = logs.read("a", &LogQuery::default());
        let after = logs.read(
            "a",
            &LogQuery {
                after_seq: Some(all[2].seq),
                ..LogQuery::default()
            },
        );
        assert_eq!(after.len(), 2);
        let newest = logs.read(
            "a",
            &LogQuery {
                limit: Some(2),
                ..LogQuery::default()
            },
        );
        assert_eq!(newest, all[3..].to_vec());
        let future = logs.read(
            "a",
            &LogQuery {
                since: Some(u64::MAX),
                ..LogQuery::default()
            },
        );
        assert!(future.is_empty());
        assert!(logs.read("nobody", &LogQuery::default()).is_empty());
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_LINE_BYTES);
        let text = cut(&long);
        assert!(text.len() <= MAX_LINE_BYTES + CUT_MARK.len());
        assert!(text.ends_with(CUT_MARK));
    }
}
