//! The jobs folder, with job directories made ahead of time.
//!
//! A job's directory ([`JobDir`]) is two `mkdir`s and three new files; on ext4 here that is
//! 0.2 to 0.5 ms on the path from a message's receipt to the job's first command. [`JobDirs`]
//! keeps up to [`SPARES`] directories of that layout made in the background (`.spare-<n>`,
//! never a job's name: job ids are UUIDs), so that a job's directory is one `rename`. They are
//! made when the runner starts and after each job's directory is removed, in that same trip to
//! a blocking thread ([`JobDirs::release`]), so spares cost no extra thread wake-up. A spare is
//! always made new, never a finished job's directory emptied: no process a job left behind can
//! hold a file of a later job's directory. With no spare ready (the first job, a burst, no
//! runtime, a spare that cannot be made) the directory is made on the spot, as ever.
//!
//! Cancellation: the making of spares runs on the engine's cleanup tracker, so
//! `Engine::settled` waits for it; the spares are removed with the run's work directory.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::task::TaskTracker;

use super::job_dir::JobDir;

/// How a spare directory's name begins (a dot and then `spare-<n>`).
pub const SPARE_PREFIX: &str = ".spare-";

/// How many spare directories are kept ready: 2. One covers a runner taking one job at a
/// time; in a burst a taken spare is replaced as soon as any job's directory is removed.
pub const SPARES: usize = 2;

/// The jobs folder and its spares; see the module documentation.
#[derive(Debug)]
pub struct JobDirs {
    jobs: PathBuf,
    spares: Arc<Spares>,
    cleanup: TaskTracker,
}

#[derive(Debug, Default)]
struct Spares {
    state: Mutex<State>,
    next: AtomicU64,
    wanted: usize,
}

#[derive(Debug, Default)]
struct State {
    ready: Vec<PathBuf>,
    making: usize,
}

impl JobDirs {
    /// The jobs folder `jobs` (already there), keeping `wanted` spares made on `cleanup`;
    /// starts making them when called inside a Tokio runtime.
    pub fn new(jobs: PathBuf, wanted: usize, cleanup: TaskTracker) -> Self {
        let spares = Arc::new(Spares {
            wanted,
            ..Spares::default()
        });
        let dirs = JobDirs {
            jobs,
            spares,
            cleanup,
        };
        dirs.refill();
        dirs
    }

    /// The jobs folder.
    pub fn path(&self) -> &Path {
        &self.jobs
    }

    /// The directory of job `job_id`: a spare renamed when one is ready, else made now
    /// ([`JobDir::create`]). Blocking, briefly (one `rename`, or the `mkdir`s).
    pub fn create(&self, job_id: &str) -> io::Result<JobDir> {
        let root = self.jobs.join(job_id);
        let spare = self.spares.lock().ready.pop();
        let taken = spare.and_then(|spare| match std::fs::rename(&spare, &root) {
            Ok(()) => Some(JobDir::adopt(root)),
            Err(e) => {
                // Only when `job_id` already has a directory: that one is reused below, as
                // without spares, and the spare stays for the next job.
                tracing::debug!(spare = %spare.display(), error = %e, "a spare job directory was not used");
                self.spares.lock().ready.push(spare);
                None
            }
        });
        match taken {
            Some(dir) => Ok(dir),
            None => JobDir::create(&self.jobs, job_id),
        }
    }

    /// Removes a job's directory on a blocking thread of the cleanup tracker, and then makes
    /// the spares that are missing.
    pub fn release(&self, dir: JobDir) {
        let (spares, jobs) = (self.spares.clone(), self.jobs.clone());
        self.cleanup.spawn_blocking(move || {
            dir.remove_now();
            spares.fill(&jobs);
        });
    }

    /// Makes spares on a blocking thread (when inside a Tokio runtime).
    fn refill(&self) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let (spares, jobs) = (self.spares.clone(), self.jobs.clone());
        self.cleanup.spawn_blocking(move || spares.fill(&jobs));
    }
}

impl Spares {
    /// Makes spares in `jobs` until `wanted` are ready or being made. Blocking. A spare that
    /// cannot be made (a full disk, say) ends it: the next job makes its own directory, and
    /// meets the error itself if there is one.
    fn fill(&self, jobs: &Path) {
        while self.claim() {
            let name = format!(
                "{SPARE_PREFIX}{}",
                self.next.fetch_add(1, Ordering::Relaxed)
            );
            let made = JobDir::make_layout(&jobs.join(name));
            let mut state = self.lock();
            state.making -= 1;
            match made {
                Ok(path) => state.ready.push(path),
                Err(e) => {
                    drop(state);
                    tracing::debug!(error = %e, "could not make a spare job directory");
                    return;
                }
            }
        }
    }

    /// Counts one more spare as being made, unless enough are ready or being made.
    fn claim(&self) -> bool {
        let mut state = self.lock();
        if state.ready.len() + state.making >= self.wanted {
            return false;
        }
        state.making += 1;
        true
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves only a list of paths: still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn spares_in(jobs: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(jobs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(SPARE_PREFIX))
            .collect();
        names.sort();
        names
    }

    async fn settle(tracker: &TaskTracker) {
        tracker.close();
        tracker.wait().await;
        tracker.reopen();
    }

    /// Spares are made in the background, a job takes one (its layout already there: the
    /// workspace and four empty files), and the taken one is replaced when the job's directory
    /// is removed.
    #[tokio::test]
    async fn a_job_takes_a_spare_directory_and_it_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let tracker = TaskTracker::new();
        let dirs = JobDirs::new(tmp.path().to_path_buf(), 2, tracker.clone());
        settle(&tracker).await;
        let before = spares_in(tmp.path());
        assert_eq!(before.len(), 2, "{before:?}");
        let dir = dirs.create("j1").unwrap();
        assert!(dir.workspace().is_dir());
        for file in [dir.input(), dir.output(), dir.script(), dir.progress()] {
            assert_eq!(std::fs::read(&file).unwrap(), b"", "{}", file.display());
        }
        let left = spares_in(tmp.path());
        assert_eq!(
            left.len(),
            1,
            "one spare was renamed into the job's: {left:?}"
        );
        settle(&tracker).await;
        assert_eq!(
            spares_in(tmp.path()),
            left,
            "replaced only once the job is done"
        );
        dirs.release(dir);
        settle(&tracker).await;
        assert!(!tmp.path().join("j1").exists());
        let after = spares_in(tmp.path());
        assert_eq!(after.len(), 2, "the taken spare was replaced: {after:?}");
        assert!(
            after
                .iter()
                .all(|n| !before.contains(n) || left.contains(n)),
            "{before:?} -> {after:?}"
        );
    }

    /// A later job never gets a file an earlier job's process still holds open: each spare
    /// is new, not a finished job's directory emptied.
    #[tokio::test]
    async fn a_file_held_open_from_a_finished_job_is_not_the_next_jobs() {
        let tmp = tempfile::tempdir().unwrap();
        let tracker = TaskTracker::new();
        let dirs = JobDirs::new(tmp.path().to_path_buf(), 1, tracker.clone());
        settle(&tracker).await;
        let first = dirs.create("j1").unwrap();
        let mut held = std::fs::OpenOptions::new()
            .append(true)
            .open(first.output())
            .unwrap();
        dirs.release(first);
        for n in 2..5 {
            settle(&tracker).await;
            let next = dirs.create(&format!("j{n}")).unwrap();
            held.write_all(b"{\"leaked\":true}").unwrap();
            assert_eq!(std::fs::read(next.output()).unwrap(), b"", "job {n}");
            dirs.release(next);
        }
    }

    /// With no spare wanted the directory is made on the spot; a job whose directory is
    /// already there reuses it, and the spare stays for the next.
    #[tokio::test]
    async fn without_a_spare_or_with_the_directory_there_the_job_still_gets_its_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let plain = JobDirs::new(tmp.path().join("none"), 0, TaskTracker::new());
        std::fs::create_dir(plain.path()).unwrap();
        assert!(plain.create("j1").unwrap().workspace().is_dir());

        let tracker = TaskTracker::new();
        let dirs = JobDirs::new(tmp.path().to_path_buf(), 1, tracker.clone());
        settle(&tracker).await;
        std::fs::create_dir_all(tmp.path().join("j2/workspace")).unwrap();
        std::fs::write(tmp.path().join("j2/workspace/kept"), "x").unwrap();
        let dir = dirs.create("j2").unwrap();
        assert!(dir.workspace().join("kept").is_file());
        assert_eq!(spares_in(tmp.path()).len(), 1);
    }
}
