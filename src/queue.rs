//! The job queue (SQS): receive, delete, lease extension and release, the visibility timeout,
//! and whether the role may change visibility at all. Long polls are cancelled by dropping the
//! future; a message received by a dropped poll reappears after its visibility timeout.

use std::time::Duration;

use crate::retry::{self, AwsError, Class};

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// SQS message id, for logs.
    pub id: String,
    /// The body (a job).
    pub body: String,
    /// Receipt handle for delete.
    pub receipt: String,
}

/// An SQS queue.
#[derive(Debug, Clone)]
pub struct Queue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl Queue {
    /// The queue at `url`.
    pub fn new(sqs: aws_sdk_sqs::Client, url: String) -> Self {
        Queue { sqs, url }
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Receives up to `max` (1 to 10) messages, waiting up to `wait` (at most 20 s) for one.
    pub async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, AwsError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .send()
            .await
            .map_err(|e| retry::classify("ReceiveMessage", &e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                Some(Message {
                    id: m.message_id.unwrap_or_default(),
                    body: m.body.unwrap_or_default(),
                    receipt: m.receipt_handle?,
                })
            })
            .collect())
    }

    /// Deletes a message, retrying transient errors for up to a minute.
    pub async fn delete(&self, message: &Message) -> Result<(), AwsError> {
        retry::with_backoff(Duration::from_secs(60), || async {
            self.sqs
                .delete_message()
                .queue_url(&self.url)
                .receipt_handle(&message.receipt)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| retry::classify("DeleteMessage", &e))
        })
        .await
    }

    /// Sets the message's visibility timeout to `visibility` from now (extends its lease, or
    /// with zero gives it back to the queue at once).
    pub async fn set_visibility(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), AwsError> {
        self.sqs
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(visibility.as_secs().min(43_200) as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| retry::classify("ChangeMessageVisibility", &e))
    }

    /// The queue's visibility timeout (30 s if it cannot be read).
    pub async fn visibility_timeout(&self) -> Duration {
        let read = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
            .send()
            .await;
        let seconds = read.ok().and_then(|out| {
            out.attributes?
                .get(&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)?
                .parse::<u64>()
                .ok()
        });
        Duration::from_secs(seconds.unwrap_or(30).max(1))
    }

    /// Whether the role may call `ChangeMessageVisibility`: asked with a receipt handle that
    /// cannot exist, so only "access denied" says no.
    pub async fn may_change_visibility(&self) -> bool {
        let probe = self
            .set_visibility("attini-runner-permission-probe", Duration::ZERO)
            .await;
        !matches!(probe, Err(e) if e.class == Class::Denied)
    }
}
