//! `blobstore-fs`: a folder per container under the link's `ROOT`, a file per object (a name
//! with `/` makes sub-folders). Every host has its own folder: components on several hosts see
//! different objects (`app status` warns). A container or object name that would lead out of
//! `ROOT` (`..`, an absolute path, an empty segment) is refused.

use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::backend::{BlobBackend, ContainerMeta, ObjectMeta, Reader};

pub struct FsBlobs {
    pub root: PathBuf,
}

/// `name` as a relative path of plain segments, or why not.
fn safe(name: &str, what: &str) -> Result<PathBuf, String> {
    let path = Path::new(name);
    let plain = !name.is_empty()
        && !name.contains('\0')
        && !name.split('/').any(str::is_empty)
        && path.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(path.to_path_buf())
    } else {
        Err(format!(
            "the {what} name `{name}` is not a plain relative path (no `..`, no leading `/`, no empty segment)"
        ))
    }
}

fn seconds(time: std::io::Result<SystemTime>) -> u64 {
    time.ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

fn io(what: &str, e: std::io::Error) -> String {
    format!("{what}: {e}")
}

impl FsBlobs {
    fn container(&self, container: &str) -> Result<PathBuf, String> {
        Ok(self.root.join(safe(container, "container")?))
    }

    fn object(&self, container: &str, name: &str) -> Result<PathBuf, String> {
        Ok(self.container(container)?.join(safe(name, "object")?))
    }

    /// The path an object is about to be written at: in a container that exists, its parent
    /// folders made.
    async fn target(&self, container: &str, name: &str) -> Result<PathBuf, String> {
        if !self.container_exists(container).await? {
            return Err(format!("no container `{container}`"));
        }
        let path = self.object(container, name)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io(&format!("object `{name}`"), e))?;
        }
        Ok(path)
    }
}

#[async_trait::async_trait]
impl BlobBackend for FsBlobs {
    async fn create_container(&self, container: &str) -> Result<(), String> {
        let path = self.container(container)?;
        tokio::fs::create_dir_all(&path)
            .await
            .map_err(|e| io(&format!("creating container `{container}`"), e))
    }

    async fn container_exists(&self, container: &str) -> Result<bool, String> {
        Ok(tokio::fs::metadata(self.container(container)?)
            .await
            .is_ok_and(|m| m.is_dir()))
    }

    async fn delete_container(&self, container: &str) -> Result<(), String> {
        match tokio::fs::remove_dir_all(self.container(container)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io(&format!("deleting container `{container}`"), e))
            }
            _ => Ok(()),
        }
    }

    async fn container_info(&self, container: &str) -> Result<ContainerMeta, String> {
        let meta = tokio::fs::metadata(self.container(container)?)
            .await
            .map_err(|e| io(&format!("container `{container}`"), e))?;
        Ok(ContainerMeta {
            created_at: seconds(meta.created().or(meta.modified())),
        })
    }

    async fn list(&self, container: &str) -> Result<Vec<String>, String> {
        let top = self.container(container)?;
        let mut names = Vec::new();
        let mut pending = vec![top.clone()];
        while let Some(dir) = pending.pop() {
            let mut entries = tokio::fs::read_dir(&dir)
                .await
                .map_err(|e| io(&format!("listing container `{container}`"), e))?;
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| io(&format!("listing container `{container}`"), e))?
            {
                let path = entry.path();
                if entry.file_type().await.is_ok_and(|t| t.is_dir()) {
                    pending.push(path);
                } else if let Ok(relative) = path.strip_prefix(&top) {
                    names.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        Ok(names)
    }

    async fn object_info(&self, container: &str, name: &str) -> Result<Option<ObjectMeta>, String> {
        match tokio::fs::metadata(self.object(container, name)?).await {
            Ok(meta) if meta.is_file() => Ok(Some(ObjectMeta {
                size: meta.len(),
                created_at: seconds(meta.created().or(meta.modified())),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&format!("object `{name}`"), e)),
        }
    }

    async fn read(
        &self,
        container: &str,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Reader, String> {
        let mut file = tokio::fs::File::open(self.object(container, name)?)
            .await
            .map_err(|e| io(&format!("object `{name}` in `{container}`"), e))?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| io(&format!("object `{name}`"), e))?;
        Ok(Box::new(file.take(length)))
    }

    async fn write(
        &self,
        container: &str,
        name: &str,
        mut data: tokio::fs::File,
    ) -> Result<(), String> {
        let path = self.target(container, name).await?;
        // Written beside it, then renamed: a reader never sees half an object.
        let partial = path.with_file_name(format!(
            ".{}.partial",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        let mut out = tokio::fs::File::create(&partial)
            .await
            .map_err(|e| io(&format!("object `{name}`"), e))?;
        tokio::io::copy(&mut data, &mut out)
            .await
            .map_err(|e| io(&format!("writing object `{name}`"), e))?;
        out.sync_all()
            .await
            .map_err(|e| io(&format!("writing object `{name}`"), e))?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| io(&format!("writing object `{name}`"), e))
    }

    async fn delete(&self, container: &str, name: &str) -> Result<(), String> {
        match tokio::fs::remove_file(self.object(container, name)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io(&format!("deleting object `{name}`"), e))
            }
            _ => Ok(()),
        }
    }

    async fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), String> {
        let source = self.object(from.0, from.1)?;
        let target = self.target(to.0, to.1).await?;
        tokio::fs::copy(&source, &target)
            .await
            .map(|_| ())
            .map_err(|e| io(&format!("copying `{}` to `{}`", from.1, to.1), e))
    }

    async fn rename(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), String> {
        let source = self.object(from.0, from.1)?;
        let target = self.target(to.0, to.1).await?;
        tokio::fs::rename(&source, &target)
            .await
            .map_err(|e| io(&format!("moving `{}` to `{}`", from.1, to.1), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_root() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "a//b", "a/", "."] {
            assert!(safe(bad, "object").is_err(), "{bad}");
        }
        assert_eq!(safe("a/b.txt", "object").unwrap(), PathBuf::from("a/b.txt"));
    }
}
