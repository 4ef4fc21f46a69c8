//! Finding, signalling and reaping every process of one job.
//!
//! A job's processes are its process group (the job's bash leads it, so the group id is its
//! pid) plus any process that left the group (`setsid`, daemons) but still
//! carries the job's marker variable [`MARKER_VAR`] in its environment. Linux only: the
//! search reads `/proc`; elsewhere only the group is seen. The runner makes itself a child
//! subreaper ([`become_subreaper`]), so orphaned job processes become its children and are
//! reaped here rather than left as zombies; this also means only its descendants need their
//! environment read. Nothing here blocks for long or awaits.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// Environment variable set on every job process, holding the job's unique id.
pub const MARKER_VAR: &str = "ATTINI_RUNNER_JOB_ID";

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
    /// Pids found by their marker. A process that dies becomes a zombie with an empty
    /// environ, so it is remembered here to be reaped.
    by_marker: Mutex<BTreeSet<i32>>,
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

    /// Live (non-zombie) processes of the job, excluding `except` (the main child, which
    /// tokio waits for). Reaps zombies of the job that are our children on the way.
    pub fn live(&self, except: Option<Pid>) -> Vec<Pid> {
        let mut live = Vec::new();
        for (pid, zombie) in self.scan() {
            if Some(pid) == except {
                continue;
            }
            if zombie {
                // Not our child (ECHILD) or already gone: nothing to do either way.
                let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
            } else {
                live.push(pid);
            }
        }
        live
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
        let subreaper = SUBREAPER.load(Ordering::Relaxed);
        // With the subreaper every job process descends from this one: no child at all means
        // none is left anywhere. One system call instead of reading every process, whenever
        // no other job runs.
        if subreaper && no_children() {
            self.by_marker
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            return Vec::new();
        }
        let Some(table) = read_table() else {
            return self.group_only();
        };
        // Only this runner's descendants can carry the marker: a subreaper adopts the orphans
        // of its descendants, so a job process that left the group is still one of them.
        // Without the subreaper, orphans go to init and every process must be looked at.
        let candidates = subreaper.then(|| candidates(&table, std::process::id() as i32));
        let mut by_marker = self.by_marker.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = Vec::new();
        for stat in &table {
            let in_group = stat.pgrp == self.pgid.as_raw();
            let candidate = candidates.as_ref().is_none_or(|c| c.contains(&stat.pid));
            let marked = !in_group && candidate && self.has_marker(stat.pid);
            if marked {
                by_marker.insert(stat.pid);
            }
            // A marked process that died shows as a zombie without its environ: keep it as
            // ours until reaped. A pid cannot be reused while its zombie exists.
            let remembered = stat.zombie && by_marker.contains(&stat.pid);
            if in_group || marked || remembered {
                found.push((Pid::from_raw(stat.pid), stat.zombie));
            }
        }
        by_marker.retain(|pid| found.iter().any(|(p, _)| p.as_raw() == *pid));
        found
    }

    #[cfg(not(target_os = "linux"))]
    fn scan(&self) -> Vec<(Pid, bool)> {
        self.group_only()
    }

    /// Without `/proc`: the group as one opaque target, alive while `kill(-pgid, 0)` works.
    fn group_only(&self) -> Vec<(Pid, bool)> {
        match killpg(self.pgid, None) {
            Ok(()) => vec![(Pid::from_raw(-self.pgid.as_raw()), false)],
            Err(_) => Vec::new(),
        }
    }

    #[cfg(target_os = "linux")]
    fn has_marker(&self, pid: i32) -> bool {
        std::fs::read(format!("/proc/{pid}/environ"))
            .map(|env| {
                env.split(|&b| b == 0)
                    .any(|var| var == self.marker.as_slice())
            })
            .unwrap_or(false)
    }
}

/// True when this process has no child at all, running or exited and not yet reaped (of any
/// of its threads). Reaps nothing.
#[cfg(target_os = "linux")]
fn no_children() -> bool {
    use nix::sys::wait::{Id, waitid};
    let flags = WaitPidFlag::WEXITED
        | WaitPidFlag::WSTOPPED
        | WaitPidFlag::WCONTINUED
        | WaitPidFlag::WNOHANG
        | WaitPidFlag::WNOWAIT
        | WaitPidFlag::__WALL;
    waitid(Id::All, flags) == Err(Errno::ECHILD)
}

/// What the scan needs of one process, from `/proc/<pid>/stat`.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    zombie: bool,
}

/// Every process's [`Stat`]; `None` when `/proc` cannot be listed.
#[cfg(target_os = "linux")]
fn read_table() -> Option<Vec<Stat>> {
    let dir = std::fs::read_dir("/proc").ok()?;
    Some(
        dir.flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(read_stat)
            .collect(),
    )
}

/// `/proc/<pid>/stat` in one read: the fields needed come first, so 256 bytes always hold
/// them (the command name is at most 64 bytes); `None` when the process is gone.
#[cfg(target_os = "linux")]
fn read_stat(pid: i32) -> Option<Stat> {
    use std::io::Read;
    let mut buf = [0u8; 256];
    let n = std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read(&mut buf)
        .ok()?;
    parse_stat(pid, buf.get(..n)?)
}

/// Parses the start of a stat line: `pid (comm) state ppid pgrp ...`.
#[cfg(target_os = "linux")]
fn parse_stat(pid: i32, line: &[u8]) -> Option<Stat> {
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let close = line.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(line.get(close + 1..)?).ok()?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some(Stat {
        pid,
        ppid,
        pgrp,
        zombie: state == "Z" || state == "X",
    })
}

/// The processes that may be a job's: those below `root` in the parent links of `table`, and
/// (with theirs) any whose parent is missing from it: a process read while its parent was
/// exiting may still name that parent, which the table no longer holds. Parent 0 is not
/// missing: it marks the roots of the system (init, kthreadd), never a job's process.
#[cfg(target_os = "linux")]
fn candidates(table: &[Stat], root: i32) -> BTreeSet<i32> {
    let known: BTreeSet<i32> = table.iter().map(|s| s.pid).collect();
    let mut found: BTreeSet<i32> = table
        .iter()
        .filter(|s| s.ppid != 0 && !known.contains(&s.ppid))
        .map(|s| s.pid)
        .collect();
    let mut frontier: Vec<i32> = found.iter().copied().chain([root]).collect();
    while let Some(parent) = frontier.pop() {
        for stat in table.iter().filter(|s| s.ppid == parent) {
            if found.insert(stat.pid) {
                frontier.push(stat.pid);
            }
        }
    }
    found
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn stat(pid: i32, ppid: i32) -> Stat {
        Stat {
            pid,
            ppid,
            pgrp: pid,
            zombie: false,
        }
    }

    #[test]
    fn a_stat_line_with_spaces_and_parentheses_in_the_name_parses() {
        let line = b"4242 (my (odd) name) Z 17 4200 4200 0 -1 4194560 100 0";
        assert_eq!(
            parse_stat(4242, line),
            Some(Stat {
                pid: 4242,
                ppid: 17,
                pgrp: 4200,
                zombie: true
            })
        );
        assert_eq!(parse_stat(1, b"1 (init"), None, "a cut line is no stat");
    }

    #[test]
    fn candidates_are_the_descendants_at_any_depth_and_nothing_else() {
        let table = [
            stat(1, 0),
            stat(10, 1),
            stat(11, 10),
            stat(12, 11),
            stat(13, 12),
            stat(20, 1),
            stat(21, 20),
        ];
        assert_eq!(
            candidates(&table, 10),
            BTreeSet::from([11, 12, 13]),
            "the root itself, its parents and other trees are not included"
        );
        assert!(candidates(&table, 13).is_empty());
    }

    #[test]
    fn a_process_whose_parent_is_gone_is_a_candidate_with_its_children() {
        // 30 was read while its parent 25 was exiting; 25 was gone by the time it was read.
        let table = [stat(1, 0), stat(10, 1), stat(30, 25), stat(31, 30)];
        assert_eq!(candidates(&table, 10), BTreeSet::from([30, 31]));
    }

    #[test]
    fn a_child_is_seen_until_it_is_reaped() {
        // Other tests of this binary may have children of their own: only the direction
        // while this one's child exists is certain.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(!no_children(), "a running child");
        child.kill().unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        // Waits for the exit without reaping it.
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
        nix::sys::wait::waitid(nix::sys::wait::Id::Pid(pid), flags).unwrap();
        assert!(
            !no_children(),
            "an exited child not yet reaped is still one"
        );
        child.wait().unwrap();
    }

    #[test]
    fn this_process_reads_its_own_stat() {
        let me = std::process::id() as i32;
        let stat = read_stat(me).expect("own stat");
        assert_eq!(stat.pid, me);
        assert_eq!(stat.ppid, nix::unistd::getppid().as_raw());
        assert_eq!(stat.pgrp, nix::unistd::getpgrp().as_raw());
        assert!(!stat.zombie);
    }
}
