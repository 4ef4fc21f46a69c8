//! Supervision of one running job: wait for its bash to exit, its timeout, or cancellation;
//! then make sure no process of the job survives.
//!
//! Ending a job: SIGTERM to every process of the job (see [`procs`](super::procs)), up to
//! `grace` for them to go, then SIGKILL to whatever is left. The same sweep runs after a job
//! that exited by itself, so background processes never outlive their job in a warm runner.
//! Cancellation through the token is a request to end the job this way; dropping the future
//! instead leaves `kill_on_drop` on the child as the only backstop.

use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use super::procs::JobProcesses;

/// How often the sweep looks for remaining processes.
const POLL: Duration = Duration::from_millis(25);

/// How long to wait for processes to disappear after SIGKILL before giving up on them
/// (a process in uninterruptible sleep can take this long).
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Why the job's bash stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal number, not by us.
    Signaled(i32),
    /// The job timeout fired after this long and the runner ended the job.
    TimedOut(Duration),
    /// The job was cancelled (drain, Step Functions cancel) and the runner ended it.
    Cancelled,
}

/// What the sweep had to do after (or to end) the job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Processes of the job still running when the sweep began (besides its bash).
    pub found: usize,
    /// Processes that were still there after the grace period and got SIGKILL.
    pub killed: usize,
    /// Processes that survived even SIGKILL (should be zero; logged as an error).
    pub survivors: usize,
}

/// Waits for the job to end by itself, time out or be cancelled, then sweeps its processes.
pub async fn supervise(
    mut child: Child,
    procs: &Arc<JobProcesses>,
    job_timeout: Duration,
    grace: Duration,
    cancel: &CancellationToken,
) -> (Termination, Sweep) {
    let main = child.id().map(|id| Pid::from_raw(id as i32));
    let waited = tokio::select! {
        status = child.wait() => Some(status),
        _ = sleep(job_timeout) => None,
        _ = cancel.cancelled() => None,
    };
    match waited {
        Some(status) => {
            let termination = from_status(status.ok());
            let sweep = sweep(&mut child, procs, None, grace).await;
            (termination, sweep)
        }
        None => {
            let termination = if cancel.is_cancelled() {
                Termination::Cancelled
            } else {
                Termination::TimedOut(job_timeout)
            };
            let sweep = sweep(&mut child, procs, main, grace).await;
            (termination, sweep)
        }
    }
}

/// SIGTERM everything of the job, wait up to `grace`, SIGKILL the rest, wait until gone.
/// `main` is the job's bash when it is still running (it counts as found but is reaped
/// through `child`, never by the sweep).
async fn sweep(
    child: &mut Child,
    procs: &Arc<JobProcesses>,
    main: Option<Pid>,
    grace: Duration,
) -> Sweep {
    let others = procs.live_off_runtime(main).await;
    let mut result = Sweep {
        found: others.len(),
        ..Sweep::default()
    };
    if others.is_empty() && main.is_none() {
        return result;
    }
    procs.signal(Signal::SIGTERM, &others);
    let remaining = wait_gone(child, procs, main, grace).await;
    if remaining.is_empty() {
        return result;
    }
    result.killed = remaining.len();
    procs.signal(Signal::SIGKILL, &remaining);
    let survivors = wait_gone(child, procs, main, KILL_WAIT).await;
    result.survivors = survivors.len();
    if !survivors.is_empty() {
        tracing::error!(pids = ?survivors, "job processes survived SIGKILL");
    }
    result
}

/// Waits up to `limit` for the job's processes (and its bash, if `main`) to be gone;
/// returns those still alive then (the bash counted as one entry while it runs).
async fn wait_gone(
    child: &mut Child,
    procs: &Arc<JobProcesses>,
    main: Option<Pid>,
    limit: Duration,
) -> Vec<Pid> {
    let deadline = Instant::now() + limit;
    loop {
        let mut alive = procs.live_off_runtime(main).await;
        if let Some(pid) = main
            && matches!(child.try_wait(), Ok(None))
        {
            alive.push(pid);
        }
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        sleep(POLL).await;
    }
}

/// Waits for the output reader to finish, at most `limit`.
pub async fn join_within<T>(handle: tokio::task::JoinHandle<T>, limit: Duration) -> Option<T> {
    let abort = handle.abort_handle();
    match timeout(limit, handle).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(_)) => None,
        Err(_) => {
            abort.abort();
            None
        }
    }
}

fn from_status(status: Option<ExitStatus>) -> Termination {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => Termination::Exited(code),
            (None, Some(signal)) => Termination::Signaled(signal),
            (None, None) => Termination::Exited(-1),
        },
        None => Termination::Exited(-1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// A status with an exit code or a signal is reported as such; one with neither (a
    /// stopped process's wait status) or none at all (the wait failed) as exit code -1.
    #[test]
    fn an_exit_status_without_code_or_signal_is_exit_code_minus_one() {
        let raw = ExitStatus::from_raw;
        assert_eq!(from_status(Some(raw(3 << 8))), Termination::Exited(3));
        assert_eq!(from_status(Some(raw(9))), Termination::Signaled(9));
        // 0x137f: stopped by SIGSTOP (19), neither exited nor killed.
        assert_eq!(from_status(Some(raw(0x137f))), Termination::Exited(-1));
        assert_eq!(from_status(None), Termination::Exited(-1));
    }
}
