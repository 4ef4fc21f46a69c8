//! Finding, signalling and reaping every process of one job.
//!
//! A job's processes are its process group (the job's bash leads it, so the group id is its
//! pid) plus any process that left the group (`setsid`, daemons) but still
//! carries the job's marker variable [`MARKER_VAR`] in its environment. Linux only: the
//! search reads `/proc`; elsewhere only the group is seen. The runner makes itself a child
//! subreaper ([`become_subreaper`]), so orphaned job processes become its children and are
//! reaped here rather than left as zombies; this also means only its descendants need their
//! environment read. Nothing here awaits; a scan blocks for at most a few milliseconds more
//! when a process is in the middle of `exec` (see `has_marker`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

#[cfg(target_os = "linux")]
use super::proctable;

/// Environment variable set on every job process, holding the job's unique id.
pub const MARKER_VAR: &str = "ATTINI_RUNNER_JOB_ID";

/// How long an empty environment of a live descendant is read again (it may be `exec`ing): 50 ms.
#[cfg(target_os = "linux")]
const EXEC_SETTLE: std::time::Duration = std::time::Duration::from_millis(50);

/// Whether [`become_subreaper`] succeeded: then every job process is a descendant of this
/// one and the marker search can skip the rest of the machine.
static SUBREAPER: AtomicBool = AtomicBool::new(false);

/// Makes orphaned descendants of this process its children (Linux `PR_SET_CHILD_SUBREAPER`),
/// so that they can be found and reaped. Harmless to call more than once.
pub fn become_subreaper() {
    #[cfg(target_os = "linux")]
    match nix::sys::prctl::set_child_subreaper(true) {
        Ok(()) => SUBREAPER.store(true, Ordering::Relaxed),
        Err(e) => {
            tracing::warn!(error = %e, "could not become a child subreaper; orphaned job processes are reaped by init instead")
        }
    }
}

/// Every job running under one engine: its group and marker, so that all of them can be
/// killed at once ([`ProcessTable::kill_all`]). Owned by the engine; no global state.
#[derive(Debug, Default)]
pub struct ProcessTable {
    running: Mutex<Vec<(i32, String)>>,
}

impl ProcessTable {
    /// Records a running job (undone by [`ProcessTable::forget`]).
    pub fn remember(&self, pgid: Pid, job_id: &str) {
        self.lock().push((pgid.as_raw(), job_id.to_string()));
    }

    /// Forgets a job whose processes are gone.
    pub fn forget(&self, pgid: Pid) {
        self.lock().retain(|(g, _)| *g != pgid.as_raw());
    }

    /// SIGKILL to every process of every running job: the last act of a runner told to stop
    /// at once (a second stop signal), so that no job outlives it.
    pub fn kill_all(&self) {
        let running = self.lock().clone();
        for (pgid, job_id) in running {
            let procs = JobProcesses::new(Pid::from_raw(pgid), &job_id);
            let live = procs.live(None);
            procs.signal(Signal::SIGKILL, &live);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(i32, String)>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One job's processes: its group and its marker.
#[derive(Debug)]
pub struct JobProcesses {
    /// Process group id (= pid of the job's bash).
    pub pgid: Pid,
    /// `ATTINI_RUNNER_JOB_ID=<id>` as it appears in `/proc/<pid>/environ`.
    marker: Vec<u8>,
    /// Processes found by their marker (pid and start time). One that is exiting or dead
    /// shows no environment any more, so it is remembered here until it is gone, to be waited
    /// for and reaped; the start time keeps a reused pid from being taken for it.
    by_marker: Mutex<BTreeMap<i32, u64>>,
}

impl JobProcesses {
    /// The processes of the job whose bash has pid `pgid` and whose marker value is `job_id`.
    pub fn new(pgid: Pid, job_id: &str) -> Self {
        JobProcesses {
            pgid,
            marker: format!("{MARKER_VAR}={job_id}").into_bytes(),
            by_marker: Mutex::default(),
        }
    }

    /// Processes of the job not yet gone, excluding `except` (the main child, which tokio
    /// waits for). Reaps zombies of the job that are our children on the way. A zombie that
    /// is not our child yet counts as not gone when this runner is the subreaper: its parent,
    /// killed with it, is still exiting, and the moment it has, the zombie is ours to reap (a
    /// job whose sweep ended before that left a zombie in its group).
    pub fn live(&self, except: Option<Pid>) -> Vec<Pid> {
        let subreaper = SUBREAPER.load(Ordering::Relaxed);
        let mut live = Vec::new();
        for (pid, zombie) in self.scan() {
            if Some(pid) == except {
                continue;
            }
            if zombie {
                // Ours: reaped now. Not ours (ECHILD): its parent may reap it, or it becomes
                // ours; the next scan tells.
                let reaped = matches!(
                    waitpid(pid, Some(WaitPidFlag::WNOHANG)),
                    Ok(status) if status != nix::sys::wait::WaitStatus::StillAlive
                );
                if !reaped && subreaper {
                    live.push(pid);
                }
            } else {
                live.push(pid);
            }
        }
        live
    }

    /// [`JobProcesses::live`] on a blocking thread: a scan reads `/proc` and may wait up to
    /// [`EXEC_SETTLE`] per process caught mid-`exec`, which must not hold a runtime thread.
    /// When this runner has no child at all (one `waitid` that does not block), none is left
    /// and no thread is woken.
    pub async fn live_off_runtime(self: &std::sync::Arc<Self>, except: Option<Pid>) -> Vec<Pid> {
        if self.none_left() {
            return Vec::new();
        }
        let procs = self.clone();
        tokio::task::spawn_blocking(move || procs.live(except))
            .await
            .unwrap_or_default()
    }

    /// Sends `signal` to the group and to each pid in `extra`.
    pub fn signal(&self, signal: Signal, extra: &[Pid]) {
        match killpg(self.pgid, signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => {
                tracing::warn!(pgid = self.pgid.as_raw(), error = %e, "signalling the job's process group failed")
            }
        }
        for pid in extra {
            let _ = kill(*pid, signal);
        }
    }

    #[cfg(target_os = "linux")]
    fn scan(&self) -> Vec<(Pid, bool)> {
        if self.none_left() {
            return Vec::new();
        }
        let subreaper = SUBREAPER.load(Ordering::Relaxed);
        let Some(table) = proctable::read_table() else {
            return self.group_only();
        };
        // Only this runner's descendants can carry the marker: a subreaper adopts the orphans
        // of its descendants, so a job process that left the group is still one of them.
        // Without the subreaper, orphans go to init and every process must be looked at.
        let candidates =
            subreaper.then(|| proctable::candidates(&table, std::process::id() as i32));
        let mut by_marker = self.by_marker.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = Vec::new();
        for stat in &table {
            let in_group = stat.pgrp == self.pgid.as_raw();
            let candidate = candidates.as_ref().is_none_or(|c| c.contains(&stat.pid));
            let marked =
                !in_group && candidate && self.has_marker(stat.pid, subreaper && !stat.zombie);
            if marked {
                by_marker.insert(stat.pid, stat.start);
            }
            // A marked process that is exiting or died has no environment to show: it stays
            // ours while the same process (pid and start time) is there.
            let remembered = by_marker.get(&stat.pid) == Some(&stat.start);
            if in_group || marked || remembered {
                found.push((Pid::from_raw(stat.pid), stat.zombie));
            }
        }
        by_marker.retain(|pid, start| {
            table
                .iter()
                .any(|stat| stat.pid == *pid && stat.start == *start)
        });
        found
    }

    #[cfg(not(target_os = "linux"))]
    fn scan(&self) -> Vec<(Pid, bool)> {
        self.group_only()
    }

    /// Whether no process of the job can be left: with the subreaper every job process
    /// descends from this one, so no child at all means none is left anywhere. One system
    /// call instead of reading every process, whenever no other job runs.
    fn none_left(&self) -> bool {
        #[cfg(target_os = "linux")]
        if SUBREAPER.load(Ordering::Relaxed) && proctable::no_children() {
            self.by_marker
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            return true;
        }
        false
    }

    /// Without `/proc`: the group as one opaque target, alive while `kill(-pgid, 0)` works.
    fn group_only(&self) -> Vec<(Pid, bool)> {
        match killpg(self.pgid, None) {
            Ok(()) => vec![(Pid::from_raw(-self.pgid.as_raw()), false)],
            Err(_) => Vec::new(),
        }
    }

    /// Whether `pid` carries this job's marker. A process in the middle of `exec` can show an
    /// empty environment for a moment; with `settle` (a live descendant of this runner, which
    /// always has an environment) an empty one is read again, every millisecond for up to
    /// [`EXEC_SETTLE`], rather than taken for "not ours".
    #[cfg(target_os = "linux")]
    fn has_marker(&self, pid: i32, settle: bool) -> bool {
        let deadline = std::time::Instant::now() + EXEC_SETTLE;
        loop {
            match std::fs::read(format!("/proc/{pid}/environ")) {
                Ok(env) if !env.is_empty() || !settle => {
                    return env
                        .split(|&b| b == 0)
                        .any(|var| var == self.marker.as_slice());
                }
                Ok(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::{CommandExt, ExitStatusExt};

    /// A `sleep` leading a process group of its own, as a job's bash does.
    fn job(id: &str) -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .env(MARKER_VAR, id)
            .spawn()
            .unwrap()
    }

    fn pid(child: &std::process::Child) -> Pid {
        Pid::from_raw(child.id() as i32)
    }

    /// `kill_all` sends SIGKILL to every job remembered and not forgotten. Each job gets a
    /// SIGTERM afterwards: the signal it died of tells whether `kill_all` reached it (a
    /// SIGKILL sent first wins), without waiting on a job it spared.
    #[test]
    fn kill_all_kills_the_jobs_remembered_and_spares_the_forgotten() {
        let (mut a, mut b, mut c) = (job("a"), job("b"), job("c"));
        let table = ProcessTable::default();
        table.remember(pid(&a), "a");
        table.remember(pid(&b), "b");
        table.remember(pid(&c), "c");
        table.forget(pid(&b));
        table.kill_all();
        let died_of = |child: &mut std::process::Child| {
            let _ = kill(pid(child), Signal::SIGTERM);
            child.wait().unwrap().signal()
        };
        assert_eq!(
            died_of(&mut a),
            Some(Signal::SIGKILL as i32),
            "a remembered"
        );
        assert_eq!(died_of(&mut b), Some(Signal::SIGTERM as i32), "b forgotten");
        assert_eq!(
            died_of(&mut c),
            Some(Signal::SIGKILL as i32),
            "c remembered"
        );
    }
}
