//! `attini-runner logs EXECUTION_ARN [--step NAME] [--follow] [--log-group NAME | --stack NAME]`:
//! one execution's runner jobs, their lines printed in order on stdout as `[step] line`, the
//! runner's own lines about each job as `[step] (runner) LEVEL message key=value...`.
//!
//! - The jobs are the execution's runner tasks (its history), those of `--step` when given,
//!   in the order they were scheduled (a retried step shows each attempt).
//! - Source: the runner's log group (`--log-group`, or the `LogGroupName` output of the
//!   runner-service stack `--stack`), found by the job's task id; without one, an Attini
//!   step's S3 log object (the one the Attini CLI follows).
//! - `--follow` polls every [`FOLLOW_INTERVAL`] until the job ends: the runner's `job
//!   finished` line (CloudWatch), or the task's end in the history. Polling rather than
//!   CloudWatch Live Tail: it reads the S3 object the same way, needs only
//!   `logs:FilterLogEvents` (the runner's role pattern for operators), resumes from a
//!   timestamp after a network blip, and costs nothing while idle; 2 s is below the awslogs
//!   driver's own delivery delay.
//!
//! Exit: 0 when the (last) job succeeded, 1 when it failed, 75 when it still runs (without
//! `--follow`), 64 bad ARN or flags, 66 no such execution, step or log, 69 AWS refused or
//! failed. Cancellation: a stop signal ends the follow loop; what was printed stays printed.

mod cloudwatch;
mod object;

use std::io::Write;
use std::time::Duration;

use super::execution::{Execution, ExecutionError};
use super::{ExitStatus, Stop, recorded};
use crate::aws::error::classify;
use crate::aws::history::{Ending, Task};
use crate::config::Settings;
use cloudwatch::GroupReader;
use object::ObjectReader;

/// Time between two polls of `--follow`.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// How long after the history says a task ended the runner's `job finished` line is waited
/// for (the awslogs driver delivers in batches; a runner that died never writes it).
pub const END_GRACE: Duration = Duration::from_secs(30);

/// What `attini-runner logs` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct LogsArgs {
    /// The execution ARN.
    pub execution: String,
    /// Only the tasks of this step.
    pub step: Option<String>,
    /// Keep printing until the job ends.
    pub follow: bool,
    /// The runner's log group.
    pub log_group: Option<String>,
    /// The runner-service stack whose `LogGroupName` output names the log group.
    pub stack: Option<String>,
}

/// Prints the jobs' lines; returns the exit status (see the module documentation).
pub async fn run(args: LogsArgs, settings: Settings, stop: Stop) -> ExitStatus {
    match print_logs(&args, &settings, &stop).await {
        Ok(status) => status,
        Err(e) => {
            eprintln!("attini-runner: {e}");
            e.status()
        }
    }
}

async fn print_logs(
    args: &LogsArgs,
    settings: &Settings,
    stop: &Stop,
) -> Result<ExitStatus, ExecutionError> {
    let execution = Execution::open(&args.execution, settings).await?;
    let group = log_group(&execution, args).await?;
    // With --follow, the job may not have been sent yet.
    let history = loop {
        let history = execution.history().await?;
        match execution.runner_tasks(&history, args.step.as_deref()) {
            Err(ExecutionError::NoRunnerTask { .. }) if args.follow && !history.ended() => {
                if pause(stop).await {
                    return Ok(ExitStatus::Failure);
                }
            }
            _ => break history,
        }
    };
    let tasks = execution.runner_tasks(&history, args.step.as_deref())?;
    let mut last: Option<Ending> = None;
    for task in &tasks {
        if tasks.len() > 1 {
            say(&format!("--- {} (task {}) ---", task.step, task_id(task)?));
        }
        last = show(&execution, task, group.as_deref(), args.follow, stop).await?;
        if stop.shutdown.is_cancelled() {
            return Ok(ExitStatus::Failure);
        }
    }
    Ok(match last {
        Some(Ending::Succeeded { .. }) => ExitStatus::Success,
        Some(Ending::Failed { error, cause }) => {
            eprintln!(
                "attini-runner: the job failed: {error}{}",
                cause.map(|c| format!(": {c}")).unwrap_or_default()
            );
            ExitStatus::Failure
        }
        None => {
            eprintln!("attini-runner: the job has not ended yet; --follow waits for it");
            ExitStatus::Pending
        }
    })
}

/// The task id of the token `task` carried.
fn task_id(task: &Task) -> Result<String, ExecutionError> {
    recorded::token(task)
        .map(|t| crate::job::task_id(&t))
        .map_err(|e| ExecutionError::Refused(e.to_string()))
}

/// The log group: the flag, else the stack's output; `None` for neither.
async fn log_group(
    execution: &Execution,
    args: &LogsArgs,
) -> Result<Option<String>, ExecutionError> {
    if let Some(group) = &args.log_group {
        return Ok(Some(group.clone()));
    }
    let Some(stack) = &args.stack else {
        return Ok(None);
    };
    let described = execution
        .clients
        .cloudformation
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| classify(&execution.figures, "DescribeStacks", e))?;
    described
        .stacks
        .unwrap_or_default()
        .into_iter()
        .flat_map(|s| s.outputs.unwrap_or_default())
        .find(|o| o.output_key.as_deref() == Some("LogGroupName"))
        .and_then(|o| o.output_value)
        .map(Some)
        .ok_or_else(|| {
            ExecutionError::Refused(format!(
                "stack {stack} has no LogGroupName output: give the runner's log group with --log-group NAME"
            ))
        })
}

/// Prints one task's lines (following it when asked); how it ended, if it did.
async fn show(
    execution: &Execution,
    task: &Task,
    group: Option<&str>,
    follow: bool,
    stop: &Stop,
) -> Result<Option<Ending>, ExecutionError> {
    let figures = &execution.figures;
    let mut source = source(execution, task, group)?;
    let mut ending = task.ending.clone();
    let mut ended_at: Option<tokio::time::Instant> = None;
    let mut last_round = false;
    loop {
        let finished = match &mut source {
            Source::Group(reader) => {
                let found = reader.poll(figures).await?;
                found.lines.iter().for_each(|l| say(l));
                found.finished.is_some()
            }
            Source::Object(reader) => {
                reader.poll(figures).await?.iter().for_each(|l| say(l));
                false
            }
        };
        if !follow || last_round {
            break;
        }
        if ending.is_none() {
            ending = ending_now(execution, task).await?;
        }
        let waited_out = ended_at.is_some_and(|at| at.elapsed() >= END_GRACE);
        if finished || waited_out || (ending.is_some() && matches!(source, Source::Object(_))) {
            last_round = true;
        } else if ending.is_some() && ended_at.is_none() {
            ended_at = Some(tokio::time::Instant::now());
        }
        if pause(stop).await {
            break;
        }
    }
    if let Source::Object(reader) = &source
        && !reader.exists
        && !follow
    {
        return Err(ExecutionError::Refused(format!(
            "there is no log object at {} yet: the job has not started, or the runner could not write it (the log group has every line: --log-group NAME)",
            reader.describe()
        )));
    }
    if ending.is_none() && follow {
        ending = ending_now(execution, task).await?;
    }
    Ok(ending)
}

/// How `task` ended, as the execution's history says now.
async fn ending_now(execution: &Execution, task: &Task) -> Result<Option<Ending>, ExecutionError> {
    let history = execution.history().await?;
    Ok(history
        .tasks
        .into_iter()
        .find(|t| same(t, task))
        .and_then(|t| t.ending))
}

/// Whether `a` and `b` are the same task of a history read twice.
fn same(a: &Task, b: &Task) -> bool {
    a.scheduled_ms == b.scheduled_ms && a.step == b.step && a.parameters == b.parameters
}

/// Where one task's lines are read.
enum Source {
    Group(GroupReader),
    Object(ObjectReader),
}

fn source(
    execution: &Execution,
    task: &Task,
    group: Option<&str>,
) -> Result<Source, ExecutionError> {
    let clients = &execution.clients;
    if let Some(group) = group {
        return Ok(Source::Group(GroupReader::new(
            clients.logs.built(),
            group,
            &task_id(task)?,
            &task.step,
            task.scheduled_ms,
        )));
    }
    let job = recorded::job_body(task)
        .ok()
        .and_then(|body| crate::job::parse(&body).ok());
    match job.as_ref().and_then(|j| j.attini.as_ref().map(|a| (j, a))) {
        Some((job, attini)) => Ok(Source::Object(ObjectReader::new(
            clients.s3.built(),
            &attini.source_bucket,
            &super::admission::log_key(job),
            &task.step,
        ))),
        None => Err(ExecutionError::Refused(format!(
            "step {} is a serve-mode job: its lines are in the runner's log group only. Give it with --log-group NAME, or --stack NAME (the runner-service stack; its output LogGroupName)",
            task.step
        ))),
    }
}

/// Waits [`FOLLOW_INTERVAL`]; true when a stop signal came instead.
async fn pause(stop: &Stop) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(FOLLOW_INTERVAL) => false,
        _ = stop.shutdown.cancelled() => true,
    }
}

/// One line on stdout; a closed stdout (`| head`) loses the rest quietly.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
