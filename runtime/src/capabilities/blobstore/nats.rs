//! `blobstore-nats`: a container is a NATS JetStream object store (a bucket), shared by every
//! host that reaches the server; objects are streamed in chunks both ways.

use async_nats::jetstream::{self, object_store};
use tokio::io::AsyncReadExt;

use super::backend::{BlobBackend, ContainerMeta, ObjectMeta, Reader};

pub struct NatsBlobs {
    pub jetstream: jetstream::Context,
}

/// Whether an error of the server says the bucket or object does not exist.
fn not_found(e: &impl std::fmt::Display) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("not found")
}

impl NatsBlobs {
    async fn store(&self, container: &str) -> Result<object_store::ObjectStore, String> {
        self.jetstream
            .get_object_store(container)
            .await
            .map_err(|e| {
                if not_found(&e) {
                    format!("no container `{container}`")
                } else {
                    format!("container `{container}`: {e}")
                }
            })
    }
}

#[async_trait::async_trait]
impl BlobBackend for NatsBlobs {
    async fn create_container(&self, container: &str) -> Result<(), String> {
        self.jetstream
            .create_object_store(object_store::Config {
                bucket: container.to_string(),
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|e| format!("creating container `{container}`: {e}"))
    }

    async fn container_exists(&self, container: &str) -> Result<bool, String> {
        match self.jetstream.get_object_store(container).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(format!("container `{container}`: {e}")),
        }
    }

    async fn delete_container(&self, container: &str) -> Result<(), String> {
        match self.jetstream.delete_object_store(container).await {
            Err(e) if !not_found(&e) => Err(format!("deleting container `{container}`: {e}")),
            _ => Ok(()),
        }
    }

    async fn container_info(&self, container: &str) -> Result<ContainerMeta, String> {
        let mut stream = self
            .jetstream
            .get_stream(format!("OBJ_{container}"))
            .await
            .map_err(|e| format!("container `{container}`: {e}"))?;
        let info = stream
            .info()
            .await
            .map_err(|e| format!("container `{container}`: {e}"))?;
        Ok(ContainerMeta {
            created_at: u64::try_from(info.created.unix_timestamp()).unwrap_or(0),
        })
    }

    async fn list(&self, container: &str) -> Result<Vec<String>, String> {
        use futures::StreamExt;
        let store = self.store(container).await?;
        let mut list = store
            .list()
            .await
            .map_err(|e| format!("listing `{container}`: {e}"))?;
        let mut names = Vec::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| format!("listing `{container}`: {e}"))?;
            if !info.deleted {
                names.push(info.name);
            }
        }
        Ok(names)
    }

    async fn object_info(&self, container: &str, name: &str) -> Result<Option<ObjectMeta>, String> {
        let store = self.store(container).await?;
        match store.info(name).await {
            Ok(info) if !info.deleted => Ok(Some(ObjectMeta {
                size: info.size as u64,
                created_at: info
                    .modified
                    .map_or(0, |t| u64::try_from(t.unix_timestamp()).unwrap_or(0)),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("object `{name}`: {e}")),
        }
    }

    async fn read(
        &self,
        container: &str,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Reader, String> {
        let store = self.store(container).await?;
        let mut object = store
            .get(name)
            .await
            .map_err(|e| format!("object `{name}` in `{container}`: {e}"))?;
        // The object store reads from the start: the bytes before the range are skipped.
        tokio::io::copy(&mut (&mut object).take(offset), &mut tokio::io::sink())
            .await
            .map_err(|e| format!("object `{name}`: {e}"))?;
        Ok(Box::new(object.take(length)))
    }

    async fn write(
        &self,
        container: &str,
        name: &str,
        mut data: tokio::fs::File,
    ) -> Result<(), String> {
        let store = self.store(container).await?;
        store
            .put(name, &mut data)
            .await
            .map(|_| ())
            .map_err(|e| format!("writing object `{name}`: {e}"))
    }

    async fn delete(&self, container: &str, name: &str) -> Result<(), String> {
        let store = self.store(container).await?;
        match store.delete(name).await {
            Err(e) if e.kind() != object_store::DeleteErrorKind::NotFound => {
                Err(format!("deleting object `{name}`: {e}"))
            }
            _ => Ok(()),
        }
    }

    async fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), String> {
        let source = self.store(from.0).await?;
        let target = self.store(to.0).await?;
        let mut object = source
            .get(from.1)
            .await
            .map_err(|e| format!("object `{}` in `{}`: {e}", from.1, from.0))?;
        target
            .put(to.1, &mut object)
            .await
            .map(|_| ())
            .map_err(|e| format!("copying to `{}` in `{}`: {e}", to.1, to.0))
    }
}
