//! Named tool caches (a job's `caches`): warm `~/.npm`, `~/.m2`, pip caches and the like kept
//! between the jobs of one runner. A job that names caches runs with `HOME` set to a home of
//! its own from a pool: one job per home at a time, so no job sees a cache another job is
//! writing, and nothing is copied when a job starts (per-slot homes rather than copies: a
//! warm npm cache is hundreds of MB). A job gets the idle home that already holds most of the
//! caches it names (its workspace caches' entries count too, see `workspace_caches.rs`), the
//! most recently used first, and a new one when none is idle. When a job
//! gives its home back, the home's size is measured and, while all homes together pass the
//! budget (`ATTINI_TOOL_CACHE_BYTES`), the least recently used idle home is removed. Homes
//! live in the runner's own folder and go with it. A seed from S3 can warm the first home at a
//! cold start ([`Homes::seed`], in `homes_seed.rs`).
//!
//! Cancellation: a [`HomeLease`] dropped without [`HomeLease::give_back`] (a job whose run
//! was dropped) still frees its home, measured on a blocking thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio_util::task::TaskTracker;

/// Longest a job naming caches waits for the seed being put in place: 2 minutes.
pub const SEED_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// One home of the pool.
#[derive(Debug)]
struct Home {
    path: PathBuf,
    busy: bool,
    /// When it was last given back (a counter; higher is more recent).
    used: u64,
    /// Its size when it was last given back, in bytes.
    bytes: u64,
}

#[derive(Debug, Default)]
struct Pool {
    homes: Vec<Home>,
    clock: u64,
    made: u64,
}

/// The pool of homes.
#[derive(Debug)]
pub struct Homes {
    dir: PathBuf,
    budget: u64,
    pool: Arc<Mutex<Pool>>,
    cleanup: TaskTracker,
    /// Held while a seed is put in place ([`Homes::seed`]): jobs wait for it before choosing.
    gate: Arc<tokio::sync::Mutex<()>>,
}

/// A home lent to one job.
pub struct HomeLease {
    path: PathBuf,
    homes: Option<(Arc<Mutex<Pool>>, u64, TaskTracker)>,
}

impl Homes {
    /// Where the homes are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A pool in `dir` (made when first needed) keeping at most `budget` bytes of idle homes;
    /// measurements and removals run on `cleanup`.
    pub fn new(dir: PathBuf, budget: u64, cleanup: TaskTracker) -> Self {
        Homes {
            dir,
            budget,
            pool: Arc::default(),
            cleanup,
            gate: Arc::default(),
        }
    }

    /// An idle home for a job naming `caches` (folders relative to the home, made in it) and
    /// wanting `held` (folders relative to the home that count towards its choice but are not
    /// made: its workspace caches' entries).
    ///
    /// # Errors
    /// The home or a cache folder cannot be made.
    pub async fn take(&self, caches: &[String], held: &[String]) -> std::io::Result<HomeLease> {
        // A seed being put in place is waited for, so that the first jobs find it; a seed
        // slower than that is not waited for (it lands later, as an idle home).
        if tokio::time::timeout(SEED_WAIT, self.gate.lock())
            .await
            .is_err()
        {
            tracing::warn!(
                waited_s = SEED_WAIT.as_secs(),
                "the tool caches' seed is still on its way: this job starts with a home of its own"
            );
        }
        let path = {
            let mut pool = lock(&self.pool);
            let warmth = |home: &Home| {
                let warm = caches.iter().chain(held);
                (
                    warm.filter(|c| home.path.join(c).is_dir()).count(),
                    home.used,
                )
            };
            let best = pool
                .homes
                .iter()
                .enumerate()
                .filter(|(_, h)| !h.busy)
                .max_by_key(|(_, h)| warmth(h))
                .map(|(i, _)| i);
            match best {
                Some(i) => {
                    pool.homes[i].busy = true;
                    pool.homes[i].path.clone()
                }
                None => {
                    pool.made += 1;
                    let path = self.dir.join(format!("home-{}", pool.made));
                    pool.homes.push(Home {
                        path: path.clone(),
                        busy: true,
                        used: 0,
                        bytes: 0,
                    });
                    path
                }
            }
        };
        let lease = HomeLease {
            path: path.clone(),
            homes: Some((self.pool.clone(), self.budget, self.cleanup.clone())),
        };
        let folders: Vec<PathBuf> = caches.iter().map(|c| path.join(c)).collect();
        let made = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&path)?;
            folders.iter().try_for_each(std::fs::create_dir_all)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        made.map(|()| lease)
    }
}

impl HomeLease {
    /// The home's path (the job's `HOME`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the home back: measured, and the pool trimmed to its budget.
    pub async fn give_back(mut self) {
        if let Some(task) = self.release() {
            let _ = task.await;
        }
    }

    fn release(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        let (pool, budget, cleanup) = self.homes.take()?;
        let path = self.path.clone();
        Some(cleanup.spawn_blocking(move || {
            let bytes = size_of(&path);
            let evicted = {
                let mut pool = lock(&pool);
                pool.clock += 1;
                let now = pool.clock;
                if let Some(home) = pool.homes.iter_mut().find(|h| h.path == path) {
                    home.busy = false;
                    home.used = now;
                    home.bytes = bytes;
                }
                trim(&mut pool, budget)
            };
            for gone in evicted {
                if let Err(e) = std::fs::remove_dir_all(&gone) {
                    tracing::warn!(home = %gone.display(), error = %e, "could not remove an evicted tool cache home");
                }
            }
        }))
    }
}

impl Drop for HomeLease {
    fn drop(&mut self) {
        // Outside a runtime (a test's end) there is nothing left to free.
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(self.release());
        }
    }
}

/// Removes the least recently used idle homes from `pool` while it holds more than `budget`
/// bytes; their paths, to delete.
fn trim(pool: &mut Pool, budget: u64) -> Vec<PathBuf> {
    let mut gone = Vec::new();
    while pool.homes.iter().map(|h| h.bytes).sum::<u64>() > budget {
        let oldest = pool
            .homes
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.busy)
            .min_by_key(|(_, h)| h.used)
            .map(|(i, _)| i);
        let Some(i) = oldest else { break };
        gone.push(pool.homes.remove(i).path);
    }
    gone
}

/// Bytes of the regular files under `path` (links are not followed).
fn size_of(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => size_of(&entry.path()),
            Ok(t) if t.is_file() => entry.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[path = "homes_seed.rs"]
mod seed;

#[cfg(test)]
#[path = "homes_tests.rs"]
mod tests;
