//! Locks across runners (a job's `lock`): jobs naming one lock run one at a time, in arrival
//! order, on every runner sharing the lock table ([`LockStore`]; DynamoDB in AWS modes).
//!
//! A job takes a ticket (a number higher than every earlier one) and puts its entry in the
//! lock's line with a lease; it holds the lock when no unexpired entry with a lower ticket is
//! left. An entry whose lease ran out [`SKEW`] ago (its runner died) is removed by the next in
//! line, only if its lease is still the one seen, so a renewed entry is never removed. Waiting
//! and holding entries are renewed every quarter lease.
//!
//! Fencing: a holder that could not renew for three quarters of its lease ends its own job
//! (its `on_lost` token) before its entry can lapse, and a waiter removes a lapsed entry only
//! [`SKEW`] after its lease ended: the old holder has stopped a quarter lease plus [`SKEW`]
//! before a second holder starts. Times are the runners' clocks, in milliseconds since the
//! epoch; [`SKEW`] covers their drift.
//!
//! Cancellation: `stop` while waiting removes the entry and returns `None`; dropping a
//! [`Held`] without [`Held::release`] leaves its entry to lapse.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::CallError;

/// The clock drift between runners that lock timing allows for.
pub const SKEW: Duration = Duration::from_secs(2);

#[cfg(test)]
#[path = "locks_tests.rs"]
mod tests;
/// How often a waiter looks at the line (more often for leases under 8 s: a quarter lease).
pub const POLL: Duration = Duration::from_secs(2);

/// The future of a [`LockStore`] call.
pub type LockFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CallError>> + Send + 'a>>;

/// One place in a lock's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its ticket (its place).
    pub ticket: u64,
    /// The job that waits or holds (its job id).
    pub owner: String,
    /// When its lease ends, in milliseconds since the epoch.
    pub expires_ms: i64,
}

/// Which entry [`LockStore::remove`] may remove.
#[derive(Debug, Clone, Copy)]
pub enum Removal<'a> {
    /// A lapsed entry, if its lease is still this one.
    Lapsed(i64),
    /// The entry of this owner.
    Owned(&'a str),
}

/// Where the lines of locks are kept.
pub trait LockStore: Send + Sync {
    /// A ticket for `name`, higher than every ticket taken for it before.
    fn next_ticket<'a>(&'a self, name: &'a str) -> LockFuture<'a, u64>;
    /// Writes `entry` into `name`'s line.
    fn put<'a>(&'a self, name: &'a str, entry: &'a Entry) -> LockFuture<'a, ()>;
    /// `name`'s line, lowest ticket first (read consistently).
    fn line<'a>(&'a self, name: &'a str) -> LockFuture<'a, Vec<Entry>>;
    /// Moves the lease of `owner`'s `ticket` to `expires_ms`; false when that entry is gone.
    fn renew<'a>(
        &'a self,
        name: &'a str,
        ticket: u64,
        owner: &'a str,
        expires_ms: i64,
    ) -> LockFuture<'a, bool>;
    /// Removes `ticket` under `condition`; false when the condition did not hold.
    fn remove<'a>(
        &'a self,
        name: &'a str,
        ticket: u64,
        condition: Removal<'a>,
    ) -> LockFuture<'a, bool>;
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A held lock, renewed until released.
pub struct Held {
    store: Arc<dyn LockStore>,
    name: String,
    ticket: u64,
    owner: String,
    lost: CancellationToken,
    renewer: JoinHandle<()>,
}

/// Waits for lock `name` for `owner` (a job id) with leases of `lease`; `None` when `stop` came
/// first. Once held, `on_lost` is tripped if the lock is lost (fencing).
///
/// # Errors
/// A failed call to the store while taking the ticket or reading the line.
pub async fn wait_for(
    store: Arc<dyn LockStore>,
    name: &str,
    owner: &str,
    lease: Duration,
    stop: &CancellationToken,
    on_lost: CancellationToken,
) -> Result<Option<Held>, CallError> {
    let lease_ms = lease.as_millis() as i64;
    let ticket = store.next_ticket(name).await?;
    let mut entry = Entry {
        ticket,
        owner: owner.to_string(),
        expires_ms: now_ms() + lease_ms,
    };
    store.put(name, &entry).await?;
    let mut said = false;
    loop {
        let line = store.line(name).await?;
        let now = now_ms();
        let mut ahead = 0;
        for other in line.iter().filter(|e| e.ticket < ticket) {
            if other.expires_ms + SKEW.as_millis() as i64 <= now {
                let removed = store
                    .remove(name, other.ticket, Removal::Lapsed(other.expires_ms))
                    .await?;
                if removed {
                    tracing::warn!(
                        lock = name,
                        ticket = other.ticket,
                        owner = other.owner,
                        "removed a lapsed entry of the lock (its runner stopped renewing it)"
                    );
                }
            } else {
                ahead += 1;
            }
        }
        if !line.iter().any(|e| e.ticket == ticket) {
            // Ours lapsed (this runner could not renew it): take the same place again.
            entry.expires_ms = now + lease_ms;
            store.put(name, &entry).await?;
            continue;
        }
        if ahead == 0 {
            tracing::info!(lock = name, ticket, "lock taken");
            return Ok(Some(Held::start(store, name, entry, lease, on_lost)));
        }
        if !said {
            tracing::info!(lock = name, ticket, ahead, "waiting for the lock");
            said = true;
        }
        if entry.expires_ms - now < lease_ms * 3 / 4 {
            entry.expires_ms = now + lease_ms;
            store.renew(name, ticket, owner, entry.expires_ms).await?;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL.min(lease / 4)) => {}
            _ = stop.cancelled() => {
                let _ = store.remove(name, ticket, Removal::Owned(owner)).await;
                return Ok(None);
            }
        }
    }
}

impl Held {
    fn start(
        store: Arc<dyn LockStore>,
        name: &str,
        entry: Entry,
        lease: Duration,
        on_lost: CancellationToken,
    ) -> Held {
        let lost = CancellationToken::new();
        let renewer = tokio::spawn(renew(
            store.clone(),
            name.to_string(),
            entry.clone(),
            lease,
            lost.clone(),
            on_lost,
        ));
        Held {
            store,
            name: name.to_string(),
            ticket: entry.ticket,
            owner: entry.owner,
            lost,
            renewer,
        }
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the lock was lost while held.
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Stops renewing and removes the entry: the next in line takes the lock.
    pub async fn release(self) {
        self.renewer.abort();
        let removal = Removal::Owned(&self.owner);
        if let Err(e) = self.store.remove(&self.name, self.ticket, removal).await {
            tracing::warn!(lock = self.name, error = %e,
                "could not release the lock; the next in line takes it when its lease lapses");
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Renews `entry` every quarter lease; trips `lost` and `on_lost` when it is gone or could not
/// be renewed for three quarters of a lease.
async fn renew(
    store: Arc<dyn LockStore>,
    name: String,
    entry: Entry,
    lease: Duration,
    lost: CancellationToken,
    on_lost: CancellationToken,
) {
    let lease_ms = lease.as_millis() as i64;
    let fence_ms = lease_ms * 3 / 4;
    let mut renewed_at = now_ms();
    loop {
        tokio::time::sleep(lease / 4).await;
        let now = now_ms();
        // A renewal that hangs must not hold up the fence.
        let left = Duration::from_millis((renewed_at + fence_ms - now).max(0) as u64);
        let renewal = store.renew(&name, entry.ticket, &entry.owner, now + lease_ms);
        match tokio::time::timeout(left, renewal).await {
            Ok(Ok(true)) => renewed_at = now,
            Ok(Ok(false)) => {
                tracing::error!(
                    lock = name,
                    "the lock's entry is gone: ending the job (fencing)"
                );
                break;
            }
            Ok(Err(e)) => {
                tracing::warn!(lock = name, error = %e, "could not renew the lock; trying again")
            }
            Err(_) => tracing::warn!(lock = name, "renewing the lock did not answer in time"),
        }
        if now_ms() - renewed_at >= fence_ms {
            tracing::error!(
                lock = name,
                "the lock could not be renewed in time: ending the job before its lease lapses (fencing)"
            );
            break;
        }
    }
    lost.cancel();
    on_lost.cancel();
}
