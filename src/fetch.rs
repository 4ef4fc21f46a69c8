//! Distribution zips from S3: the identity used as the cache key, and the download that runs
//! only on a cache miss. Cancellation: dropping a download leaves a partial file, which the
//! distribution cache removes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::distribution::{Fetch, FetchFuture, Source};
use crate::retry::{self, AwsError, Class};

/// A zip object in S3.
#[derive(Debug, Clone)]
pub struct S3Zip {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
}

impl S3Zip {
    /// The object `bucket`/`key`.
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str, key: &str) -> Self {
        S3Zip {
            s3,
            bucket: bucket.to_string(),
            key: key.to_string(),
        }
    }

    /// A [`Source`] for this object. Without a known `identity`, the object's ETag is asked
    /// for, so that a changed object is never served from the cache.
    pub async fn into_source(self, identity: Option<String>) -> Result<Source, String> {
        let identity = match identity {
            Some(identity) => identity,
            None => {
                let head = retry::with_backoff(Duration::from_secs(60), || async {
                    self.s3
                        .head_object()
                        .bucket(&self.bucket)
                        .key(&self.key)
                        .send()
                        .await
                        .map_err(|e| retry::classify("HeadObject", &e))
                })
                .await
                .map_err(|e| self.explain(&e))?;
                format!("{}#{}", self.describe(), head.e_tag.unwrap_or_default())
            }
        };
        Ok(Source::Remote {
            identity,
            fetch: Arc::new(self),
        })
    }

    fn explain(&self, e: &AwsError) -> String {
        match e.class {
            Class::Missing => format!(
                "{} does not exist ({}); check the distribution's bucket and key",
                self.describe(),
                e.message
            ),
            Class::Denied => format!(
                "access to {} is denied ({}); the runner's role needs s3:GetObject on it",
                self.describe(),
                e.message
            ),
            _ => e.to_string(),
        }
    }

    async fn download(&self, dest: &Path, max_bytes: u64) -> Result<(), String> {
        let object = retry::with_backoff(Duration::from_secs(120), || async {
            self.s3
                .get_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .send()
                .await
                .map_err(|e| retry::classify("GetObject", &e))
        })
        .await
        .map_err(|e| self.explain(&e))?;
        let too_large = |size: u64| {
            format!(
                "{} is {size} bytes or more, larger than a distribution may be ({max_bytes} bytes with \
                 ATTINI_DISTRIBUTION_MAX_BYTES); raise the limit if it is really that large",
                self.describe()
            )
        };
        if let Some(size) = object.content_length.and_then(|n| u64::try_from(n).ok())
            && size > max_bytes
        {
            return Err(too_large(size));
        }
        let mut body = tokio::io::AsyncReadExt::take(object.body.into_async_read(), max_bytes + 1);
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        let copied = tokio::io::copy(&mut body, &mut file)
            .await
            .map_err(|e| format!("the download broke off: {e}"))?;
        if copied > max_bytes {
            return Err(too_large(copied));
        }
        file.flush().await.map_err(|e| e.to_string())
    }
}

impl Fetch for S3Zip {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    fn fetch<'a>(&'a self, dest: &'a Path, max_bytes: u64) -> FetchFuture<'a> {
        Box::pin(self.download(dest, max_bytes))
    }
}
