//! Workspaces: a distribution's content copied into a fresh directory for each job.
//!
//! A zip is extracted once per identity into a cache (see [`extract`] for what is rejected),
//! and each job gets its own copy of that tree, so jobs never see each other's changes and the
//! second job of a distribution does not read the zip again. The cache holds several entries
//! and evicts the least recently used ones that no job is copying once it grows past its byte
//! budget. A local folder is copied directly (it may change between jobs, so it is not
//! cached). Every download, extraction and copy first asks the volume for its bytes
//! ([`space`]); when there is no room, unused cache entries are evicted, and if there still is
//! none the job fails saying what it needed and what was free. Cancellation: dropping a call leaves at worst a partial cache extraction under a
//! temporary name, which is removed when the runner's work directory is.

mod blocking;
mod cache;
mod copy;
mod entry;
mod eocd;
pub mod extract;
pub mod space;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

pub use cache::{Distributions, PendingSpare};
pub use extract::{ExtractError, ExtractLimits};

/// A download of a distribution zip into a local file (S3 in AWS modes).
pub trait Fetch: Send + Sync {
    /// Where the zip comes from, for messages (e.g. `s3://bucket/key`).
    fn describe(&self) -> String;
    /// Writes the zip to `dest`, refusing one larger than `max_bytes`; the error says what went
    /// wrong and what to do.
    fn fetch<'a>(&'a self, dest: &'a Path, max_bytes: u64) -> FetchFuture<'a>;
    /// The zip's size in bytes, when known before the download.
    fn size(&self) -> Option<u64> {
        None
    }
}

/// The future returned by [`Fetch::fetch`].
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<(), FetchError>> + Send + 'a>>;

/// A failed download, by class: each says what went wrong and what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The object is not there.
    #[error("{what} does not exist ({detail}); check the distribution's bucket and key")]
    Missing {
        /// Where it was looked for (`s3://bucket/key`).
        what: String,
        /// The service's words.
        detail: String,
    },
    /// The runner may not read it.
    #[error("access to {what} is denied ({detail}); the runner's role needs s3:GetObject on it")]
    Denied {
        /// Where it is.
        what: String,
        /// The service's words.
        detail: String,
    },
    /// Larger than a distribution may be.
    #[error(
        "{what} is {size} bytes or more, larger than a distribution may be ({limit} bytes with \
         ATTINI_DISTRIBUTION_MAX_BYTES); raise the limit if it is really that large"
    )]
    TooLarge {
        /// Where it is.
        what: String,
        /// Its size, as far as it was seen, in bytes.
        size: u64,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The local file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The download stopped midway.
    #[error("the download broke off: {0}")]
    BrokeOff(#[source] Arc<std::io::Error>),
    /// Another failure of the call (throttled for too long, a transport error).
    #[error(transparent)]
    Call(#[from] crate::calls::CallError),
}

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
        problem: FetchError,
    },
    /// The volume has no room for it.
    #[error(transparent)]
    NoSpace(#[from] space::NoSpace),
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
