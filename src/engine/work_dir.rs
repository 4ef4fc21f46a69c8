//! The runner's own folder under the work directory, `run-<uuid>/`, claimed with a lock on
//! the file `run-<uuid>.lock` beside it for as long as the runner lives. At start the folders
//! of runners that are gone (their lock free, so a SIGKILLed runner's too) are removed, so
//! that killed runners do not fill the disk of a warm host; folders of live runners sharing
//! the work directory are left alone. The claim is released and the folder removed on drop.
//! Blocking file work, done once at start and exit; nothing to cancel.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::job_dir::remove_tree;

/// A folder without a lock file younger than this may be a runner starting right now.
const UNLOCKED_GRACE: Duration = Duration::from_secs(60);

/// This runner's claimed folder.
#[derive(Debug)]
pub struct WorkDir {
    root: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl WorkDir {
    /// Removes the folders of runners that are gone, then claims a new one in `work_dir`.
    pub fn claim(work_dir: &Path) -> io::Result<WorkDir> {
        std::fs::create_dir_all(work_dir)?;
        sweep(work_dir);
        let id = uuid::Uuid::new_v4();
        let name = format!("run-{id}");
        let lock_path = work_dir.join(format!("{name}.lock"));
        // Locked under a name no sweep looks at, then renamed into place: no other runner can
        // ever find this lock file unlocked and remove it.
        let claiming = work_dir.join(format!(".claiming-{id}"));
        let lock = File::create(&claiming)?;
        lock.lock()?;
        std::fs::rename(&claiming, &lock_path)?;
        let root = work_dir.join(name);
        std::fs::create_dir_all(&root)?;
        Ok(WorkDir {
            root,
            lock_path,
            _lock: lock,
        })
    }

    /// The claimed folder.
    pub fn path(&self) -> &Path {
        &self.root
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = remove_tree(&self.root) {
            tracing::warn!(dir = %self.root.display(), error = %e, "could not remove the runner's work directory");
        }
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

/// Removes every `run-*` folder whose runner is gone.
fn sweep(work_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(work_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("run-") || name.ends_with(".lock") {
            continue;
        }
        let lock_path = work_dir.join(format!("{name}.lock"));
        if is_gone(&entry.path(), &lock_path) {
            tracing::info!(dir = %entry.path().display(), "removing the folder of a runner that is gone");
            if let Err(e) = remove_tree(&entry.path()) {
                tracing::warn!(dir = %entry.path().display(), error = %e, "could not remove a stale runner folder");
            }
            let _ = std::fs::remove_file(&lock_path);
        }
    }
}

/// True when the folder's owner no longer holds its lock (or never made one, long ago).
fn is_gone(dir: &Path, lock_path: &Path) -> bool {
    match File::open(lock_path) {
        Ok(lock) => lock.try_lock().is_ok(),
        Err(_) => dir
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > UNLOCKED_GRACE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folders_of_gone_runners_are_removed_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let live = WorkDir::claim(tmp.path()).unwrap();
        std::fs::write(live.path().join("f"), "x").unwrap();
        // A runner that was SIGKILLed: its folder and an unlocked lock file are left.
        let dead = tmp.path().join("run-dead");
        std::fs::create_dir_all(dead.join("jobs/j1")).unwrap();
        File::create(tmp.path().join("run-dead.lock")).unwrap();
        let next = WorkDir::claim(tmp.path()).unwrap();
        assert!(!dead.exists(), "the dead runner's folder was kept");
        assert!(!tmp.path().join("run-dead.lock").exists());
        assert!(
            live.path().join("f").exists(),
            "a live runner's folder was removed"
        );
        // Each claim's lock file is held from the moment it has its name.
        for claim in [&live, &next] {
            let lock = File::open(&claim.lock_path).unwrap();
            assert!(lock.try_lock().is_err(), "{}", claim.lock_path.display());
        }
        let (live_path, next_path) = (live.path().to_path_buf(), next.path().to_path_buf());
        drop(live);
        drop(next);
        assert!(!live_path.exists() && !next_path.exists());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    /// The sweep looks at `run-*` folders only: other folders and the lock files themselves
    /// are left, however old.
    #[test]
    fn what_is_not_a_runner_folder_is_left_alone_however_old() {
        let tmp = tempfile::tempdir().unwrap();
        let live = WorkDir::claim(tmp.path()).unwrap();
        let other = tmp.path().join("cache");
        std::fs::create_dir_all(&other).unwrap();
        let stray = tmp.path().join("notes.lock");
        std::fs::write(&stray, "x").unwrap();
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        for path in [&other, &stray, &live.lock_path, &live.root] {
            File::open(path).unwrap().set_modified(hour_ago).unwrap();
        }
        let _next = WorkDir::claim(tmp.path()).unwrap();
        for path in [&other, &stray, &live.lock_path, &live.root] {
            assert!(path.exists(), "{} was removed", path.display());
        }
    }

    /// A folder without a lock file may be a runner starting right now: it is removed only
    /// once it is older than a minute.
    #[test]
    fn a_folder_without_a_lock_is_removed_only_once_a_minute_old() {
        let tmp = tempfile::tempdir().unwrap();
        let starting = tmp.path().join("run-starting");
        let abandoned = tmp.path().join("run-abandoned");
        for dir in [&starting, &abandoned] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        File::open(&abandoned)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let _claim = WorkDir::claim(tmp.path()).unwrap();
        assert!(starting.exists(), "a runner starting now lost its folder");
        assert!(!abandoned.exists(), "an abandoned folder was kept");
    }
}
