//! The cache: a download or extraction that failed, ended or was dropped half-way leaves
//! nothing behind.
use std::time::Duration;

use super::super::extract::test_zip as zip_of;
use super::super::{FetchError, FetchFuture};
use super::*;

/// A cache in `tmp/c` with a budget of 1 MiB.
fn cache_in(tmp: &Path) -> Distributions {
    cache_of(tmp, 1 << 20)
}

/// A cache in `tmp/c` with a budget of `budget` bytes (0: no cache, as in local mode).
fn cache_of(tmp: &Path, budget: u64) -> Distributions {
    Distributions::new(
        tmp.join("c"),
        ExtractLimits::default(),
        budget,
        TaskTracker::new(),
        Arc::default(),
    )
    .unwrap()
}

/// The names in the cache folder.
fn left_in(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp.join("c"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Waits (polling every 5 ms, at most a minute) until `condition` holds.
async fn until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..12_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("gave up waiting until {what}");
}

/// A download that copies a local zip, or writes half of it and never ends; counts its calls
/// and keeps the size limit it was given.
struct Copied {
    zip: PathBuf,
    stall_half_way: bool,
    calls: std::sync::atomic::AtomicUsize,
    max: AtomicU64,
}

impl Fetch for Copied {
    fn describe(&self) -> String {
        "s3://b/k".into()
    }
    fn fetch<'a>(&'a self, dest: &'a Path, max: u64) -> FetchFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.max.store(max, Ordering::SeqCst);
        Box::pin(async move {
            let bytes = std::fs::read(&self.zip).unwrap();
            if self.stall_half_way {
                std::fs::write(dest, &bytes[..bytes.len() / 2]).unwrap();
                std::future::pending::<()>().await;
            }
            std::fs::write(dest, &bytes).unwrap();
            Ok(())
        })
    }
}

fn remote(zip: &Path, stall_half_way: bool) -> Source {
    Source::Remote {
        identity: "id-1".into(),
        fetch: Arc::new(Copied {
            zip: zip.to_path_buf(),
            stall_half_way,
            calls: Default::default(),
            max: Default::default(),
        }),
    }
}

#[tokio::test]
async fn a_remote_zip_is_downloaded_once_for_the_jobs_that_use_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = cache_in(tmp.path());
    let zip = tmp.path().join("d.zip");
    zip_of(&zip, 3, 10);
    let copied = Arc::new(Copied {
        zip,
        stall_half_way: false,
        calls: Default::default(),
        max: Default::default(),
    });
    let source = Source::Remote {
        identity: "id-1".into(),
        fetch: copied.clone(),
    };
    for job in ["w1", "w2"] {
        let workspace = tmp.path().join(job);
        cache.fill(&source, &workspace).await.unwrap();
        assert!(workspace.join("f0.txt").is_file());
    }
    assert_eq!(copied.calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.slots(), 1);
    // A zip may be its content's limit and a margin of that limit again, at most 64 MiB.
    let limit = ExtractLimits::default().max_bytes;
    assert!(limit > 64 << 20);
    assert_eq!(copied.max.load(Ordering::SeqCst), limit + (64 << 20));
}

/// A download whose first call fails after giving way once (so that a second job gets to
/// wait on the same slot); later calls copy the zip.
struct FailsFirst {
    zip: PathBuf,
    calls: std::sync::atomic::AtomicUsize,
}

impl Fetch for FailsFirst {
    fn describe(&self) -> String {
        "s3://b/k".into()
    }
    fn fetch<'a>(&'a self, dest: &'a Path, _max: u64) -> FetchFuture<'a> {
        let first = self.calls.fetch_add(1, Ordering::SeqCst) == 0;
        Box::pin(async move {
            if first {
                tokio::task::yield_now().await;
                return Err(FetchError::BrokeOff(Arc::new(std::io::Error::other(
                    "reset",
                ))));
            }
            std::fs::copy(&self.zip, dest).unwrap();
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_failed_extraction_with_a_job_waiting_keeps_its_slot_for_that_job() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = cache_in(tmp.path());
    let zip = tmp.path().join("d.zip");
    zip_of(&zip, 3, 10);
    let fetch = Arc::new(FailsFirst {
        zip,
        calls: Default::default(),
    });
    let source = Source::Remote {
        identity: "id-1".into(),
        fetch: fetch.clone(),
    };
    // The first job's download fails while the second waits on the same slot; the second
    // downloads again and its entry serves the third.
    let (w1, w2, w3) = (
        tmp.path().join("w1"),
        tmp.path().join("w2"),
        tmp.path().join("w3"),
    );
    let (first, second) = tokio::join!(cache.fill(&source, &w1), cache.fill(&source, &w2));
    assert!(first.is_err() && second.is_ok(), "{first:?} {second:?}");
    cache.fill(&source, &w3).await.unwrap();
    assert_eq!(
        fetch.calls.load(Ordering::SeqCst),
        2,
        "the third job missed the cache"
    );
    assert_eq!(cache.slots(), 1);
}

#[tokio::test]
async fn without_a_budget_a_zip_is_extracted_straight_into_the_workspace() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = cache_of(tmp.path(), 0);
    let zip = tmp.path().join("d.zip");
    zip_of(&zip, 3, 10);
    let local = Source::Zip {
        path: zip.clone(),
        identity: "id-1".into(),
    };
    for (source, job) in [(local, "w1"), (remote(&zip, false), "w2")] {
        let workspace = tmp.path().join(job);
        cache.fill(&source, &workspace).await.unwrap();
        assert!(workspace.join("f2.txt").is_file());
        // No cache entry, no spare copy, no download left.
        assert!(left_in(tmp.path()).is_empty(), "{:?}", left_in(tmp.path()));
    }
}

#[tokio::test]
async fn a_remote_zip_is_extracted_and_its_download_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = cache_in(tmp.path());
    let zip = tmp.path().join("d.zip");
    zip_of(&zip, 3, 10);
    let workspace = tmp.path().join("w");
    cache.fill(&remote(&zip, false), &workspace).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(workspace.join("f2.txt")).unwrap(),
        "a".repeat(10)
    );
    let left = left_in(tmp.path());
    assert!(
        left.iter().all(|name| !name.starts_with("download-")),
        "{left:?}"
    );
}

#[tokio::test]
async fn a_download_dropped_half_way_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = cache_in(tmp.path());
    let zip = tmp.path().join("d.zip");
    zip_of(&zip, 3, 10);
    let (workspace, stalled) = (tmp.path().join("w"), remote(&zip, true));
    tokio::select! {
        _ = cache.fill(&stalled, &workspace) => panic!("a stalled download ended"),
        _ = until("half the zip is downloaded", || !left_in(tmp.path()).is_empty()) => {}
    }
    // The fill, dropped, removed its partial download.
    assert!(left_in(tmp.path()).is_empty(), "{:?}", left_in(tmp.path()));
}

#[tokio::test]
async fn an_extraction_dropped_half_way_stops_and_removes_what_it_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = cache_in(tmp.path());
    let zip = tmp.path().join("d.zip");
    zip_of(&zip, 5000, 16);
    let local = Source::Zip {
        path: zip,
        identity: "id-1".into(),
    };
    let workspace = tmp.path().join("w");
    let writing = || {
        left_in(tmp.path()).iter().any(|entry| {
            std::fs::read_dir(tmp.path().join("c").join(entry))
                .is_ok_and(|mut files| files.next().is_some())
        })
    };
    tokio::select! {
        _ = cache.fill(&local, &workspace) => panic!("the extraction ended before it was dropped"),
        _ = until("the extraction is writing", writing) => {}
    }
    // The blocking extraction stops before its next entry and removes its folder.
    until("the partial extraction is removed", || {
        left_in(tmp.path()).is_empty()
    })
    .await;
}

struct Unreachable;

impl Fetch for Unreachable {
    fn describe(&self) -> String {
        "s3://b/k".into()
    }
    fn fetch<'a>(&'a self, _dest: &'a Path, _max: u64) -> FetchFuture<'a> {
        Box::pin(async {
            Err(FetchError::BrokeOff(std::sync::Arc::new(
                std::io::Error::other("the network is down"),
            )))
        })
    }
}

#[tokio::test]
async fn a_failed_download_or_extraction_frees_its_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = cache_in(tmp.path());
    let remote = Source::Remote {
        identity: "id-1".into(),
        fetch: Arc::new(Unreachable),
    };
    let workspace = tmp.path().join("w");
    let e = cache.fill(&remote, &workspace).await.unwrap_err();
    assert!(e.to_string().contains("the network is down"), "{e}");
    let garbage = tmp.path().join("not.zip");
    std::fs::write(&garbage, "not a zip").unwrap();
    let local = Source::Zip {
        path: garbage,
        identity: "id-2".into(),
    };
    assert!(cache.fill(&local, &workspace).await.is_err());
    assert_eq!(cache.slots(), 0);
    // Nothing of either attempt is left in the cache folder.
    assert!(left_in(tmp.path()).is_empty());
}

/// The next spare of [`Distributions::fill_then_spare`] is made only once its job starts it:
/// nothing is copied before, and a started one appears in the cache.
#[tokio::test]
async fn a_pending_spare_is_made_only_once_started() {
    let tmp = tempfile::tempdir().unwrap();
    let tracker = TaskTracker::new();
    // Closed, so that `wait` returns once every spare started so far is made.
    tracker.close();
    let cache = Distributions::new(
        tmp.path().join("c"),
        ExtractLimits::default(),
        1 << 20,
        tracker.clone(),
        Arc::default(),
    )
    .unwrap();
    let zip = tmp.path().join("d.zip");
    zip_of(&zip, 3, 10);
    let source = Source::Zip {
        path: zip,
        identity: "id-1".into(),
    };
    let spares = || {
        left_in(tmp.path())
            .iter()
            .filter(|n| n.starts_with("spare-"))
            .count()
    };
    let (_, pending) = cache
        .fill_then_spare(&source, &tmp.path().join("w1"))
        .await
        .unwrap();
    let pending = pending.expect("a cached zip has a next spare");
    tracker.wait().await;
    assert_eq!(spares(), 0, "no copy before the job starts the spare");
    pending.start();
    tracker.wait().await;
    assert_eq!(spares(), 1, "the started spare is made");
    let (_, next) = cache
        .fill_then_spare(&source, &tmp.path().join("w2"))
        .await
        .unwrap();
    assert_eq!(spares(), 0, "the second job took the spare by rename");
    assert!(tmp.path().join("w2/f0.txt").is_file());
    assert!(next.is_some(), "and hands on the next one");
}
