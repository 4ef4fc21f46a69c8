//! Group commit: calls that can go to AWS in one batch request (SQS `DeleteMessageBatch`,
//! `ChangeMessageVisibilityBatch`) are sent as they come, one request at a time; whatever
//! arrives while a request is on its way goes together in the next one, up to [`MAX_BATCH`].
//! A lone call is sent at once, so batching adds no wait; under load, ten jobs finishing
//! together cost one request instead of ten.
//!
//! Cancellation: a caller dropped while waiting leaves its entry to be sent by the next
//! caller (the answer is then discarded); a caller dropped while its request is on the way
//! drops that request's answers, and the other callers of that batch get a transient error,
//! which the worker retries.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::worker::{CallError, ErrorClass};

/// Most entries in one SQS batch request.
pub const MAX_BATCH: usize = 10;

type Answer = oneshot::Sender<Result<(), CallError>>;

/// Entries of type `E` waiting for their batch.
pub struct GroupCommit<E> {
    /// The operation, for errors (e.g. `DeleteMessageBatch`).
    operation: &'static str,
    pending: Mutex<Vec<(E, Answer)>>,
    /// Held by the caller whose request is on its way.
    turn: tokio::sync::Mutex<()>,
}

impl<E> std::fmt::Debug for GroupCommit<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

impl<E: Send> GroupCommit<E> {
    /// A batcher for `operation`.
    pub fn new(operation: &'static str) -> Self {
        GroupCommit {
            operation,
            pending: Mutex::default(),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Sends `entry` in the next batch and returns its result. `send` makes one request of
    /// up to [`MAX_BATCH`] entries and returns one result per entry, in order.
    pub async fn submit<F, Fut>(&self, entry: E, send: F) -> Result<(), CallError>
    where
        F: Fn(Vec<E>) -> Fut,
        Fut: Future<Output = Vec<Result<(), CallError>>>,
    {
        let (answer, mut result) = oneshot::channel();
        self.lock().push((entry, answer));
        let _turn = self.turn.lock().await;
        loop {
            match result.try_recv() {
                Ok(done) => return done,
                Err(oneshot::error::TryRecvError::Closed) => return Err(self.lost()),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            // Ours is still pending: send the oldest entries (ours among them, or in a later
            // round when more than a batch came first).
            let batch: Vec<(E, Answer)> = {
                let mut pending = self.lock();
                let n = pending.len().min(MAX_BATCH);
                pending.drain(..n).collect()
            };
            let (entries, answers): (Vec<E>, Vec<Answer>) = batch.into_iter().unzip();
            let mut results = send(entries).await.into_iter();
            for answer in answers {
                let _ = answer.send(results.next().unwrap_or_else(|| Err(self.lost())));
            }
        }
    }

    fn lost(&self) -> CallError {
        CallError {
            operation: self.operation,
            class: ErrorClass::Transient,
            message: "the batch request carrying this entry was abandoned; try again".into(),
            source: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(E, Answer)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// 25 entries submitted while the first request is held: the first goes alone, the rest
    /// in batches of at most ten; every caller gets its own entry's result.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_that_wait_go_together_and_each_gets_its_own_result() {
        let batcher = Arc::new(GroupCommit::<usize>::new("Test"));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (release, held) = tokio::sync::watch::channel(false);
        let started = Arc::new(AtomicUsize::new(0));
        let send = {
            let sizes = sizes.clone();
            let started = started.clone();
            move |entries: Vec<usize>| {
                let sizes = sizes.clone();
                let mut held = held.clone();
                started.fetch_add(1, Ordering::SeqCst);
                async move {
                    held.wait_for(|go| *go).await.unwrap();
                    sizes.lock().unwrap().push(entries.len());
                    entries
                        .into_iter()
                        .map(|e| {
                            if e % 7 == 3 {
                                Err(CallError {
                                    operation: "Test",
                                    class: ErrorClass::Permanent,
                                    message: format!("entry {e}"),
                                    source: None,
                                })
                            } else {
                                Ok(())
                            }
                        })
                        .collect::<Vec<_>>()
                }
            }
        };
        let first = {
            let (b, s) = (batcher.clone(), send.clone());
            tokio::spawn(async move { b.submit(0, s).await })
        };
        // The first request is on its way (held) before the others come.
        while started.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let mut rest = Vec::new();
        for e in 1..25 {
            let (b, s) = (batcher.clone(), send.clone());
            rest.push(tokio::spawn(async move { b.submit(e, s).await }));
        }
        while batcher.lock().len() < 24 {
            tokio::task::yield_now().await;
        }
        release.send(true).unwrap();
        assert!(first.await.unwrap().is_ok());
        for (i, handle) in rest.into_iter().enumerate() {
            let e = i + 1;
            match handle.await.unwrap() {
                Ok(()) => assert_ne!(e % 7, 3, "entry {e}"),
                Err(err) => assert_eq!(err.message, format!("entry {e}")),
            }
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes, [1, 10, 10, 4], "one alone, then full batches");
    }

    #[tokio::test]
    async fn a_send_that_answers_too_few_entries_fails_the_rest_as_transient() {
        let batcher = GroupCommit::<u8>::new("Test");
        let err = batcher
            .submit(1, |_| async { Vec::new() })
            .await
            .unwrap_err();
        assert_eq!(err.class, ErrorClass::Transient);
        assert_eq!(err.operation, "Test");
    }
}
