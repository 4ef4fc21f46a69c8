//! The job a task of an execution's history carried, rebuilt from the parameters Step
//! Functions resolved for it (`TaskScheduled`), for `attini-runner logs` and `replay`:
//! - `sqs:sendMessage` tasks (serve mode): the `MessageBody`, as an object or as JSON text;
//! - `lambda:invoke` tasks of Attini plans with `attiniActionType: ExecuteRunner`: the message
//!   the Attini dispatcher builds from its `Payload` (CONTRACT.md 5.2: the payload without
//!   `attiniActionType` and its top-level `environment`, plus `taskConfigHashCode`).
//!
//! Anything else is refused, saying what is missing. Pure; nothing to cancel.

use serde_json::Value;

use crate::aws::history::Task;

/// Why a task's job cannot be rebuilt.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RebuildError {
    /// The history shows no parameters (an emulator that leaves them out).
    #[error(
        "the history shows no parameters for step {step}, so its job cannot be rebuilt (Step Functions records them in TaskScheduled; an emulator may not)"
    )]
    NoParameters {
        /// The step.
        step: String,
    },
    /// The task is not a runner job.
    #[error(
        "step {step} runs {resource}, not a runner job: only sqs:sendMessage tasks (serve mode) and the Attini dispatcher's lambda:invoke tasks carry one"
    )]
    NotARunnerTask {
        /// The step.
        step: String,
        /// Its resource.
        resource: String,
    },
    /// A field the job needs is missing from the parameters.
    #[error("step {step}: its parameters have no {field}, so its job cannot be rebuilt")]
    Missing {
        /// The step.
        step: String,
        /// The field.
        field: &'static str,
    },
    /// An Attini step whose job the dispatcher builds from more than the payload.
    #[error(
        "step {step} is an Attini {action} step: the Attini dispatcher turns its properties into commands, which the history does not show. Replay rebuilds AttiniRunnerJob steps (ExecuteRunner) and native jobs"
    )]
    AttiniAction {
        /// The step.
        step: String,
        /// Its `attiniActionType`.
        action: String,
    },
}

/// The job text (native job or Attini runner message) that `task` carried.
///
/// # Errors
/// A [`RebuildError`] naming what is missing.
pub fn job_body(task: &Task) -> Result<String, RebuildError> {
    let step = || task.step.clone();
    if task.parameters.trim().is_empty() {
        return Err(RebuildError::NoParameters { step: step() });
    }
    let parameters: Value = serde_json::from_str(&task.parameters)
        .map_err(|_| RebuildError::NoParameters { step: step() })?;
    let missing = |field| RebuildError::Missing {
        step: step(),
        field,
    };
    if task.resource.contains(":sqs:sendMessage") {
        return match parameters.get("MessageBody") {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(body @ Value::Object(_)) => Ok(body.to_string()),
            _ => Err(missing("MessageBody")),
        };
    }
    if task.resource.contains(":lambda:invoke") {
        let Some(Value::Object(payload)) = parameters.get("Payload") else {
            return Err(missing("Payload"));
        };
        let action = payload
            .get("attiniActionType")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("Payload.attiniActionType"))?;
        if action != "ExecuteRunner" {
            return Err(RebuildError::AttiniAction {
                step: step(),
                action: action.to_string(),
            });
        }
        let mut message = payload.clone();
        message.remove("attiniActionType");
        message.remove("environment");
        message
            .entry("taskConfigHashCode")
            .or_insert(Value::from(0));
        return Ok(Value::Object(message).to_string());
    }
    Err(RebuildError::NotARunnerTask {
        step: step(),
        resource: task.resource.clone(),
    })
}

/// Whether `task` may carry a runner job: an SQS message or a Lambda invocation that waits
/// for its task token.
pub fn may_carry_a_job(task: &Task) -> bool {
    task.resource.ends_with(".waitForTaskToken")
        && (task.resource.contains(":sqs:sendMessage") || task.resource.contains(":lambda:invoke"))
}

/// The task token `task` carried.
///
/// # Errors
/// Why its job cannot be rebuilt, or [`RebuildError::Missing`] when it names no token.
pub fn token(task: &Task) -> Result<String, RebuildError> {
    let body = job_body(task)?;
    crate::job::salvage_token(&body).ok_or(RebuildError::Missing {
        step: task.step.clone(),
        field: "task token (taskToken or deploymentPlanExecutionMetadata.sfnToken)",
    })
}

#[cfg(test)]
#[path = "recorded_tests.rs"]
mod tests;
