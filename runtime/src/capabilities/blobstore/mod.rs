//! `wasi:blobstore@0.2.0-draft` in the host: containers and objects through the component's
//! link to a blobstore capability (`wasi:blobstore/blobstore`, as wasmCloud's examples link
//! it), on a folder of each host ([`fs`], wasmCloud's `blobstore-fs`) or a NATS JetStream
//! object store ([`nats`], `blobstore-nats`) or an S3-compatible server ([`s3`],
//! `blobstore-s3`). Objects stream both ways and are never whole in
//! memory: what a guest writes is spooled to a temporary file (at most
//! [`MAX_OBJECT_BYTES`]) and stored when it calls `finish`; what it reads comes from the
//! backend through a bounded pipe. `get-data(start, end)` reads the bytes `start..=end` (both
//! inclusive, as the WIT documents; an end past the object is clamped). Every failure is the
//! interface's error string; the app's status shows a link whose backend fails.

pub mod backend;
pub mod fs;
pub mod nats;
pub mod s3;

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use scheduler::provider::setting_any_case;
use scheduler::s3_config::{S3Config, CONFIG_B64, CONFIG_JSON};
use scheduler::Provider;
use tokio::io::AsyncReadExt;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, OutputStream, Pollable, StreamError};

use super::bindings::wasi::blobstore::{blobstore, container, types};
use super::links::LinkGrant;
use crate::engine::GuestState;
use backend::{clamp_range, BlobBackend};

/// The interface, as links name it (the container and types interfaces go with it).
pub const BLOBSTORE: &str = "wasi:blobstore/blobstore";
/// Where a component's log lines about its blobstore links go.
const LOG_CONTEXT: &str = "flotilla:blobstore";
/// The largest object a guest may write.
pub const MAX_OBJECT_BYTES: u64 = 4 << 30;
/// The largest value `incoming-value-consume-sync` hands over whole (the async stream has no
/// limit).
pub const MAX_SYNC_BYTES: u64 = 64 << 20;
/// What the spool of an outgoing value gathers before it writes to its file.
const SPOOL_BUFFER_BYTES: usize = 256 << 10;
/// What a guest may write into an outgoing value's stream at once.
const WRITE_BUDGET_BYTES: usize = 1 << 20;
/// The blobstore-fs root of a link that names none: `$TMPDIR/flotilla-blobstore/APP/COMPONENT`.
const DEFAULT_FS_ROOT_DIR: &str = "flotilla-blobstore";
/// The NATS server of a blobstore-nats link that names none.
pub const DEFAULT_NATS_URI: &str = "nats://127.0.0.1:4222";

/// A container a guest holds: its name.
#[derive(Debug, Clone)]
pub struct ContainerHandle {
    pub name: String,
}

/// The names `list-objects` found, handed out in pieces.
#[derive(Debug)]
pub struct ObjectNames {
    names: VecDeque<String>,
}

/// An object being written: its bytes spooled in an unnamed temporary file, and where
/// `write-data` said it goes.
pub struct OutgoingValue {
    spool: Arc<Mutex<Spool>>,
    stream_taken: bool,
    destination: Option<(String, String)>,
}

struct Spool {
    /// Guests write in wasi:io's 4 KiB pieces; the buffer makes that one write per
    /// [`SPOOL_BUFFER_BYTES`].
    file: std::io::BufWriter<std::fs::File>,
    len: u64,
}

/// A range of an object to read.
pub struct IncomingValue {
    reader: backend::Reader,
    size: u64,
}

/// The output stream of an outgoing value: appends to its spool.
struct SpoolWriter(Arc<Mutex<Spool>>);

#[wasmtime_wasi::async_trait]
impl Pollable for SpoolWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for SpoolWriter {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        let mut spool = self.0.lock().expect("spool lock");
        if spool.len + bytes.len() as u64 > MAX_OBJECT_BYTES {
            return Err(StreamError::LastOperationFailed(wasmtime::format_err!(
                "an object is at most {MAX_OBJECT_BYTES} bytes"
            )));
        }
        spool
            .file
            .write_all(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))?;
        spool.len += bytes.len() as u64;
        Ok(())
    }

    /// Nothing to do: the spool is read only at `finish`, which flushes it (a guest flushes
    /// after every 4 KiB, which would undo the buffer).
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_BUDGET_BYTES)
    }
}

impl GuestState {
    /// The backend of the component's blobstore link, with the link.
    async fn blobstore(&mut self) -> Result<(Arc<LinkGrant>, Arc<dyn BlobBackend>), String> {
        let link = self.link_for(BLOBSTORE)?;
        let backend: Arc<dyn BlobBackend> = match link.provider {
            Provider::BlobstoreFs => {
                let root = setting_any_case(&link.config, "root")
                    .map(|(_, v)| std::path::PathBuf::from(v))
                    .unwrap_or_else(|| {
                        let origin = self.sink.origin();
                        std::env::temp_dir()
                            .join(DEFAULT_FS_ROOT_DIR)
                            .join(&origin.app)
                            .join(&origin.component)
                    });
                Arc::new(fs::FsBlobs { root })
            }
            Provider::BlobstoreNats => {
                let uri = link
                    .config
                    .get("cluster_uri")
                    .cloned()
                    .unwrap_or_else(|| DEFAULT_NATS_URI.to_string());
                match self.backends.nats_client(&uri).await {
                    Ok(client) => Arc::new(nats::NatsBlobs {
                        jetstream: async_nats::jetstream::new(client),
                    }),
                    Err(e) => {
                        let why = e.to_string();
                        self.link_failed(&link, LOG_CONTEXT, &why);
                        return Err(why);
                    }
                }
            }
            Provider::BlobstoreS3 => match self.s3_backend(&link) {
                Ok(backend) => Arc::new(backend),
                Err(why) => {
                    self.link_failed(&link, LOG_CONTEXT, &why);
                    return Err(why);
                }
            },
            _ => {
                return Err(format!(
                    "link '{}' for {BLOBSTORE} leads to '{}', which is not a blobstore",
                    link.name, link.target
                ))
            }
        };
        Ok((link, backend))
    }

    /// A blobstore-s3 link's backend: wasmCloud's JSON settings (`config_b64` or
    /// `config_json`, secrets first), the link's aliases and bucket region.
    fn s3_backend(&self, link: &LinkGrant) -> Result<s3::S3Blobs, String> {
        let document = [CONFIG_B64, CONFIG_JSON]
            .into_iter()
            .find_map(|key| Some((key, self.link_setting(link, key)?)));
        let config = match document {
            Some((key, value)) => S3Config::parse(key, &value)?,
            None => S3Config::default(),
        };
        s3::S3Blobs::new(
            config.with_link_config(&link.config),
            self.backends.s3_http()?,
        )
    }

    /// Runs one call on the blobstore backend and records how it went.
    async fn blob_call<T, F, Fut>(&mut self, call: F) -> Result<T, String>
    where
        F: FnOnce(Arc<dyn BlobBackend>) -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let (link, backend) = self.blobstore().await?;
        let outcome = call(backend).await;
        match &outcome {
            Ok(_) => self.link_succeeded(&link),
            Err(why) => self.link_failed(&link, LOG_CONTEXT, why),
        }
        outcome
    }

    fn container_name(&self, container: &Resource<ContainerHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(container)?.name.clone())
    }
}

type Answer<T> = wasmtime::Result<Result<T, String>>;

impl blobstore::Host for GuestState {
    async fn create_container(&mut self, name: String) -> Answer<Resource<ContainerHandle>> {
        let created = self
            .blob_call(|b| {
                let name = name.clone();
                async move {
                    if b.container_exists(&name).await? {
                        return Err(format!("the container `{name}` exists"));
                    }
                    b.create_container(&name).await
                }
            })
            .await;
        Ok(match created {
            Ok(()) => Ok(self.table.push(ContainerHandle { name })?),
            Err(why) => Err(why),
        })
    }

    async fn get_container(&mut self, name: String) -> Answer<Resource<ContainerHandle>> {
        let exists = self
            .blob_call(|b| {
                let name = name.clone();
                async move { b.container_exists(&name).await }
            })
            .await;
        Ok(match exists {
            Ok(true) => Ok(self.table.push(ContainerHandle { name })?),
            Ok(false) => Err(format!("no container `{name}`")),
            Err(why) => Err(why),
        })
    }

    async fn delete_container(&mut self, name: String) -> Answer<()> {
        Ok(self
            .blob_call(|b| async move { b.delete_container(&name).await })
            .await)
    }

    async fn container_exists(&mut self, name: String) -> Answer<bool> {
        Ok(self
            .blob_call(|b| async move { b.container_exists(&name).await })
            .await)
    }

    async fn copy_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Answer<()> {
        Ok(self
            .blob_call(|b| async move {
                b.copy(
                    (&src.container, &src.object),
                    (&dest.container, &dest.object),
                )
                .await
            })
            .await)
    }

    async fn move_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Answer<()> {
        Ok(self
            .blob_call(|b| async move {
                b.rename(
                    (&src.container, &src.object),
                    (&dest.container, &dest.object),
                )
                .await
            })
            .await)
    }
}

impl container::Host for GuestState {}

impl container::HostContainer for GuestState {
    async fn name(&mut self, container: Resource<ContainerHandle>) -> Answer<String> {
        Ok(Ok(self.container_name(&container)?))
    }

    async fn info(
        &mut self,
        container: Resource<ContainerHandle>,
    ) -> Answer<types::ContainerMetadata> {
        let name = self.container_name(&container)?;
        Ok(self
            .blob_call(|b| async move {
                let meta = b.container_info(&name).await?;
                Ok(types::ContainerMetadata {
                    name,
                    created_at: meta.created_at,
                })
            })
            .await)
    }

    async fn get_data(
        &mut self,
        container: Resource<ContainerHandle>,
        name: String,
        start: u64,
        end: u64,
    ) -> Answer<Resource<IncomingValue>> {
        let container = self.container_name(&container)?;
        let value = self
            .blob_call(|b| async move {
                let meta = b
                    .object_info(&container, &name)
                    .await?
                    .ok_or_else(|| format!("no object `{name}` in `{container}`"))?;
                let (offset, length) = clamp_range(meta.size, start, end)?;
                let reader = b.read(&container, &name, offset, length).await?;
                Ok(IncomingValue {
                    reader,
                    size: length,
                })
            })
            .await;
        Ok(match value {
            Ok(v) => Ok(self.table.push(v)?),
            Err(why) => Err(why),
        })
    }

    async fn write_data(
        &mut self,
        container: Resource<ContainerHandle>,
        name: String,
        data: Resource<OutgoingValue>,
    ) -> Answer<()> {
        let container = self.container_name(&container)?;
        let value = self.table.get_mut(&data)?;
        if value.destination.is_some() {
            return Ok(Err(
                "write-data was already called on this value".to_string()
            ));
        }
        value.destination = Some((container, name));
        Ok(Ok(()))
    }

    async fn list_objects(
        &mut self,
        container: Resource<ContainerHandle>,
    ) -> Answer<Resource<ObjectNames>> {
        let container = self.container_name(&container)?;
        let names = self
            .blob_call(|b| async move { b.list(&container).await })
            .await;
        Ok(match names {
            Ok(names) => Ok(self.table.push(ObjectNames {
                names: names.into(),
            })?),
            Err(why) => Err(why),
        })
    }

    async fn delete_object(
        &mut self,
        container: Resource<ContainerHandle>,
        name: String,
    ) -> Answer<()> {
        let container = self.container_name(&container)?;
        Ok(self
            .blob_call(|b| async move { b.delete(&container, &name).await })
            .await)
    }

    async fn delete_objects(
        &mut self,
        container: Resource<ContainerHandle>,
        names: Vec<String>,
    ) -> Answer<()> {
        let container = self.container_name(&container)?;
        Ok(self
            .blob_call(|b| async move {
                for name in names {
                    b.delete(&container, &name).await?;
                }
                Ok(())
            })
            .await)
    }

    async fn has_object(
        &mut self,
        container: Resource<ContainerHandle>,
        name: String,
    ) -> Answer<bool> {
        let container = self.container_name(&container)?;
        Ok(self
            .blob_call(|b| async move { Ok(b.object_info(&container, &name).await?.is_some()) })
            .await)
    }

    async fn object_info(
        &mut self,
        container: Resource<ContainerHandle>,
        name: String,
    ) -> Answer<types::ObjectMetadata> {
        let container = self.container_name(&container)?;
        Ok(self
            .blob_call(|b| async move {
                let meta = b
                    .object_info(&container, &name)
                    .await?
                    .ok_or_else(|| format!("no object `{name}` in `{container}`"))?;
                Ok(types::ObjectMetadata {
                    name,
                    container,
                    created_at: meta.created_at,
                    size: meta.size,
                })
            })
            .await)
    }

    async fn clear(&mut self, container: Resource<ContainerHandle>) -> Answer<()> {
        let container = self.container_name(&container)?;
        Ok(self
            .blob_call(|b| async move { b.clear(&container).await })
            .await)
    }

    async fn drop(&mut self, container: Resource<ContainerHandle>) -> wasmtime::Result<()> {
        self.table.delete(container)?;
        Ok(())
    }
}

impl container::HostStreamObjectNames for GuestState {
    async fn read_stream_object_names(
        &mut self,
        names: Resource<ObjectNames>,
        len: u64,
    ) -> Answer<(Vec<String>, bool)> {
        let names = &mut self.table.get_mut(&names)?.names;
        let take = usize::try_from(len).unwrap_or(usize::MAX).min(names.len());
        let page: Vec<String> = names.drain(..take).collect();
        Ok(Ok((page, names.is_empty())))
    }

    async fn skip_stream_object_names(
        &mut self,
        names: Resource<ObjectNames>,
        num: u64,
    ) -> Answer<(u64, bool)> {
        let names = &mut self.table.get_mut(&names)?.names;
        let skip = usize::try_from(num).unwrap_or(usize::MAX).min(names.len());
        names.drain(..skip);
        Ok(Ok((skip as u64, names.is_empty())))
    }

    async fn drop(&mut self, names: Resource<ObjectNames>) -> wasmtime::Result<()> {
        self.table.delete(names)?;
        Ok(())
    }
}

impl types::Host for GuestState {}

impl types::HostOutgoingValue for GuestState {
    async fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingValue>> {
        let file = tempfile::tempfile()?;
        Ok(self.table.push(OutgoingValue {
            spool: Arc::new(Mutex::new(Spool {
                file: std::io::BufWriter::with_capacity(SPOOL_BUFFER_BYTES, file),
                len: 0,
            })),
            stream_taken: false,
            destination: None,
        })?)
    }

    async fn outgoing_value_write_body(
        &mut self,
        value: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        let v = self.table.get_mut(&value)?;
        if v.stream_taken {
            return Ok(Err(()));
        }
        v.stream_taken = true;
        let stream: DynOutputStream = Box::new(SpoolWriter(v.spool.clone()));
        Ok(Ok(self.table.push_child(stream, &value)?))
    }

    async fn finish(&mut self, value: Resource<OutgoingValue>) -> Answer<()> {
        let value = self.table.delete(value)?;
        let Some((container, name)) = value.destination else {
            // Nothing was asked of it: there is nothing to store.
            return Ok(Ok(()));
        };
        let file = {
            let mut spool = value.spool.lock().expect("spool lock");
            spool.file.flush()?;
            spool.file.get_ref().try_clone()?
        };
        Ok(self
            .blob_call(|b| async move {
                let mut file = tokio::fs::File::from_std(file);
                tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(0))
                    .await
                    .map_err(|e| format!("reading the written value back: {e}"))?;
                b.write(&container, &name, file).await
            })
            .await)
    }

    async fn drop(&mut self, value: Resource<OutgoingValue>) -> wasmtime::Result<()> {
        self.table.delete(value)?;
        Ok(())
    }
}

impl types::HostIncomingValue for GuestState {
    async fn incoming_value_consume_sync(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> Answer<Vec<u8>> {
        let mut value = self.table.delete(value)?;
        if value.size > MAX_SYNC_BYTES {
            return Ok(Err(format!(
                "{} bytes are more than incoming-value-consume-sync hands over ({MAX_SYNC_BYTES}); use incoming-value-consume-async",
                value.size
            )));
        }
        let mut bytes = Vec::with_capacity(value.size as usize);
        Ok(match value.reader.read_to_end(&mut bytes).await {
            Ok(_) => Ok(bytes),
            Err(e) => Err(format!("reading the value: {e}")),
        })
    }

    async fn incoming_value_consume_async(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> Answer<Resource<DynInputStream>> {
        let value = self.table.delete(value)?;
        let stream: DynInputStream =
            Box::new(wasmtime_wasi::p2::pipe::AsyncReadStream::new(value.reader));
        Ok(Ok(self.table.push(stream)?))
    }

    async fn size(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&value)?.size)
    }

    async fn drop(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<()> {
        self.table.delete(value)?;
        Ok(())
    }
}
