//! The job queue on SQS, as the worker's [`Queue`]: receive, lease extension and release
//! (`ChangeMessageVisibility`), delete, the visibility timeout, and whether the role may change
//! visibility at all. Each call is one request; retries are the worker's. Long polls are
//! cancelled by dropping the future; a message received by a dropped poll reappears after its
//! visibility timeout.

use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

use super::error::classify;
use super::{AwsTimeouts, RECEIVE_MARGIN};
use crate::worker::{CallError, ErrorClass, Message, Queue};

/// Longest visibility timeout SQS accepts: 12 hours, in seconds.
const MAX_VISIBILITY_SECS: u64 = 43_200;
/// Visibility timeout assumed when the queue's cannot be read, in seconds.
const DEFAULT_VISIBILITY_SECS: u64 = 30;

/// An SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
    timeouts: AwsTimeouts,
}

impl SqsQueue {
    /// The queue at `url`, reached with `sqs` whose timeouts are `timeouts`.
    pub fn new(sqs: aws_sdk_sqs::Client, url: String, timeouts: AwsTimeouts) -> Self {
        SqsQueue { sqs, url, timeouts }
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

    async fn set_visibility(&self, receipt: &str, visibility: Duration) -> Result<(), CallError> {
        self.sqs
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(visibility.as_secs().min(MAX_VISIBILITY_SECS) as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("ChangeMessageVisibility", &e))
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
            .map_err(|e| classify("ReceiveMessage", &e))?;
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
        self.set_visibility(receipt, visibility).await
    }

    async fn release(&self, receipt: &str) -> Result<(), CallError> {
        self.set_visibility(receipt, Duration::ZERO).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), CallError> {
        self.sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("DeleteMessage", &e))
    }

    /// Asks `ChangeMessageVisibility` with a receipt handle that cannot exist, so that only
    /// "access denied" says no; then reads the visibility timeout.
    async fn lease(&self) -> Option<Duration> {
        let probe = self
            .set_visibility("attini-runner-permission-probe", Duration::ZERO)
            .await;
        if matches!(probe, Err(e) if e.class == ErrorClass::Denied) {
            return None;
        }
        Some(self.visibility_timeout().await)
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
