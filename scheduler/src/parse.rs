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
    /// Where each component's `secrets` entries are written, in the manifest's order: a check
    /// the caller makes against its own state (does the secret exist?) names field and line.
    pub secret_origins: Vec<SecretOrigin>,
    /// What wadm accepts but Flotilla cannot run with: link config a capability served in the
    /// host cannot use (a Redis `URL` that does not parse, a NATS link without `bucket`), each
    /// with its field and line. A deploy is refused with these (422), nothing proposed.
    pub unusable: Vec<Diagnostic>,
    /// Where each config entry that names a config managed outside the manifest (no
    /// `properties`) is written: a check the caller makes against its own store.
    pub config_origins: Vec<ConfigOrigin>,
    /// Where each link trait is written: checks made against the components' code (do the
    /// ends of a component-to-component link match?) name its field and line.
    pub link_origins: Vec<LinkPlace>,
}

/// Where one link trait of a component is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPlace {
    pub component: String,
    /// Index in the component's `links`.
    pub index: usize,
    /// Field path, such as `spec.components[0].traits[1]`.
    pub path: String,
    pub position: Option<crate::diagnostic::Position>,
}

/// Where a reference to a named config is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigOrigin {
    /// The config it names.
    pub name: String,
    /// Field path, such as `spec.components[0].properties.config[1]`.
    pub path: String,
    pub position: Option<crate::diagnostic::Position>,
}

/// Where one `secrets` entry of a component is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretOrigin {
    pub component: String,
    /// Index in the component's `secrets`.
    pub index: usize,
    /// Field path, such as `spec.components[0].properties.secrets[1]`.
    pub path: String,
    pub position: Option<crate::diagnostic::Position>,
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
        Some(manifest) if !diags.has_errors() => {
            let mut unusable = Diagnostics::default();
            crate::validate::check_link_backends(&manifest, &origins, &mut unusable);
            Ok(Parsed {
                secret_origins: secret_origins(&manifest, &origins),
                config_origins: config_origins(&manifest, &origins),
                link_origins: link_origins(&manifest, &origins),
                manifest,
                warnings: diags.into_vec(),
                unusable: unusable.into_vec(),
            })
        }
        _ => Err(Rejected {
            diagnostics: diags.into_vec(),
        }),
    }
}

fn link_origins(manifest: &Manifest, origins: &Origins) -> Vec<LinkPlace> {
    let mut out = Vec::new();
    for (c, o) in manifest.components.iter().zip(&origins.components) {
        for (index, lo) in o.links.iter().enumerate().take(c.links.len()) {
            out.push(LinkPlace {
                component: c.name.clone(),
                index,
                path: lo.link.path.clone(),
                position: lo.link.pos,
            });
        }
    }
    out
}

fn secret_origins(manifest: &Manifest, origins: &Origins) -> Vec<SecretOrigin> {
    manifest
        .components
        .iter()
        .zip(&origins.components)
        .flat_map(|(c, o)| {
            o.secrets
                .iter()
                .enumerate()
                .map(|(index, loc)| SecretOrigin {
                    component: c.name.clone(),
                    index,
                    path: loc.path.clone(),
                    position: loc.pos,
                })
        })
        .collect()
}

fn config_origins(manifest: &Manifest, origins: &Origins) -> Vec<ConfigOrigin> {
    let mut out = Vec::new();
    for (c, o) in manifest.components.iter().zip(&origins.components) {
        let own = c.config.iter().zip(&o.config);
        let linked = c.links.iter().zip(&o.links).flat_map(|(l, lo)| {
            l.target_config
                .iter()
                .zip(&lo.target_config)
                .chain(l.source_config.iter().zip(&lo.source_config))
        });
        for (config, loc) in own.chain(linked) {
            if config.properties.is_none() {
                out.push(ConfigOrigin {
                    name: config.name.clone(),
                    path: loc.path.clone(),
                    position: loc.pos,
                });
            }
        }
    }
    out
}
