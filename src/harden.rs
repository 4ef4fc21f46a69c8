//! Keeps a job out of the runner's memory and environment:
//!
//! - the runner process is made non-dumpable: its `/proc/<pid>/mem`, `environ` and `fd` then
//!   need `CAP_SYS_PTRACE` to open (for a root runner, some kernels still let another root
//!   process read `environ`);
//! - `CAP_SYS_PTRACE` is dropped from every capability set, the bounding set included, so that
//!   no job process, even one running as root, can gain it;
//! - the environment the runner was started with (what `/proc/<pid>/environ` shows, whoever
//!   reads it) is moved to the heap and its original bytes are zeroed.
//!
//! Must run on the main thread before any other thread starts: capabilities are per thread
//! and inherited by threads created later, and the environment may only be changed while no
//! other thread reads it. Synchronous; nothing to cancel.

use caps::{CapSet, Capability};

/// What [`apply`] achieved, for the log once logging is up.
#[derive(Debug)]
pub struct Hardening {
    /// `Err`: why the process is still dumpable.
    pub non_dumpable: Result<(), HardenError>,
    /// `Err`: why a job could still hold `CAP_SYS_PTRACE`.
    pub no_ptrace: Result<(), HardenError>,
    /// `Err`: why `/proc/<pid>/environ` still shows the start environment.
    pub environ_scrubbed: Result<(), HardenError>,
}

/// Why one of the guards could not be put up.
#[derive(Debug, thiserror::Error)]
pub enum HardenError {
    /// `prctl(PR_SET_DUMPABLE)` failed.
    #[error("prctl(PR_SET_DUMPABLE, 0) failed: {0}")]
    Dumpable(#[source] nix::Error),
    /// A capability set could not be changed.
    #[error("could not drop CAP_SYS_PTRACE from the {set:?} set: {source}")]
    Capability {
        /// The set.
        set: CapSet,
        /// The system's answer.
        #[source]
        source: caps::errors::CapsError,
    },
    /// Without CAP_SETPCAP the bounding set keeps it.
    #[error(
        "CAP_SYS_PTRACE stays in the bounding set ({0}): a job running a program with file capabilities could still gain it"
    )]
    Bounding(#[source] caps::errors::CapsError),
    /// `/proc/self/stat` could not be read.
    #[error("cannot read /proc/self/stat: {0}")]
    Stat(#[source] std::io::Error),
    /// It lacks the start environment's bounds.
    #[error("/proc/self/stat gives no start environment (fields 50 and 51)")]
    NoEnvironArea,
    /// Some variables were not moved off the start environment.
    #[error("{0} variables still point into the start environment; it is left as it was")]
    StillInside(usize),
}

/// Makes the process non-dumpable, drops `CAP_SYS_PTRACE` and scrubs the start environment;
/// see the module documentation.
///
/// # Safety
///
/// No other thread may exist yet (it would read the environment while it is rewritten).
pub unsafe fn apply() -> Hardening {
    let non_dumpable = nix::sys::prctl::set_dumpable(false).map_err(HardenError::Dumpable);
    Hardening {
        non_dumpable,
        no_ptrace: drop_ptrace(),
        // SAFETY: the caller promises no other thread exists.
        environ_scrubbed: unsafe { scrub_environ() },
    }
}

/// Copies every variable to the heap (`setenv` allocates a new `NAME=value` and repoints
/// `environ` at it), then zeroes the strings the kernel placed at the process's start, the
/// bytes `/proc/<pid>/environ` reads (`env_start`..`env_end` of `/proc/self/stat`).
///
/// # Safety
///
/// No other thread may exist yet.
#[allow(clippy::disallowed_methods)] // It rewrites the environment itself, before it is read.
unsafe fn scrub_environ() -> Result<(), HardenError> {
    let (start, end) = environ_area()?;
    let vars: Vec<_> = std::env::vars_os().collect();
    for (name, value) in &vars {
        // SAFETY: single-threaded (the caller's promise).
        unsafe { std::env::set_var(name, value) };
    }
    // Every entry of `environ` must now point outside the area, or zeroing would empty it.
    // SAFETY: single-threaded; `environ` is the C library's null-terminated array.
    let inside = unsafe {
        let mut entry = nix::libc::environ as *const *const nix::libc::c_char;
        let mut inside = 0;
        while !entry.is_null() && !(*entry).is_null() {
            inside += usize::from((start..end).contains(&(*entry as usize)));
            entry = entry.add(1);
        }
        inside
    };
    if inside > 0 {
        return Err(HardenError::StillInside(inside));
    }
    // SAFETY: `start..end` is this process's own start environment, mapped writable on its
    // stack by the kernel; after the loop above nothing refers to it any more.
    unsafe { std::ptr::write_bytes(start as *mut u8, 0, end - start) };
    Ok(())
}

/// `env_start` and `env_end` (fields 50 and 51 of `/proc/self/stat`).
fn environ_area() -> Result<(usize, usize), HardenError> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(HardenError::Stat)?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<usize>().ok());
    match (field(50), field(51)) {
        (Some(start), Some(end)) if start > 0 && end > start => Ok((start, end)),
        _ => Err(HardenError::NoEnvironArea),
    }
}

fn drop_ptrace() -> Result<(), HardenError> {
    let cap = Capability::CAP_SYS_PTRACE;
    // Ambient first (it needs the capability in the inheritable set), the bounding set while
    // CAP_SETPCAP is still effective.
    let bounding = caps::drop(None, CapSet::Bounding, cap);
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        caps::drop(None, set, cap).map_err(|source| HardenError::Capability { set, source })?;
    }
    match bounding {
        Ok(()) => Ok(()),
        // Without CAP_SETPCAP (a non-root runner) the bounding set cannot shrink; only a
        // program with file capabilities could then gain it.
        Err(e) => match caps::has_cap(None, CapSet::Bounding, cap) {
            Ok(false) => Ok(()),
            _ => Err(HardenError::Bounding(e)),
        },
    }
}

impl Hardening {
    /// Logs what could not be done (at WARN) or that all was done (at DEBUG).
    pub fn log(&self) {
        match (&self.non_dumpable, &self.no_ptrace, &self.environ_scrubbed) {
            (Ok(()), Ok(()), Ok(())) => tracing::debug!(
                "runner process is non-dumpable, CAP_SYS_PTRACE is dropped and the start environment scrubbed: jobs cannot read its memory or environment"
            ),
            (dumpable, ptrace, environ) => tracing::warn!(
                dumpable = dumpable.as_ref().err().map(ToString::to_string),
                ptrace = ptrace.as_ref().err().map(ToString::to_string),
                environ = environ.as_ref().err().map(ToString::to_string),
                "jobs might read the runner's memory or environment"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_environ_area_is_where_the_start_environment_lies() {
        let (start, end) = super::environ_area().unwrap();
        assert!(start > 0 && end > start, "{start}..{end}");
        // The kernel shows the same bytes as /proc/self/environ.
        let environ = std::fs::read("/proc/self/environ").unwrap();
        assert_eq!(end - start, environ.len());
        use std::io::{Read, Seek, SeekFrom};
        let mut mem = std::fs::File::open("/proc/self/mem").unwrap();
        mem.seek(SeekFrom::Start(start as u64)).unwrap();
        let mut area = vec![0u8; end - start];
        mem.read_exact(&mut area).unwrap();
        assert_eq!(area, environ);
    }

    #[test]
    fn after_apply_no_capability_set_holds_ptrace() {
        // Runs on a thread of its own: capabilities are per thread, and the others stay as
        // they were.
        std::thread::spawn(|| {
            let _ = super::drop_ptrace();
            for set in [
                caps::CapSet::Effective,
                caps::CapSet::Permitted,
                caps::CapSet::Inheritable,
                caps::CapSet::Ambient,
            ] {
                assert_eq!(
                    caps::has_cap(None, set, caps::Capability::CAP_SYS_PTRACE).ok(),
                    Some(false),
                    "{set:?}"
                );
            }
        })
        .join()
        .unwrap();
    }
}
