//! Runs one job script: one bash, its own process group, output streamed line by line,
//! timeout and cancellation ending the whole process tree (SIGTERM, grace, SIGKILL).
//!
//! [`execute`] returns only when no process of the job is left (or, for a process that
//! survives SIGKILL, after logging it). Cancellation: trip the `cancel` token to end the job
//! the same way a timeout does; the result then says [`Termination::Cancelled`].

pub mod batch;
pub mod command;
pub mod output;
pub mod procs;
#[cfg(target_os = "linux")]
mod proctable;
pub mod progress;
pub mod supervise;

use std::path::PathBuf;
use std::time::Duration;

use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

pub use output::{LogSink, OutputSummary};
pub use supervise::{Sweep, Termination};

use crate::engine::redact::Redactor;

/// After the job's processes are gone, how long to wait for its output pipe to close. Only a
/// process that escaped both the group and the marker could still hold it.
const OUTPUT_DRAIN: Duration = Duration::from_secs(5);

/// Everything needed to run one script.
#[derive(Debug, Clone)]
pub struct ScriptRun {
    /// The script file, run as `bash <script>`.
    pub script: PathBuf,
    /// Working directory.
    pub cwd: PathBuf,
    /// Variables added to the runner's environment, in order (later entries win).
    pub env: Vec<(String, String)>,
    /// Variables of the runner's environment the job does not inherit (`env` may set them).
    pub withheld: Vec<String>,
    /// The bash to run ([`command::find_bash`]: found once on the runner's `PATH`).
    pub bash: std::sync::Arc<std::ffi::OsStr>,
    /// Unique job id, used as the process marker.
    pub job_id: String,
    /// The job timeout.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Redaction applied to every output line.
    pub redactor: Redactor,
}

/// How the script ended.
#[derive(Debug, Clone)]
pub struct Execution {
    /// Why its bash stopped.
    pub termination: Termination,
    /// What had to be killed afterwards.
    pub sweep: Sweep,
    /// Its output, summarised.
    pub output: OutputSummary,
    /// The process group id it ran as.
    pub pgid: i32,
}

/// The script could not be started, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The job's variables and arguments are over the kernel's limit (`E2BIG`).
    #[error(
        "could not start the job: its environment variables and arguments take {bytes} bytes, \
         more than the kernel allows ({source}); pass large values in a file of the distribution \
         or through a secret reference instead"
    )]
    TooBig {
        /// The bytes of the environment the job was given.
        bytes: usize,
        /// The kernel's refusal.
        #[source]
        source: std::io::Error,
    },
    /// Anything else: bash is missing, or the system refused a new process.
    #[error("could not start `bash` for the job: {source}. Is bash installed and on PATH?")]
    Other {
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl SpawnError {
    fn of(source: std::io::Error, run: &ScriptRun) -> SpawnError {
        if source.raw_os_error() == Some(nix::libc::E2BIG) {
            let bytes = run.env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
            SpawnError::TooBig { bytes, source }
        } else {
            SpawnError::Other { source }
        }
    }
}

/// Runs the script to its end; see the module documentation.
pub async fn execute(
    run: &ScriptRun,
    sink: std::sync::Arc<dyn LogSink>,
    cancel: &CancellationToken,
    table: &procs::ProcessTable,
) -> Result<Execution, SpawnError> {
    let spawned = command::spawn(run).map_err(|source| SpawnError::of(source, run))?;
    let pgid = spawned.child.id().map(|id| id as i32).unwrap_or_default();
    let procs = std::sync::Arc::new(procs::JobProcesses::new(Pid::from_raw(pgid), &run.job_id));
    table.remember(procs.pgid, &run.job_id);
    let redactor = run.redactor.clone();
    let reader =
        tokio::task::spawn_blocking(move || output::pump(spawned.output, redactor, &*sink));

    let (termination, sweep) =
        supervise::supervise(spawned.child, &procs, run.timeout, run.grace, cancel).await;
    table.forget(procs.pgid);
    if sweep.found > 0 {
        tracing::info!(
            found = sweep.found,
            killed_after_grace = sweep.killed,
            "ended processes the job left running"
        );
    }
    let output = supervise::join_within(reader, OUTPUT_DRAIN)
        .await
        .unwrap_or_else(|| {
            tracing::warn!(
                "the job's output pipe stayed open after its processes ended; stopped reading"
            );
            OutputSummary::default()
        });
    Ok(Execution {
        termination,
        sweep,
        output,
        pgid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size reported for an environment the kernel refused is what `execve` counts for
    /// it: `NAME=value` and its terminating NUL per variable.
    #[test]
    fn a_refused_environment_is_reported_with_its_size_in_bytes() {
        let run = ScriptRun {
            script: PathBuf::from("script.sh"),
            cwd: PathBuf::from("."),
            env: vec![("AB".into(), "xyz".into()), ("C".into(), String::new())],
            withheld: Vec::new(),
            bash: command::find_bash(""),
            job_id: "j".into(),
            timeout: Duration::from_secs(1),
            grace: Duration::from_secs(1),
            redactor: Redactor::default(),
        };
        let refused = std::io::Error::from_raw_os_error(nix::libc::E2BIG);
        let SpawnError::TooBig { bytes, .. } = SpawnError::of(refused, &run) else {
            panic!("E2BIG is a job too big");
        };
        assert_eq!(bytes, ("AB=xyz".len() + 1) + ("C=".len() + 1));
        let other = std::io::Error::from_raw_os_error(nix::libc::ENOENT);
        assert!(matches!(
            SpawnError::of(other, &run),
            SpawnError::Other { .. }
        ));
    }
}
