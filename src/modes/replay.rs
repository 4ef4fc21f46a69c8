//! `attini-runner replay EXECUTION_ARN [--step NAME]`: a runner job of an execution run again
//! on this machine, as local mode runs a job, and its outcome printed under the original's.
//!
//! - The job is rebuilt from the history ([`recorded`]): the step's last attempt, else the
//!   execution's last failed runner task, else its last one.
//! - Its distribution is the version it ran: the S3 version current when the task was
//!   scheduled (a versioned bucket), or the current object if it has not changed since. A
//!   replaced object in a bucket without versions is refused (`--distribution PATH` gives the
//!   files, `--current-distribution` takes today's).
//! - Secret references are read (with the caller's credentials) only with
//!   `--resolve-secrets`; otherwise the job is refused naming them, unless `--env NAME=VALUE`
//!   gives each. The job's body is never printed, so a literal secret in the history is not
//!   either; its values are masked in the replay's output as in the runner's.
//! - A job `role` is not assumed: the replay runs with the caller's credentials, and says so.
//!
//! stdout: `original: <result line>`, `replay: <result line>` (local mode's JSON) and whether
//! they agree; the job's output goes to stderr. Exit: 0 when the replay succeeded, 1 when it
//! failed, 64 for a bad ARN or flag or a job that cannot be rebuilt, 66 for an unknown
//! execution or step, 69 when AWS could not be asked. Cancellation: a stop signal ends the
//! job's processes, as in local mode.

use std::io::Write;
use std::path::PathBuf;

use super::execution::{Execution, ExecutionError};
use super::local::{self, UsageError};
use super::{ExitStatus, Stop, recorded};
use crate::aws::history::{Ending, Task};
use crate::aws::s3::S3Zip;
use crate::aws::s3_versions::{self, VersionAt};
use crate::config::Settings;
use crate::engine::distribution::Source;
use crate::engine::outcome::Report;
use crate::job::{DistributionRef, JobSpec};

/// What `attini-runner replay` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct ReplayArgs {
    /// The execution ARN.
    pub execution: String,
    /// The step to replay (its last attempt).
    pub step: Option<String>,
    /// Read the job's secret references with the caller's credentials.
    pub resolve_secrets: bool,
    /// Extra `KEY=VALUE` variables (a value for a secret takes its place).
    pub env: Vec<String>,
    /// A local zip or folder in place of the job's distribution.
    pub distribution: Option<PathBuf>,
    /// Use the distribution's current object even if it changed since the job ran.
    pub current_distribution: bool,
}

/// Replays the job; prints both outcomes; returns the exit status.
pub async fn run(args: ReplayArgs, settings: Settings, stop: Stop) -> ExitStatus {
    match replay(&args, settings, &stop).await {
        Ok(report) if report.is_success() => ExitStatus::Success,
        Ok(_) => ExitStatus::Failure,
        Err(e) => {
            eprintln!("attini-runner: {e}");
            e.status()
        }
    }
}

async fn replay(
    args: &ReplayArgs,
    settings: Settings,
    stop: &Stop,
) -> Result<Report, ExecutionError> {
    let execution = Execution::open(&args.execution, &settings).await?;
    let history = execution.history().await?;
    let tasks = execution.runner_tasks(&history, args.step.as_deref())?;
    let task = chosen(&tasks, args.step.is_some());
    let body = recorded::job_body(task).map_err(|e| ExecutionError::Refused(e.to_string()))?;
    let mut job = crate::job::parse(&body).map_err(|e| {
        ExecutionError::Refused(format!(
            "the job of step {} does not parse ({e}); the runner refused it the same way",
            task.step
        ))
    })?;
    local::apply_env(&mut job, &args.env).map_err(usage)?;
    secrets(&execution, &mut job, args.resolve_secrets).await?;
    if let Some(role) = job.role.take() {
        eprintln!(
            "attini-runner: the job ran as role {role}; the replay runs with your own credentials"
        );
    }
    let source = distribution(&execution, &job, task, args).await?;
    eprintln!(
        "attini-runner: replaying step {} of {} ({} commands)",
        task.step,
        execution.arn.name,
        job.commands.len()
    );
    let report = local::run_spec(&job, source, settings, stop)
        .await
        .map_err(usage)?;
    let original = original_line(task.ending.as_ref());
    let replayed = local::result_line(&report);
    let verdict = verdict(task.ending.as_ref(), &report);
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "original: {original}\nreplay:   {replayed}\n{verdict}"
    );
    Ok(report)
}

fn usage(e: UsageError) -> ExecutionError {
    ExecutionError::Refused(e.to_string())
}

/// The task to replay: the last of `tasks` for a step, else the last that failed, else the last.
fn chosen<'t>(tasks: &[&'t Task], by_step: bool) -> &'t Task {
    let last = tasks[tasks.len() - 1];
    if by_step {
        return last;
    }
    tasks
        .iter()
        .rev()
        .find(|t| matches!(t.ending, Some(Ending::Failed { .. })))
        .copied()
        .unwrap_or(last)
}

/// Reads the job's secret references when allowed; else refuses, naming them.
async fn secrets(
    execution: &Execution,
    job: &mut JobSpec,
    resolve: bool,
) -> Result<(), ExecutionError> {
    if job.secret_references.is_empty() {
        return Ok(());
    }
    if !resolve {
        let names: Vec<String> = job
            .secret_references
            .iter()
            .map(|(name, reference)| format!("{name} ({})", reference.describe()))
            .collect();
        return Err(ExecutionError::Refused(format!(
            "the job reads secrets: {}. Pass --resolve-secrets to read them with your credentials, or --env NAME=VALUE for each",
            names.join(", ")
        )));
    }
    let values = crate::aws::secrets::read_all(&execution.clients.secrets, &job.secret_references)
        .await
        .map_err(|e| ExecutionError::Refused(e.to_string()))?;
    job.secret_references.clear();
    job.secret_environment.extend(values);
    Ok(())
}

/// The distribution the job ran, or the flag's.
async fn distribution(
    execution: &Execution,
    job: &JobSpec,
    task: &Task,
    args: &ReplayArgs,
) -> Result<Option<Source>, ExecutionError> {
    if let Some(path) = &args.distribution {
        return Source::local(path)
            .map(Some)
            .map_err(|e| ExecutionError::Refused(format!("--distribution: {e}")));
    }
    let Some(DistributionRef::S3 { bucket, key, .. }) = &job.distribution else {
        return Ok(None);
    };
    let clients = &execution.clients;
    let figures = &execution.figures;
    let at = s3_versions::version_at(&clients.s3, figures, bucket, key, task.scheduled_ms).await?;
    let version = match at {
        VersionAt::Version(id) => Some(id),
        VersionAt::Current => None,
        VersionAt::ChangedSince { .. } if args.current_distribution => None,
        VersionAt::ChangedSince { modified_ms } => {
            return Err(ExecutionError::Refused(format!(
                "s3://{bucket}/{key} was replaced after the job ran (at {} ms since the epoch, the task was scheduled at {} ms) and the bucket keeps no versions, so the files the job ran are gone. Give them with --distribution PATH, or pass --current-distribution to run today's",
                modified_ms, task.scheduled_ms
            )));
        }
        VersionAt::Missing => {
            return Err(ExecutionError::Refused(format!(
                "s3://{bucket}/{key} did not exist when the job ran, or no longer does: give the files with --distribution PATH"
            )));
        }
    };
    let zip = S3Zip::new(clients.s3.built(), bucket, key, figures.clone()).at_version(version);
    Ok(Some(zip.into_source(None).await?))
}

/// The original outcome as a result line; a history without a cause says so.
fn original_line(ending: Option<&Ending>) -> String {
    match ending {
        Some(Ending::Succeeded { output }) => local::result_line(&Report::Success {
            output: output.clone(),
        }),
        Some(Ending::Failed { error, cause }) => local::result_line(&Report::Failure {
            error: error.clone(),
            cause: cause
                .clone()
                .unwrap_or_else(|| "(the history holds no cause)".into()),
        }),
        None => r#"{"status":"RUNNING"}"#.to_string(),
    }
}

/// Whether the replay ended as the original did (same output, or same error and cause).
fn verdict(original: Option<&Ending>, replay: &Report) -> String {
    let same = match (original, replay) {
        (Some(Ending::Succeeded { output: a }), Report::Success { output: b }) => {
            let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
            parse(a) == parse(b)
        }
        (Some(Ending::Failed { error, cause }), Report::Failure { error: e, cause: c }) => {
            error == e && cause.as_ref().is_none_or(|cause| cause == c)
        }
        _ => false,
    };
    if same {
        "same: the replay ended as the original did".into()
    } else {
        "different: the replay did not end as the original did".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(ending: Option<Ending>) -> Task {
        Task {
            step: "Run".into(),
            resource: String::new(),
            parameters: String::new(),
            scheduled_ms: 0,
            ended_ms: None,
            ending,
        }
    }

    fn failed(error: &str, cause: Option<&str>) -> Option<Ending> {
        Some(Ending::Failed {
            error: error.into(),
            cause: cause.map(str::to_string),
        })
    }

    #[test]
    fn the_task_replayed_is_the_steps_last_else_the_last_failed_else_the_last() {
        let ok = task(Some(Ending::Succeeded {
            output: "{}".into(),
        }));
        let bad = task(failed("E", None));
        let running = task(None);
        assert!(std::ptr::eq(chosen(&[&bad, &ok], true), &ok));
        assert!(std::ptr::eq(chosen(&[&bad, &ok], false), &bad));
        assert!(std::ptr::eq(chosen(&[&ok, &running], false), &running));
    }

    #[test]
    fn the_original_is_shown_as_a_result_line_and_compared() {
        let success = Report::Success {
            output: r#"{"n": 1}"#.into(),
        };
        let ok = Some(Ending::Succeeded {
            output: r#"{"n":1}"#.into(),
        });
        assert_eq!(
            original_line(ok.as_ref()),
            r#"{"status":"SUCCEEDED","output":{"n":1}}"#
        );
        assert!(verdict(ok.as_ref(), &success).starts_with("same"));
        let other = Report::Success {
            output: r#"{"n": 2}"#.into(),
        };
        assert!(verdict(ok.as_ref(), &other).starts_with("different"));
        let failure = Report::failure("Job.Failed", "exit 3");
        assert!(verdict(ok.as_ref(), &failure).starts_with("different"));
        // Same error; a history without a cause compares the error alone.
        assert!(
            verdict(failed("Job.Failed", Some("exit 3")).as_ref(), &failure).starts_with("same")
        );
        assert!(verdict(failed("Job.Failed", None).as_ref(), &failure).starts_with("same"));
        assert!(
            verdict(failed("Job.Failed", Some("exit 4")).as_ref(), &failure)
                .starts_with("different")
        );
        assert!(
            verdict(failed("Other", Some("exit 3")).as_ref(), &failure).starts_with("different")
        );
        assert!(verdict(None, &failure).starts_with("different"));
        assert!(original_line(failed("E", None).as_ref()).contains("(the history holds no cause)"));
        assert_eq!(original_line(None), r#"{"status":"RUNNING"}"#);
    }
}
