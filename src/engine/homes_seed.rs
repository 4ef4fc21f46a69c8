//! Seeding the tool caches at a cold start (`ATTINI_TOOL_CACHE_SEED`): a zip of a home's
//! cache folders (`.npm/...`, `.m2/...`) is downloaded once when the runner starts and
//! unpacked into the pool's first home, so that the first jobs naming those caches start
//! warm. Until the seed is in place, a job asking for a home waits for it, at most
//! [`super::SEED_WAIT`] (jobs without caches never wait). A seed that cannot be had is logged
//! as a warning and the caches start empty, as without a seed: a seed never stops the runner.
//! The zip is unpacked with the distributions' checks (no paths out of the home, no links out
//! of it), within the tool caches' byte budget.
//!
//! Cancellation: the seeding task holds the pool's gate; if the runner stops mid-way, the
//! task is dropped with the runtime and what it unpacked goes with the runner's folder.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::{Home, Homes, lock, size_of};
use crate::engine::distribution::{ExtractLimits, Fetch, FetchError, extract};

/// Why a seed was not put in place (logged; the caches then start empty).
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The download failed.
    #[error("could not download it: {0}")]
    Fetch(#[from] FetchError),
    /// It is not a zip the runner unpacks, or it does not fit.
    #[error("could not unpack it: {0}")]
    Extract(#[from] crate::engine::distribution::ExtractError),
    /// The homes' folder cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Homes {
    /// Starts putting the seed that `fetch` downloads into a new home of the pool; jobs asking
    /// for a home wait until it is in place or has failed.
    pub fn seed(&self, fetch: Arc<dyn Fetch>) {
        let Ok(gate) = self.gate.clone().try_lock_owned() else {
            tracing::warn!("the tool caches are already being seeded; a second seed is ignored");
            return;
        };
        let (dir, budget, pool) = (self.dir.clone(), self.budget, self.pool.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let path = {
                let mut pool = lock(&pool);
                pool.made += 1;
                dir.join(format!("home-{}", pool.made))
            };
            match unpack(fetch.as_ref(), &dir, &path, budget).await {
                Ok(bytes) => {
                    let mut pool = lock(&pool);
                    pool.homes.push(Home {
                        path,
                        busy: false,
                        used: 0,
                        bytes,
                    });
                    tracing::info!(
                        seed = fetch.describe(),
                        bytes,
                        ms = started.elapsed().as_millis() as u64,
                        "tool caches seeded"
                    );
                }
                Err(e) => {
                    let _ = tokio::fs::remove_dir_all(&path).await;
                    tracing::warn!(
                        seed = fetch.describe(),
                        error = %e,
                        "could not seed the tool caches (ATTINI_TOOL_CACHE_SEED): jobs start with empty caches; check that the runner's role may read the object and that it is a zip of folders under a home, within ATTINI_TOOL_CACHE_BYTES"
                    );
                }
            }
            drop(gate);
        });
    }
}

/// Downloads the seed beside the homes and unpacks it into `home`; the bytes unpacked.
async fn unpack(fetch: &dyn Fetch, dir: &Path, home: &Path, budget: u64) -> Result<u64, SeedError> {
    let write = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SeedError::Write { path, source }
    };
    tokio::fs::create_dir_all(home).await.map_err(write(home))?;
    let zip = dir.join("seed.zip");
    let unpacked = async {
        fetch.fetch(&zip, budget).await?;
        let (zip, home) = (zip.clone(), home.to_path_buf());
        let limits = ExtractLimits {
            max_bytes: budget,
            ..ExtractLimits::default()
        };
        tokio::task::spawn_blocking(move || extract::extract(&zip, &home, limits))
            .await
            .map_err(|e| write(dir)(std::io::Error::other(e)))?
            .map_err(SeedError::from)
    }
    .await;
    let _ = tokio::fs::remove_file(&zip).await;
    let bytes = unpacked?;
    // The pool measures homes by their files, as it will when this one is given back.
    let home = home.to_path_buf();
    Ok(tokio::task::spawn_blocking(move || size_of(&home))
        .await
        .unwrap_or(bytes))
}
