//! What the runner reads and keeps in S3: distribution zips (the identity used as the cache
//! key, and the download that runs only on a cache miss; job log objects are in
//! [`super::s3_log`]), and artifacts stored by
//! `command-mode store-artifact`. Cancellation: dropping a download leaves a partial file,
//! which the distribution cache removes; dropping an upload abandons it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::error::classify;
use crate::calls::{self, CallError, ErrorClass};
use crate::engine::distribution::{Fetch, FetchError, FetchFuture, Source};
use crate::metrics::Figures;

/// How long reading a distribution's metadata is retried through transient errors.
const HEAD_DEADLINE: Duration = Duration::from_secs(60);
/// How long starting a distribution's download is retried through transient errors.
const GET_DEADLINE: Duration = Duration::from_secs(120);

/// A zip object in S3.
#[derive(Debug, Clone)]
pub struct S3Zip {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    figures: Arc<Figures>,
    /// Its size, when a `HeadObject` told it.
    size: Option<u64>,
    /// The version read; `None`: the current one.
    version: Option<String>,
}

impl S3Zip {
    /// The object `bucket`/`key`; failed calls counted in `figures`.
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str, key: &str, figures: Arc<Figures>) -> Self {
        S3Zip {
            s3,
            bucket: bucket.to_string(),
            key: key.to_string(),
            figures,
            size: None,
            version: None,
        }
    }

    /// The same object at version `version` (`attini-runner replay`: the version a job ran).
    pub fn at_version(mut self, version: Option<String>) -> Self {
        self.version = version;
        self
    }

    /// A [`Source`] for this object. Without a known `identity`, the object's ETag is asked
    /// for, so that a changed object is never served from the cache.
    pub async fn into_source(mut self, identity: Option<String>) -> Result<Source, FetchError> {
        let identity = match identity {
            Some(identity) => identity,
            None => {
                let head = calls::with_backoff(HEAD_DEADLINE, || async {
                    self.s3
                        .head_object()
                        .bucket(&self.bucket)
                        .key(&self.key)
                        .set_version_id(self.version.clone())
                        .send()
                        .await
                        .map_err(|e| classify(&self.figures, "HeadObject", e))
                })
                .await
                .map_err(|e| self.explain(e))?;
                self.size = head.content_length.and_then(|n| u64::try_from(n).ok());
                format!("{}#{}", self.describe(), head.e_tag.unwrap_or_default())
            }
        };
        Ok(Source::Remote {
            identity,
            fetch: Arc::new(self),
        })
    }

    fn explain(&self, e: CallError) -> FetchError {
        match e.class {
            ErrorClass::Missing => FetchError::Missing {
                what: self.describe(),
                detail: e.message,
            },
            ErrorClass::Denied => FetchError::Denied {
                what: self.describe(),
                detail: e.message,
            },
            _ => FetchError::Call(e),
        }
    }

    /// Downloads the object into `dest`. A body that breaks off is resumed where it stopped
    /// (a ranged `GetObject` of the same ETag), up to [`MAX_BREAKS`] times.
    async fn download(&self, dest: &Path, max_bytes: u64) -> Result<(), FetchError> {
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| write_error(dest, e))?;
        let too_large = |size: u64| FetchError::TooLarge {
            what: self.describe(),
            size,
            limit: max_bytes,
        };
        let mut written = 0u64;
        let mut etag: Option<String> = None;
        let mut breaks = 0;
        loop {
            let range = (written > 0).then(|| format!("bytes={written}-"));
            let object = calls::with_backoff(GET_DEADLINE, || async {
                self.s3
                    .get_object()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .set_version_id(self.version.clone())
                    .set_range(range.clone())
                    .set_if_match(etag.clone())
                    .send()
                    .await
                    .map_err(|e| classify(&self.figures, "GetObject", e))
            })
            .await
            .map_err(|e| self.explain(e))?;
            let left = object.content_length.and_then(|n| u64::try_from(n).ok());
            if let Some(left) = left
                && written + left > max_bytes
            {
                return Err(too_large(written + left));
            }
            if etag.is_none() {
                etag = object.e_tag.clone();
            }
            let mut body = object.body.into_async_read();
            match append(&mut body, &mut file, dest, &mut written, max_bytes).await {
                Ok(()) => break,
                Err(Append::Write(e)) => return Err(e),
                Err(Append::TooLarge) => return Err(too_large(written)),
                Err(Append::Broke(e)) if breaks >= MAX_BREAKS => {
                    return Err(FetchError::BrokeOff(Arc::new(e)));
                }
                Err(Append::Broke(e)) => {
                    breaks += 1;
                    tracing::warn!(
                        object = self.describe(),
                        error = %e,
                        written,
                        "the distribution's download broke off; resuming where it stopped"
                    );
                }
            }
        }
        file.flush().await.map_err(|e| write_error(dest, e))
    }
}

/// Most times a download is resumed after its body broke off.
const MAX_BREAKS: u32 = 5;

/// Why [`append`] stopped.
enum Append {
    /// Reading the body failed: resume.
    Broke(std::io::Error),
    /// Writing the file failed.
    Write(FetchError),
    /// More than the limit arrived.
    TooLarge,
}

/// Copies `body` to the end of `file`, counting in `written`.
async fn append(
    body: &mut (impl tokio::io::AsyncRead + Unpin),
    file: &mut tokio::fs::File,
    dest: &Path,
    written: &mut u64,
    max_bytes: u64,
) -> Result<(), Append> {
    use tokio::io::AsyncReadExt;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = body.read(&mut buffer).await.map_err(Append::Broke)?;
        if n == 0 {
            return Ok(());
        }
        file.write_all(&buffer[..n])
            .await
            .map_err(|e| Append::Write(write_error(dest, e)))?;
        *written += n as u64;
        if *written > max_bytes {
            return Err(Append::TooLarge);
        }
    }
}

fn write_error(path: &Path, e: std::io::Error) -> FetchError {
    FetchError::Write {
        path: path.to_path_buf(),
        source: Arc::new(e),
    }
}

impl Fetch for S3Zip {
    fn describe(&self) -> String {
        match &self.version {
            Some(version) => format!("s3://{}/{} (version {version})", self.bucket, self.key),
            None => format!("s3://{}/{}", self.bucket, self.key),
        }
    }

    fn size(&self) -> Option<u64> {
        self.size
    }

    fn fetch<'a>(&'a self, dest: &'a Path, max_bytes: u64) -> FetchFuture<'a> {
        Box::pin(self.download(dest, max_bytes))
    }
}

/// Why a file could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum PutFileError {
    /// The file cannot be read.
    #[error("cannot read {path}: {detail}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// S3 refused or failed.
    #[error(transparent)]
    Call(#[from] CallError),
}

/// Puts the file at `path` as `s3://bucket/key`.
pub async fn put_file(
    figures: &Figures,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    path: &str,
) -> Result<(), PutFileError> {
    let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
        .await
        .map_err(|e| PutFileError::Read {
            path: path.to_string(),
            detail: e.to_string(),
        })?;
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body)
        .send()
        .await
        .map_err(|e| classify(figures, "PutObject", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn copied(
        body: &[u8],
        already: u64,
        max_bytes: u64,
    ) -> (Result<(), Append>, u64, Vec<u8>) {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("zip");
        let mut file = tokio::fs::File::create(&dest).await.unwrap();
        let mut written = already;
        let mut reader = body;
        let result = append(&mut reader, &mut file, &dest, &mut written, max_bytes).await;
        file.flush().await.unwrap();
        (result, written, std::fs::read(&dest).unwrap())
    }

    #[tokio::test]
    async fn a_body_is_copied_and_counted_on_top_of_what_was_written() {
        let (result, written, bytes) = copied(b"abcdef", 10, 16).await;
        assert!(result.is_ok());
        assert_eq!((written, bytes.as_slice()), (16, b"abcdef".as_slice()));
        let (result, written, _) = copied(b"", 3, 3).await;
        assert!(result.is_ok());
        assert_eq!(written, 3);
    }

    #[tokio::test]
    async fn a_body_past_the_limit_stops_as_too_large() {
        // Exactly the limit is fine; one byte more is not.
        let (result, written, _) = copied(b"abcdef", 10, 15).await;
        assert!(matches!(result, Err(Append::TooLarge)));
        assert_eq!(written, 16);
    }

    #[tokio::test]
    async fn a_body_that_breaks_off_says_so() {
        struct Broken;
        impl tokio::io::AsyncRead for Broken {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                _: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()))
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("zip");
        let mut file = tokio::fs::File::create(&dest).await.unwrap();
        let mut written = 0;
        let result = append(&mut Broken, &mut file, &dest, &mut written, 100).await;
        assert!(
            matches!(result, Err(Append::Broke(e)) if e.kind() == std::io::ErrorKind::ConnectionReset)
        );
    }

    #[test]
    fn a_zip_names_its_object_and_version() {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(config);
        let zip = S3Zip::new(s3, "b", "k.zip", Arc::default());
        assert_eq!(zip.describe(), "s3://b/k.zip");
        assert_eq!(zip.size(), None);
        let zip = zip.at_version(Some("v1".into()));
        assert_eq!(zip.describe(), "s3://b/k.zip (version v1)");
        let missing = CallError {
            operation: "GetObject",
            class: ErrorClass::Missing,
            message: "NoSuchKey: gone".into(),
            source: None,
        };
        assert!(matches!(
            zip.explain(missing.clone()),
            FetchError::Missing { .. }
        ));
        let denied = CallError {
            class: ErrorClass::Denied,
            ..missing.clone()
        };
        assert!(matches!(zip.explain(denied), FetchError::Denied { .. }));
        let other = CallError {
            class: ErrorClass::Transient,
            ..missing
        };
        assert!(matches!(zip.explain(other), FetchError::Call(_)));
    }
}
