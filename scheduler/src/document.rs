//! Turns manifest bytes (YAML, or JSON, which YAML 1.2 contains) into a tree of nodes that
//! remember where they came from, under explicit limits so that hostile input is an error and
//! never a crash, a hang or an unbounded allocation.

use std::collections::BTreeMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diagnostic::{Diagnostic, Position};

/// Largest manifest accepted, in bytes. Real manifests are a few KiB.
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;
/// Deepest nesting of sequences and mappings accepted. A manifest needs about 10.
pub const MAX_DEPTH: usize = 64;
/// Most nodes a document may hold once aliases are expanded (the alias-bomb guard).
pub const MAX_NODES: usize = 100_000;

/// A value of the document and where it started.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub pos: Option<Position>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    /// A scalar's text; `quoted` tells whether it was written in quotes (so `"123"` is text).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Value {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Parses one document. Errors are whole-document diagnostics with a position when known.
pub(crate) fn parse_document(bytes: &[u8]) -> Result<Node, Diagnostic> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(Diagnostic::error(
            "",
            None,
            format!(
                "manifest is {} bytes, above the limit of {} bytes",
                bytes.len(),
                MAX_MANIFEST_BYTES
            ),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        Diagnostic::error(
            "",
            Some(Position {
                line: line as u32,
                column: column as u32,
            }),
            format!(
                "manifest is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    TreeBuilder::default().build(text)
}

fn position(span: &Span) -> Position {
    Position {
        line: span.start.line() as u32,
        column: span.start.col() as u32 + 1,
    }
}

enum Frame {
    Seq {
        anchor: usize,
        pos: Position,
        items: Vec<Node>,
        count: usize,
    },
    Map {
        anchor: usize,
        pos: Position,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        count: usize,
    },
}

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    anchors: BTreeMap<usize, (Node, usize)>,
    nodes: usize,
    root: Option<Node>,
    documents: usize,
}

impl TreeBuilder {
    fn build(mut self, text: &str) -> Result<Node, Diagnostic> {
        let mut parser = Parser::new_from_str(text);
        while let Some(event) = parser.next_event() {
            let (event, span) = event.map_err(|e| {
                let m = e.marker();
                Diagnostic::error(
                    "",
                    Some(Position {
                        line: m.line() as u32,
                        column: m.col() as u32 + 1,
                    }),
                    format!("invalid YAML: {}", e.info()),
                )
            })?;
            self.on_event(event, span)?;
        }
        self.root
            .ok_or_else(|| Diagnostic::error("", None, "manifest is empty"))
    }

    fn budget(&mut self, added: usize, span: &Span) -> Result<(), Diagnostic> {
        self.nodes = self.nodes.saturating_add(added);
        if self.nodes > MAX_NODES {
            return Err(Diagnostic::error(
                "",
                Some(position(span)),
                format!("document expands to more than {MAX_NODES} nodes (is it an alias bomb?)"),
            ));
        }
        Ok(())
    }

    fn on_event(&mut self, event: Event<'_>, span: Span) -> Result<(), Diagnostic> {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(Diagnostic::error(
                        "",
                        Some(position(&span)),
                        "expected one YAML document, found a second one",
                    ));
                }
            }
            Event::Scalar(text, style, anchor, _tag) => {
                self.budget(1, &span)?;
                let quoted = !matches!(style, ScalarStyle::Plain);
                let value = if !quoted && matches!(&*text, "" | "~" | "null" | "Null" | "NULL") {
                    Value::Null
                } else {
                    Value::Scalar {
                        text: text.into_owned(),
                        quoted,
                    }
                };
                self.complete(
                    Node {
                        value,
                        pos: Some(position(&span)),
                    },
                    anchor,
                    1,
                );
            }
            Event::Alias(id) => {
                let Some((node, count)) = self.anchors.get(&id) else {
                    return Err(Diagnostic::error(
                        "",
                        Some(position(&span)),
                        "alias to an unknown anchor",
                    ));
                };
                let (mut node, count) = (node.clone(), *count);
                self.budget(count, &span)?;
                node.pos = Some(position(&span));
                self.complete(node, 0, count);
            }
            Event::SequenceStart(anchor, _) => {
                self.open(
                    Frame::Seq {
                        anchor,
                        pos: position(&span),
                        items: Vec::new(),
                        count: 1,
                    },
                    &span,
                )?;
            }
            Event::MappingStart(anchor, _) => {
                self.open(
                    Frame::Map {
                        anchor,
                        pos: position(&span),
                        entries: Vec::new(),
                        key: None,
                        count: 1,
                    },
                    &span,
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor, count) = match self.stack.pop() {
                    Some(Frame::Seq {
                        anchor,
                        pos,
                        items,
                        count,
                    }) => (
                        Node {
                            value: Value::Seq(items),
                            pos: Some(pos),
                        },
                        anchor,
                        count,
                    ),
                    Some(Frame::Map {
                        anchor,
                        pos,
                        entries,
                        count,
                        ..
                    }) => (
                        Node {
                            value: Value::Map(entries),
                            pos: Some(pos),
                        },
                        anchor,
                        count,
                    ),
                    None => {
                        return Err(Diagnostic::error(
                            "",
                            Some(position(&span)),
                            "unbalanced YAML",
                        ))
                    }
                };
                self.complete(node, anchor, count);
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, span: &Span) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Diagnostic::error(
                "",
                Some(position(span)),
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.budget(1, span)?;
        self.stack.push(frame);
        Ok(())
    }

    /// Hands a finished node to its parent (or makes it the root) and records its anchor.
    fn complete(&mut self, node: Node, anchor: usize, count: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), count));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq {
                items, count: c, ..
            }) => {
                *c += count;
                items.push(node);
            }
            Some(Frame::Map {
                entries,
                key,
                count: c,
                ..
            }) => {
                *c += count;
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &[u8]) -> Diagnostic {
        parse_document(input).expect_err("must be rejected")
    }

    #[test]
    fn parses_positions() {
        let node = parse_document(b"a:\n  b: [1, \"2\"]\n").unwrap();
        let Value::Map(entries) = node.value else {
            panic!()
        };
        let (_, inner) = &entries[0];
        let Value::Map(inner) = &inner.value else {
            panic!()
        };
        assert_eq!(inner[0].0.pos, Some(Position { line: 2, column: 3 }));
        let Value::Seq(items) = &inner[0].1.value else {
            panic!()
        };
        assert_eq!(
            items[1].value,
            Value::Scalar {
                text: "2".into(),
                quoted: true
            }
        );
        assert_eq!(
            items[0].value,
            Value::Scalar {
                text: "1".into(),
                quoted: false
            }
        );
    }

    #[test]
    fn json_is_accepted() {
        let node = parse_document(b"{\n\t\"a\": {\"b\": [1, 2.5, true, null]}\n}").unwrap();
        assert!(matches!(node.value, Value::Map(_)));
    }

    #[test]
    fn alias_bomb_is_rejected() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = err(doc.as_bytes());
        assert!(e.message.contains("alias bomb"), "{e}");
    }

    #[test]
    fn deep_block_nesting_is_rejected() {
        let doc = "- ".repeat(10_000) + "x\n";
        let e = err(doc.as_bytes());
        assert!(e.message.contains("nesting deeper"), "{e}");
    }

    #[test]
    fn deep_flow_nesting_is_rejected() {
        let doc = "[".repeat(10_000) + &"]".repeat(10_000);
        let e = err(doc.as_bytes());
        assert!(
            e.message.contains("nesting") || e.message.contains("invalid YAML"),
            "{e}"
        );
        let doc = "{\"a\":".repeat(10_000) + "1" + &"}".repeat(10_000);
        err(doc.as_bytes());
    }

    #[test]
    fn huge_document_is_rejected_before_parsing() {
        let doc = vec![b'a'; 50 * 1024 * 1024];
        let e = err(&doc);
        assert!(e.message.contains("above the limit"), "{e}");
    }

    #[test]
    fn invalid_utf8_names_the_position() {
        let e = err(b"a: 1\nb: \xff\xfe\n");
        assert!(e.message.contains("UTF-8"), "{e}");
        assert_eq!(e.position, Some(Position { line: 2, column: 4 }));
    }

    #[test]
    fn second_document_is_rejected() {
        let e = err(b"a: 1\n---\nb: 2\n");
        assert!(e.message.contains("second"), "{e}");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = err(b"a: [1, 2\nb: }\n");
        assert!(e.message.starts_with("invalid YAML"), "{e}");
        assert!(e.position.is_some());
    }

    #[test]
    fn empty_is_rejected() {
        assert!(err(b"").message.contains("empty"));
        assert!(err(b"# only a comment\n").message.contains("empty"));
    }
}
