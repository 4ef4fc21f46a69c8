//! The in-memory [`TaskTokens`]: tokens that can be closed, denied, made to fail, hang or
//! answer slowly, writing each report and heartbeat into the queue's shared [`Journal`].
//! A stateful fake for the worker's tests; nothing to cancel.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{Event, Journal, lock};
use crate::worker::{CallError, ErrorClass, TaskTokens};

/// Task tokens in memory.
pub struct MemoryTokens {
    journal: Arc<Journal>,
    closed: Mutex<HashSet<String>>,
    /// Transient failures still to return per report call.
    report_failures: Mutex<u32>,
    /// Denials still to return per report call.
    report_denials: Mutex<u32>,
    heartbeat_denied: bool,
    heartbeat_calls: Mutex<u32>,
    /// Heartbeats still to leave unanswered.
    heartbeat_hangs: Mutex<u32>,
    refuse_outputs: Mutex<bool>,
    answers: Mutex<HashMap<String, u32>>,
    attempts: Mutex<Vec<Instant>>,
    /// Reports for these tokens take this long to answer.
    slow: Mutex<HashMap<String, Duration>>,
}

impl MemoryTokens {
    /// Tokens writing into `journal`; `heartbeat_denied` is a role without
    /// `states:SendTaskHeartbeat`.
    pub fn new(journal: Arc<Journal>, heartbeat_denied: bool) -> Self {
        MemoryTokens {
            journal,
            closed: Mutex::default(),
            report_failures: Mutex::new(0),
            report_denials: Mutex::new(0),
            heartbeat_denied,
            heartbeat_calls: Mutex::new(0),
            heartbeat_hangs: Mutex::new(0),
            refuse_outputs: Mutex::new(false),
            answers: Mutex::default(),
            attempts: Mutex::default(),
            slow: Mutex::default(),
        }
    }

    /// Every report for `token` takes `delay` before it is answered.
    pub fn slow_reports(&self, token: &str, delay: Duration) {
        lock(&self.slow).insert(token.to_string(), delay);
    }

    async fn wait_if_slow(&self, token: &str) {
        let delay = lock(&self.slow).get(token).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
    }

    /// Closes `token`, as a stopped execution does: heartbeats and reports answer TaskGone.
    pub fn close(&self, token: &str) {
        lock(&self.closed).insert(token.to_string());
    }

    /// The next `count` reports fail with a transient error.
    pub fn fail_reports(&self, count: u32) {
        *lock(&self.report_failures) = count;
    }

    /// The next `count` reports are denied (`AccessDeniedException`), as while a role's new
    /// permission propagates.
    pub fn deny_reports(&self, count: u32) {
        *lock(&self.report_denials) = count;
    }

    /// How many reports for `token` were accepted.
    pub fn answers(&self, token: &str) -> u32 {
        lock(&self.answers).get(token).copied().unwrap_or(0)
    }

    fn check(&self, operation: &'static str, token: &str) -> Result<(), CallError> {
        if lock(&self.closed).contains(token) {
            return Err(CallError {
                operation,
                class: ErrorClass::TaskGone,
                message: "TaskTimedOut: the task is closed".into(),
                source: None,
            });
        }
        Ok(())
    }

    /// Every success report is refused for good from now on (an output Step Functions will
    /// not take).
    pub fn refuse_outputs(&self) {
        *lock(&self.refuse_outputs) = true;
    }

    /// The next `count` heartbeats never answer.
    pub fn hang_heartbeats(&self, count: u32) {
        *lock(&self.heartbeat_hangs) = count;
    }

    /// How many heartbeats were attempted (accepted or not).
    pub fn heartbeat_calls(&self) -> u32 {
        *lock(&self.heartbeat_calls)
    }

    /// When each report was attempted (accepted or not).
    pub fn report_attempts(&self) -> Vec<Instant> {
        lock(&self.attempts).clone()
    }

    fn accept(&self, operation: &'static str, token: &str, event: Event) -> Result<(), CallError> {
        lock(&self.attempts).push(Instant::now());
        self.check(operation, token)?;
        let mut failures = lock(&self.report_failures);
        if *failures > 0 {
            *failures -= 1;
            return Err(CallError::transient(operation, "ServiceUnavailable"));
        }
        drop(failures);
        let mut denials = lock(&self.report_denials);
        if *denials > 0 {
            *denials -= 1;
            return Err(CallError {
                operation,
                class: ErrorClass::Denied,
                message: "AccessDeniedException: not authorized to perform states:SendTaskSuccess"
                    .into(),
                source: None,
            });
        }
        drop(denials);
        self.journal.push(event);
        *lock(&self.answers).entry(token.to_string()).or_default() += 1;
        Ok(())
    }
}

impl TaskTokens for MemoryTokens {
    async fn succeed(&self, token: &str, output: &str) -> Result<(), CallError> {
        self.wait_if_slow(token).await;
        if *lock(&self.refuse_outputs) {
            lock(&self.attempts).push(Instant::now());
            return Err(CallError {
                operation: "SendTaskSuccess",
                class: ErrorClass::Permanent,
                message: "InvalidOutput: the output is not valid".into(),
                source: None,
            });
        }
        let event = Event::Succeeded(token.into(), output.into());
        self.accept("SendTaskSuccess", token, event)
    }

    async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<(), CallError> {
        self.wait_if_slow(token).await;
        let event = Event::Failed(token.into(), error.into(), cause.into());
        self.accept("SendTaskFailure", token, event)
    }

    async fn heartbeat(&self, token: &str) -> Result<(), CallError> {
        *lock(&self.heartbeat_calls) += 1;
        let hang = {
            let mut hangs = lock(&self.heartbeat_hangs);
            let hang = *hangs > 0;
            *hangs = hangs.saturating_sub(1);
            hang
        };
        if hang {
            std::future::pending::<()>().await;
        }
        self.check("SendTaskHeartbeat", token)?;
        if self.heartbeat_denied {
            return Err(CallError {
                operation: "SendTaskHeartbeat",
                class: ErrorClass::Denied,
                message: "AccessDeniedException".into(),
                source: None,
            });
        }
        self.journal.push(Event::Heartbeat(token.into()));
        Ok(())
    }
}
