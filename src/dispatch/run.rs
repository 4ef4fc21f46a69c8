//! The dispatch loop: take a free slot first, then receive only as many messages as there are
//! free slots (at most 10, long poll up to 20 s); each admitted job runs as a tracked task with
//! its own span ([`jobtask`](crate::jobtask)), holding its slot until it has reported.
//!
//! What to do with each message is the [`Policy`]'s decision (Attini filters, native
//! parsing). A message whose job is already running here (a redelivery) is not started again.
//! The loop never dies of a transient AWS error: it backs off and polls again. It ends when the
//! shutdown token is cancelled, when the policy or a fatal queue error asks for a shutdown, or
//! after `idle_ttl` without jobs (counted from the end of the last job).
//!
//! Then the drain: no more receiving; a message received while stopping goes straight back to
//! the queue; running jobs get `drain_grace` to finish and report; after that their processes
//! are ended and they are reported as `Runner.Interrupted`. Cancellation: trip `shutdown`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::{Admission, Admitted, Exit, Limits, Policy, Stats};
use crate::engine::Engine;
use crate::jobtask::{self, Shared};
use crate::queue::{Message, Queue};
use crate::registry::{Registry, Seen};
use crate::report::Report;
use crate::reporter;
use crate::retry::Class;

/// Longest SQS long poll.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// The dispatch loop's settings and shared parts.
pub struct Dispatcher {
    shared: Arc<Shared>,
    max_jobs: usize,
    idle_ttl: Option<Duration>,
    /// The messages running and finished here.
    registry: Arc<Registry>,
}

impl Dispatcher {
    /// A dispatcher for `queue`. Finds out whether the role may extend message visibility
    /// (lease mode) and says once if it may not.
    pub async fn new(
        engine: Arc<Engine>,
        queue: Queue,
        sfn: aws_sdk_sfn::Client,
        limits: Limits,
        stats: Arc<Stats>,
    ) -> Self {
        let lease = if queue.may_change_visibility().await {
            let visibility = queue.visibility_timeout().await;
            tracing::info!(
                visibility_s = visibility.as_secs(),
                "lease mode: messages stay in flight while their jobs run"
            );
            Some(visibility)
        } else {
            tracing::warn!(
                "the runner's role may not call sqs:ChangeMessageVisibility: messages are deleted before their jobs run, \
                 so a job is lost if this runner dies. Add sqs:ChangeMessageVisibility on the queue to keep them safe."
            );
            None
        };
        let shared = Arc::new(Shared {
            engine,
            queue,
            sfn,
            lease,
            heartbeats: AtomicBool::new(true),
            stats,
            last_end: Mutex::new(Instant::now()),
            drain_grace: limits.drain_grace,
        });
        Dispatcher {
            shared,
            max_jobs: limits.max_jobs,
            idle_ttl: limits.idle_ttl,
            registry: Arc::default(),
        }
    }

    /// Runs the loop until it ends, then drains; see the module documentation.
    pub async fn run<P: Policy>(&self, policy: Arc<P>, shutdown: CancellationToken) -> Exit {
        let shared = &self.shared;
        let stats = &shared.stats;
        let slots = Arc::new(Semaphore::new(self.max_jobs.max(1)));
        let tracker = TaskTracker::new();
        let kill = CancellationToken::new();
        let mut failures = 0u32;
        let exit = loop {
            let idle_left = self.idle_ttl.map(|ttl| {
                let since = shared
                    .last_end
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .elapsed();
                ttl.saturating_sub(since)
            });
            if idle_left == Some(Duration::ZERO) && stats.running.load(Ordering::SeqCst) == 0 {
                break Exit::Idle;
            }
            let first = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break Exit::Requested,
                },
                _ = shutdown.cancelled() => break Exit::Requested,
            };
            let mut permits = vec![first];
            while permits.len() < 10 {
                match slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            // As the Attini Runner: never wait longer than the idle TTL, so that an idle runner
            // notices its TTL soon after its last job ended.
            let wait = match (self.idle_ttl, idle_left) {
                (Some(ttl), Some(left)) if stats.running.load(Ordering::SeqCst) == 0 => {
                    left.min(ttl).min(MAX_WAIT)
                }
                (Some(ttl), _) => ttl.min(MAX_WAIT),
                (None, _) => MAX_WAIT,
            };
            let received = tokio::select! {
                r = shared.queue.receive(permits.len(), wait) => r,
                _ = shutdown.cancelled() => break Exit::Requested,
            };
            let messages = match received {
                Ok(messages) => {
                    failures = 0;
                    messages
                }
                Err(e) if matches!(e.class, Class::Missing | Class::Denied) => {
                    break Exit::Stopped(format!(
                        "the queue {} cannot be used: {e}",
                        shared.queue.url()
                    ));
                }
                Err(e) => {
                    failures = (failures + 1).min(8);
                    let delay = Duration::from_millis(250 << failures).min(Duration::from_secs(30));
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "receiving from the queue failed; retrying");
                    tokio::select! { _ = sleep(delay) => {}, _ = shutdown.cancelled() => break Exit::Requested }
                    continue;
                }
            };
            let mut stop = None;
            for message in messages {
                if stop.is_some() || shutdown.is_cancelled() {
                    self.give_back(&message, "the runner is stopping").await;
                    continue;
                }
                if self.is_known(&message).await {
                    continue;
                }
                match policy.admit(&message).await {
                    Admission::Run(admitted) => {
                        let Some(permit) = permits.pop() else {
                            self.give_back(&message, "more messages than free slots")
                                .await;
                            continue;
                        };
                        if shared.lease.is_none()
                            && let Err(e) = shared.queue.delete(&message).await
                        {
                            tracing::error!(message_id = message.id, error = %e, "could not delete the message; not running it now (it will reappear)");
                            continue;
                        }
                        let receipt = self.registry.start(&message.id, &message.receipt);
                        stats.running.fetch_add(1, Ordering::SeqCst);
                        stats
                            .peak
                            .fetch_max(stats.running.load(Ordering::SeqCst), Ordering::SeqCst);
                        let span = job_span(&message, &admitted);
                        let (shared, kill, registry) =
                            (shared.clone(), kill.clone(), self.registry.clone());
                        let id = message.id.clone();
                        tracker.spawn(
                            async move {
                                let answered =
                                    jobtask::run(shared, *admitted, message, receipt, kill).await;
                                registry.finish(&id, answered);
                                drop(permit);
                            }
                            .instrument(span),
                        );
                    }
                    Admission::Leave(reason) => {
                        tracing::info!(
                            message_id = message.id,
                            reason,
                            "message left in the queue"
                        );
                    }
                    Admission::Delete(reason) => {
                        tracing::error!(
                            message_id = message.id,
                            reason,
                            "message deleted without an answer"
                        );
                        let _ = shared.queue.delete(&message).await;
                    }
                    Admission::Fail { token, report } => {
                        self.refuse(&message, &token, &report).await
                    }
                    Admission::FailAndShutdown {
                        token,
                        report,
                        reason,
                    } => {
                        self.refuse(&message, &token, &report).await;
                        stop = Some(reason);
                    }
                    Admission::Shutdown(reason) => stop = Some(reason),
                }
            }
            drop(permits);
            if let Some(reason) = stop {
                break Exit::Stopped(reason);
            }
        };
        self.drain(&tracker, &kill).await;
        exit
    }

    /// Waits for running jobs up to the drain grace, then ends them.
    async fn drain(&self, tracker: &TaskTracker, kill: &CancellationToken) {
        tracker.close();
        if tracker.is_empty() {
            return;
        }
        let grace = self.shared.drain_grace;
        tracing::info!(
            running = self.shared.stats.running.load(Ordering::SeqCst),
            grace_s = grace.as_secs(),
            "draining: waiting for running jobs to finish"
        );
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                running = self.shared.stats.running.load(Ordering::SeqCst),
                "drain grace over: ending the jobs still running; they are reported as Runner.Interrupted"
            );
            kill.cancel();
            tracker.wait().await;
        }
    }

    /// True when the message's job runs here (the lease takes its new receipt handle) or ran
    /// here already (the message is deleted).
    async fn is_known(&self, message: &Message) -> bool {
        match self.registry.seen(&message.id, &message.receipt) {
            Seen::New => false,
            Seen::Running => {
                tracing::warn!(
                    message_id = message.id,
                    "the message was delivered again while its job runs here; not starting it twice"
                );
                true
            }
            Seen::Finished => {
                tracing::warn!(
                    message_id = message.id,
                    "the message of a job that already ran here came back; deleting it instead of running the job again"
                );
                if let Err(e) = self.shared.queue.delete(message).await {
                    tracing::error!(message_id = message.id, error = %e, "could not delete the message");
                }
                true
            }
        }
    }

    /// Puts a message back in the queue at once (lease mode), or leaves it to reappear.
    async fn give_back(&self, message: &Message, why: &str) {
        tracing::info!(
            message_id = message.id,
            why,
            "message given back to the queue"
        );
        if self.shared.lease.is_some()
            && let Err(e) = self
                .shared
                .queue
                .set_visibility(&message.receipt, Duration::ZERO)
                .await
        {
            tracing::warn!(message_id = message.id, error = %e, "could not give the message back; it reappears after its visibility timeout");
        }
    }
}

impl Dispatcher {
    /// Answers a refused job with its failure and deletes its message.
    async fn refuse(&self, message: &Message, token: &str, report: &Report) {
        if let Report::Failure { error, cause } = report {
            tracing::error!(message_id = message.id, error, cause, "job refused");
        }
        reporter::send(&self.shared.sfn, token, report).await;
        if let Err(e) = self.shared.queue.delete(message).await {
            tracing::error!(message_id = message.id, error = %e, "could not delete the refused message");
        }
    }
}

fn job_span(message: &Message, admitted: &Admitted) -> tracing::Span {
    let execution = admitted
        .job
        .attini
        .as_ref()
        .map(|a| a.execution_name().to_string())
        .unwrap_or_default();
    tracing::info_span!("job", message_id = %message.id, step = admitted.job.step_name.as_deref().unwrap_or(""), execution)
}
