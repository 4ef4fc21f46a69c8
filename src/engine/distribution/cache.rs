//! The cache of extracted distribution zips: one extraction per identity, shared by later
//! jobs, bounded by a byte budget with least-recently-used eviction of entries no job is
//! copying. Concurrent jobs of one identity wait for a single extraction.
//!
//! Each entry keeps one spare: a copy of its tree made on a blocking thread once a job that
//! used the entry has started its commands ([`PendingSpare`], started by the engine as the
//! job's `bash` is spawned, so that the copy does not slow that job's start). The next job of
//! that identity gets the spare by one rename instead of copying every file (waiting for it if
//! it is being made), and a new spare is made after it. A spare counts in the budget; a job
//! that finds none (the first, or one of several at once) copies the entry as before.
//!
//! The spares are made on the engine's task tracker; `Engine::settled` waits for them.
//! Cancellation: dropping a call leaves at worst a partial extraction or spare under a
//! temporary name, which is removed with the runner's work directory; a [`PendingSpare`]
//! dropped unstarted makes no spare and gives its room on the volume back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::task::TaskTracker;

use super::blocking::{
    RemoveOnDrop, StopOnDrop, blocking, copy_blocking, remove_blocking, remove_file,
};
use super::entry::Entry;
use super::space::{Disk, NoSpace, Reservation};
use super::{DistributionError, ExtractError, ExtractLimits, Fetch, Source, extract};

/// The extracted-zip cache. One per runner; share it between jobs.
pub struct Distributions {
    dir: PathBuf,
    limits: ExtractLimits,
    budget_bytes: u64,
    /// The volume's free space and what is being written to it.
    disk: Arc<Disk>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    clock: AtomicU64,
    /// Spares being made (the engine's tracker, see `Engine::settled`).
    spares: TaskTracker,
    /// Where hits and misses are counted.
    figures: Arc<crate::metrics::Figures>,
}

/// The next spare copy of a cache entry, not yet started; holds its room on the volume.
pub struct PendingSpare {
    entry: Arc<Entry>,
    cache: PathBuf,
    spares: TaskTracker,
    room: Reservation,
}

impl PendingSpare {
    /// Starts making the spare on a blocking thread (unless the entry has one or one is being
    /// made).
    pub fn start(self) {
        self.entry.make_spare(&self.cache, &self.spares, self.room);
    }
}

#[derive(Default)]
struct Slot {
    entry: tokio::sync::Mutex<Option<Arc<Entry>>>,
    last_used: AtomicU64,
}

impl Distributions {
    /// A cache in `dir` (created) with extraction `limits`, holding about `budget_bytes` of
    /// extracted content (at least the newest entry is always kept). Spare copies are made
    /// on blocking threads tracked by `spares` (whoever waits on it waits for them). Hits and
    /// misses are counted in `figures`.
    pub fn new(
        dir: PathBuf,
        limits: ExtractLimits,
        budget_bytes: u64,
        spares: TaskTracker,
        figures: Arc<crate::metrics::Figures>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Distributions {
            disk: Disk::new(&dir),
            dir,
            limits,
            budget_bytes,
            slots: Mutex::default(),
            clock: AtomicU64::new(0),
            spares,
            figures,
        })
    }

    /// Fills the new directory `workspace` with the content of `source` and starts the cache
    /// entry's next spare at once; see [`Distributions::fill_then_spare`], which the engine
    /// calls. For the cache's own tests.
    #[cfg(test)]
    pub async fn fill(&self, source: &Source, workspace: &Path) -> Result<u64, DistributionError> {
        let (bytes, spare) = self.fill_then_spare(source, workspace).await?;
        if let Some(spare) = spare {
            spare.start();
        }
        Ok(bytes)
    }

    /// Fills the new directory `workspace` with the content of `source`, and returns the
    /// cache entry's next spare copy for the caller to start once its job has started (so
    /// that the copy does not compete with the job's start for the CPUs); dropped, no spare
    /// is made. With a budget of 0 (no cache; local mode, which runs one job) a zip is
    /// extracted straight into the workspace: no cache entry, no copy, no spare.
    pub async fn fill_then_spare(
        &self,
        source: &Source,
        workspace: &Path,
    ) -> Result<(u64, Option<PendingSpare>), DistributionError> {
        let direct = |origin| async move {
            let bytes = self
                .fill_entry(origin, uuid::Uuid::new_v4(), workspace)
                .await?;
            Ok((bytes, None))
        };
        let from = match source {
            Source::Folder(path) => {
                let bytes = copy_blocking(path.clone(), workspace.to_path_buf()).await?;
                return Ok((bytes, None));
            }
            Source::Zip { path, .. } if self.budget_bytes == 0 => {
                return direct(Origin::Local(path)).await;
            }
            Source::Remote { fetch, .. } if self.budget_bytes == 0 => {
                return direct(Origin::Remote(fetch.as_ref())).await;
            }
            Source::Zip { path, identity } => self.extracted(identity, Origin::Local(path)).await?,
            Source::Remote { identity, fetch } => {
                self.extracted(identity, Origin::Remote(fetch.as_ref()))
                    .await?
            }
        };
        let renamed = match from.spare_for_job().await {
            // The spare in place of the (empty) workspace folder: one rename on one file
            // system, done here as the job folder's own (`job_dirs`), briefer than waking a
            // blocking thread.
            Some(spare) => match std::fs::rename(&spare, workspace) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(spare = %spare.display(), error = %e, "could not move a spare copy of a cached distribution into the workspace; copying it");
                    remove_blocking(spare).await;
                    false
                }
            },
            None => false,
        };
        let filled = if renamed {
            Ok(from.bytes)
        } else {
            let _room = self
                .room(from.bytes, "the job's copy of the distribution")
                .await?;
            // `from` (an Arc) stays alive while copying, so eviction leaves the entry alone.
            copy_blocking(from.dir.clone(), workspace.to_path_buf()).await
        };
        // A spare is a convenience: made only when the volume has room for it.
        let spare = self
            .disk
            .reserve(from.bytes, "a spare copy")
            .ok()
            .map(|room| PendingSpare {
                entry: from.clone(),
                cache: self.dir.clone(),
                spares: self.spares.clone(),
                room,
            });
        match filled {
            Ok(bytes) => Ok((bytes, spare)),
            Err(e) => {
                if let Some(spare) = spare {
                    spare.start();
                }
                Err(e)
            }
        }
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
            self.figures.cache_lookup(true);
            return Ok(entry.clone());
        }
        self.figures.cache_lookup(false);
        let unique = uuid::Uuid::new_v4();
        let dir = self.dir.join(format!("entry-{unique}"));
        let bytes = match self.fill_entry(origin, unique, &dir).await {
            Ok(bytes) => bytes,
            Err(e) => {
                drop(guard);
                self.forget_if_empty(identity, &slot);
                return Err(e);
            }
        };
        tracing::info!(identity, bytes, "distribution extracted into the cache");
        let entry = Arc::new(Entry::new(dir, bytes));
        *guard = Some(entry.clone());
        drop(guard);
        self.evict(identity).await;
        Ok(entry)
    }

    /// Extracts the zip of `origin` (downloading it first if remote) into the new folder `dir`;
    /// on failure nothing of it is left on disk.
    async fn fill_entry(
        &self,
        origin: Origin<'_>,
        unique: uuid::Uuid,
        dir: &Path,
    ) -> Result<u64, DistributionError> {
        let (zip, download) = match origin {
            Origin::Local(path) => (path.to_path_buf(), None),
            Origin::Remote(fetch) => {
                let zip_size = fetch.size().unwrap_or(0);
                let _room = self.room(zip_size, "the distribution's download").await?;
                let path = self.download(fetch, unique).await?;
                (path.clone(), Some(path))
            }
        };
        let result = self.extract_here(zip, dir.to_path_buf()).await;
        if let Some(download) = download {
            remove_file(&download).await;
        }
        if result.is_err() {
            remove_blocking(dir.to_path_buf()).await;
        }
        result
    }

    /// Extracts `zip` into the new folder `dir` once the volume has room for what its
    /// entries declare.
    async fn extract_here(&self, zip: PathBuf, dir: PathBuf) -> Result<u64, DistributionError> {
        let limits = self.limits;
        let opened = blocking(move || extract::open(&zip, limits)).await?;
        let declared = opened.declared_bytes().min(limits.max_bytes);
        let _room = self
            .room(declared, "the distribution's unpacked files")
            .await?;
        // Set when this call is dropped (the job cancelled or out of time): the blocking
        // extraction stops before its next entry and removes what it wrote.
        let stop = StopOnDrop::default();
        let stopped = stop.0.clone();
        let written = blocking(move || {
            let written = std::fs::create_dir_all(&dir)
                .map_err(|source| ExtractError::Io {
                    path: dir.clone(),
                    source,
                })
                .and_then(|()| opened.extract(&dir, limits, &stopped));
            if written.is_err() {
                let _ = crate::engine::job_dir::remove_tree(&dir);
            }
            written
        })
        .await?;
        drop(stop);
        Ok(written)
    }

    /// Holds `bytes` on the volume for `what`; when there is no room, evicts the cache
    /// entries no job uses (least recently used first) and asks once more.
    async fn room(&self, bytes: u64, what: &'static str) -> Result<Reservation, NoSpace> {
        match self.disk.reserve(bytes, what) {
            Ok(room) => Ok(room),
            Err(short) => {
                tracing::warn!(error = %short, "short of disk space: evicting unused cached distributions");
                self.evict_to(0, "").await;
                self.disk.reserve(bytes, what)
            }
        }
    }

    /// Frees the slot of a failed extraction, unless another job waits on it.
    fn forget_if_empty(&self, identity: &str, slot: &Arc<Slot>) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let ours = slots.get(identity).is_some_and(|s| Arc::ptr_eq(s, slot));
        // The map and this call hold the only references: nobody else waits on it.
        let alone = Arc::strong_count(slot) == 2;
        let empty = slot.entry.try_lock().is_ok_and(|entry| entry.is_none());
        if ours && alone && empty {
            slots.remove(identity);
        }
    }

    /// Bytes of the volume free for the cache and the workspaces now: free space less what
    /// writes in progress hold and the headroom ([`super::space`]).
    pub fn free_room(&self) -> u64 {
        self.disk.room()
    }

    /// The number of identities the cache holds a slot for (extracted or being extracted).
    pub fn slots(&self) -> usize {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Downloads a remote zip into the cache folder, refusing one far over the size limit.
    async fn download(
        &self,
        fetch: &dyn Fetch,
        unique: uuid::Uuid,
    ) -> Result<PathBuf, DistributionError> {
        let path = self.dir.join(format!("download-{unique}.zip"));
        // A zip is hardly larger than its content; the margin covers its directory and
        // headers (the limit again, at most 64 MiB).
        let margin = self.limits.max_bytes.min(64 * 1024 * 1024);
        let max_zip = self.limits.max_bytes.saturating_add(margin);
        // A download dropped half-way (the job cancelled or out of time) leaves no file.
        let partial = RemoveOnDrop(Some(path.clone()));
        if let Err(problem) = fetch.fetch(&path, max_zip).await {
            return Err(DistributionError::Fetch {
                what: fetch.describe(),
                problem,
            });
        }
        partial.keep();
        Ok(path)
    }

    /// Drops least recently used entries nobody is using until the cache fits its budget.
    async fn evict(&self, keep: &str) {
        self.evict_to(self.budget_bytes, keep).await;
    }

    /// Drops least recently used entries nobody is using (but `keep`) until the cache holds
    /// at most `budget` bytes.
    async fn evict_to(&self, budget: u64, keep: &str) {
        let mut candidates = Vec::new();
        let mut total = 0;
        {
            let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            for (identity, slot) in slots.iter() {
                let Ok(guard) = slot.entry.try_lock() else {
                    continue;
                };
                if let Some(entry) = guard.as_ref() {
                    total += entry.disk_bytes();
                    if identity != keep && Arc::strong_count(entry) == 1 {
                        candidates.push((slot.last_used.load(Ordering::Relaxed), identity.clone()));
                    }
                }
            }
        }
        candidates.sort();
        for (_, identity) in candidates {
            if total <= budget {
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
                total -= entry.disk_bytes();
                tracing::info!(
                    identity,
                    bytes = entry.bytes,
                    "distribution evicted from the cache"
                );
                if let Some(spare) = entry.take_spare() {
                    remove_blocking(spare).await;
                }
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

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
