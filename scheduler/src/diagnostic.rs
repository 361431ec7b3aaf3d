//! Errors and warnings about a manifest, each tied to a field path and, for YAML, a position.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether a diagnostic rejects the manifest or only informs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A position in the source text: 1-based line and 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

/// One problem found while parsing or validating a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Field path such as `spec.components[1].traits[0].properties.spread[2].weight`;
    /// empty for the document as a whole.
    pub path: String,
    /// Where in the source the problem is, when the source carried positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(
        path: impl Into<String>,
        position: Option<Position>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Error,
            path: path.into(),
            position,
            message: message.into(),
        }
    }

    pub fn warning(
        path: impl Into<String>,
        position: Option<Position>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            path: path.into(),
            position,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}")?;
        if !self.path.is_empty() {
            write!(f, " at {}", self.path)?;
        }
        if let Some(p) = self.position {
            write!(f, " (line {}, column {})", p.line, p.column)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Collects diagnostics in the order they are found.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error(
        &mut self,
        path: impl Into<String>,
        position: Option<Position>,
        message: impl Into<String>,
    ) {
        self.items.push(Diagnostic::error(path, position, message));
    }

    pub fn warning(
        &mut self,
        path: impl Into<String>,
        position: Option<Position>,
        message: impl Into<String>,
    ) {
        self.items
            .push(Diagnostic::warning(path, position, message));
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}
