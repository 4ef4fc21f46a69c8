//! Which version of an S3 object was current at a given time (`attini-runner replay`: the
//! distribution a job ran). A versioned bucket answers with the version id; an unversioned
//! one with "the object now, unchanged since" or "changed since". Dropping a call cancels it.

use super::error::classify;
use crate::calls::{CallError, ErrorClass};
use crate::metrics::Figures;

/// The object as it was at the time asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionAt {
    /// This version (a versioned bucket).
    Version(String),
    /// The current object, unchanged since then (a bucket without versions).
    Current,
    /// The object was replaced after then, at `modified_ms`, and the bucket keeps no
    /// versions: the files the job ran are gone.
    ChangedSince {
        /// When the current object was written, in milliseconds since the epoch.
        modified_ms: i64,
    },
    /// There was no object then (or there is none now in a bucket without versions).
    Missing,
}

/// The version of `s3://bucket/key` current at `at_ms` (milliseconds since the epoch):
/// `ListObjectVersions`, else (no permission for it) `HeadObject`.
///
/// # Errors
/// The failed call.
pub async fn version_at(
    s3: &aws_sdk_s3::Client,
    figures: &Figures,
    bucket: &str,
    key: &str,
    at_ms: i64,
) -> Result<VersionAt, CallError> {
    match newest_before(s3, figures, bucket, key, at_ms).await {
        Ok(found) => Ok(found),
        Err(e) if e.class == ErrorClass::Denied => current(s3, figures, bucket, key, at_ms).await,
        Err(e) => Err(e),
    }
}

async fn newest_before(
    s3: &aws_sdk_s3::Client,
    figures: &Figures,
    bucket: &str,
    key: &str,
    at_ms: i64,
) -> Result<VersionAt, CallError> {
    // (when, version id, a delete marker) of every version of the key.
    let mut versions: Vec<(i64, Option<String>, bool)> = Vec::new();
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(key)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|e| classify(figures, "ListObjectVersions", e))?;
        for v in page.versions.unwrap_or_default() {
            if v.key.as_deref() == Some(key) {
                let when = v.last_modified.and_then(|t| t.to_millis().ok());
                versions.push((when.unwrap_or_default(), v.version_id, false));
            }
        }
        for m in page.delete_markers.unwrap_or_default() {
            if m.key.as_deref() == Some(key) {
                let when = m.last_modified.and_then(|t| t.to_millis().ok());
                versions.push((when.unwrap_or_default(), m.version_id, true));
            }
        }
        if page.is_truncated != Some(true) {
            break;
        }
        key_marker = page.next_key_marker;
        version_marker = page.next_version_id_marker;
    }
    Ok(pick(versions, at_ms))
}

/// The version of `versions` (when, id, delete marker) current at `at_ms`.
pub fn pick(mut versions: Vec<(i64, Option<String>, bool)>, at_ms: i64) -> VersionAt {
    versions.sort_by_key(|v| v.0);
    let versioned = versions
        .iter()
        .any(|(_, id, _)| id.as_deref().is_some_and(|id| id != "null"));
    if !versioned {
        return match versions.iter().rev().find(|v| !v.2) {
            None => VersionAt::Missing,
            Some((when, _, _)) if *when > at_ms => VersionAt::ChangedSince { modified_ms: *when },
            Some(_) => VersionAt::Current,
        };
    }
    match versions.iter().rev().find(|v| v.0 <= at_ms) {
        Some((_, Some(id), false)) => VersionAt::Version(id.clone()),
        _ => VersionAt::Missing,
    }
}

/// Without `ListObjectVersions`: the current object, if it is older than `at_ms`.
async fn current(
    s3: &aws_sdk_s3::Client,
    figures: &Figures,
    bucket: &str,
    key: &str,
    at_ms: i64,
) -> Result<VersionAt, CallError> {
    let head = s3.head_object().bucket(bucket).key(key).send().await;
    match head.map_err(|e| classify(figures, "HeadObject", e)) {
        Ok(head) => {
            let when = head.last_modified.and_then(|t| t.to_millis().ok());
            Ok(pick(vec![(when.unwrap_or_default(), None, false)], at_ms))
        }
        Err(e) if e.class == ErrorClass::Missing => Ok(VersionAt::Missing),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(when: i64, id: &str) -> (i64, Option<String>, bool) {
        (when, Some(id.into()), false)
    }

    #[test]
    fn a_versioned_bucket_gives_the_version_current_then() {
        let versions = vec![v(30, "c"), v(10, "a"), v(20, "b")];
        assert_eq!(pick(versions.clone(), 25), VersionAt::Version("b".into()));
        assert_eq!(pick(versions.clone(), 20), VersionAt::Version("b".into()));
        assert_eq!(pick(versions.clone(), 99), VersionAt::Version("c".into()));
        assert_eq!(pick(versions, 5), VersionAt::Missing);
        let deleted = vec![v(10, "a"), (20, Some("d".into()), true)];
        assert_eq!(pick(deleted, 25), VersionAt::Missing);
    }

    #[test]
    fn a_bucket_without_versions_tells_unchanged_from_replaced() {
        assert_eq!(pick(vec![v(10, "null")], 20), VersionAt::Current);
        assert_eq!(pick(vec![v(20, "null")], 20), VersionAt::Current);
        assert_eq!(
            pick(vec![(30, None, false)], 20),
            VersionAt::ChangedSince { modified_ms: 30 }
        );
        assert_eq!(pick(Vec::new(), 20), VersionAt::Missing);
    }
}
