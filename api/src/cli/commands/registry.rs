//! `flotilla push FILE REF` and `flotilla pull REF [-o FILE]`: components to and from OCI
//! registries, with the same credentials as `up`.

use std::path::{Path, PathBuf};

use crate::cli::args::RegistryArgs;
use crate::registry::{Registries, MAX_COMPONENT_BYTES};

pub async fn push(file: &Path, reference: &str, args: &RegistryArgs) -> super::Outcome {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    if bytes.len() > MAX_COMPONENT_BYTES {
        return Err(format!(
            "{} is {} bytes, more than the limit of {MAX_COMPONENT_BYTES}",
            file.display(),
            bytes.len()
        ));
    }
    let registries = Registries::new(args.config(MAX_COMPONENT_BYTES)?);
    let pushed = registries
        .push(reference, bytes)
        .await
        .map_err(|e| e.to_string())?;
    println!("pushed {reference}");
    println!("  manifest: {}", pushed.manifest_digest);
    println!("  component: {}", pushed.digest);
    Ok(())
}

pub async fn pull(reference: &str, out: Option<&Path>, args: &RegistryArgs) -> super::Outcome {
    let registries = Registries::new(args.config(MAX_COMPONENT_BYTES)?);
    let resolved = registries
        .resolve(reference)
        .await
        .map_err(|e| e.to_string())?;
    let path = out.map_or_else(|| default_file(reference), Path::to_path_buf);
    std::fs::write(&path, &resolved.bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!(
        "pulled {reference} ({}, {} bytes, verified) to {}",
        resolved.digest,
        resolved.bytes.len(),
        path.display()
    );
    Ok(())
}

/// `hello.wasm` for `localhost:5000/acme/hello:v1`.
fn default_file(reference: &str) -> PathBuf {
    let name = scheduler::ImageRef::Oci(reference.to_string())
        .oci_repository_name()
        .unwrap_or("component")
        .to_string();
    PathBuf::from(format!("{name}.wasm"))
}
