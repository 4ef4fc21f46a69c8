//! The cache: a failed download or extraction leaves nothing behind.
use super::super::{FetchError, FetchFuture};
use super::*;

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
    let cache = Distributions::new(
        tmp.path().join("c"),
        ExtractLimits::default(),
        1 << 20,
        TaskTracker::new(),
        Arc::default(),
    )
    .unwrap();
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
    assert_eq!(std::fs::read_dir(tmp.path().join("c")).unwrap().count(), 0);
}
