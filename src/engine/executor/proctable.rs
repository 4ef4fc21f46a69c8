//! Reading `/proc` for the sweep of [`procs`](super::procs): whether this process has any
//! child left, and the parent, group and state of every process. Linux only (the module is
//! compiled there alone). Blocking but short: one `waitid`, or one read per process; nothing
//! to cancel.

use std::collections::BTreeSet;

use nix::errno::Errno;
use nix::sys::wait::WaitPidFlag;
#[cfg(test)]
use nix::unistd::Pid;

/// True when this process has no child at all, running or exited and not yet reaped (of any
/// of its threads). Reaps nothing.
pub(super) fn no_children() -> bool {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stat {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub zombie: bool,
    /// Start time (clock ticks after boot): with the pid, names one process for good.
    pub start: u64,
}

/// Every process's [`Stat`]; `None` when `/proc` cannot be listed.
pub(super) fn read_table() -> Option<Vec<Stat>> {
    let dir = std::fs::read_dir("/proc").ok()?;
    Some(
        dir.flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(read_stat)
            .collect(),
    )
}

/// `/proc/<pid>/stat` in one read: the fields needed are the first 22, which 1 KiB always
/// holds (the command name is at most 64 bytes, a number at most 20 digits); `None` when the
/// process is gone.
fn read_stat(pid: i32) -> Option<Stat> {
    use std::io::Read;
    let mut buf = [0u8; 1024];
    let n = std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read(&mut buf)
        .ok()?;
    parse_stat(pid, buf.get(..n)?)
}

/// Parses the start of a stat line: `pid (comm) state ppid pgrp` and, 22nd, the start time.
fn parse_stat(pid: i32, line: &[u8]) -> Option<Stat> {
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let close = line.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(line.get(close + 1..)?).ok()?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    // Fields 6 to 21 (session ... itrealvalue) are not needed.
    let start = fields.nth(16)?.parse().ok()?;
    Some(Stat {
        pid,
        ppid,
        pgrp,
        zombie: state == "Z" || state == "X",
        start,
    })
}

/// The processes that may be a job's: those below `root` in the parent links of `table`, and
/// (with theirs) any whose parent is missing from it: a process read while its parent was
/// exiting may still name that parent, which the table no longer holds. Parent 0 is not
/// missing: it marks the roots of the system (init, kthreadd), never a job's process.
pub(super) fn candidates(table: &[Stat], root: i32) -> BTreeSet<i32> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: i32, ppid: i32) -> Stat {
        Stat {
            pid,
            ppid,
            pgrp: pid,
            zombie: false,
            start: 0,
        }
    }

    #[test]
    fn a_stat_line_with_spaces_and_parentheses_in_the_name_parses() {
        let line = b"4242 (my (odd) name) Z 17 4200 4200 0 -1 4194560 359 100 0 0 0 1 0 0 20 0 1 0 3271066 0 0";
        assert_eq!(
            parse_stat(4242, line),
            Some(Stat {
                pid: 4242,
                ppid: 17,
                pgrp: 4200,
                zombie: true,
                start: 3271066,
            })
        );
        assert_eq!(parse_stat(1, b"1 (init"), None, "a cut line is no stat");
        assert_eq!(
            parse_stat(1, b"1 (init) S 0 1 1 0 -1"),
            None,
            "a line without its start time is no stat"
        );
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
