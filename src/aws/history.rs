//! One execution as its Step Functions history tells it, for `attini-runner logs` and
//! `replay`: its status, and each Task state that was scheduled, with its state name, its
//! resource, its parameters as Step Functions resolved them (the job the runner got, task token
//! included), when it was scheduled and how it ended. Events are tied to their task by the
//! history's `previousEventId` chain, so the tasks of parallel branches do not mix. Dropping a
//! read cancels it.

use std::collections::HashMap;

use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};

use super::error::classify;
use crate::calls::{CallError, ErrorClass};
use crate::metrics::Figures;

/// A Step Functions execution ARN, checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionArn {
    /// The whole ARN.
    pub arn: String,
    /// Its region.
    pub region: String,
    /// The execution's name (after the last `:`).
    pub name: String,
}

impl ExecutionArn {
    /// `arn:<partition>:states:<region>:<account>:execution:<state machine>:<name>` (or
    /// `express:` for an Express execution).
    ///
    /// # Errors
    /// [`HistoryError::BadArn`] saying which part is wrong.
    pub fn parse(arn: &str) -> Result<Self, HistoryError> {
        let bad = |why: &str| HistoryError::BadArn {
            arn: arn.to_string(),
            why: why.to_string(),
        };
        let parts: Vec<&str> = arn.trim().split(':').collect();
        let eight = "an execution ARN has 8 parts separated by `:`";
        if parts.len() < 6 || parts[0] != "arn" {
            return Err(bad(eight));
        }
        if parts[2] != "states" {
            return Err(bad(
                "it is not a Step Functions ARN (the service is not `states`)",
            ));
        }
        if !matches!(parts[5], "execution" | "express") {
            return Err(bad(&format!(
                "it names a `{}`, not an execution (a state machine ARN has no execution name)",
                parts[5]
            )));
        }
        if parts.len() != 8 {
            return Err(bad(eight));
        }
        if parts[3].is_empty() || parts[7].is_empty() {
            return Err(bad("its region or execution name is empty"));
        }
        Ok(ExecutionArn {
            arn: arn.trim().to_string(),
            region: parts[3].to_string(),
            name: parts[7].to_string(),
        })
    }
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// `TaskSucceeded`, with its output.
    Succeeded {
        /// The task's output (JSON text).
        output: String,
    },
    /// `TaskFailed`, `TaskTimedOut`, `TaskStartFailed` or `TaskSubmitFailed`.
    Failed {
        /// The error name.
        error: String,
        /// The cause; `None` when the history has none.
        cause: Option<String>,
    },
}

/// One scheduled task of the execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The Task state's name.
    pub step: String,
    /// Its resource, e.g. `arn:aws:states:::sqs:sendMessage.waitForTaskToken`.
    pub resource: String,
    /// Its parameters as Step Functions resolved them (JSON text; empty when the history
    /// does not show them).
    pub parameters: String,
    /// When it was scheduled, in milliseconds since the epoch.
    pub scheduled_ms: i64,
    /// When it ended, in milliseconds since the epoch.
    pub ended_ms: Option<i64>,
    /// How it ended; `None` while it runs (or when the execution stopped around it).
    pub ending: Option<Ending>,
}

/// An execution: its status now and its tasks in the order they were scheduled.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`, ...
    pub status: String,
    /// When it started, in milliseconds since the epoch.
    pub started_ms: i64,
    /// Its tasks.
    pub tasks: Vec<Task>,
}

impl History {
    /// Whether the execution has ended.
    pub fn ended(&self) -> bool {
        self.status != "RUNNING" && self.status != "PENDING_REDRIVE"
    }
}

/// Why an execution could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The ARN is not an execution ARN.
    #[error(
        "{arn:?} is not a Step Functions execution ARN: {why}. Copy it from the Step Functions console; it reads arn:aws:states:<region>:<account>:execution:<state machine>:<execution>"
    )]
    BadArn {
        /// What was given.
        arn: String,
        /// What is wrong with it.
        why: String,
    },
    /// Step Functions does not know it.
    #[error(
        "Step Functions has no execution {arn} in {region}: check the ARN, and that your credentials are for its account"
    )]
    NoSuchExecution {
        /// The ARN.
        arn: String,
        /// Where it was looked for.
        region: String,
    },
    /// A call failed.
    #[error(
        "{0}{hint}",
        hint = if .0.class == ErrorClass::Denied { " (your credentials need states:DescribeExecution and states:GetExecutionHistory on it)" } else { "" }
    )]
    Call(CallError),
}

/// Reads the execution `arn`: `DescribeExecution`, then every page of
/// `GetExecutionHistory`.
///
/// # Errors
/// [`HistoryError::NoSuchExecution`] when Step Functions does not know it, else the failed call.
pub async fn read(
    sfn: &aws_sdk_sfn::Client,
    arn: &ExecutionArn,
    figures: &Figures,
) -> Result<History, HistoryError> {
    let described = sfn
        .describe_execution()
        .execution_arn(&arn.arn)
        .send()
        .await
        .map_err(|e| classify(figures, "DescribeExecution", e))
        .map_err(|e| missing_or(e, arn))?;
    let mut events = Vec::new();
    let mut next = None;
    loop {
        let page = sfn
            .get_execution_history()
            .execution_arn(&arn.arn)
            .max_results(1000)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| classify(figures, "GetExecutionHistory", e))
            .map_err(|e| missing_or(e, arn))?;
        events.extend(page.events);
        match page.next_token {
            Some(token) if !token.is_empty() => next = Some(token),
            _ => break,
        }
    }
    Ok(History {
        status: described.status.as_str().to_string(),
        started_ms: described.start_date.to_millis().unwrap_or_default(),
        tasks: tasks(&events),
    })
}

fn missing_or(e: CallError, arn: &ExecutionArn) -> HistoryError {
    if e.class == ErrorClass::Missing || e.message.starts_with("ExecutionDoesNotExist") {
        HistoryError::NoSuchExecution {
            arn: arn.arn.clone(),
            region: arn.region.clone(),
        }
    } else {
        HistoryError::Call(e)
    }
}

/// The tasks of a history's `events` (in event order).
pub fn tasks(events: &[HistoryEvent]) -> Vec<Task> {
    let mut tasks: Vec<Task> = Vec::new();
    let mut previous: HashMap<i64, i64> = HashMap::new();
    let mut entered: HashMap<i64, String> = HashMap::new();
    let mut task_of: HashMap<i64, usize> = HashMap::new();
    let mut last_entered = String::new();
    for event in events {
        previous.insert(event.id, event.previous_event_id);
        let at = event.timestamp.to_millis().unwrap_or_default();
        // The first id up the chain from this event that `map` knows.
        let up = |map: &dyn Fn(i64) -> bool| {
            let mut id = event.previous_event_id;
            for _ in 0..events.len() {
                if map(id) {
                    return Some(id);
                }
                id = *previous.get(&id)?;
            }
            None
        };
        match event.r#type {
            HistoryEventType::TaskStateEntered => {
                let name = event
                    .state_entered_event_details
                    .as_ref()
                    .map(|d| d.name.clone())
                    .unwrap_or_default();
                entered.insert(event.id, name.clone());
                last_entered = name;
            }
            HistoryEventType::TaskScheduled => {
                let details = event.task_scheduled_event_details.as_ref();
                let step = up(&|id| entered.contains_key(&id))
                    .and_then(|id| entered.get(&id).cloned())
                    .unwrap_or_else(|| last_entered.clone());
                task_of.insert(event.id, tasks.len());
                tasks.push(Task {
                    step,
                    resource: details.map(resource).unwrap_or_default(),
                    parameters: details.map(|d| d.parameters.clone()).unwrap_or_default(),
                    scheduled_ms: at,
                    ended_ms: None,
                    ending: None,
                });
            }
            _ => {
                let Some(ending) = ending(event) else {
                    continue;
                };
                // Tied by the chain; else the newest task still open.
                let index = up(&|id| task_of.contains_key(&id))
                    .and_then(|id| task_of.get(&id).copied())
                    .or_else(|| tasks.iter().rposition(|t| t.ending.is_none()));
                if let Some(i) = index
                    && let Some(task) = tasks.get_mut(i)
                {
                    task.ending = Some(ending);
                    task.ended_ms = Some(at);
                    task_of.insert(event.id, i);
                }
            }
        }
    }
    tasks
}

/// The task's resource as its state names it: AWS records `resourceType` `sqs` and
/// `resource` `sendMessage.waitForTaskToken`; some emulators record the whole ARN.
fn resource(details: &aws_sdk_sfn::types::TaskScheduledEventDetails) -> String {
    if details.resource.starts_with("arn:") {
        details.resource.clone()
    } else {
        format!(
            "arn:aws:states:::{}:{}",
            details.resource_type, details.resource
        )
    }
}

/// How `event` ends a task, if it does.
fn ending(event: &HistoryEvent) -> Option<Ending> {
    let failed = |error: Option<&String>, cause: Option<&String>| Ending::Failed {
        error: error.cloned().unwrap_or_default(),
        cause: cause.cloned(),
    };
    match event.r#type {
        HistoryEventType::TaskSucceeded => Some(Ending::Succeeded {
            output: event
                .task_succeeded_event_details
                .as_ref()
                .and_then(|d| d.output.clone())
                .unwrap_or_default(),
        }),
        HistoryEventType::TaskFailed => {
            let d = event.task_failed_event_details.as_ref();
            Some(failed(
                d.and_then(|d| d.error.as_ref()),
                d.and_then(|d| d.cause.as_ref()),
            ))
        }
        HistoryEventType::TaskTimedOut => {
            let d = event.task_timed_out_event_details.as_ref();
            let error = d
                .and_then(|d| d.error.clone())
                .unwrap_or_else(|| "States.Timeout".into());
            Some(failed(Some(&error), d.and_then(|d| d.cause.as_ref())))
        }
        HistoryEventType::TaskStartFailed => {
            let d = event.task_start_failed_event_details.as_ref();
            Some(failed(
                d.and_then(|d| d.error.as_ref()),
                d.and_then(|d| d.cause.as_ref()),
            ))
        }
        HistoryEventType::TaskSubmitFailed => {
            let d = event.task_submit_failed_event_details.as_ref();
            Some(failed(
                d.and_then(|d| d.error.as_ref()),
                d.and_then(|d| d.cause.as_ref()),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
