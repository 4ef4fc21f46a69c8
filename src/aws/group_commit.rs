//! Group commit: calls that can go to AWS in one batch request (SQS `DeleteMessageBatch`,
//! `ChangeMessageVisibilityBatch`) are sent as they come, up to a few requests at a time (the
//! batcher's `in_flight`); whatever arrives while they are on their way goes together in the
//! next one, up to [`MAX_BATCH`]. A lone call is sent at once, so batching adds no wait; under
//! load, ten jobs finishing together cost one request instead of ten; and with two or more on
//! their way, one request that hangs holds back only its own entries, not every other job's
//! (the visibility batcher's four; deletes go one request at a time, see
//! [`DELETES_IN_FLIGHT`]).
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
/// Most requests of the visibility batcher on their way at once: a job's lease may not wait
/// behind another's hung extension.
pub const IN_FLIGHT: usize = 4;
/// Most delete requests on their way at once. A finished job waits for its delete without a
/// slot (its lease keeps the message hidden meanwhile), so deletes can wait for each other:
/// one at a time, a burst's deletes go about three to a request (0.35 requests a job instead
/// of 0.87 with four at a time, B3; 0.5 with two). A delete that hangs holds back the others
/// until its attempt times out (20 s), never a job.
pub const DELETES_IN_FLIGHT: usize = 1;

type Answer = oneshot::Sender<Result<(), CallError>>;

/// Entries of type `E` waiting for their batch.
pub struct GroupCommit<E> {
    /// The operation, for errors (e.g. `DeleteMessageBatch`).
    operation: &'static str,
    pending: Mutex<Vec<(E, Answer)>>,
    /// A permit is held by each caller whose request is on its way.
    turn: tokio::sync::Semaphore,
}

impl<E> std::fmt::Debug for GroupCommit<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

impl<E: Send> GroupCommit<E> {
    /// A batcher for `operation` with up to `in_flight` requests on their way at once.
    pub fn new(operation: &'static str, in_flight: usize) -> Self {
        GroupCommit {
            operation,
            pending: Mutex::default(),
            turn: tokio::sync::Semaphore::new(in_flight.max(1)),
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
        loop {
            match result.try_recv() {
                Ok(done) => return done,
                Err(oneshot::error::TryRecvError::Closed) => return Err(self.lost()),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            if self.lock().is_empty() {
                // Ours is on its way in another caller's request.
                return (&mut result).await.unwrap_or_else(|_| Err(self.lost()));
            }
            // The semaphore is never closed, so a permit always comes.
            let Ok(_turn) = self.turn.acquire().await else {
                return Err(self.lost());
            };
            // Send the oldest entries (ours among them, or in a later round when more than a
            // batch came first); none left means ours went meanwhile.
            let batch: Vec<(E, Answer)> = {
                let mut pending = self.lock();
                let n = pending.len().min(MAX_BATCH);
                pending.drain(..n).collect()
            };
            if batch.is_empty() {
                continue;
            }
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

    type Sent = std::pin::Pin<Box<dyn Future<Output = Vec<Result<(), CallError>>> + Send>>;

    /// Every request is held until released; `e % 7 == 3` fails. Records batch sizes.
    #[derive(Clone)]
    struct Held {
        sizes: Arc<Mutex<Vec<usize>>>,
        started: Arc<tokio::sync::watch::Sender<usize>>,
        held: tokio::sync::watch::Receiver<bool>,
        /// Entries whose request never answers.
        hang: Option<usize>,
    }

    impl Held {
        fn new(hang: Option<usize>) -> (Self, tokio::sync::watch::Sender<bool>) {
            let (release, held) = tokio::sync::watch::channel(false);
            let held = Held {
                sizes: Arc::default(),
                started: Arc::default(),
                held,
                hang,
            };
            (held, release)
        }

        fn send(&self) -> impl Fn(Vec<usize>) -> Sent + Clone + use<> {
            let this = self.clone();
            move |entries: Vec<usize>| {
                let this = this.clone();
                this.started.send_modify(|n| *n += 1);
                Box::pin(async move {
                    if entries.iter().any(|e| Some(*e) == this.hang) {
                        std::future::pending::<()>().await;
                    }
                    let mut held = this.held.clone();
                    held.wait_for(|go| *go).await.unwrap();
                    this.sizes.lock().unwrap().push(entries.len());
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
                })
            }
        }
    }

    impl Held {
        /// Waits until `n` requests were started.
        async fn started(&self, n: usize) {
            let mut started = self.started.subscribe();
            started.wait_for(|s| *s >= n).await.unwrap();
        }
    }

    /// Polls `condition` (every millisecond, for at most ten seconds).
    async fn until(what: &str, condition: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if condition() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        panic!("gave up waiting until {what}");
    }

    /// Four requests of one entry each are held on their way; 24 entries submitted meanwhile
    /// wait together and go in batches of at most ten; every caller gets its own entry's
    /// result.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_that_wait_go_together_and_each_gets_its_own_result() {
        let batcher = Arc::new(GroupCommit::<usize>::new("Test", IN_FLIGHT));
        let (held, release) = Held::new(None);
        let mut handles = Vec::new();
        for e in 0..IN_FLIGHT {
            let (b, s) = (batcher.clone(), held.send());
            handles.push(tokio::spawn(async move { b.submit(e, s).await }));
            held.started(e + 1).await;
        }
        for e in IN_FLIGHT..IN_FLIGHT + 24 {
            let (b, s) = (batcher.clone(), held.send());
            handles.push(tokio::spawn(async move { b.submit(e, s).await }));
        }
        until("the rest wait", || batcher.lock().len() == 24).await;
        release.send(true).unwrap();
        for (e, handle) in handles.into_iter().enumerate() {
            match handle.await.unwrap() {
                Ok(()) => assert_ne!(e % 7, 3, "entry {e}"),
                Err(err) => assert_eq!(err.message, format!("entry {e}")),
            }
        }
        let mut sizes = held.sizes.lock().unwrap().clone();
        sizes.sort_unstable();
        assert_eq!(
            sizes,
            [1, 1, 1, 1, 4, 10, 10],
            "four alone, then full batches"
        );
    }

    /// A request that never answers holds back only its own entry.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_request_does_not_hold_back_the_next_entries() {
        let batcher = Arc::new(GroupCommit::<usize>::new("Test", IN_FLIGHT));
        let (held, release) = Held::new(Some(0));
        release.send(true).unwrap();
        let hung = {
            let (b, s) = (batcher.clone(), held.send());
            tokio::spawn(async move { b.submit(0, s).await })
        };
        held.started(1).await;
        for e in [1, 2] {
            assert!(batcher.submit(e, held.send()).await.is_ok(), "entry {e}");
        }
        assert!(!hung.is_finished());
        hung.abort();
    }

    #[tokio::test]
    async fn a_send_that_answers_too_few_entries_fails_the_rest_as_transient() {
        let batcher = GroupCommit::<u8>::new("Test", IN_FLIGHT);
        let err = batcher
            .submit(1, |_| async { Vec::new() })
            .await
            .unwrap_err();
        assert_eq!(err.class, ErrorClass::Transient);
        assert_eq!(err.operation, "Test");
    }
}
