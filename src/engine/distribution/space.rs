//! Disk space for what the cache writes: a download, an extraction, a workspace copy or a
//! spare. Each asks for its bytes before it writes a byte ([`Disk::reserve`]); it gets them
//! when the volume's free space, less what the other writes in progress still hold and a
//! small headroom, covers them. What is being written is held until the write ends (the
//! [`Reservation`] is dropped), so two jobs that each fit alone cannot together fill the
//! volume. A refusal says what was needed, what is free and what others hold. Cancellation:
//! dropping a reservation releases it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Free space kept for everything else (logs, the jobs' own files): 32 MiB, or a twentieth of
/// a smaller volume.
pub const HEADROOM: u64 = 32 * 1024 * 1024;

/// The volume the cache and the workspaces live on, and the bytes being written to it.
#[derive(Debug)]
pub struct Disk {
    path: PathBuf,
    held: Mutex<u64>,
}

/// Bytes held on the volume until dropped.
#[derive(Debug)]
pub struct Reservation {
    disk: Arc<Disk>,
    bytes: u64,
}

/// Not enough free space for a write.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "not enough disk space for {what}: it needs {needed}, and {path} has {free} free ({held} of \
     it held by other jobs' downloads and workspaces being written, {kept} kept free); \
     give the task more ephemeral storage, lower ATTINI_DISTRIBUTION_CACHE_BYTES, or make the \
     distribution smaller",
    needed = mib(*.needed),
    path = .path.display(),
    free = mib(*.free),
    held = mib(*.held),
    kept = mib(*.kept)
)]
pub struct NoSpace {
    /// What was to be written (e.g. "the distribution's unpacked files").
    pub what: &'static str,
    /// Bytes it needs.
    pub needed: u64,
    /// Bytes free on the volume.
    pub free: u64,
    /// Bytes held by other writes in progress.
    pub held: u64,
    /// Bytes kept free for everything else.
    pub kept: u64,
    /// The volume (the cache folder).
    pub path: PathBuf,
}

/// The bytes kept free on a volume of `size` bytes: [`HEADROOM`], or a twentieth of a volume
/// smaller than 640 MiB.
fn headroom(size: u64) -> u64 {
    HEADROOM.min(size / 20)
}

/// `bytes` as MiB for people, one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl Disk {
    /// The volume holding `path`.
    pub fn new(path: &Path) -> Arc<Disk> {
        Arc::new(Disk {
            path: path.to_path_buf(),
            held: Mutex::new(0),
        })
    }

    /// Bytes free on the volume for this process now (`statvfs`: available blocks times the
    /// fragment size); `u64::MAX` when it cannot be read, so that a volume the runner cannot
    /// measure never refuses a job.
    pub fn free(&self) -> u64 {
        self.measure().0
    }

    /// Free bytes, and the bytes to keep free ([`HEADROOM`]).
    fn measure(&self) -> (u64, u64) {
        match nix::sys::statvfs::statvfs(&self.path) {
            Ok(stat) => {
                let block = stat.fragment_size();
                let size = stat.blocks().saturating_mul(block);
                let free = stat.blocks_available().saturating_mul(block);
                (free, headroom(size))
            }
            Err(_) => (u64::MAX, 0),
        }
    }

    /// Bytes free for new writes now: free space less what writes in progress hold and the
    /// headroom.
    pub fn room(&self) -> u64 {
        let (free, kept) = self.measure();
        free.saturating_sub(self.held()).saturating_sub(kept)
    }

    /// Bytes held by writes in progress.
    pub fn held(&self) -> u64 {
        *self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds `needed` bytes for `what`, or says why there is no room.
    pub fn reserve(
        self: &Arc<Self>,
        needed: u64,
        what: &'static str,
    ) -> Result<Reservation, NoSpace> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let (free, kept) = self.measure();
        let room = free.saturating_sub(*held).saturating_sub(kept);
        if needed > room {
            return Err(NoSpace {
                what,
                needed,
                free,
                held: *held,
                kept,
                path: self.path.clone(),
            });
        }
        *held += needed;
        Ok(Reservation {
            disk: self.clone(),
            bytes: needed,
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut held = self.disk.held.lock().unwrap_or_else(|p| p.into_inner());
        *held = held.saturating_sub(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_others_hold_counts_until_it_is_released() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = Disk::new(tmp.path());
        let (free, kept) = disk.measure();
        assert!(free > kept, "the test needs a little free space");
        let room = free - kept;
        let first = disk.reserve(room / 2, "a").unwrap();
        assert_eq!(disk.held(), room / 2);
        // Fits the volume alone, not beside the first.
        let refused = disk.reserve(room, "b").unwrap_err();
        assert_eq!(refused.held, room / 2);
        assert!(
            refused
                .to_string()
                .starts_with("not enough disk space for b: it needs"),
            "{refused}"
        );
        drop(first);
        assert_eq!(disk.held(), 0);
        assert!(disk.reserve(1, "c").is_ok());
    }

    #[test]
    fn the_headroom_is_32_mib_or_a_twentieth_of_a_smaller_volume() {
        let tmp = tempfile::tempdir().unwrap();
        let stat = nix::sys::statvfs::statvfs(tmp.path()).unwrap();
        let size = stat.blocks() * stat.fragment_size();
        let free = stat.blocks_available() * stat.fragment_size();
        let disk = Disk::new(tmp.path());
        let (measured, kept) = disk.measure();
        assert_eq!(kept, (32 * 1024 * 1024).min(size / 20));
        // Free space moves with other writers; the same volume's figure within 1 GiB.
        for figure in [measured, disk.free()] {
            assert!(figure.abs_diff(free) < 1 << 30, "{figure} against {free}");
        }
    }

    #[test]
    fn a_small_volume_keeps_a_twentieth_of_itself_free() {
        let mib = 1024 * 1024;
        assert_eq!(headroom(100 * mib), 5 * mib);
        assert_eq!(headroom(640 * mib), 32 * mib);
        assert_eq!(headroom(1 << 40), 32 * mib);
    }

    #[test]
    fn a_refusal_says_what_was_needed_what_is_free_and_what_to_do() {
        let refusal = NoSpace {
            what: "the distribution's unpacked files",
            needed: 3 * 1024 * 1024 / 2,
            free: 10 * 1024 * 1024,
            held: 9 * 1024 * 1024,
            kept: 512 * 1024,
            path: PathBuf::from("/work/cache"),
        };
        assert_eq!(
            refusal.to_string(),
            "not enough disk space for the distribution's unpacked files: it needs 1.5 MiB, and \
             /work/cache has 10.0 MiB free (9.0 MiB of it held by other jobs' downloads and \
             workspaces being written, 0.5 MiB kept free); give the task more ephemeral storage, \
             lower ATTINI_DISTRIBUTION_CACHE_BYTES, or make the distribution smaller"
        );
    }
}
