//! The lock's rules with an in-memory store and real time (leases of a fraction of a second):
//! arrival order, waiting without holding, a lapsed entry removed only [`SKEW`] after its
//! lease, fencing when renewals fail, release, and a stop while waiting.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// A lock store in memory; `fail_renewals` makes every renewal fail (the table unreachable).
#[derive(Default)]
struct Memory {
    lines: Mutex<BTreeMap<String, (u64, Vec<Entry>)>>,
    fail_renewals: AtomicBool,
}

fn call_error() -> CallError {
    CallError {
        operation: "UpdateItem",
        class: crate::calls::ErrorClass::Transient,
        message: "unreachable".into(),
        source: None,
    }
}

impl LockStore for Memory {
    fn next_ticket<'a>(&'a self, name: &'a str) -> LockFuture<'a, u64> {
        Box::pin(async move {
            let mut lines = self.lines.lock().unwrap();
            let line = lines.entry(name.into()).or_default();
            line.0 += 1;
            Ok(line.0)
        })
    }
    fn put<'a>(&'a self, name: &'a str, entry: &'a Entry) -> LockFuture<'a, ()> {
        Box::pin(async move {
            let mut lines = self.lines.lock().unwrap();
            let line = &mut lines.entry(name.into()).or_default().1;
            line.retain(|e| e.ticket != entry.ticket);
            line.push(entry.clone());
            line.sort_by_key(|e| e.ticket);
            Ok(())
        })
    }
    fn line<'a>(&'a self, name: &'a str) -> LockFuture<'a, Vec<Entry>> {
        Box::pin(async move {
            let lines = self.lines.lock().unwrap();
            Ok(lines.get(name).map(|l| l.1.clone()).unwrap_or_default())
        })
    }
    fn renew<'a>(
        &'a self,
        name: &'a str,
        ticket: u64,
        owner: &'a str,
        expires_ms: i64,
    ) -> LockFuture<'a, bool> {
        Box::pin(async move {
            if self.fail_renewals.load(Ordering::SeqCst) {
                return Err(call_error());
            }
            let mut lines = self.lines.lock().unwrap();
            let line = &mut lines.entry(name.into()).or_default().1;
            match line
                .iter_mut()
                .find(|e| e.ticket == ticket && e.owner == owner)
            {
                Some(e) => {
                    e.expires_ms = expires_ms;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
    }
    fn remove<'a>(
        &'a self,
        name: &'a str,
        ticket: u64,
        condition: Removal<'a>,
    ) -> LockFuture<'a, bool> {
        Box::pin(async move {
            let mut lines = self.lines.lock().unwrap();
            let line = &mut lines.entry(name.into()).or_default().1;
            let before = line.len();
            line.retain(|e| {
                let matches = match condition {
                    Removal::Lapsed(expires) => e.expires_ms == expires,
                    Removal::Owned(owner) => e.owner == owner,
                };
                !(e.ticket == ticket && matches)
            });
            Ok(line.len() < before)
        })
    }
}

const LEASE: Duration = Duration::from_millis(400);

async fn take(store: &Arc<Memory>, owner: &str) -> Held {
    let store: Arc<dyn LockStore> = store.clone();
    let stop = CancellationToken::new();
    wait_for(store, "db", owner, LEASE, &stop, CancellationToken::new())
        .await
        .unwrap()
        .expect("not stopped")
}

#[tokio::test]
async fn the_second_waits_until_the_first_releases_then_takes_it() {
    let store = Arc::new(Memory::default());
    let first = take(&store, "a").await;
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { take(&store, "b").await }
    });
    // It queued behind the first, and keeps waiting while the first renews.
    while store.lines.lock().unwrap()["db"].1.len() < 2 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(LEASE * 2).await;
    assert!(!waiting.is_finished(), "took a held lock");
    assert!(!first.is_lost());
    first.release().await;
    let second = waiting.await.unwrap();
    assert_eq!(second.name(), "db");
    second.release().await;
    assert!(store.lines.lock().unwrap()["db"].1.is_empty());
}

#[tokio::test]
async fn a_holder_that_cannot_renew_is_fenced_and_its_lapsed_entry_is_removed_after_the_skew() {
    let store = Arc::new(Memory::default());
    let on_lost = CancellationToken::new();
    let dyn_store: Arc<dyn LockStore> = store.clone();
    let stop = CancellationToken::new();
    let held = wait_for(dyn_store, "db", "a", LEASE, &stop, on_lost.clone())
        .await
        .unwrap()
        .unwrap();
    store.fail_renewals.store(true, Ordering::SeqCst);
    on_lost.cancelled().await;
    assert!(held.is_lost());
    let lease_end = store.lines.lock().unwrap()["db"].1[0].expires_ms;
    // Fenced before the lease ran out.
    assert!(
        now_ms() < lease_end,
        "fenced {} ms after the lease ended",
        now_ms() - lease_end
    );
    // The next in line takes it only once the lease plus the skew are over.
    store.fail_renewals.store(false, Ordering::SeqCst);
    let next = take(&store, "b").await;
    assert!(now_ms() >= lease_end + SKEW.as_millis() as i64);
    next.release().await;
    drop(held);
}

#[tokio::test]
async fn a_stop_while_waiting_leaves_the_line() {
    let store = Arc::new(Memory::default());
    let first = take(&store, "a").await;
    let stop = CancellationToken::new();
    let waiting = tokio::spawn({
        let store: Arc<dyn LockStore> = store.clone();
        let stop = stop.clone();
        async move { wait_for(store, "db", "b", LEASE, &stop, CancellationToken::new()).await }
    });
    while store.lines.lock().unwrap()["db"].1.len() < 2 {
        tokio::task::yield_now().await;
    }
    stop.cancel();
    assert!(waiting.await.unwrap().unwrap().is_none());
    let owners: Vec<String> = store.lines.lock().unwrap()["db"]
        .1
        .iter()
        .map(|e| e.owner.clone())
        .collect();
    assert_eq!(owners, ["a"]);
    first.release().await;
}
