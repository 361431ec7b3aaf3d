//! `blobstore-s3`: a container is a bucket (after the link's aliases) on an S3-compatible
//! server, addressed path-style as wasmCloud's provider does. Requests are signed with SigV4
//! (query-string signing by rusty-s3) and sent with reqwest. A write streams the spooled file
//! in one PUT (objects are at most [`super::MAX_OBJECT_BYTES`], under S3's 5 GiB limit for one
//! PUT); a read streams a ranged GET. Idempotent requests are tried up to `max_attempts` times
//! on a transport error or a 5xx.

use std::time::Duration;

use consensus::http_client::error_chain;
use futures::{StreamExt, TryStreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, Response, StatusCode};
use rusty_s3::actions::{
    CreateBucket, DeleteBucket, DeleteObject, GetObject, HeadBucket, HeadObject, ListObjectsV2,
    PutObject,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use scheduler::s3_config::{S3Config, DEFAULT_MAX_ATTEMPTS, DEFAULT_REGION};
use serde::Deserialize;
use url::Url;

use super::backend::{BlobBackend, ContainerMeta, ObjectMeta, Reader};

/// How long a signed URL stays valid: long enough to be sent (a slow upload is checked when
/// it starts, not when it ends).
const SIGNATURE_VALIDITY: Duration = Duration::from_secs(300);
/// How many objects `clear` deletes at once. One DELETE per object rather than DeleteObjects,
/// whose XML body S3-compatible servers read differently (s3s-fs refuses rusty-s3's).
const PARALLEL_DELETES: usize = 16;
/// The pause before the second attempt of a request, doubled for each later one.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How long a new connection to the server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// What `x-amz-copy-source` leaves unescaped in a key besides letters and digits.
const COPY_SOURCE_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A link's S3 server and credentials.
pub struct S3Blobs {
    config: S3Config,
    endpoint: Url,
    region: String,
    credentials: Credentials,
    attempts: u32,
    http: reqwest::Client,
}

/// A variable of the node's environment, when set and not empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl S3Blobs {
    /// The backend of a link's settings; what the link leaves out comes from the node's
    /// `AWS_*` environment (as the AWS SDK's default chain would).
    pub fn new(config: S3Config, http: reqwest::Client) -> Result<S3Blobs, String> {
        let region = config
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let endpoint = config
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT"))
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = Url::parse(&endpoint)
            .map_err(|e| format!("the S3 endpoint `{endpoint}` is not a URL: {e}"))?;
        let credentials = match (&config.access_key_id, &config.secret_access_key) {
            (Some(key), Some(secret)) => match &config.session_token {
                Some(token) => Credentials::new_with_token(key, secret, token),
                None => Credentials::new(key, secret),
            },
            _ => Credentials::from_env().ok_or(
                "no S3 credentials: the link's config_json (best in a secret) gives no \
                 access_key_id and secret_access_key, and the node has no AWS_ACCESS_KEY_ID",
            )?,
        };
        let attempts = config.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1);
        Ok(S3Blobs {
            config,
            endpoint,
            region,
            credentials,
            attempts,
            http,
        })
    }

    fn bucket(&self, container: &str) -> Result<Bucket, String> {
        let name = self.config.bucket(container).to_string();
        if let Some(why) = bucket_name_problem(&name) {
            return Err(format!("container `{container}`: `{name}` {why}"));
        }
        Bucket::new(
            self.endpoint.clone(),
            UrlStyle::Path,
            name,
            self.region.clone(),
        )
        .map_err(|e| format!("container `{container}`: {e:?}"))
    }

    /// Sends the request `build` makes (signed afresh each time), again after a transport
    /// error or a 5xx while attempts are left. Any other answer is returned as it is.
    async fn send(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, String> {
        let mut pause = FIRST_RETRY_PAUSE;
        let mut attempt = 1;
        loop {
            let outcome = build().send().await;
            let retry = match &outcome {
                Ok(response) => response.status().is_server_error(),
                Err(e) => !e.is_builder(),
            };
            if !retry || attempt >= self.attempts {
                return outcome.map_err(|e| format!("{what}: the S3 server: {}", error_chain(&e)));
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
            attempt += 1;
        }
    }

    async fn list_page(
        &self,
        bucket: &Bucket,
        container: &str,
        token: Option<&str>,
    ) -> Result<ObjectList, String> {
        let what = format!("listing container `{container}`");
        let response = self
            .send(&what, || {
                let mut action = ListObjectsV2::new(bucket, Some(&self.credentials));
                if let Some(token) = token {
                    action.with_continuation_token(token.to_string());
                }
                self.http.get(action.sign(SIGNATURE_VALIDITY))
            })
            .await?;
        let body = success(response, &what).await?.bytes().await;
        let body = body.map_err(|e| format!("{what}: {e}"))?;
        quick_xml::de::from_reader(body.as_ref())
            .map_err(|e| format!("{what}: unreadable answer: {e}"))
    }
}

/// Why `name` is not an S3 bucket name (3 to 63 lowercase letters, digits, `.` and `-`,
/// starting and ending with a letter or digit): the name goes into the request's path, so
/// nothing else may reach it.
fn bucket_name_problem(name: &str) -> Option<&'static str> {
    if !(3..=63).contains(&name.len()) {
        return Some("is not a bucket name: it must be 3 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Some("is not a bucket name: only lowercase letters, digits, `.` and `-`");
    }
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge(name.as_bytes()[0]) || !edge(name.as_bytes()[name.len() - 1]) || name.contains("..") {
        return Some("is not a bucket name: it starts and ends with a letter or digit, no `..`");
    }
    None
}

/// S3's error document.
#[derive(Deserialize)]
struct ErrorDocument {
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// The answer when it is a success, else an error with S3's code and message.
async fn success(response: Response, what: &str) -> Result<Response, String> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.bytes().await.unwrap_or_default();
    Err(
        match quick_xml::de::from_reader::<_, ErrorDocument>(body.as_ref()) {
            Ok(doc) if doc.message.is_empty() => format!("{what}: {} ({status})", doc.code),
            Ok(doc) => format!("{what}: {} ({}, {status})", doc.message, doc.code),
            // HEAD answers have no body to explain themselves.
            Err(_) if status == StatusCode::FORBIDDEN => format!(
                "{what}: the S3 server refused the credentials or their signature ({status})"
            ),
            Err(_) => format!("{what}: the S3 server answered {status}"),
        },
    )
}

/// A successful answer whose body still says `<Error>` (S3's CopyObject can do this).
async fn success_with_body(response: Response, what: &str) -> Result<(), String> {
    let body = success(response, what).await?.bytes().await;
    let body = body.map_err(|e| format!("{what}: {e}"))?;
    if let Ok(doc) = quick_xml::de::from_reader::<_, ErrorDocument>(body.as_ref()) {
        return Err(format!("{what}: {} ({})", doc.message, doc.code));
    }
    Ok(())
}

/// ListObjectsV2's answer, the parts used: some servers leave out fields S3 always sends (ETag),
/// so this asks for no more.
#[derive(Deserialize)]
struct ObjectList {
    #[serde(rename = "Contents", default)]
    contents: Vec<ObjectEntry>,
    #[serde(rename = "NextContinuationToken")]
    next_continuation_token: Option<String>,
}

#[derive(Deserialize)]
struct ObjectEntry {
    #[serde(rename = "Key")]
    key: String,
}

/// ListBuckets' answer: each bucket's name and creation date.
#[derive(Deserialize)]
struct BucketList {
    #[serde(rename = "Buckets", default)]
    buckets: BucketEntries,
}

#[derive(Deserialize, Default)]
struct BucketEntries {
    #[serde(rename = "Bucket", default)]
    bucket: Vec<BucketEntry>,
}

#[derive(Deserialize)]
struct BucketEntry {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "CreationDate")]
    creation_date: String,
}

/// Seconds since the Unix epoch of an RFC 3339 date (`2026-12-06T14:30:00.000Z`).
fn rfc3339_seconds(date: &str) -> Result<u64, String> {
    let at: jiff::Timestamp = date
        .parse()
        .map_err(|e| format!("the S3 date `{date}`: {e}"))?;
    Ok(at.as_second().max(0) as u64)
}

/// Seconds since the Unix epoch of an HTTP date (`Sun, 06 Dec 2026 14:30:00 GMT`).
fn http_date_seconds(date: &str) -> Result<u64, String> {
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(date)
        .map_err(|e| format!("the S3 date `{date}`: {e}"))?;
    Ok(at.as_second().max(0) as u64)
}

#[async_trait::async_trait]
impl BlobBackend for S3Blobs {
    async fn create_container(&self, container: &str) -> Result<(), String> {
        let bucket = self.bucket(container)?;
        let what = format!("creating container `{container}`");
        // us-east-1 is S3's default and takes no location constraint.
        let location = self
            .config
            .bucket_region
            .as_deref()
            .filter(|r| *r != DEFAULT_REGION)
            .map(|r| {
                format!(
                    "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                     <LocationConstraint>{r}</LocationConstraint></CreateBucketConfiguration>"
                )
            });
        let response = self
            .send(&what, || {
                let url = CreateBucket::new(&bucket, &self.credentials).sign(SIGNATURE_VALIDITY);
                let request = self.http.put(url);
                match &location {
                    Some(body) => request.body(body.clone()),
                    None => request,
                }
            })
            .await?;
        success(response, &what).await.map(|_| ())
    }

    async fn container_exists(&self, container: &str) -> Result<bool, String> {
        let bucket = self.bucket(container)?;
        let what = format!("container `{container}`");
        let response = self
            .send(&what, || {
                self.http.head(
                    HeadBucket::new(&bucket, Some(&self.credentials)).sign(SIGNATURE_VALIDITY),
                )
            })
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(false),
            _ => success(response, &what).await.map(|_| true),
        }
    }

    async fn delete_container(&self, container: &str) -> Result<(), String> {
        if !self.container_exists(container).await? {
            return Ok(());
        }
        self.clear(container).await?;
        let bucket = self.bucket(container)?;
        let what = format!("deleting container `{container}`");
        let response = self
            .send(&what, || {
                self.http
                    .delete(DeleteBucket::new(&bucket, &self.credentials).sign(SIGNATURE_VALIDITY))
            })
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(()),
            _ => success(response, &what).await.map(|_| ()),
        }
    }

    async fn container_info(&self, container: &str) -> Result<ContainerMeta, String> {
        let name = self.config.bucket(container).to_string();
        let what = format!("container `{container}`");
        // ListBuckets is the only S3 call that tells a bucket's creation date.
        let response = self
            .send(&what, || {
                let url = rusty_s3::signing::sign(
                    &jiff::Timestamp::now(),
                    rusty_s3::Method::Get,
                    self.endpoint.clone(),
                    self.credentials.key(),
                    self.credentials.secret(),
                    self.credentials.token(),
                    &self.region,
                    SIGNATURE_VALIDITY.as_secs(),
                    std::iter::empty(),
                    std::iter::empty(),
                );
                self.http.get(url)
            })
            .await?;
        let body = success(response, &what).await?.bytes().await;
        let body = body.map_err(|e| format!("{what}: {e}"))?;
        let list: BucketList = quick_xml::de::from_reader(body.as_ref())
            .map_err(|e| format!("{what}: unreadable bucket list: {e}"))?;
        let entry = list
            .buckets
            .bucket
            .into_iter()
            .find(|b| b.name == name)
            .ok_or_else(|| format!("no container `{container}`"))?;
        Ok(ContainerMeta {
            created_at: rfc3339_seconds(&entry.creation_date)?,
        })
    }

    async fn list(&self, container: &str) -> Result<Vec<String>, String> {
        let bucket = self.bucket(container)?;
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_page(&bucket, container, token.as_deref()).await?;
            names.extend(page.contents.into_iter().map(|c| c.key));
            match page.next_continuation_token {
                Some(next) => token = Some(next),
                None => return Ok(names),
            }
        }
    }

    async fn object_info(&self, container: &str, name: &str) -> Result<Option<ObjectMeta>, String> {
        let bucket = self.bucket(container)?;
        let what = format!("object `{name}` in `{container}`");
        let response = self
            .send(&what, || {
                self.http.head(
                    HeadObject::new(&bucket, Some(&self.credentials), name)
                        .sign(SIGNATURE_VALIDITY),
                )
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = success(response, &what).await?;
        let header = |key: reqwest::header::HeaderName| {
            response
                .headers()
                .get(key)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let size = header(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{what}: the answer has no Content-Length"))?;
        // An S3 object is never changed, only replaced: its last write is its creation.
        let created_at = match header(reqwest::header::LAST_MODIFIED) {
            Some(date) => http_date_seconds(&date)?,
            None => return Err(format!("{what}: the answer has no Last-Modified")),
        };
        Ok(Some(ObjectMeta { size, created_at }))
    }

    async fn read(
        &self,
        container: &str,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Reader, String> {
        if length == 0 {
            return Ok(Box::new(tokio::io::empty()));
        }
        let bucket = self.bucket(container)?;
        let what = format!("reading `{name}` in `{container}`");
        // HTTP ranges are inclusive at both ends.
        let range = format!("bytes={offset}-{}", offset + length - 1);
        let response = self
            .send(&what, || {
                self.http
                    .get(
                        GetObject::new(&bucket, Some(&self.credentials), name)
                            .sign(SIGNATURE_VALIDITY),
                    )
                    .header(reqwest::header::RANGE, &range)
            })
            .await?;
        let response = success(response, &what).await?;
        let stream = response.bytes_stream().map_err(std::io::Error::other);
        Ok(Box::new(tokio_util::io::StreamReader::new(stream)))
    }

    async fn write(
        &self,
        container: &str,
        name: &str,
        data: tokio::fs::File,
    ) -> Result<(), String> {
        let bucket = self.bucket(container)?;
        let what = format!("writing `{name}` in `{container}`");
        let size = data
            .metadata()
            .await
            .map_err(|e| format!("{what}: the spooled value: {e}"))?
            .len();
        let url = PutObject::new(&bucket, Some(&self.credentials), name).sign(SIGNATURE_VALIDITY);
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(data));
        // A streamed body cannot be sent twice: one attempt.
        let response = self
            .http
            .request(Method::PUT, url)
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{what}: the S3 server: {}", error_chain(&e)))?;
        success(response, &what).await.map(|_| ())
    }

    async fn delete(&self, container: &str, name: &str) -> Result<(), String> {
        let bucket = self.bucket(container)?;
        let what = format!("deleting `{name}` in `{container}`");
        let response = self
            .send(&what, || {
                self.http.delete(
                    DeleteObject::new(&bucket, Some(&self.credentials), name)
                        .sign(SIGNATURE_VALIDITY),
                )
            })
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(()),
            _ => success(response, &what).await.map(|_| ()),
        }
    }

    async fn copy(&self, from: (&str, &str), to: (&str, &str)) -> Result<(), String> {
        let source_bucket = self.config.bucket(from.0);
        let destination = self.bucket(to.0)?;
        let what = format!(
            "copying `{}` in `{}` to `{}` in `{}`",
            from.1, from.0, to.1, to.0
        );
        let source = format!(
            "/{source_bucket}/{}",
            utf8_percent_encode(from.1, COPY_SOURCE_KEEP)
        );
        let response = self
            .send(&what, || {
                let mut action = PutObject::new(&destination, Some(&self.credentials), to.1);
                action
                    .headers_mut()
                    .insert("x-amz-copy-source", source.clone());
                self.http
                    .put(action.sign(SIGNATURE_VALIDITY))
                    .header("x-amz-copy-source", &source)
            })
            .await?;
        success_with_body(response, &what).await
    }

    async fn clear(&self, container: &str) -> Result<(), String> {
        let names = self.list(container).await?;
        let deletes: Vec<_> = names
            .iter()
            .map(|name| self.delete(container, name))
            .collect();
        futures::stream::iter(deletes)
            .buffer_unordered(PARALLEL_DELETES)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_both_kinds_parse() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:01:00.000Z"), Ok(60));
        assert_eq!(http_date_seconds("Thu, 01 Jan 1970 00:02:00 GMT"), Ok(120));
        assert!(rfc3339_seconds("yesterday").is_err());
    }

    #[test]
    fn only_bucket_names_reach_the_request_path() {
        assert_eq!(bucket_name_problem("blobby"), None);
        assert_eq!(bucket_name_problem("my-company.blobs-2"), None);
        for bad in [
            "..",
            "a/b",
            "ab",
            "Upper",
            "-dash",
            "dot.",
            "a..b",
            "x/../y",
            &"a".repeat(64),
        ] {
            assert!(bucket_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn copy_sources_escape_what_a_url_path_cannot_hold() {
        let escaped = utf8_percent_encode("dir/a b+c?.txt", COPY_SOURCE_KEEP).to_string();
        assert_eq!(escaped, "dir/a%20b%2Bc%3F.txt");
    }

    #[test]
    fn errors_and_bucket_lists_are_read() {
        let doc: ErrorDocument = quick_xml::de::from_reader(
            b"<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>".as_ref(),
        )
        .unwrap();
        assert_eq!(doc.code, "NoSuchBucket");
        let list: BucketList = quick_xml::de::from_reader(
            b"<ListAllMyBucketsResult><Owner><ID>x</ID></Owner><Buckets><Bucket><Name>a</Name><CreationDate>1970-01-01T00:00:10Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>".as_ref(),
        )
        .unwrap();
        assert_eq!(list.buckets.bucket[0].name, "a");
        let empty: BucketList = quick_xml::de::from_reader(
            b"<ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>".as_ref(),
        )
        .unwrap();
        assert!(empty.buckets.bucket.is_empty());
    }
}
