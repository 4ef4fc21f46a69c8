//! The pool of homes: one job per home, the warmest idle home first, new homes when all are
//! busy, and the least recently used idle homes removed past the budget.

use super::*;

fn pool(budget: u64) -> (tempfile::TempDir, Homes) {
    let tmp = tempfile::tempdir().unwrap();
    let homes = Homes::new(tmp.path().join("homes"), budget, TaskTracker::new());
    (tmp, homes)
}

fn caches(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test]
async fn a_busy_home_is_never_lent_twice_and_a_given_back_one_is_used_again() {
    let (_tmp, homes) = pool(1 << 30);
    let a = homes.take(&caches(&[".npm"]), &[]).await.unwrap();
    let b = homes.take(&caches(&[".npm"]), &[]).await.unwrap();
    assert_ne!(a.path(), b.path());
    assert!(a.path().join(".npm").is_dir() && b.path().join(".npm").is_dir());
    std::fs::write(a.path().join(".npm/warm"), "x").unwrap();
    let a_path = a.path().to_path_buf();
    a.give_back().await;
    b.give_back().await;
    // Both idle: the one holding the cache asked for... both do; the most recent wins.
    let c = homes.take(&caches(&[".npm"]), &[]).await.unwrap();
    assert_ne!(c.path(), a_path.as_path(), "b was given back last");
    let d = homes.take(&caches(&[".npm"]), &[]).await.unwrap();
    assert_eq!(d.path(), a_path.as_path());
    assert!(d.path().join(".npm/warm").is_file());
}

#[tokio::test]
async fn the_home_holding_most_of_the_caches_asked_for_is_chosen() {
    let (_tmp, homes) = pool(1 << 30);
    let maven = homes.take(&caches(&[".m2"]), &[]).await.unwrap();
    let npm = homes.take(&caches(&[".npm"]), &[]).await.unwrap();
    let maven_path = maven.path().to_path_buf();
    maven.give_back().await;
    npm.give_back().await;
    let again = homes.take(&caches(&[".m2"]), &[]).await.unwrap();
    assert_eq!(again.path(), maven_path.as_path());
}

#[tokio::test]
async fn past_the_budget_the_least_recently_used_idle_homes_are_removed() {
    let (_tmp, homes) = pool(1000);
    let old = homes.take(&caches(&[".npm"]), &[]).await.unwrap();
    let new = homes.take(&caches(&[".npm"]), &[]).await.unwrap();
    let busy = homes.take(&caches(&[".npm"]), &[]).await.unwrap();
    for lease in [&old, &new, &busy] {
        std::fs::write(lease.path().join(".npm/blob"), vec![0u8; 600]).unwrap();
    }
    let (old_path, new_path) = (old.path().to_path_buf(), new.path().to_path_buf());
    old.give_back().await;
    // 600 bytes idle: within the budget.
    assert!(old_path.is_dir());
    new.give_back().await;
    // 1200 bytes idle: the older goes.
    assert!(!old_path.exists());
    assert!(new_path.join(".npm/blob").is_file());
    // A busy home is never removed, even past the budget.
    assert!(busy.path().is_dir());
    drop(busy);
}

#[tokio::test]
async fn a_lease_dropped_without_giving_back_frees_its_home() {
    let tracker = TaskTracker::new();
    let tmp = tempfile::tempdir().unwrap();
    let homes = Homes::new(tmp.path().join("homes"), 1 << 30, tracker.clone());
    let lease = homes.take(&caches(&[".npm"]), &[]).await.unwrap();
    let path = lease.path().to_path_buf();
    drop(lease);
    tracker.close();
    tracker.wait().await;
    let again = homes.take(&caches(&[".npm"]), &[]).await.unwrap();
    assert_eq!(again.path(), path.as_path());
}

#[test]
fn size_counts_files_in_nested_folders_and_not_links() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
    std::fs::write(tmp.path().join("a/one"), vec![0u8; 10]).unwrap();
    std::fs::write(tmp.path().join("a/b/two"), vec![0u8; 5]).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("a/one"), tmp.path().join("link")).unwrap();
    assert_eq!(size_of(tmp.path()), 15);
    assert_eq!(size_of(&tmp.path().join("missing")), 0);
}

/// A seed held back until `release` is notified (a stand-in for S3, for the pool's part).
struct HeldSeed {
    zip: Vec<u8>,
    release: Arc<tokio::sync::Notify>,
}

impl crate::engine::distribution::Fetch for HeldSeed {
    fn describe(&self) -> String {
        "the held seed".into()
    }

    fn fetch<'a>(
        &'a self,
        dest: &'a Path,
        _max_bytes: u64,
    ) -> crate::engine::distribution::FetchFuture<'a> {
        Box::pin(async move {
            self.release.notified().await;
            std::fs::write(dest, &self.zip).unwrap();
            Ok(())
        })
    }
}

fn zip_of(name: &str, content: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(content).unwrap();
    zip.finish().unwrap().into_inner()
}

/// Seeds `homes` with a zip of `.npm/seeded` holding `content`; a job asking for `.npm`
/// while the seed is held back waits, and gets its home once the seed is released.
async fn take_after_seed(homes: Homes, content: &[u8]) -> (HomeLease, Homes) {
    let release = Arc::new(tokio::sync::Notify::new());
    let seed = HeldSeed {
        zip: zip_of(".npm/seeded", content),
        release: release.clone(),
    };
    homes.seed(Arc::new(seed));
    let homes = Arc::new(homes);
    let taking = tokio::spawn({
        let homes = homes.clone();
        async move { homes.take(&caches(&[".npm"]), &[]).await.unwrap() }
    });
    // Current-thread runtime: the seed task and the take have both run up to their waits.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!taking.is_finished(), "a take must wait for the seed");
    release.notify_one();
    let lease = taking.await.unwrap();
    let homes = Arc::try_unwrap(homes).unwrap_or_else(|_| unreachable!("one owner left"));
    (lease, homes)
}

#[tokio::test]
async fn a_job_waits_for_the_seed_and_gets_the_seeded_home() {
    let (_tmp, homes) = pool(1 << 30);
    let (lease, homes) = take_after_seed(homes, b"warm").await;
    assert_eq!(
        std::fs::read(lease.path().join(".npm/seeded")).unwrap(),
        b"warm"
    );
    assert!(
        !homes.dir().join("seed.zip").exists(),
        "the downloaded zip is removed"
    );
    // The seeded home counts in the pool with its size.
    let pool = lock(&homes.pool);
    assert_eq!(pool.homes.len(), 1);
    assert_eq!(pool.homes[0].bytes, 4);
}

#[tokio::test]
async fn a_seed_past_the_budget_is_not_kept_and_the_job_gets_an_empty_home() {
    let (_tmp, homes) = pool(3);
    let (lease, homes) = take_after_seed(homes, b"too large").await;
    assert!(lease.path().join(".npm").is_dir());
    assert!(!lease.path().join(".npm/seeded").exists());
    let pool = lock(&homes.pool);
    assert_eq!(pool.homes.len(), 1, "only the job's own home");
    assert_eq!(lease.path().file_name().unwrap(), "home-2");
}

/// A seed that never arrives holds a job back [`SEED_WAIT`] at most (paused clock).
#[tokio::test(start_paused = true)]
async fn a_job_waits_for_a_stalled_seed_two_minutes_at_most() {
    let (_tmp, homes) = pool(1 << 30);
    let never = HeldSeed {
        zip: Vec::new(),
        release: Arc::new(tokio::sync::Notify::new()),
    };
    homes.seed(Arc::new(never));
    let started = tokio::time::Instant::now();
    let lease = homes.take(&caches(&[".npm"]), &[]).await.unwrap();
    assert_eq!(started.elapsed(), SEED_WAIT);
    assert!(lease.path().join(".npm").is_dir());
    assert!(!lease.path().join(".npm/seeded").exists());
}
