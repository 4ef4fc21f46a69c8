//! A receive in flight, run as a task of its own so that a stop never drops it.
//!
//! A long poll cannot be called off: SQS keeps it open to its end (up to 20 s) even when the
//! runner has closed the connection, and hands it any message sent meanwhile. Such a message
//! would stay invisible for the queue's visibility timeout, and on a FIFO queue hold back
//! its group. So the poll runs in a tracked task: when the loop stops listening (a shutdown,
//! a stop asked by a job's policy), whatever the poll still brings is given back to the queue
//! at once, and the runner waits for that before it exits ([`Poll::run`](super::poll::Poll)).
//!
//! Cancellation: dropping an [`InFlight`] is the stop itself; its result then goes back to
//! the queue, taken either by the task (the loop was gone when the poll ended) or by `Drop`
//! (the loop was dropped with the result waiting).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use super::shared::Parts;
use super::{CallError, JobRunner, Message, Queue, TaskTokens};

type Received = Result<Vec<Message>, CallError>;

/// Why a message comes back to the queue unstarted after a stop.
const WHY: &str = "the runner stopped during the long poll that received it";

/// One receive in flight; see the module documentation.
pub struct InFlight<Q: Queue, T: TaskTokens, R: JobRunner> {
    result: Option<oneshot::Receiver<Received>>,
    parts: Arc<Parts<Q, T, R>>,
    polls: TaskTracker,
}

impl<Q: Queue, T: TaskTokens, R: JobRunner> InFlight<Q, T, R> {
    /// Starts receiving up to `max` messages, waiting up to `wait`, on `polls`.
    pub fn start(
        parts: &Arc<Parts<Q, T, R>>,
        polls: &TaskTracker,
        max: usize,
        wait: Duration,
    ) -> Self {
        let (sender, result) = oneshot::channel();
        let task_parts = parts.clone();
        polls.spawn(async move {
            let received = task_parts.queue.receive(max, wait).await;
            if let Err(Ok(messages)) = sender.send(received) {
                give_back_all(&task_parts, &messages).await;
            }
        });
        InFlight {
            result: Some(result),
            parts: parts.clone(),
            polls: polls.clone(),
        }
    }

    /// What the poll received (an empty batch if its task ended without an answer).
    pub async fn received(&mut self) -> Received {
        let Some(result) = self.result.as_mut() else {
            return Ok(Vec::new());
        };
        let received = result.await.unwrap_or_else(|_| Ok(Vec::new()));
        self.result = None;
        received
    }
}

impl<Q: Queue, T: TaskTokens, R: JobRunner> Drop for InFlight<Q, T, R> {
    fn drop(&mut self) {
        // The loop was dropped with the poll's result waiting: it goes back, on the tracker
        // the runner waits for before it exits.
        if let Some(mut result) = self.result.take()
            && let Ok(Ok(messages)) = result.try_recv()
            && !messages.is_empty()
        {
            let parts = self.parts.clone();
            self.polls
                .spawn(async move { give_back_all(&parts, &messages).await });
        }
    }
}

async fn give_back_all<Q: Queue, T: TaskTokens, R: JobRunner>(
    parts: &Parts<Q, T, R>,
    messages: &[Message],
) {
    for message in messages {
        parts.give_back(message, WHY).await;
    }
}
