//! `wasmcloud:secrets/store@0.1.0-draft` and `reveal`: a component gets a handle only for a
//! name its own `secrets` entries declare; the value is opened from the replicated state's
//! ciphertext when the handle is taken, kept in the request's resource table, and wiped when
//! the handle (or the instance) is dropped. The generated `secret` type is only a marker: the
//! handle's rep indexes a [`SecretHandle`] in the request's table.

use wasmtime::component::Resource;
use zeroize::Zeroizing;

use super::bindings::wasmcloud::secrets::{reveal, store};
use super::vault::VaultError;
use crate::engine::GuestState;

/// A revealed secret held for one request.
pub struct SecretHandle {
    value: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for SecretHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHandle(..)")
    }
}

/// The `field` of a JSON object value, as bytes (a string field without its quotes).
fn select_field(value: &[u8], field: &str) -> Result<Zeroizing<Vec<u8>>, store::SecretsError> {
    let parsed: serde_json::Value = serde_json::from_slice(value).map_err(|_| {
        store::SecretsError::Upstream(format!(
            "the secret is not a JSON object, so it has no field `{field}`"
        ))
    })?;
    match parsed.get(field) {
        Some(serde_json::Value::String(s)) => Ok(Zeroizing::new(s.clone().into_bytes())),
        Some(other) => Ok(Zeroizing::new(other.to_string().into_bytes())),
        None => Err(store::SecretsError::NotFound),
    }
}

impl store::Host for GuestState {
    fn get(&mut self, key: String) -> Result<Resource<store::Secret>, store::SecretsError> {
        let Some(grant) = self.grants.secrets.get(&key) else {
            return Err(store::SecretsError::NotFound);
        };
        let value = match self.vault.open(&grant.key, grant.version) {
            Ok(v) => v,
            Err(VaultError::NotFound) => return Err(store::SecretsError::NotFound),
            Err(VaultError::Unavailable(why)) => return Err(store::SecretsError::Upstream(why)),
        };
        let value = match &grant.field {
            Some(field) => select_field(&value, field)?,
            None => value,
        };
        let handle = self
            .table
            .push(SecretHandle { value })
            .map_err(|e| store::SecretsError::Io(e.to_string()))?;
        Ok(Resource::new_own(handle.rep()))
    }
}

impl store::HostSecret for GuestState {
    fn drop(&mut self, handle: Resource<store::Secret>) -> wasmtime::Result<()> {
        self.table
            .delete(Resource::<SecretHandle>::new_own(handle.rep()))?;
        Ok(())
    }
}

impl reveal::Host for GuestState {
    fn reveal(&mut self, handle: Resource<store::Secret>) -> store::SecretValue {
        match self
            .table
            .get(&Resource::<SecretHandle>::new_borrow(handle.rep()))
        {
            Ok(secret) => match std::str::from_utf8(&secret.value) {
                Ok(text) => store::SecretValue::String(text.to_string()),
                Err(_) => store::SecretValue::Bytes(secret.value.to_vec()),
            },
            // A handle of this request's table always resolves; an empty value is all that
            // can be given back for one that does not.
            Err(_) => store::SecretValue::Bytes(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_json_objects_are_selected() {
        let value = br#"{"user":"app","password":"s3cret","port":5432}"#;
        assert_eq!(
            select_field(value, "password").unwrap().as_slice(),
            b"s3cret"
        );
        assert_eq!(select_field(value, "port").unwrap().as_slice(), b"5432");
        assert!(matches!(
            select_field(value, "host"),
            Err(store::SecretsError::NotFound)
        ));
        assert!(matches!(
            select_field(b"plain", "x"),
            Err(store::SecretsError::Upstream(_))
        ));
    }
}
