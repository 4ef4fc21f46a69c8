//! The cache's work off the runtime: blocking file work run on blocking threads (unpacking,
//! copying, removing), and the guards that clean up after a call dropped half-way (a stop
//! flag the blocking work reads, a partial download removed). Cancellation: dropping a call
//! sets its [`StopOnDrop`] and removes its [`RemoveOnDrop`] file; blocking work already
//! running finishes its current entry.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{DistributionError, ExtractError, copy};

/// A flag set when dropped: tells blocking work that its caller is gone.
#[derive(Default)]
pub(super) struct StopOnDrop(pub(super) Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A file removed when dropped, unless kept.
pub(super) struct RemoveOnDrop(pub(super) Option<PathBuf>);

impl RemoveOnDrop {
    pub(super) fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take()
            && let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %path.display(), error = %e, "could not remove a partial download");
        }
    }
}

/// Runs `work` on a blocking thread.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ExtractError> + Send + 'static,
) -> Result<T, ExtractError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join| {
            Err(ExtractError::Io {
                path: PathBuf::from("distribution"),
                source: std::io::Error::other(join.to_string()),
            })
        })
}

pub(super) async fn remove_file(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), error = %e, "could not remove a downloaded distribution");
    }
}

pub(super) async fn copy_blocking(from: PathBuf, to: PathBuf) -> Result<u64, DistributionError> {
    let path = to.clone();
    tokio::task::spawn_blocking(move || copy::copy_tree(&from, &to))
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())))
        .map_err(|source| DistributionError::Workspace { path, source })
}

pub(super) async fn remove_blocking(dir: PathBuf) {
    let shown = dir.clone();
    let result =
        tokio::task::spawn_blocking(move || crate::engine::job_dir::remove_tree(&dir)).await;
    if let Ok(Err(e)) = result {
        tracing::warn!(dir = %shown.display(), error = %e, "could not remove a directory");
    }
}
