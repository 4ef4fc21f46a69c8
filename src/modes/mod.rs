//! The modes of the one binary, each a small file that wires the shared parts: [`local`]
//! (one job file, no AWS), [`serve`] (standalone: native jobs from any state machine),
//! [`attini`] (as the Attini dispatcher starts it), [`command_mode`] (helpers jobs call).
//!
//! [`run`] is the one entry point: it reads the settings once, sets up logging and the async
//! runtime, installs the one signal handler and maps the mode's end to one [`ExitStatus`].
//! Cancellation: the first SIGTERM/SIGINT trips the shared shutdown token (local mode ends
//! its job, AWS modes drain); the second kills every job's processes and exits with 130.

mod admission;
pub mod attini;
mod aws_runner;
pub mod command_mode;
mod execution;
pub mod local;
pub mod logs;
mod observers;
mod recorded;
pub mod replay;
pub mod serve;
pub mod validate;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, Environment, Settings};
use crate::engine::Engine;
use crate::signals::StopSignals;

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: the job succeeded, or the runner stopped as asked (signal, idle TTL).
    Success,
    /// 1: the job failed, the runner could not start, or the queue cannot be used.
    Failure,
    /// 64: a bad job file, flag or setting (EX_USAGE).
    Usage,
    /// 65: `validate` found the job invalid (EX_DATAERR).
    InvalidJob,
    /// 66: `validate` could not read the job file (EX_NOINPUT).
    NoInput,
    /// 130: stopped at once by a second signal.
    Killed,
    /// 3: the runner is broken (jobs in a row failed on its side, or its start checks
    /// failed): ECS should replace the task.
    Broken,
    /// 69: `logs` or `replay` could not ask AWS (EX_UNAVAILABLE).
    Unavailable,
    /// 75: `logs` without `--follow` found the job still running (EX_TEMPFAIL).
    Pending,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 64,
            ExitStatus::InvalidJob => 65,
            ExitStatus::NoInput => 66,
            ExitStatus::Killed => 130,
            ExitStatus::Broken => 3,
            ExitStatus::Unavailable => 69,
            ExitStatus::Pending => 75,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

/// What the command line asked for.
#[derive(Debug, Clone)]
pub enum Mode {
    /// `local`: one job on this machine.
    Local(local::LocalArgs),
    /// `serve`: standalone mode.
    Serve(serve::ServeArgs),
    /// `<sfnToken> <requiredVersion>`: Attini mode.
    Attini {
        /// The start token.
        token: String,
        /// The lowest version the dispatcher accepts.
        required_version: String,
    },
    /// `command-mode ...`: the helpers jobs call.
    CommandMode(Vec<String>),
    /// `logs EXECUTION_ARN`: one execution's job lines.
    Logs(logs::LogsArgs),
    /// `replay EXECUTION_ARN`: a job of an execution run again here.
    Replay(replay::ReplayArgs),
}

/// What every mode shares for stopping: the shutdown token, tripped by the first stop signal
/// (or a test), the engine whose jobs a second signal kills, and the token that second
/// signal trips.
#[derive(Clone, Default)]
pub struct Stop {
    /// Tripped by the first SIGTERM/SIGINT.
    pub shutdown: CancellationToken,
    /// Tripped by the second: [`run`] ends the mode and exits with 130 through its usual
    /// path (the logs and traces are flushed).
    pub killed: CancellationToken,
    engine: Arc<Mutex<Option<Arc<Engine>>>>,
}

impl Stop {
    /// Names the engine whose jobs' processes a second signal kills.
    pub fn guard(&self, engine: Arc<Engine>) {
        *self.engine.lock().unwrap_or_else(|p| p.into_inner()) = Some(engine);
    }

    /// Watches SIGTERM and SIGINT: the first trips [`Stop::shutdown`]; the second kills every
    /// job's processes and trips [`Stop::killed`].
    pub fn watch_signals(&self) {
        // Installed before returning, so that no signal after this call meets the default
        // action (exit).
        let Ok(mut signals) = StopSignals::install() else {
            tracing::warn!("cannot watch SIGTERM/SIGINT; the runner stops only when killed");
            return;
        };
        let stop = self.clone();
        tokio::spawn(async move {
            signals.recv().await;
            tracing::info!("stop requested by signal; no new jobs are taken");
            stop.shutdown.cancel();
            signals.recv().await;
            tracing::warn!("second stop signal: killing the running jobs and exiting now");
            if let Some(engine) = stop
                .engine
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
            {
                engine.kill_all();
            }
            stop.killed.cancel();
        });
    }
}

/// Runs `mode` to its end: settings, logging, runtime, signals; returns the exit status.
pub fn run(mode: Mode) -> ExitStatus {
    let mode = match mode {
        Mode::CommandMode(args) => return with_runtime(command_mode::run(args)),
        other => other,
    };
    // Before any thread starts (the log writer's, the runtime's): see `crate::harden`.
    // SAFETY: no thread has started yet (`main` parsed the command line and called this).
    let hardening = unsafe { crate::harden::apply() };
    let env = Environment::capture();
    let settings = Settings::from_environment(env.clone());
    let default_level = if matches!(mode, Mode::Local(_) | Mode::Logs(_) | Mode::Replay(_)) {
        "warn"
    } else {
        "info"
    };
    let filter = settings.as_ref().ok().and_then(|s| s.log_filter.clone());
    // Held until the end of this function: dropping it flushes the buffered log lines.
    let _log = match crate::telemetry::init(filter.as_deref().unwrap_or(default_level), &env) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("attini-runner: {e}");
            return ExitStatus::Usage;
        }
    };
    hardening.log();
    let threads = match (&mode, &settings) {
        // TOKIO_WORKER_THREADS, when set, is the runtime's own choice.
        _ if env.non_empty("TOKIO_WORKER_THREADS").is_some() => None,
        (Mode::Serve(args), Ok(s)) => {
            Some(runtime_threads(args.max_jobs.unwrap_or(s.worker.max_jobs)))
        }
        (Mode::Attini { .. }, Ok(s)) => Some(runtime_threads(s.worker.max_jobs)),
        _ => Some(1),
    };
    with_runtime_threads(threads, async move {
        let stop = Stop::default();
        stop.watch_signals();
        let killed = stop.killed.clone();
        let work = async move {
            match mode {
                Mode::Local(args) => with_settings(settings, |s| local::run(args, s, stop)).await,
                Mode::Serve(args) => with_settings(settings, |s| serve::run(args, s, stop)).await,
                Mode::Logs(args) => with_settings(settings, |s| logs::run(args, s, stop)).await,
                Mode::Replay(args) => with_settings(settings, |s| replay::run(args, s, stop)).await,
                Mode::Attini {
                    token,
                    required_version,
                } => attini::run(token, required_version, settings, &env, stop).await,
                Mode::CommandMode(args) => command_mode::run(args).await,
            }
        };
        tokio::select! {
            status = work => status,
            _ = killed.cancelled() => {
                tracing::warn!("exiting now after the second stop signal");
                ExitStatus::Killed
            }
        }
    })
}

/// `attini-runner healthcheck`: 0 when the ops server at `addr` (else `ATTINI_OPS_ADDR`)
/// says the runner is alive or when the ops server is off (nothing to ask), 1 when it is not
/// alive or does not answer, 64 for a bad address.
pub fn healthcheck(addr: Option<std::net::SocketAddr>) -> ExitStatus {
    use crate::ops::check;
    let addr = match addr {
        Some(addr) => Some(addr),
        None => {
            let value = Environment::capture().non_empty(crate::config::OPS_ADDR.name);
            match crate::config::ops_addr(value) {
                Ok(addr) => addr,
                Err(e) => {
                    eprintln!("attini-runner: {e}");
                    return ExitStatus::Usage;
                }
            }
        }
    };
    let Some(addr) = addr else {
        // Nothing listens, so nothing can be asked; a health check that failed here would
        // have ECS replace healthy tasks forever.
        println!(
            "attini-runner: the ops server is off (ATTINI_OPS_ADDR=off): nothing to check, reported healthy"
        );
        return ExitStatus::Success;
    };
    match check::target(Some(addr)) {
        Ok(target) => with_runtime(async move {
            match check::livez(target).await {
                Ok(()) => ExitStatus::Success,
                Err(e) => {
                    eprintln!("attini-runner: unhealthy: {e}");
                    ExitStatus::Failure
                }
            }
        }),
        Err(e) => {
            eprintln!("attini-runner: {e}");
            ExitStatus::Failure
        }
    }
}

/// Runs `mode` with the settings, or says why they are bad (exit 64).
async fn with_settings<F, Fut>(settings: Result<Settings, ConfigError>, mode: F) -> ExitStatus
where
    F: FnOnce(Settings) -> Fut,
    Fut: Future<Output = ExitStatus>,
{
    match settings {
        Ok(settings) => mode(settings).await,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            eprintln!("attini-runner: {e}");
            ExitStatus::Usage
        }
    }
}

/// Job slots one runtime worker thread serves. The runtime's threads only move bytes between
/// AWS and the jobs (whose own processes do the work; their output and unpacking run on
/// threads of their own), so a runner of up to 8 slots has one: the same burst throughput and
/// handoff here as with two, and 0.35 MiB less resident (docs/benchmarks.md).
pub const SLOTS_PER_THREAD: usize = 8;

/// Worker threads for a runner of `slots` jobs at once: one per [`SLOTS_PER_THREAD`] slots,
/// at least one, at most the CPUs the runner may use.
pub fn runtime_threads(slots: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (1 + slots.saturating_sub(1) / SLOTS_PER_THREAD).clamp(1, cpus)
}

fn with_runtime(work: impl Future<Output = ExitStatus> + Send + 'static) -> ExitStatus {
    with_runtime_threads(None, work)
}

/// Runs `work` on a multi-thread runtime of `threads` workers (`None`: tokio's default, one
/// per CPU or `TOKIO_WORKER_THREADS`).
fn with_runtime_threads(
    threads: Option<usize>,
    work: impl Future<Output = ExitStatus> + Send + 'static,
) -> ExitStatus {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = threads {
        builder.worker_threads(threads);
    }
    match builder.build() {
        Ok(runtime) => {
            // On a worker, not this thread: the mode's loop then takes a received message to
            // its job's task on the same worker, with no wake-up of another thread between.
            let status = match runtime.block_on(runtime.spawn(work)) {
                Ok(status) => status,
                // A panic goes on as it would have on this thread.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => {
                    eprintln!("attini-runner: the runner's main task was cancelled: {e}");
                    ExitStatus::Failure
                }
            };
            // A job's output reader may still wait on a pipe that a stray process holds open:
            // do not wait for it at exit.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            status
        }
        Err(e) => {
            eprintln!("attini-runner: cannot start the async runtime: {e}");
            ExitStatus::Failure
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_thread_serves_eight_slots_within_the_cpus() {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        assert_eq!(runtime_threads(1), 1);
        assert_eq!(runtime_threads(8), 1);
        assert_eq!(runtime_threads(9), 2.min(cpus));
        assert_eq!(runtime_threads(100), 13.min(cpus));
        assert_eq!(runtime_threads(0), 1);
    }
}
