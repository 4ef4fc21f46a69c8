//! The job queue on SQS, as the worker's [`Queue`]: receive, lease extension and release
//! (`ChangeMessageVisibility`), delete, the visibility timeout, and whether the role may change
//! visibility at all. Deletes and visibility changes go by group commit
//! ([`group_commit`](super::group_commit)): as they come, one batch request at a time, those
//! that wait together (the IAM actions are the same as for the single calls). Each call is one
//! attempt; retries are the worker's. Long polls are cancelled by dropping the future; a
//! message received by a dropped poll reappears after its visibility timeout.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{
    BatchResultErrorEntry, ChangeMessageVisibilityBatchRequestEntry,
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};

use super::error::{classify, classify_entry};
use super::group_commit::GroupCommit;
use super::{AwsTimeouts, RECEIVE_MARGIN};
use crate::metrics::Figures;
use crate::worker::{CallError, ErrorClass, Message, Queue};

/// Longest visibility timeout SQS accepts: 12 hours, in seconds.
const MAX_VISIBILITY_SECS: u64 = 43_200;
/// Visibility timeout assumed when the queue's cannot be read, in seconds.
const DEFAULT_VISIBILITY_SECS: u64 = 30;
const DELETE_BATCH: &str = "DeleteMessageBatch";
const VISIBILITY_BATCH: &str = "ChangeMessageVisibilityBatch";

/// An SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
    timeouts: AwsTimeouts,
    /// Receipt handles to delete.
    deletes: Arc<GroupCommit<String>>,
    /// Receipt handles and their new visibility timeout, in seconds.
    visibility: Arc<GroupCommit<(String, i32)>>,
    /// Where failed calls are counted.
    figures: Arc<Figures>,
}

impl SqsQueue {
    /// The queue at `url`, reached with `sqs` whose timeouts are `timeouts`; failed calls
    /// counted in `figures`.
    pub fn new(
        sqs: aws_sdk_sqs::Client,
        url: String,
        timeouts: AwsTimeouts,
        figures: Arc<Figures>,
    ) -> Self {
        SqsQueue {
            sqs,
            url,
            timeouts,
            figures,
            deletes: Arc::new(GroupCommit::new(
                DELETE_BATCH,
                crate::aws::group_commit::DELETES_IN_FLIGHT,
            )),
            visibility: Arc::new(GroupCommit::new(
                VISIBILITY_BATCH,
                crate::aws::group_commit::IN_FLIGHT,
            )),
        }
    }

    /// The timeouts of a long poll of `wait`: the wait plus a margin per attempt.
    fn receive_timeouts(&self, wait: Duration) -> AwsTimeouts {
        let attempt = self.timeouts.attempt.max(wait + RECEIVE_MARGIN);
        AwsTimeouts {
            attempt,
            operation: self.timeouts.operation.max(attempt * 2),
            ..self.timeouts
        }
    }

    /// `ChangeMessageVisibility` of one message to 0 (the single call: its error is the whole
    /// answer).
    async fn release_single(&self, receipt: &str) -> Result<(), CallError> {
        self.sqs
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&self.figures, "ChangeMessageVisibility", e))
    }

    /// One `DeleteMessageBatch` request; a result per receipt, in order.
    async fn delete_batch(&self, receipts: Vec<String>) -> Vec<Result<(), CallError>> {
        let entries = receipts.iter().enumerate().map(|(i, r)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(r)
                .build()
        });
        let sent = match entries.collect::<Result<Vec<_>, _>>() {
            Err(e) => Err(unbuildable(DELETE_BATCH, e)),
            Ok(entries) => self
                .sqs
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify(&self.figures, DELETE_BATCH, e))
                .map(|out| out.failed),
        };
        per_entry(&self.figures, DELETE_BATCH, receipts.len(), sent)
    }

    /// One `ChangeMessageVisibilityBatch` request; a result per entry, in order.
    async fn visibility_batch(&self, changes: Vec<(String, i32)>) -> Vec<Result<(), CallError>> {
        let entries = changes.iter().enumerate().map(|(i, (r, secs))| {
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(r)
                .visibility_timeout(*secs)
                .build()
        });
        let sent = match entries.collect::<Result<Vec<_>, _>>() {
            Err(e) => Err(unbuildable(VISIBILITY_BATCH, e)),
            Ok(entries) => self
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify(&self.figures, VISIBILITY_BATCH, e))
                .map(|out| out.failed),
        };
        per_entry(&self.figures, VISIBILITY_BATCH, changes.len(), sent)
    }

    /// The queue's visibility timeout (30 s if it cannot be read).
    async fn visibility_timeout(&self) -> Duration {
        let read = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await;
        let seconds = read.ok().and_then(|out| {
            out.attributes?
                .get(&QueueAttributeName::VisibilityTimeout)?
                .parse::<u64>()
                .ok()
        });
        Duration::from_secs(seconds.unwrap_or(DEFAULT_VISIBILITY_SECS).max(1))
    }
}

impl Queue for SqsQueue {
    fn name(&self) -> &str {
        &self.url
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, CallError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .customize()
            .config_override(
                aws_sdk_sqs::Config::builder().timeout_config(self.receive_timeouts(wait).config()),
            )
            .send()
            .await
            .map_err(|e| classify(&self.figures, "ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let sent = sent_at(&m);
                Some(Message {
                    id: m.message_id.unwrap_or_default(),
                    body: m.body.unwrap_or_default(),
                    receipt: m.receipt_handle?,
                    received: tokio::time::Instant::now(),
                    sent,
                })
            })
            .collect())
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> Result<(), CallError> {
        let secs = visibility.as_secs().min(MAX_VISIBILITY_SECS) as i32;
        self.visibility
            .submit((receipt.to_string(), secs), |batch| {
                self.visibility_batch(batch)
            })
            .await
    }

    async fn release(&self, receipt: &str) -> Result<(), CallError> {
        self.extend(receipt, Duration::ZERO).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), CallError> {
        self.deletes
            .submit(receipt.to_string(), |batch| self.delete_batch(batch))
            .await
    }

    /// Asks `ChangeMessageVisibility` with a receipt handle that cannot exist, so that only
    /// "access denied" says no; then reads the visibility timeout.
    async fn lease(&self) -> Option<Duration> {
        let probe = self.release_single("attini-runner-permission-probe").await;
        if matches!(probe, Err(e) if e.class == ErrorClass::Denied) {
            return None;
        }
        Some(self.visibility_timeout().await)
    }
}

/// A batch entry the SDK would not build (an id or receipt handle missing, which the code
/// above always sets): every entry of the batch fails with it rather than being skipped.
fn unbuildable(operation: &'static str, e: aws_sdk_sqs::error::BuildError) -> CallError {
    CallError {
        operation,
        class: ErrorClass::Permanent,
        message: format!("could not build the request: {e}"),
        source: None,
    }
}

/// The result of each of `count` entries (ids `0..count`) of a batch request: the request's
/// error for all when it failed, else the entry's own failure if it is listed.
fn per_entry(
    figures: &Figures,
    operation: &'static str,
    count: usize,
    sent: Result<Vec<BatchResultErrorEntry>, CallError>,
) -> Vec<Result<(), CallError>> {
    match sent {
        Err(e) => vec![Err(e); count],
        Ok(failed) => (0..count)
            .map(|i| {
                let id = i.to_string();
                match failed.iter().find(|f| f.id == id) {
                    None => Ok(()),
                    Some(f) => Err(classify_entry(
                        figures,
                        operation,
                        &f.code,
                        f.message.as_deref().unwrap_or_default(),
                    )),
                }
            })
            .collect(),
    }
}

/// When the message was sent (its `SentTimestamp`, milliseconds since the epoch).
fn sent_at(message: &aws_sdk_sqs::types::Message) -> Option<std::time::SystemTime> {
    let millis: u64 = message
        .attributes
        .as_ref()?
        .get(&MessageSystemAttributeName::SentTimestamp)?
        .parse()
        .ok()?;
    std::time::SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(id: &str, code: &str) -> BatchResultErrorEntry {
        BatchResultErrorEntry::builder()
            .id(id)
            .code(code)
            .message("why")
            .sender_fault(true)
            .build()
            .unwrap()
    }

    #[test]
    fn each_entry_gets_its_own_failure_or_success() {
        let failed = vec![
            failure("2", "ReceiptHandleIsInvalid"),
            failure("0", "ThrottlingException"),
        ];
        let results = per_entry(&Figures::default(), DELETE_BATCH, 3, Ok(failed));
        let classes: Vec<_> = results
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.class))
            .collect();
        assert_eq!(
            classes,
            [
                Some(ErrorClass::Transient),
                None,
                Some(ErrorClass::Permanent)
            ]
        );
        let e = results[2].as_ref().unwrap_err();
        assert_eq!(e.message, "ReceiptHandleIsInvalid: why");
        assert_eq!(e.operation, DELETE_BATCH);
    }

    #[test]
    fn a_failed_request_fails_every_entry_with_its_error() {
        let error = CallError {
            operation: DELETE_BATCH,
            class: ErrorClass::Denied,
            message: "AccessDenied: no".into(),
            source: None,
        };
        let results = per_entry(&Figures::default(), DELETE_BATCH, 2, Err(error.clone()));
        assert_eq!(results, vec![Err(error.clone()), Err(error)]);
    }
}
