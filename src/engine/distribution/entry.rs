//! One entry of the distribution cache ([`cache`](super::cache)): the extracted tree, its
//! size, and its spare, a ready copy of the tree made on a blocking thread after a job used the
//! entry and taken by the next job with one rename. Cancellation: a spare being made is
//! finished by its blocking thread (its task is tracked, see `Engine::settled`); a job
//! dropped while waiting for it leaves the spare for the next one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::task::TaskTracker;

use super::copy;

/// One extracted distribution in the cache, and its spare copy.
pub(super) struct Entry {
    /// The extracted tree.
    pub dir: PathBuf,
    /// Its content size.
    pub bytes: u64,
    /// A ready copy of `dir`, taken by the next job.
    spare: Mutex<Option<PathBuf>>,
    /// A spare is being made.
    making: AtomicBool,
    /// A job waits for the spare being made (at most one does; others copy).
    awaited: AtomicBool,
    /// Told when a spare is done (made or failed).
    done: tokio::sync::Notify,
}

impl Entry {
    pub(super) fn new(dir: PathBuf, bytes: u64) -> Self {
        Entry {
            dir,
            bytes,
            spare: Mutex::default(),
            making: AtomicBool::new(false),
            awaited: AtomicBool::new(false),
            done: tokio::sync::Notify::new(),
        }
    }

    /// The spare, or when one is being made and no other job waits for it, that one once
    /// it is ready: finishing a copy under way is quicker than starting another beside it.
    pub(super) async fn spare_for_job(&self) -> Option<PathBuf> {
        let done = self.done.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        if let Some(spare) = self.take_spare() {
            return Some(spare);
        }
        if !self.making.load(Ordering::SeqCst) || self.awaited.swap(true, Ordering::SeqCst) {
            return None;
        }
        // Cleared however this ends, so that a dropped waiter does not keep others copying.
        struct Waiting<'a>(&'a AtomicBool);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        let _waiting = Waiting(&self.awaited);
        done.await;
        self.take_spare()
    }

    pub(super) fn take_spare(&self) -> Option<PathBuf> {
        self.spare.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Bytes on disk: the tree, and its spare if there is one.
    pub(super) fn disk_bytes(&self) -> u64 {
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        self.bytes * if spare.is_some() { 2 } else { 1 }
    }

    /// Starts making a spare in `cache` on a blocking thread tracked by `spares`, unless it has one or one is
    /// being made. The task holds the entry, so it is not evicted meanwhile.
    /// Makes a spare copy on a blocking thread of `spares`, holding `room` on the volume
    /// while it is written.
    pub(super) fn make_spare(
        self: &Arc<Self>,
        cache: &Path,
        spares: &TaskTracker,
        room: super::space::Reservation,
    ) {
        if self.making.swap(true, Ordering::SeqCst) {
            return;
        }
        if self
            .spare
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            self.making.store(false, Ordering::SeqCst);
            return;
        }
        let dir = cache.join(format!("spare-{}", uuid::Uuid::new_v4()));
        let entry = self.clone();
        spares.spawn_blocking(move || {
            let _room = room;
            match copy::copy_tree(&entry.dir, &dir) {
                Ok(_) => *entry.spare.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not make a spare copy of a cached distribution; the next job copies it");
                    let _ = crate::engine::job_dir::remove_tree(&dir);
                }
            }
            entry.making.store(false, Ordering::SeqCst);
            entry.done.notify_waiters();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_job_waits_for_the_spare_being_made_and_another_does_not() {
        let entry = Arc::new(Entry::new(PathBuf::from("entry"), 1));
        assert_eq!(entry.spare_for_job().await, None, "none made, none coming");
        entry.making.store(true, Ordering::SeqCst);
        let waiter = tokio::spawn({
            let entry = entry.clone();
            async move { entry.spare_for_job().await }
        });
        while !entry.awaited.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            entry.spare_for_job().await,
            None,
            "a second job copies instead of queueing behind the first"
        );
        *entry.spare.lock().unwrap() = Some(PathBuf::from("spare-1"));
        entry.making.store(false, Ordering::SeqCst);
        entry.done.notify_waiters();
        assert_eq!(waiter.await.unwrap(), Some(PathBuf::from("spare-1")));
        assert!(!entry.awaited.load(Ordering::SeqCst));
    }
}
