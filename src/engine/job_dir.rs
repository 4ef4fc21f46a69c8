//! The directory of one job and its removal.
//!
//! Layout: `<jobs>/<job id>/` holds `workspace/` (the distribution copy, `$ATTINI_SOURCE_DIR`,
//! the commands' working directory), `input.json` (`$ATTINI_INPUT`), `output.json`
//! (`$ATTINI_OUTPUT`) and `script.sh`. The whole directory is removed when the job is done,
//! on every path: by [`JobDir::remove_now`] on a blocking thread after the job returned, or
//! by `Drop` if the job's future was dropped (cancellation) before that.

use std::io;
use std::path::{Path, PathBuf};

/// One job's directory; removed when dropped or by [`JobDir::remove_now`] (blocking both).
#[derive(Debug)]
pub struct JobDir {
    root: Option<PathBuf>,
}

impl JobDir {
    /// Creates `<jobs>/<job_id>/workspace/`: two `mkdir`s when `jobs` is there (the usual
    /// case; `create_dir_all` would try the innermost first and fail once), and the whole
    /// path otherwise (`jobs` removed meanwhile, say).
    pub fn create(jobs: &Path, job_id: &str) -> io::Result<Self> {
        let root = jobs.join(job_id);
        let workspace = root.join("workspace");
        let made = std::fs::create_dir(&root).and_then(|()| std::fs::create_dir(&workspace));
        if made.is_err() {
            std::fs::create_dir_all(&workspace)?;
        }
        Ok(JobDir { root: Some(root) })
    }

    /// Makes the whole layout at `root` (which must not exist): the workspace and the input,
    /// output, script and progress files, empty. Returns `root`; on an error whatever was made
    /// is removed again. Blocking.
    pub fn make_layout(root: &Path) -> io::Result<PathBuf> {
        std::fs::create_dir(root)?;
        let dir = JobDir::adopt(root.to_path_buf());
        std::fs::create_dir(dir.workspace())?;
        for file in [dir.input(), dir.output(), dir.script(), dir.progress()] {
            std::fs::File::create_new(file)?;
        }
        Ok(dir.into_path())
    }

    /// Takes charge of a directory made by [`JobDir::make_layout`] and renamed to `root`.
    pub fn adopt(root: PathBuf) -> Self {
        JobDir { root: Some(root) }
    }

    /// Gives the directory up without removing it.
    fn into_path(mut self) -> PathBuf {
        // Invariant: `root` is only taken here and by `drop`, and this consumes `self`.
        self.root.take().unwrap_or_default()
    }

    fn root(&self) -> &Path {
        // Invariant: `root` is only taken by `drop`.
        self.root.as_deref().unwrap_or(Path::new("."))
    }

    /// The distribution copy and default working directory.
    pub fn workspace(&self) -> PathBuf {
        self.root().join("workspace")
    }

    /// The `$ATTINI_INPUT` file.
    pub fn input(&self) -> PathBuf {
        self.root().join("input.json")
    }

    /// The `$ATTINI_OUTPUT` file.
    pub fn output(&self) -> PathBuf {
        self.root().join("output.json")
    }

    /// Where the script notes the start of each command ([`super::executor::progress`]).
    pub fn progress(&self) -> PathBuf {
        self.root().join("progress")
    }

    /// The generated script.
    pub fn script(&self) -> PathBuf {
        self.root().join("script.sh")
    }

    /// Removes the directory now, blocking (call it on a blocking thread); a failure is logged.
    pub fn remove_now(self) {
        drop(self);
    }
}

impl Drop for JobDir {
    fn drop(&mut self) {
        if let Some(root) = self.root.take()
            && let Err(e) = remove_tree(&root)
        {
            tracing::warn!(dir = %root.display(), error = %e, "could not remove the job directory");
        }
    }
}

/// Removes a tree, also when the job left read-only directories in it.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_writable(path);
            std::fs::remove_dir_all(path)
        }
        Err(e) => Err(e),
    }
}

fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode() | 0o700;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            make_writable(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The job's folder and its workspace are made whether the jobs folder is there or not
    /// (removed by hand under a running runner, say), and again for a job id already there.
    #[test]
    fn a_job_folder_is_made_with_or_without_its_parent_and_removed_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        for jobs in [tmp.path().to_path_buf(), tmp.path().join("gone/jobs")] {
            let dir = JobDir::create(&jobs, "j1").unwrap();
            assert!(dir.workspace().is_dir(), "{}", jobs.display());
            let again = JobDir::create(&jobs, "j1").unwrap();
            assert!(again.workspace().is_dir());
            drop(again);
            assert!(!jobs.join("j1").exists());
            drop(dir);
        }
    }

    /// What a non-root runner needs to remove a tree with read-only folders: every folder
    /// made writable again. Checked on the mode bits, which root sees as anyone does (root
    /// itself could remove the tree without this).
    #[test]
    fn read_only_folders_are_made_writable_before_removal() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let outer = tmp.path().join("outer");
        let inner = outer.join("inner");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(inner.join("f"), "x").unwrap();
        for dir in [&inner, &outer] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        }
        make_writable(&outer);
        for dir in [&outer, &inner] {
            let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
        remove_tree(&outer).unwrap();
        assert!(!outer.exists());
        assert!(
            remove_tree(&outer).is_ok(),
            "a missing tree counts as removed"
        );
    }

    /// Each file of the layout has its own name under the job's directory, so that removing
    /// the directory removes them all.
    #[test]
    fn the_layout_is_five_distinct_paths_under_the_job_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::create(tmp.path(), "j1").unwrap();
        let root = tmp.path().join("j1");
        let paths = [
            (dir.workspace(), "workspace"),
            (dir.input(), "input.json"),
            (dir.output(), "output.json"),
            (dir.progress(), "progress"),
            (dir.script(), "script.sh"),
        ];
        for (path, name) in &paths {
            assert_eq!(path, &root.join(name));
        }
        assert!(dir.workspace().is_dir());
    }

    /// A failure other than "not there" is an error (here the path is a file, not a tree).
    #[test]
    fn a_tree_that_cannot_be_removed_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let err = remove_tree(&file).expect_err("a file is not a tree");
        assert_ne!(err.kind(), io::ErrorKind::NotFound);
    }

    /// Without root, read-only folders refuse removal of what they hold (EACCES) until they
    /// are made writable again: run as an unprivileged user (`nobody`, in a forked child
    /// when the tests run as root, as they do in CI).
    #[test]
    fn an_unprivileged_runner_removes_a_tree_with_read_only_folders() {
        use nix::sys::wait::{WaitStatus, waitpid};
        use nix::unistd::{ForkResult, fork};
        use std::os::unix::fs::PermissionsExt;
        let work = |base: &Path| {
            let outer = base.join("outer");
            let inner = outer.join("inner");
            std::fs::create_dir_all(&inner).unwrap();
            std::fs::write(inner.join("f"), "x").unwrap();
            for dir in [&inner, &outer] {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap();
            }
            let direct = std::fs::remove_dir_all(&outer).expect_err("read-only folders");
            assert_eq!(direct.kind(), io::ErrorKind::PermissionDenied);
            remove_tree(&outer).unwrap();
            assert!(!outer.exists());
        };
        let tmp = tempfile::tempdir().unwrap();
        let root = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
        };
        if !root {
            return work(tmp.path());
        }
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        // Safety: the child only makes system calls and allocates (glibc keeps its allocator
        // usable in a forked child), then leaves with `_exit`, running nothing of the parent's.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let nobody = 65534;
                let dropped =
                    unsafe { nix::libc::setgid(nobody) == 0 && nix::libc::setuid(nobody) == 0 };
                let passed = dropped
                    && std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(tmp.path())))
                        .is_ok();
                unsafe { nix::libc::_exit(if passed { 0 } else { 1 }) }
            }
            ForkResult::Parent { child } => {
                let status = waitpid(child, None).unwrap();
                assert_eq!(
                    status,
                    WaitStatus::Exited(child, 0),
                    "the child as nobody failed"
                );
            }
        }
    }

    #[test]
    fn a_dropped_job_dir_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::create(tmp.path(), "j1").unwrap();
        std::fs::write(dir.workspace().join("f"), "x").unwrap();
        drop(dir);
        assert!(!tmp.path().join("j1").exists());
    }
}
