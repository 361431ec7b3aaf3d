//! The media types of wasm components in registries: the wasm OCI artifact layout (config
//! `application/vnd.wasm.config.v0+json`, layer `application/wasm`) and wasmCloud's older
//! layer type; picking the wasm entry of an image index.

use oci_client::manifest::{ImageIndexEntry, OciDescriptor, OciImageIndex, OciImageManifest};
use scheduler::Digest;

use super::RegistryError;

/// The config of the wasm OCI artifact layout.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// A component layer in the wasm OCI artifact layout.
pub const WASM_LAYER: &str = "application/wasm";
/// The layer type wasmCloud's `wash push` wrote before the wasm artifact layout.
pub const WASMCLOUD_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

/// The image's one wasm layer, or an error that names the media types it has.
pub fn wasm_layer<'m>(
    reference: &str,
    image: &'m OciImageManifest,
) -> Result<&'m OciDescriptor, RegistryError> {
    let wasm: Vec<&OciDescriptor> = image
        .layers
        .iter()
        .filter(|l| l.media_type == WASM_LAYER || l.media_type == WASMCLOUD_LAYER)
        .collect();
    match wasm.as_slice() {
        [one] => Ok(one),
        [] => Err(RegistryError::NotAComponent(format!(
            "{reference} is not a wasm component: its config is {} and its layers are {} \
             (a component has a {WASM_LAYER} or {WASMCLOUD_LAYER} layer)",
            image.config.media_type,
            media_types(&image.layers)
        ))),
        many => Err(RegistryError::NotAComponent(format!(
            "{reference} has {} wasm layers; a component has one",
            many.len()
        ))),
    }
}

fn media_types(layers: &[OciDescriptor]) -> String {
    if layers.is_empty() {
        return "none".to_string();
    }
    layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The entry of an image index for the wasm platform.
pub fn wasm_entry(index: &OciImageIndex) -> Option<&ImageIndexEntry> {
    index.manifests.iter().find(|m| {
        m.platform
            .as_ref()
            .is_some_and(|p| p.architecture.to_string() == "wasm")
    })
}

/// `os/arch` of every entry, for an error message.
pub fn platforms(index: &OciImageIndex) -> String {
    let all: Vec<String> = index
        .manifests
        .iter()
        .map(|m| match &m.platform {
            Some(p) => format!("{}/{}", p.os, p.architecture),
            None => "unknown".to_string(),
        })
        .collect();
    if all.is_empty() {
        "none".to_string()
    } else {
        all.join(", ")
    }
}

/// The config blob of a pushed component (the wasm OCI artifact layout's minimal form).
pub fn wasm_config(layer: &Digest) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer.to_string()],
        "component": { "exports": ["wasi:http/incoming-handler@0.2.0"] },
    }))
    .expect("JSON serializes")
}
