//! Workspace caches (a job's `workspaceCaches`): a folder of the job's working directory, such
//! as `node_modules`, kept between jobs in the job's home (see [`super::homes`]) and put back
//! before the commands start while its key files (`package-lock.json`) are unchanged.
//!
//! - Kept only after a job whose commands all succeeded, so a folder an interrupted or failed
//!   install left half-written never comes back.
//! - Keyed by the SHA-256 of the key files' names and contents as they are when the job ends
//!   (what the folder was made from); a job whose key files differ starts without it.
//! - Moved, never copied: the home and the job's directory are in the runner's own folder,
//!   on one volume, so putting a folder back or keeping it is one `rename` each way. A home
//!   keeps one folder per path, its newest.
//! - The home is the job's alone while it runs, so no other job sees the folder meanwhile.
//!
//! Each step is a few file-system calls on a blocking thread. Cancellation: a job dropped
//! while its folder is being moved lets the move finish; what it moved goes with the job's
//! directory or stays in the home, and nothing is kept from a job that did not end.

use std::io;
use std::path::{Path, PathBuf};

use sha2::Digest;
use tokio_util::task::TaskTracker;

use crate::job::WorkspaceCache;

/// Where a home keeps its workspace caches, relative to the home.
pub const IN_HOME: &str = ".cache/attini-runner/workspace";

/// The folder of `home` that keeps the workspace cache of `path`: named by the SHA-256 of
/// the path (16 hex digits), holding `key` and `folder`.
pub fn entry(home: &Path, path: &str) -> PathBuf {
    home.join(IN_HOME)
        .join(hex(&sha2::Sha256::digest(path.as_bytes())[..8]))
}

/// What became of one workspace cache before or after a job.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Put back into the working directory, or kept in the home.
    Done,
    /// Not put back or not kept, and why (a sentence for the log).
    Skipped(String),
}

/// The workspace caches of `job` that apply where it runs: all of them when it runs in its
/// own `workspace` (`cwd` inside it), none elsewhere (`RunOptions::cwd`: a folder that is
/// not the job's, whose own `node_modules` must never be moved away), with a warning.
pub fn applying(job: &crate::job::JobSpec, cwd: &Path, workspace: &Path) -> Vec<WorkspaceCache> {
    if job.workspace_caches.is_empty() || cwd.starts_with(workspace) {
        return job.workspace_caches.clone();
    }
    tracing::warn!(
        cwd = %cwd.display(),
        "workspaceCaches are ignored: the job runs outside a workspace of its own (give it a distribution)"
    );
    Vec::new()
}

/// Puts back each cache of `caches` whose key files in `cwd` match what `home` keeps.
pub async fn restore(home: &Path, cwd: &Path, caches: &[WorkspaceCache]) {
    for (path, step) in each(home, cwd, caches, restore_one).await {
        match step {
            Step::Done => tracing::info!(path, "workspace cache put back"),
            Step::Skipped(why) => tracing::info!(path, why, "workspace cache not put back"),
        }
    }
}

/// Keeps each cache of `caches` found in `cwd` in `home`, replacing what the home kept for
/// it; the replaced folders are removed on `cleanup`, after the job's answer.
pub async fn keep(home: &Path, cwd: &Path, caches: &[WorkspaceCache], cleanup: &TaskTracker) {
    for (path, kept) in each(home, cwd, caches, keep_one).await {
        match kept {
            Ok((step, stale)) => {
                if let Some(stale) = stale {
                    cleanup.spawn_blocking(move || super::job_dir::remove_tree(&stale));
                }
                match step {
                    Step::Done => tracing::info!(path, "workspace cache kept"),
                    Step::Skipped(why) => tracing::info!(path, why, "workspace cache not kept"),
                }
            }
            Err(e) => {
                tracing::warn!(path, error = %e, "could not keep the workspace cache; the next job starts without it")
            }
        }
    }
}

/// `step` of each cache, with its path, in one trip to a blocking thread (none without caches).
async fn each<T: Send + 'static>(
    home: &Path,
    cwd: &Path,
    caches: &[WorkspaceCache],
    step: fn(&Path, &Path, &WorkspaceCache) -> T,
) -> Vec<(String, T)> {
    if caches.is_empty() {
        return Vec::new();
    }
    let (home, cwd, caches) = (home.to_path_buf(), cwd.to_path_buf(), caches.to_vec());
    tokio::task::spawn_blocking(move || {
        let done = caches.iter().map(|cache| step(&home, &cwd, cache));
        caches.iter().map(|c| c.path.clone()).zip(done).collect()
    })
    .await
    .unwrap_or_default()
}

/// [`restore`] of one cache, on the calling thread.
fn restore_one(home: &Path, cwd: &Path, cache: &WorkspaceCache) -> Step {
    let entry = entry(home, &cache.path);
    let target = cwd.join(&cache.path);
    // The home was the job's own HOME if it named `caches`: its `key` is read as warily.
    let kept = read_regular(&entry.join("key"), 64).ok();
    if kept.is_none() || !entry.join("folder").is_dir() {
        return Step::Skipped(
            "this home keeps none (no job kept it here yet, or one took it)".into(),
        );
    }
    let key = match key(cwd, &cache.key_files) {
        Ok(key) => key,
        Err(why) => return Step::Skipped(why),
    };
    if kept.as_deref() != Some(key.as_bytes()) {
        return Step::Skipped("its key files changed since it was kept".into());
    }
    if target.symlink_metadata().is_ok() {
        return Step::Skipped("the working directory already has it".into());
    }
    let moved = target
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::rename(entry.join("folder"), &target));
    match moved {
        Ok(()) => {
            let _ = std::fs::remove_file(entry.join("key"));
            Step::Done
        }
        Err(e) => Step::Skipped(format!("it could not be moved into place: {e}")),
    }
}

/// [`keep`] of one cache, on the calling thread: the step and the folder it replaced.
///
/// # Errors
/// The home's folder for it cannot be made, or the folder cannot be moved there.
fn keep_one(
    home: &Path,
    cwd: &Path,
    cache: &WorkspaceCache,
) -> io::Result<(Step, Option<PathBuf>)> {
    let source = cwd.join(&cache.path);
    match source.symlink_metadata() {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Ok((Step::Skipped("it is not a folder".into()), None)),
        Err(_) => return Ok((Step::Skipped("the job left no such folder".into()), None)),
    }
    let key = match key(cwd, &cache.key_files) {
        Ok(key) => key,
        Err(why) => return Ok((Step::Skipped(why), None)),
    };
    let entry = entry(home, &cache.path);
    std::fs::create_dir_all(&entry)?;
    // The key goes first and comes last: never a key beside a folder it does not describe.
    match std::fs::remove_file(entry.join("key")) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let stale = if entry.join("folder").symlink_metadata().is_ok() {
        let aside = entry.join(format!("stale-{}", uuid::Uuid::new_v4()));
        std::fs::rename(entry.join("folder"), &aside)?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&source, entry.join("folder"))?;
    std::fs::write(entry.join("key"), key)?;
    Ok((Step::Done, stale))
}

/// Largest key file read: 64 MiB (a lock file of a large monorepo is a few MB).
const KEY_FILE_BYTES: u64 = 64 << 20;

/// The key of `files` in `cwd`: the SHA-256 of each one's name, length and contents, in
/// order; why not, when one cannot be read (see [`read_regular`]).
fn key(cwd: &Path, files: &[String]) -> Result<String, String> {
    let mut hasher = sha2::Sha256::new();
    for name in files {
        let content = read_regular(&cwd.join(name), KEY_FILE_BYTES)
            .map_err(|e| format!("its key file {name:?} cannot be read: {e}"))?;
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update((content.len() as u64).to_le_bytes());
        hasher.update(&content);
    }
    Ok(hex(&hasher.finalize()))
}

/// The bytes of `path` when it is a regular file of at most `limit` bytes, read with the
/// output file's reader ([`read_regular`](super::output_file::read_regular)): a FIFO that a
/// job left in its place is refused, never waited on, so keeping a folder or putting it back
/// can never hang a job. Why not, as a phrase.
fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use super::output_file::{Links, Read};
    match super::output_file::read_regular(path, limit, Links::Followed) {
        Read::Content(bytes) => Ok(bytes),
        Read::Missing => Err("no such file".into()),
        Read::NotRegular(kind) => Err(format!("it is {kind}, not a regular file")),
        Read::TooLarge(bytes) => Err(format!("{bytes} bytes, more than {limit}")),
        Read::Failed(e) => Err(e.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "workspace_caches_tests.rs"]
mod tests;
