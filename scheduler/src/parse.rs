//! The one entry point from manifest bytes to a validated [`Manifest`].

use crate::decode::{Decoder, Origins};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::document::parse_document;
use crate::manifest::Manifest;
use crate::validate::validate;

/// A manifest that passed validation, with the warnings it raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub manifest: Manifest,
    pub warnings: Vec<Diagnostic>,
}

/// Why a manifest was rejected: every error and warning found, in document order of checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub diagnostics: Vec<Diagnostic>,
}

impl Rejected {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejected {}

/// Parses and validates a wadm manifest given as YAML or JSON bytes.
///
/// Never panics and never allocates without bound: size, nesting and alias expansion are
/// limited (see [`crate::document`]). All problems are reported at once.
pub fn parse_manifest(bytes: &[u8]) -> Result<Parsed, Rejected> {
    let root = parse_document(bytes).map_err(|d| Rejected {
        diagnostics: vec![d],
    })?;
    let mut diags = Diagnostics::default();
    let mut origins = Origins::default();
    let manifest = Decoder { diags: &mut diags }.manifest(&root, &mut origins);
    if let Some(m) = &manifest {
        validate(m, &origins, &mut diags);
    }
    match manifest {
        Some(manifest) if !diags.has_errors() => Ok(Parsed {
            manifest,
            warnings: diags.into_vec(),
        }),
        _ => Err(Rejected {
            diagnostics: diags.into_vec(),
        }),
    }
}
