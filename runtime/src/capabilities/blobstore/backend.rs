//! What a blobstore backend does: containers of named objects, read in inclusive byte ranges
//! and written from a spooled file, never whole in memory.

use tokio::io::AsyncRead;

/// A reader of an object's bytes.
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;

/// A container's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerMeta {
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// An object's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// The bytes `start..=end` of an object of `size` bytes, clamped to it: `(offset, length)`.
/// The WIT documents both ends as inclusive; wasmCloud's blobby asks for `0..=size`, one past
/// the end, which is clamped.
pub fn clamp_range(size: u64, start: u64, end: u64) -> Result<(u64, u64), String> {
    if start > end {
        return Err(format!(
            "the range {start}..={end} is empty: start is after end"
        ));
    }
    if size == 0 || start >= size {
        return Ok((start, 0));
    }
    let last = end.min(size - 1);
    Ok((start, last - start + 1))
}

/// A blobstore backend.
#[async_trait::async_trait]
pub trait BlobBackend: Send + Sync {
    async fn create_container(&self, container: &str) -> Result<(), String>;
    async fn container_exists(&self, container: &str) -> Result<bool, String>;
    /// Deletes it and every object in it.
    async fn delete_container(&self, container: &str) -> Result<(), String>;
    async fn container_info(&self, container: &str) -> Result<ContainerMeta, String>;
    /// The names of its objects (any order).
    async fn list(&self, container: &str) -> Result<Vec<String>, String>;
    /// Its metadata, `None` when there is no such object.
    async fn object_info(&self, container: &str, name: &str) -> Result<Option<ObjectMeta>, String>;
    /// `length` bytes from `offset` (already clamped to the object).
    async fn read(
        &self,
        container: &str,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Reader, String>;
    /// Creates or replaces the object with the bytes of `data` (read from its start).
    async fn write(&self, container: &str, name: &str, data: tokio::fs::File)
        -> Result<(), String>;
    /// Deletes it; no error when it does not exist.
    async fn delete(&self, container: &str, name: &str) -> Result<(), String>;
    /// Copies an object to another name or container (which must exist).
    async fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), String>;

    /// Moves an object: a copy, then the source deleted.
    async fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), String> {
        self.copy(from, to).await?;
        self.delete(from.0, from.1).await
    }

    /// Deletes every object of the container.
    async fn clear(&self, container: &str) -> Result<(), String> {
        for name in self.list(container).await? {
            self.delete(container, &name).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_clamped() {
        assert_eq!(clamp_range(10, 0, 9), Ok((0, 10)));
        assert_eq!(
            clamp_range(10, 0, 10),
            Ok((0, 10)),
            "blobby's one past the end"
        );
        assert_eq!(clamp_range(10, 2, 4), Ok((2, 3)));
        assert_eq!(clamp_range(10, 12, 20), Ok((12, 0)));
        assert_eq!(clamp_range(0, 0, 0), Ok((0, 0)));
        assert!(clamp_range(10, 5, 4).is_err());
    }
}
