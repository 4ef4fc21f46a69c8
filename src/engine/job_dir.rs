//! The directory of one job and its removal.
//!
//! Layout: `<jobs>/<job id>/` holds `workspace/` (the distribution copy, `$ATTINI_SOURCE_DIR`,
//! the commands' working directory), `input.json` (`$ATTINI_INPUT`), `output.json`
//! (`$ATTINI_OUTPUT`) and `script.sh`. The whole directory is removed when the job is done,
//! on every path: explicitly by [`JobDir::remove`], or by `Drop` if the job's future was
//! dropped (cancellation) before that.

use std::io;
use std::path::{Path, PathBuf};

/// One job's directory; removed on drop unless [`JobDir::remove`] already did.
#[derive(Debug)]
pub struct JobDir {
    root: Option<PathBuf>,
}

impl JobDir {
    /// Creates `<jobs>/<job_id>/workspace/`.
    pub fn create(jobs: &Path, job_id: &str) -> io::Result<Self> {
        let root = jobs.join(job_id);
        std::fs::create_dir_all(root.join("workspace"))?;
        Ok(JobDir { root: Some(root) })
    }

    fn root(&self) -> &Path {
        // Invariant: `root` is only taken by `remove`, which consumes self.
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

    /// The generated script.
    pub fn script(&self) -> PathBuf {
        self.root().join("script.sh")
    }

    /// Removes the directory on a blocking thread.
    pub async fn remove(mut self) {
        if let Some(root) = self.root.take() {
            let shown = root.display().to_string();
            match tokio::task::spawn_blocking(move || remove_tree(&root)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(dir = shown, error = %e, "could not remove the job directory")
                }
                Err(e) => {
                    tracing::warn!(dir = shown, error = %e, "removing the job directory panicked")
                }
            }
        }
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

    #[test]
    fn removes_trees_with_read_only_folders() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::create(tmp.path(), "j1").unwrap();
        let locked = dir.workspace().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::write(locked.join("f"), "x").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
        drop(dir);
        assert!(!tmp.path().join("j1").exists());
    }
}
