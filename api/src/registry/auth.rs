//! Registry credentials in the Docker config format (`auths` of `~/.docker/config.json`, or a
//! file given with `--registry-auth`): basic auth (`auth` = base64 of `user:password`, or
//! `username` and `password`) and bearer tokens (`registrytoken`, `identitytoken`).
//! Credentials are never printed: `Debug` shows only which registries have some.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

/// One registry's credential.
#[derive(Clone, PartialEq, Eq)]
enum Credential {
    Basic { user: String, password: String },
    Bearer(String),
}

/// Credentials by registry host (`HOST[:PORT]`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    by_registry: BTreeMap<String, Credential>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("registries", &self.by_registry.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    registrytoken: Option<String>,
    identitytoken: Option<String>,
}

/// `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`).
pub fn default_file() -> Option<PathBuf> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
    Some(dir.join("config.json"))
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `localhost:5000` stays.
fn registry_key(key: &str) -> String {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    without_scheme
        .split('/')
        .next()
        .unwrap_or(without_scheme)
        .to_ascii_lowercase()
}

impl Credentials {
    /// The credentials in `file`, else in the default Docker config if it exists, else none.
    /// A file that was named but cannot be read or parsed is an error naming it (never its
    /// contents).
    pub fn load(file: Option<&Path>) -> Result<Credentials, String> {
        let (path, required) = match file {
            Some(p) => (p.to_path_buf(), true),
            None => match default_file() {
                Some(p) => (p, false),
                None => return Ok(Credentials::default()),
            },
        };
        match std::fs::read(&path) {
            Ok(bytes) => Credentials::parse(&bytes)
                .map_err(|e| format!("registry credentials in {}: {e}", path.display())),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Credentials::default())
            }
            Err(e) => Err(format!(
                "cannot read registry credentials from {}: {e}",
                path.display()
            )),
        }
    }

    /// Parses a Docker config; the error says what is wrong, never what a secret holds.
    pub fn parse(bytes: &[u8]) -> Result<Credentials, String> {
        let config: DockerConfig = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a Docker config file (line {})", e.line()))?;
        let mut by_registry = BTreeMap::new();
        for (key, auth) in config.auths {
            let credential = if let Some(token) = auth.registrytoken.or(auth.identitytoken) {
                Credential::Bearer(token)
            } else if let (Some(user), Some(password)) = (&auth.username, &auth.password) {
                Credential::Basic {
                    user: user.clone(),
                    password: password.clone(),
                }
            } else if let Some(encoded) = &auth.auth {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| format!("the `auth` of {key} is not base64 of user:password"))?;
                let (user, password) = decoded
                    .split_once(':')
                    .ok_or_else(|| format!("the `auth` of {key} is not base64 of user:password"))?;
                Credential::Basic {
                    user: user.to_string(),
                    password: password.to_string(),
                }
            } else {
                continue;
            };
            by_registry.insert(registry_key(&key), credential);
        }
        Ok(Credentials { by_registry })
    }

    /// How to authenticate to `registry` (`HOST[:PORT]`): anonymous when no credential is
    /// known (oci-client then follows the registry's bearer challenge anonymously).
    pub fn for_registry(&self, registry: &str) -> RegistryAuth {
        match self.by_registry.get(&registry_key(registry)) {
            Some(Credential::Basic { user, password }) => {
                RegistryAuth::Basic(user.clone(), password.clone())
            }
            Some(Credential::Bearer(token)) => RegistryAuth::Bearer(token.clone()),
            None => RegistryAuth::Anonymous,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_docker_form_is_read_by_registry_host() {
        let json = br#"{"auths": {
            "localhost:5000": {"auth": "YW5uOnMzY3JldA=="},
            "https://index.docker.io/v1/": {"username": "bob", "password": "pw"},
            "ghcr.io": {"registrytoken": "tok"},
            "empty.example": {}
        }}"#;
        let c = Credentials::parse(json).unwrap();
        assert_eq!(
            c.for_registry("localhost:5000"),
            RegistryAuth::Basic("ann".into(), "s3cret".into())
        );
        assert_eq!(
            c.for_registry("index.docker.io"),
            RegistryAuth::Basic("bob".into(), "pw".into())
        );
        assert_eq!(
            c.for_registry("ghcr.io"),
            RegistryAuth::Bearer("tok".into())
        );
        assert_eq!(c.for_registry("empty.example"), RegistryAuth::Anonymous);
        assert_eq!(c.for_registry("other.example"), RegistryAuth::Anonymous);
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("tok\""),
            "{shown}"
        );
    }

    #[test]
    fn errors_never_show_the_secret() {
        let e = Credentials::parse(br#"{"auths": {"r": {"auth": "bm9jb2xvbg=="}}}"#).unwrap_err();
        assert!(e.contains("not base64 of user:password"), "{e}");
        assert!(!e.contains("nocolon"), "{e}");
        let e = Credentials::parse(b"{\n oops").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn a_missing_default_file_is_no_credentials_but_a_missing_named_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        assert!(Credentials::load(Some(&missing))
            .unwrap_err()
            .contains("nope.json"));
    }
}
