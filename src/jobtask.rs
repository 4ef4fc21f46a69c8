//! One admitted job from start to acknowledgement: its log, its lease and heartbeat, the
//! engine run, the report, and what happens to its message.
//!
//! Lease mode (the role may change message visibility): the message stays in flight while
//! the job runs, a beat every third of the visibility timeout extends it, and it is deleted
//! only after Step Functions accepted the report (or the task was already closed). Without
//! that permission the message was deleted before the job started (the Attini Runner's order).
//! On the same beat `SendTaskHeartbeat` is sent: when Step Functions answers that the task is
//! gone (execution stopped or timed out) the job's processes are ended, nothing is reported
//! and the message is deleted. Cancellation: the `kill` token (drain deadline) ends the job's
//! processes and it is reported as `Runner.Interrupted`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

use crate::dispatch::{Admitted, Stats};
use crate::engine::{Engine, RunOptions};
use crate::executor::Termination;
use crate::joblog::JobLog;
use crate::queue::{Message, Queue};
use crate::registry::Receipt;
use crate::report::{INTERRUPTED_ERROR, Report};
use crate::reporter::{self, Delivery};
use crate::retry::Class;

/// Beat interval when neither a lease nor the job asks for a shorter one.
const DEFAULT_BEAT: Duration = Duration::from_secs(30);

/// What every job task shares with the dispatch loop.
pub struct Shared {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The queue.
    pub queue: Queue,
    /// Step Functions.
    pub sfn: aws_sdk_sfn::Client,
    /// The visibility timeout in lease mode; `None`: messages are deleted before jobs run.
    pub lease: Option<Duration>,
    /// Cleared when the role turns out to lack `states:SendTaskHeartbeat`.
    pub heartbeats: AtomicBool,
    /// Counters.
    pub stats: Arc<Stats>,
    /// When the last job ended (for the idle TTL).
    pub last_end: Mutex<Instant>,
    /// Drain grace, quoted in the cause of an interrupted job.
    pub drain_grace: Duration,
}

/// Runs one admitted job; see the module documentation. Returns true when Step Functions got
/// the job's answer (or the task was already gone).
pub async fn run(
    shared: Arc<Shared>,
    admitted: Admitted,
    message: Message,
    receipt: Receipt,
    kill: CancellationToken,
) -> bool {
    let tag = admitted
        .job
        .step_name
        .clone()
        .unwrap_or_else(|| "job".to_string());
    let log = JobLog::start(tag, admitted.log_object.clone());
    let options = RunOptions {
        source: admitted.source.clone(),
        logs_at: admitted.logs_at.clone(),
        cwd: None,
    };
    let job_cancel = kill.child_token();
    let stop_beats = CancellationToken::new();
    let beats = tokio::spawn(heartbeat(
        shared.clone(),
        receipt.clone(),
        admitted.token.clone(),
        beat_interval(shared.lease, admitted.job.heartbeat),
        stop_beats.clone(),
        job_cancel.clone(),
    ));
    tracing::info!(lease = shared.lease.is_some(), "job started");
    let result = shared
        .engine
        .run(&admitted.job, &options, log.sink(), &job_cancel)
        .await;
    stop_beats.cancel();
    let task_gone = beats.await.unwrap_or(false);
    log.finish().await;

    let interrupted = matches!(
        result.execution.as_ref().map(|e| &e.termination),
        Some(Termination::Cancelled)
    );
    let acknowledge = if task_gone {
        tracing::warn!(
            "Step Functions cancelled the job (execution stopped or timed out); its processes were ended and nothing is reported"
        );
        shared.stats.cancelled.fetch_add(1, Ordering::SeqCst);
        true
    } else {
        let report = if interrupted {
            interrupted_report(shared.drain_grace, &result)
        } else {
            result.report.clone()
        };
        let delivery = reporter::send(&shared.sfn, &admitted.token, &report).await;
        shared.stats.reported.fetch_add(1, Ordering::SeqCst);
        let outcome = match &report {
            Report::Success { .. } => "succeeded".to_string(),
            Report::Failure { error, .. } => format!("failed: {error}"),
        };
        tracing::info!(
            job_id = result.job_id,
            outcome,
            delivered = matches!(delivery, Delivery::Accepted),
            "job finished"
        );
        !matches!(delivery, Delivery::Failed(_))
    };
    if shared.lease.is_some() {
        if acknowledge {
            delete(&shared.queue, &message, &receipt).await;
        } else {
            tracing::error!(
                message_id = message.id,
                "the report was not delivered: the message stays in the queue and the job will run again"
            );
        }
    }
    *shared.last_end.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    shared.stats.running.fetch_sub(1, Ordering::SeqCst);
    shared.stats.finished.fetch_add(1, Ordering::SeqCst);
    acknowledge
}

/// Deletes a finished job's message with its newest receipt handle; if a redelivery replaced
/// the handle meanwhile, tries again with the new one.
async fn delete(queue: &Queue, message: &Message, receipt: &Receipt) {
    let mut tried = String::new();
    for _ in 0..3 {
        let current = receipt.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if current == tried {
            break;
        }
        let done = Message {
            receipt: current.clone(),
            ..message.clone()
        };
        match queue.delete(&done).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(message_id = message.id, error = %e, "could not delete the message of a finished job; if it comes back it is deleted then, not run")
            }
        }
        tried = current;
    }
}

fn interrupted_report(grace: Duration, result: &crate::engine::JobResult) -> Report {
    let tail = result
        .execution
        .as_ref()
        .map(|e| e.output.tail.join("\n"))
        .unwrap_or_default();
    Report::failure(
        INTERRUPTED_ERROR,
        format!(
            "The runner was stopping and the job did not finish within the {} s drain grace period, so its processes were ended. \
             Retry on Runner.Interrupted to run it on another runner.\nLast lines of output:\n{tail}",
            grace.as_secs()
        ),
    )
}

/// A third of the shortest window that must be kept alive (visibility, heartbeat), at least 1 s.
pub fn beat_interval(lease: Option<Duration>, heartbeat: Option<Duration>) -> Duration {
    [lease, heartbeat]
        .into_iter()
        .flatten()
        .map(|d| d / 3)
        .min()
        .unwrap_or(DEFAULT_BEAT)
        .max(Duration::from_secs(1))
}

/// Extends the lease and sends heartbeats until `stop`; returns true (and cancels the job)
/// when Step Functions says the task is gone.
async fn heartbeat(
    shared: Arc<Shared>,
    receipt: Receipt,
    token: String,
    interval: Duration,
    stop: CancellationToken,
    job_cancel: CancellationToken,
) -> bool {
    loop {
        tokio::select! {
            _ = sleep(interval) => {}
            _ = stop.cancelled() => return false,
        }
        if let Some(visibility) = shared.lease {
            let current = receipt.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Err(e) = shared.queue.set_visibility(&current, visibility).await {
                tracing::warn!(error = %e, "could not extend the message's lease; it may be delivered again");
            }
        }
        if !shared.heartbeats.load(Ordering::Relaxed) {
            continue;
        }
        let sent = shared
            .sfn
            .send_task_heartbeat()
            .task_token(&token)
            .send()
            .await;
        if let Err(e) = sent {
            let e = crate::retry::classify("SendTaskHeartbeat", &e);
            match e.class {
                Class::TaskGone => {
                    job_cancel.cancel();
                    return true;
                }
                Class::Denied => {
                    if shared.heartbeats.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "no states:SendTaskHeartbeat permission: a stopped execution is noticed only when the job reports");
                    }
                }
                _ => tracing::warn!(error = %e, "heartbeat failed; trying again on the next beat"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_come_every_third_of_the_shortest_window() {
        let s = Duration::from_secs;
        assert_eq!(beat_interval(Some(s(15)), None), s(5));
        assert_eq!(beat_interval(Some(s(30)), Some(s(6))), s(2));
        assert_eq!(beat_interval(None, None), DEFAULT_BEAT);
        assert_eq!(beat_interval(Some(s(2)), None), s(1));
    }
}
