//! Local mode: run one job file on this machine through the production engine, with no AWS.
//! The job's output streams to stderr; one JSON line with the result goes to stdout; exit 0
//! when it succeeded, 1 when it failed, 64 for a bad job file, flag or setting.
//! Cancellation: the shared shutdown token (SIGINT or SIGTERM) ends the job's processes
//! (SIGTERM, grace, SIGKILL) and the job reports `Runner.Interrupted`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{ExitStatus, Stop};
use crate::config::Settings;
use crate::engine::distribution::Source;
use crate::engine::executor::LogSink;
use crate::engine::executor::batch::{Batch, Stream};
use crate::engine::outcome::Report;
use crate::engine::{Engine, RunOptions};
use crate::job::{self, DistributionRef, JobSpec};

/// What `attini-runner local` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct LocalArgs {
    /// The job file (Attini message or native job); `-` reads standard input.
    pub job_file: PathBuf,
    /// A local zip or folder to use as the distribution, overriding the job's.
    pub distribution: Option<PathBuf>,
    /// Job timeout, overriding the job's and `ATTINI_JOB_TIMEOUT`.
    pub timeout: Option<Duration>,
    /// Extra `KEY=VALUE` variables, added to (and overriding) the job's environment.
    pub env: Vec<String>,
}

/// The job file, its flags or the settings are unusable (exit code 64).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// The job file cannot be read.
    #[error("cannot read the job file {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The job file is not a valid job.
    #[error("{file}: {source}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        #[source]
        source: job::ParseError,
    },
    /// A `--env` flag is not `KEY=VALUE`.
    #[error("--env {0:?} must be KEY=VALUE")]
    EnvFlag(String),
    /// A `--env` flag names a variable badly.
    #[error(transparent)]
    EnvName(job::ParseError),
    /// A secret reference, which only the AWS modes read.
    #[error(
        "secretEnvironment.{variable} refers to the {reference}; local mode does not call AWS. Put the value itself in secretEnvironment, or run the job with `serve`"
    )]
    SecretReference {
        /// The variable.
        variable: String,
        /// The secret, described.
        reference: String,
    },
    /// A role, which only the AWS modes assume.
    #[error(
        "role {0} is for the AWS modes; local mode does not call AWS, so its job runs with your own credentials. Remove `role`, or run the job with `serve`"
    )]
    Role(String),
    /// The local distribution cannot be used.
    #[error("{what}: {source}")]
    Distribution {
        /// `--distribution` or `distribution.path`.
        what: &'static str,
        /// Why.
        #[source]
        source: crate::engine::distribution::DistributionError,
    },
    /// The engine cannot start (its work folder).
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
}

/// Runs the job; prints its result line; returns the exit status.
pub async fn run(args: LocalArgs, settings: Settings, stop: Stop) -> ExitStatus {
    match run_job(args, settings, stop).await {
        Ok(report) if report.is_success() => ExitStatus::Success,
        Ok(_) => ExitStatus::Failure,
        Err(e) => {
            eprintln!("attini-runner: {e}");
            ExitStatus::Usage
        }
    }
}

async fn run_job(args: LocalArgs, settings: Settings, stop: Stop) -> Result<Report, UsageError> {
    let mut job = read_job(&args.job_file)?;
    apply_flags(&mut job, &args)?;
    if let Some((name, reference)) = job.secret_references.iter().next() {
        return Err(UsageError::SecretReference {
            variable: name.clone(),
            reference: reference.describe(),
        });
    }
    if let Some(role) = &job.role {
        return Err(UsageError::Role(role.clone()));
    }
    let source = distribution(&job, &args)?;
    let report = run_spec(&job, source, settings, &stop).await?;
    // A closed stdout must not turn a finished job into a panic.
    let _ = writeln!(std::io::stdout(), "{}", result_line(&report));
    Ok(report)
}

/// Runs `job` on this machine from `source`, its output on stderr, and names its failure as
/// its format is told (local mode and `replay`).
pub(super) async fn run_spec(
    job: &JobSpec,
    source: Option<Source>,
    settings: Settings,
    stop: &Stop,
) -> Result<Report, UsageError> {
    // One job: a cache would only add a copy.
    let mut config = settings.engine;
    config.cache_bytes = 0;
    let engine = Engine::new(config)?;
    let engine = Arc::new(engine);
    stop.guard(engine.clone());
    let cancel = stop.shutdown.clone();
    tokio::spawn(async move {
        cancel.cancelled().await;
        eprintln!("attini-runner: stopping the job (signal received)");
    });
    let options = RunOptions {
        source,
        ..RunOptions::default()
    };
    let result = engine
        .run(
            job,
            &options,
            Arc::new(StderrSink::default()),
            &stop.shutdown,
        )
        .await;
    engine.settled().await;
    Ok(crate::engine::names::for_format(result.report, job.format))
}

/// Reads and parses the job file (`-`: standard input).
fn read_job(job_file: &Path) -> Result<JobSpec, UsageError> {
    let file = || job_file.to_path_buf();
    let body = read_job_text(job_file).map_err(|source| UsageError::Read {
        file: file(),
        source,
    })?;
    job::parse(&body).map_err(|source| UsageError::Invalid {
        file: file(),
        source,
    })
}

/// The text of a job file (`-`: standard input), without a leading byte-order mark.
pub(super) fn read_job_text(job_file: &Path) -> std::io::Result<String> {
    let text = if job_file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(job_file)?
    };
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// The one stdout line: `{"status":"SUCCEEDED","output":...}` or
/// `{"status":"FAILED","error":...,"cause":...}`.
pub fn result_line(report: &Report) -> String {
    match report {
        Report::Success { output } => {
            let output: Value =
                serde_json::from_str(output).unwrap_or(Value::String(output.clone()));
            json!({ "status": "SUCCEEDED", "output": output }).to_string()
        }
        Report::Failure { error, cause } => {
            json!({ "status": "FAILED", "error": error, "cause": cause }).to_string()
        }
    }
}

fn apply_flags(job: &mut JobSpec, args: &LocalArgs) -> Result<(), UsageError> {
    apply_env(job, &args.env)?;
    if let Some(timeout) = args.timeout {
        job.timeout = Some(timeout);
    }
    Ok(())
}

/// Adds each `KEY=VALUE` of `env` to the job's environment; a value given for one of its
/// secrets (a value or a reference) takes the secret's place, masked as it would be.
pub(super) fn apply_env(job: &mut JobSpec, env: &[String]) -> Result<(), UsageError> {
    for pair in env {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(UsageError::EnvFlag(pair.clone()));
        };
        job::check_variable_name(key, "--env").map_err(UsageError::EnvName)?;
        let was_secret = job.secret_environment.remove(key).is_some()
            | job.secret_references.remove(key).is_some();
        let into = if was_secret {
            &mut job.secret_environment
        } else {
            &mut job.environment
        };
        into.insert(key.to_string(), value.to_string());
    }
    Ok(())
}

/// The distribution to use: the flag, else the job's local path (relative to the job file),
/// else none. A job naming S3 runs in an empty workspace, with a warning.
fn distribution(job: &JobSpec, args: &LocalArgs) -> Result<Option<Source>, UsageError> {
    let local = |path: &Path, what: &'static str| {
        Source::local(path)
            .map(Some)
            .map_err(|source| UsageError::Distribution { what, source })
    };
    if let Some(path) = &args.distribution {
        return local(path, "--distribution");
    }
    match &job.distribution {
        None => Ok(None),
        Some(DistributionRef::Local { path }) => {
            // Relative to the job file; from standard input, relative to the current folder.
            let base = args.job_file.parent().unwrap_or(Path::new("."));
            local(&base.join(path), "distribution.path")
        }
        Some(DistributionRef::S3 { bucket, key, .. }) => {
            eprintln!(
                "attini-runner: the job's distribution is s3://{bucket}/{key}; local mode does not read S3, \
                 so the job runs in an empty workspace. Pass --distribution PATH (a zip or folder) to use a local copy."
            );
            Ok(None)
        }
    }
}

/// Job output to stderr, written after each read of it.
struct StderrSink(Batch);

impl Default for StderrSink {
    fn default() -> Self {
        StderrSink(Batch::new(Stream::Stderr))
    }
}

impl LogSink for StderrSink {
    fn line(&self, line: &str) {
        self.0.push(&[line.as_bytes(), b"\n"]);
    }

    fn lines(&self, block: &str) {
        self.0.push(&[block.as_bytes()]);
    }

    fn flush(&self) {
        self.0.flush();
    }
}
