//! The configuration of a `blobstore-s3` link, in wasmCloud's form: a JSON document under
//! `config_json`, or its base64 under `config_b64` (a link's target secrets first, then its
//! config; the runtime reads secrets), plus `BUCKET_REGION` and `alias_NAME = BUCKET` keys in
//! the config. Pure: parsing and checking only; the runtime connects.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

/// The key of the JSON document.
pub const CONFIG_JSON: &str = "config_json";
/// The key of the base64 of the JSON document.
pub const CONFIG_B64: &str = "config_b64";
/// A config key that sets the region new buckets are created in.
pub const BUCKET_REGION: &str = "BUCKET_REGION";
/// Config keys `alias_NAME` map the container name `NAME` (or `alias_NAME`) to a bucket.
pub const ALIAS_PREFIX: &str = "alias_";
/// The region when neither the link nor the node's environment names one.
pub const DEFAULT_REGION: &str = "us-east-1";
/// How often an idempotent request is tried when wasmCloud's `max_attempts` is not given.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// wasmCloud's `StorageConfig` (provider-blobstore-s3). Unknown fields are ignored, as there.
/// `Debug` shows whether credentials are set, never their values.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
pub struct S3Config {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    pub max_attempts: Option<u32>,
    /// STS assume-role, which Flotilla does not do: present means refused.
    pub sts_config: Option<serde_json::Value>,
    /// The S3-compatible server (`http://127.0.0.1:9000`); AWS's regional endpoint otherwise.
    pub endpoint: Option<String>,
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    pub bucket_region: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "…"),
            )
            .field("session_token", &self.session_token.as_ref().map(|_| "…"))
            .field("region", &self.region)
            .field("max_attempts", &self.max_attempts)
            .field("endpoint", &self.endpoint)
            .field("aliases", &self.aliases)
            .field("bucket_region", &self.bucket_region)
            .finish()
    }
}

impl S3Config {
    /// Parses the document found under `key` ([`CONFIG_JSON`] or [`CONFIG_B64`]). Errors name
    /// the key and never quote the value (it may hold the secret key).
    pub fn parse(key: &str, value: &str) -> Result<S3Config, String> {
        let json = if key.eq_ignore_ascii_case(CONFIG_B64) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim().as_bytes())
                .map_err(|e| format!("`{key}` is not base64: {e}"))?;
            String::from_utf8(bytes).map_err(|_| format!("`{key}` does not decode to text"))?
        } else {
            value.to_string()
        };
        let config: S3Config = serde_json::from_str(&json).map_err(|e| {
            format!(
                "`{key}` is not wasmCloud's S3 JSON (line {}, column {}): {}",
                e.line(),
                e.column(),
                classify(&e)
            )
        })?;
        config.check()?;
        Ok(config)
    }

    /// What Flotilla cannot use in an otherwise well-formed document.
    fn check(&self) -> Result<(), String> {
        if self.sts_config.is_some() {
            return Err("`sts_config` (STS assume-role) is not supported: give \
                 `access_key_id` and `secret_access_key`, from a secret"
                .to_string());
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err(
                "`access_key_id` and `secret_access_key` go together: one is missing".to_string(),
            );
        }
        if let Some(endpoint) = &self.endpoint {
            endpoint_problem(endpoint).map_or(Ok(()), Err)?;
        }
        if self.max_attempts == Some(0) {
            return Err("`max_attempts` must be 1 or more".to_string());
        }
        Ok(())
    }

    /// Adds the link config's `alias_NAME` keys and `BUCKET_REGION` to the document's.
    pub fn with_link_config(mut self, config: &BTreeMap<String, String>) -> S3Config {
        for (key, value) in config {
            if let Some(alias) = key.strip_prefix(ALIAS_PREFIX) {
                if !alias.is_empty() && !value.is_empty() {
                    self.aliases.insert(alias.to_string(), value.clone());
                }
            }
        }
        if let Some(region) = config.get(BUCKET_REGION) {
            self.bucket_region = Some(region.clone());
        }
        self
    }

    /// The bucket a container name means: its alias (with or without the `alias_` prefix)
    /// if the link defines one, else the name itself without the prefix.
    pub fn bucket<'a>(&'a self, container: &'a str) -> &'a str {
        let name = container.strip_prefix(ALIAS_PREFIX).unwrap_or(container);
        self.aliases.get(name).map_or(name, String::as_str)
    }
}

/// The kind of a JSON error, without serde's quoting of the input.
fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "a field has the wrong type",
        serde_json::error::Category::Eof => "the document ends early",
        serde_json::error::Category::Io => "unreadable",
    }
}

/// Why `endpoint` is not an `http://` or `https://` address of a server.
fn endpoint_problem(endpoint: &str) -> Option<String> {
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return Some(format!(
            "`endpoint` `{endpoint}` is not a URL (http://HOST:PORT)"
        ));
    };
    if !matches!(scheme, "http" | "https") {
        return Some(format!(
            "`endpoint` `{endpoint}`: the scheme must be http or https"
        ));
    }
    if rest.split('/').next().unwrap_or("").is_empty() {
        return Some(format!("`endpoint` `{endpoint}` names no host"));
    }
    None
}

/// What is wrong with an S3 link's config at deploy time, as `(key, message)`: a document given
/// in config (one given in secrets is checked when the link is used) and the alias keys.
pub fn problems(config: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for key in [CONFIG_B64, CONFIG_JSON] {
        if let Some((found, value)) = crate::provider::setting_any_case(config, key) {
            if let Err(why) = S3Config::parse(found, value) {
                out.push((found.to_string(), why));
            }
        }
    }
    for (key, value) in config {
        if let Some(alias) = key.strip_prefix(ALIAS_PREFIX) {
            if alias.is_empty() || value.is_empty() {
                out.push((
                    key.clone(),
                    "an alias needs a name after `alias_` and a bucket as its value".to_string(),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn json_and_base64_give_the_same_document() {
        let json = r#"{"access_key_id":"AK","secret_access_key":"SK","region":"eu-west-1",
            "endpoint":"http://127.0.0.1:9000","aliases":{"photos":"bucket-a"}}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        let a = S3Config::parse(CONFIG_JSON, json).unwrap();
        let b = S3Config::parse(CONFIG_B64, &b64).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.region.as_deref(), Some("eu-west-1"));
        assert_eq!(a.bucket("photos"), "bucket-a");
        assert_eq!(a.bucket("alias_photos"), "bucket-a");
        assert_eq!(a.bucket("alias_other"), "other");
        assert_eq!(a.bucket("plain"), "plain");
    }

    #[test]
    fn debug_and_errors_never_show_the_secret() {
        let json = r#"{"access_key_id":"AK","secret_access_key":"hunter2-secret"}"#;
        let parsed = S3Config::parse(CONFIG_JSON, json).unwrap();
        assert!(!format!("{parsed:?}").contains("hunter2"));
        let broken = r#"{"access_key_id":"AK","secret_access_key":"hunter2-secret""#;
        let err = S3Config::parse(CONFIG_JSON, broken).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("config_json"), "{err}");
        let typed = r#"{"access_key_id":"AK","secret_access_key":["hunter2-secret"]}"#;
        let err = S3Config::parse(CONFIG_JSON, typed).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn unusable_documents_are_refused_with_the_reason() {
        let sts = r#"{"sts_config":{"role":"arn:aws:iam::1:role/x"}}"#;
        assert!(S3Config::parse(CONFIG_JSON, sts)
            .unwrap_err()
            .contains("sts_config"));
        let half = r#"{"access_key_id":"AK"}"#;
        assert!(S3Config::parse(CONFIG_JSON, half)
            .unwrap_err()
            .contains("go together"));
        let ftp = r#"{"endpoint":"ftp://host"}"#;
        assert!(S3Config::parse(CONFIG_JSON, ftp)
            .unwrap_err()
            .contains("scheme"));
        assert!(S3Config::parse(CONFIG_B64, "%%%")
            .unwrap_err()
            .contains("base64"));
    }

    #[test]
    fn link_config_adds_aliases_and_the_bucket_region() {
        let link = config(&[("alias_logs", "real-logs"), (BUCKET_REGION, "eu-central-1")]);
        let merged = S3Config::default().with_link_config(&link);
        assert_eq!(merged.bucket("logs"), "real-logs");
        assert_eq!(merged.bucket_region.as_deref(), Some("eu-central-1"));
    }

    #[test]
    fn deploy_problems_name_the_key() {
        let bad = config(&[(CONFIG_JSON, "{not json"), ("alias_", "x")]);
        let found = problems(&bad);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, CONFIG_JSON);
        assert_eq!(found[1].0, "alias_");
        assert!(problems(&config(&[(CONFIG_JSON, "{}")])).is_empty());
    }
}
