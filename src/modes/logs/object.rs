//! One Attini job's lines from its S3 log object (CONTRACT.md 5.6.6): JSON lines
//! `{"timestamp": <epoch ms>, "data": "<line>"}`, which the runner stores whole while small and
//! appends to later, so what was read once stays a prefix. Each poll reads only the bytes past
//! those already printed (a ranged `GetObject`); a missing object is "no lines yet". Dropping a
//! poll cancels it.

use serde_json::Value;

use crate::aws::error::classify;
use crate::calls::{CallError, ErrorClass};
use crate::metrics::Figures;

/// Reads a log object as it grows.
pub struct ObjectReader {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    step: String,
    /// Bytes of whole lines printed so far.
    offset: u64,
    /// Whether the object was there at the last poll.
    pub exists: bool,
}

impl ObjectReader {
    /// Reads `s3://bucket/key`, the log of step `step`.
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str, key: &str, step: &str) -> Self {
        ObjectReader {
            s3,
            bucket: bucket.to_string(),
            key: key.to_string(),
            step: step.to_string(),
            offset: 0,
            exists: false,
        }
    }

    /// `s3://bucket/key`.
    pub fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// The lines stored since the last poll, as `[step] line`.
    ///
    /// # Errors
    /// The failed `GetObject` call (a missing object is not one).
    pub async fn poll(&mut self, figures: &Figures) -> Result<Vec<String>, CallError> {
        let range = (self.offset > 0).then(|| format!("bytes={}-", self.offset));
        let object = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .set_range(range)
            .send()
            .await
            .map_err(|e| classify(figures, "GetObject", e));
        let object = match object {
            Ok(object) => object,
            Err(e) if e.class == ErrorClass::Missing => return Ok(Vec::new()),
            // Nothing new past the end.
            Err(e) if e.message.starts_with("InvalidRange") => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        self.exists = true;
        let body = object.body.collect().await.map_err(|e| CallError {
            operation: "GetObject",
            class: ErrorClass::Transient,
            message: e.to_string(),
            source: None,
        })?;
        let bytes = body.into_bytes();
        // Only whole lines; a line cut by an upload in progress comes whole next time.
        let whole = bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        self.offset += whole as u64;
        Ok(String::from_utf8_lossy(&bytes[..whole])
            .lines()
            .map(|line| format!("[{}] {}", self.step, data(line)))
            .collect())
    }
}

/// The `data` of one stored line (the line itself when it is not the stored shape).
fn data(line: &str) -> String {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v.get("data").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| line.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_stored_line_gives_its_data_and_anything_else_itself() {
        assert_eq!(super::data(r#"{"timestamp": 1, "data": "hello"}"#), "hello");
        assert_eq!(super::data("plain text"), "plain text");
        assert_eq!(super::data(r#"{"timestamp": 1}"#), r#"{"timestamp": 1}"#);
    }
}
