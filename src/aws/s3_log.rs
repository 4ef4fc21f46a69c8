//! A job's log object in S3 (CONTRACT.md 5.6.6): stored whole while it is small, then
//! appended to by a multipart upload whose first part is the object itself, copied inside S3
//! (`UploadPartCopy`), and whose second part is the new lines, so the runner sends only what
//! is new and keeps no copy of what is stored. Readers see the old object until the upload
//! completes, then the new one. Cancellation: dropping an append leaves an unfinished upload,
//! which the bucket's lifecycle rule for incomplete uploads removes; a failed append is
//! aborted.

use std::sync::Arc;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use super::error::classify;
use crate::calls::CallError;
use crate::metrics::Figures;
use crate::worker::joblog::{LogStore, PutFuture};

/// The content type of the object: one JSON document per line.
const CONTENT_TYPE: &str = "application/x-ndjson";

/// A job's log object.
#[derive(Debug, Clone)]
pub struct S3Log {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    figures: Arc<Figures>,
}

impl S3Log {
    /// The log object `bucket`/`key`; failed calls counted in `figures`.
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str, key: &str, figures: Arc<Figures>) -> Self {
        S3Log {
            s3,
            bucket: bucket.to_string(),
            key: key.to_string(),
            figures,
        }
    }

    fn failed<E>(&self, operation: &'static str) -> impl FnOnce(SdkError<E>) -> CallError + '_
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        move |e| classify(&self.figures, operation, e)
    }

    /// One multipart upload: the object as it is, then `more`.
    async fn append_parts(&self, upload_id: &str, more: Bytes) -> Result<(), CallError> {
        let source = format!(
            "{}/{}",
            self.bucket,
            percent_encoding::utf8_percent_encode(&self.key, KEY)
        );
        let copied = self
            .s3
            .upload_part_copy()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .part_number(1)
            .copy_source(source)
            .send()
            .await
            .map_err(self.failed("UploadPartCopy"))?;
        let added = self
            .s3
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .part_number(2)
            .body(more.into())
            .send()
            .await
            .map_err(self.failed("UploadPart"))?;
        let part = |number: i32, etag: Option<String>| {
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(etag)
                .build()
        };
        let parts = CompletedMultipartUpload::builder()
            .parts(part(1, copied.copy_part_result.and_then(|r| r.e_tag)))
            .parts(part(2, added.e_tag))
            .build();
        self.s3
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .multipart_upload(parts)
            .send()
            .await
            .map_err(self.failed("CompleteMultipartUpload"))?;
        Ok(())
    }
}

/// What a key keeps unescaped in `x-amz-copy-source`: letters, digits, `-._~` and `/`.
const KEY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

impl LogStore for S3Log {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    fn put(&self, body: Bytes) -> PutFuture<'_> {
        Box::pin(async move {
            self.s3
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(CONTENT_TYPE)
                .body(body.into())
                .send()
                .await
                .map(|_| ())
                .map_err(self.failed("PutObject"))
        })
    }

    fn append(&self, more: Bytes) -> PutFuture<'_> {
        Box::pin(async move {
            let upload = self
                .s3
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(CONTENT_TYPE)
                .send()
                .await
                .map_err(self.failed("CreateMultipartUpload"))?;
            let upload_id = upload.upload_id.unwrap_or_default();
            let appended = self.append_parts(&upload_id, more).await;
            if appended.is_err() {
                let _ = self
                    .s3
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
            }
            appended
        })
    }
}
