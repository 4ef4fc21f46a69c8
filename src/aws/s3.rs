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
        }
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

    async fn download(&self, dest: &Path, max_bytes: u64) -> Result<(), FetchError> {
        let object = calls::with_backoff(GET_DEADLINE, || async {
            self.s3
                .get_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .send()
                .await
                .map_err(|e| classify(&self.figures, "GetObject", e))
        })
        .await
        .map_err(|e| self.explain(e))?;
        let too_large = |size: u64| FetchError::TooLarge {
            what: self.describe(),
            size,
            limit: max_bytes,
        };
        if let Some(size) = object.content_length.and_then(|n| u64::try_from(n).ok())
            && size > max_bytes
        {
            return Err(too_large(size));
        }
        let mut body = tokio::io::AsyncReadExt::take(
            object.body.into_async_read(),
            max_bytes.saturating_add(1),
        );
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| write_error(dest, e))?;
        let copied = tokio::io::copy(&mut body, &mut file)
            .await
            .map_err(|e| FetchError::BrokeOff(Arc::new(e)))?;
        if copied > max_bytes {
            return Err(too_large(copied));
        }
        file.flush().await.map_err(|e| write_error(dest, e))
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
        format!("s3://{}/{}", self.bucket, self.key)
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
