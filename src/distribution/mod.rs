//! Workspaces: a distribution's content copied into a fresh directory for each job.
//!
//! A zip is extracted once per identity into a cache (see [`extract`] for what is rejected),
//! and each job gets its own copy of that tree, so jobs never see each other's changes and the
//! second job of a distribution does not read the zip again. The cache holds several entries
//! and evicts the least recently used ones that no job is copying once it grows past its byte
//! budget. A local folder is copied directly (it may change between jobs, so it is not
//! cached). Cancellation: dropping a call leaves at worst a partial cache extraction under a
//! temporary name, which is removed when the runner's work directory is.

mod copy;
pub mod extract;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub use extract::{ExtractError, Limits};

/// A download of a distribution zip into a local file (S3 in AWS modes).
pub trait Fetch: Send + Sync {
    /// Where the zip comes from, for messages (e.g. `s3://bucket/key`).
    fn describe(&self) -> String;
    /// Writes the zip to `dest`, refusing one larger than `max_bytes`; the error says what went
    /// wrong and what to do.
    fn fetch<'a>(&'a self, dest: &'a Path, max_bytes: u64) -> FetchFuture<'a>;
}

/// The future returned by [`Fetch::fetch`].
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A distribution ready to be put into a workspace.
#[derive(Clone)]
pub enum Source {
    /// A zip file on disk, with a stable identity of its content (the cache key).
    Zip {
        /// The zip file.
        path: PathBuf,
        /// Same identity means same content.
        identity: String,
    },
    /// A folder on disk, copied as it is.
    Folder(PathBuf),
    /// A zip fetched on a cache miss only.
    Remote {
        /// Same identity means same content (e.g. the Attini `objectIdentifier`).
        identity: String,
        /// How to download it.
        fetch: Arc<dyn Fetch>,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Zip { path, identity } => write!(f, "Zip({}, {identity})", path.display()),
            Source::Folder(path) => write!(f, "Folder({})", path.display()),
            Source::Remote { identity, fetch } => {
                write!(f, "Remote({}, {identity})", fetch.describe())
            }
        }
    }
}

impl Source {
    /// A local zip or folder; the identity of a zip is its path, size and modification time.
    pub fn local(path: &Path) -> Result<Source, DistributionError> {
        let missing = |e: std::io::Error| DistributionError::Local {
            path: path.to_path_buf(),
            problem: e.to_string(),
        };
        let meta = std::fs::metadata(path).map_err(missing)?;
        if meta.is_dir() {
            return Ok(Source::Folder(path.to_path_buf()));
        }
        let canonical = std::fs::canonicalize(path).map_err(missing)?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Ok(Source::Zip {
            path: path.to_path_buf(),
            identity: format!("file:{}:{}:{modified}", canonical.display(), meta.len()),
        })
    }
}

/// Why a workspace could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// The local path does not exist or cannot be read.
    #[error("the distribution {path} cannot be read: {problem}")]
    Local {
        /// The path given.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// The zip was rejected or could not be extracted.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// The download failed.
    #[error("could not download the distribution {what}: {problem}")]
    Fetch {
        /// Where it comes from.
        what: String,
        /// What went wrong.
        problem: String,
    },
    /// Copying into the workspace failed.
    #[error("could not prepare the job's workspace {path}: {source}")]
    Workspace {
        /// The workspace directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The extracted-zip cache. One per runner; share it between jobs.
pub struct Distributions {
    dir: PathBuf,
    limits: Limits,
    budget_bytes: u64,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    clock: AtomicU64,
}

#[derive(Default)]
struct Slot {
    entry: tokio::sync::Mutex<Option<Arc<Entry>>>,
    last_used: AtomicU64,
}

struct Entry {
    dir: PathBuf,
    bytes: u64,
}

impl Distributions {
    /// A cache in `dir` (created) with extraction `limits`, holding about `budget_bytes` of
    /// extracted content (at least the newest entry is always kept).
    pub fn new(dir: PathBuf, limits: Limits, budget_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Distributions {
            dir,
            limits,
            budget_bytes,
            slots: Mutex::default(),
            clock: AtomicU64::new(0),
        })
    }

    /// Fills the new directory `workspace` with the content of `source`.
    pub async fn fill(&self, source: &Source, workspace: &Path) -> Result<u64, DistributionError> {
        let from = match source {
            Source::Folder(path) => {
                return copy_blocking(path.clone(), workspace.to_path_buf()).await;
            }
            Source::Zip { path, identity } => self.extracted(identity, Origin::Local(path)).await?,
            Source::Remote { identity, fetch } => {
                self.extracted(identity, Origin::Remote(fetch.as_ref()))
                    .await?
            }
        };
        // `from` (an Arc) stays alive while copying, so eviction leaves the entry alone.
        copy_blocking(from.dir.clone(), workspace.to_path_buf()).await
    }

    /// The cache entry for `identity`, extracting `zip` on a miss. Concurrent callers for the
    /// same identity wait for one extraction.
    async fn extracted(
        &self,
        identity: &str,
        origin: Origin<'_>,
    ) -> Result<Arc<Entry>, DistributionError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(identity.to_string()).or_default().clone()
        };
        slot.last_used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        let mut guard = slot.entry.lock().await;
        if let Some(entry) = guard.as_ref() {
            tracing::debug!(identity, "distribution cache hit");
            return Ok(entry.clone());
        }
        let unique = uuid::Uuid::new_v4();
        let (zip, download) = match origin {
            Origin::Local(path) => (path.to_path_buf(), None),
            Origin::Remote(fetch) => {
                let path = self.dir.join(format!("download-{unique}.zip"));
                // A zip is hardly larger than its content; the margin covers its directory and
                // headers (the limit again, at most 64 MiB).
                let margin = self.limits.max_bytes.min(64 * 1024 * 1024);
                let max_zip = self.limits.max_bytes.saturating_add(margin);
                if let Err(problem) = fetch.fetch(&path, max_zip).await {
                    remove_file(&path).await;
                    return Err(DistributionError::Fetch {
                        what: fetch.describe(),
                        problem,
                    });
                }
                (path.clone(), Some(path))
            }
        };
        let dir = self.dir.join(format!("entry-{unique}"));
        let (target, limits) = (dir.clone(), self.limits);
        let result = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&target).map_err(|source| ExtractError::Io {
                path: target.clone(),
                source,
            })?;
            extract::extract(&zip, &target, limits)
        })
        .await
        .unwrap_or_else(|join| {
            Err(ExtractError::Io {
                path: PathBuf::from("distribution"),
                source: std::io::Error::other(join.to_string()),
            })
        });
        if let Some(download) = download {
            remove_file(&download).await;
        }
        let bytes = match result {
            Ok(bytes) => bytes,
            Err(e) => {
                remove_blocking(dir).await;
                return Err(e.into());
            }
        };
        tracing::info!(identity, bytes, "distribution extracted into the cache");
        let entry = Arc::new(Entry { dir, bytes });
        *guard = Some(entry.clone());
        drop(guard);
        self.evict(identity).await;
        Ok(entry)
    }

    /// Drops least recently used entries nobody is using until the cache fits its budget.
    async fn evict(&self, keep: &str) {
        let mut candidates = Vec::new();
        let mut total = 0;
        {
            let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            for (identity, slot) in slots.iter() {
                let Ok(guard) = slot.entry.try_lock() else {
                    continue;
                };
                if let Some(entry) = guard.as_ref() {
                    total += entry.bytes;
                    if identity != keep && Arc::strong_count(entry) == 1 {
                        candidates.push((slot.last_used.load(Ordering::Relaxed), identity.clone()));
                    }
                }
            }
        }
        candidates.sort();
        for (_, identity) in candidates {
            if total <= self.budget_bytes {
                break;
            }
            let removed = {
                let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
                let Some(slot) = slots.get(&identity).cloned() else {
                    continue;
                };
                let Ok(mut guard) = slot.entry.try_lock() else {
                    continue;
                };
                match guard.take() {
                    Some(entry) if Arc::strong_count(&entry) == 1 => {
                        slots.remove(&identity);
                        Some(entry)
                    }
                    other => {
                        *guard = other;
                        None
                    }
                }
            };
            if let Some(entry) = removed {
                total -= entry.bytes;
                tracing::info!(
                    identity,
                    bytes = entry.bytes,
                    "distribution evicted from the cache"
                );
                remove_blocking(entry.dir.clone()).await;
            }
        }
    }
}

/// Where a cache miss gets its zip.
enum Origin<'a> {
    Local(&'a Path),
    Remote(&'a dyn Fetch),
}

async fn remove_file(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), error = %e, "could not remove a downloaded distribution");
    }
}

async fn copy_blocking(from: PathBuf, to: PathBuf) -> Result<u64, DistributionError> {
    let path = to.clone();
    tokio::task::spawn_blocking(move || copy::copy_tree(&from, &to))
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())))
        .map_err(|source| DistributionError::Workspace { path, source })
}

async fn remove_blocking(dir: PathBuf) {
    let shown = dir.clone();
    let result = tokio::task::spawn_blocking(move || crate::workspace::remove_tree(&dir)).await;
    if let Ok(Err(e)) = result {
        tracing::warn!(dir = %shown.display(), error = %e, "could not remove a directory");
    }
}
