//! The job log: syncing, the size limit, appending past 5 MiB, failed uploads, tags.
use super::*;
use std::sync::Mutex as StdMutex;
use tokio::time::Instant;

/// Records each stored body with the (paused) time it was stored; the first `.1` calls
/// fail.
#[derive(Default)]
struct Recorder(StdMutex<Vec<(Instant, String)>>, StdMutex<u32>);

impl Recorder {
    fn failing(calls: u32) -> Self {
        Recorder(StdMutex::default(), StdMutex::new(calls))
    }

    fn fail(&self) -> bool {
        let mut left = self.1.lock().unwrap();
        let fail = *left > 0;
        *left = left.saturating_sub(1);
        fail
    }

    fn last(&self) -> String {
        self.0.lock().unwrap().last().unwrap().1.clone()
    }
}

/// The `data` of each line of a stored log.
fn data(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["data"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

impl LogStore for Recorder {
    fn describe(&self) -> String {
        "memory".into()
    }
    fn put(&self, body: Bytes) -> PutFuture<'_> {
        if self.fail() {
            return Box::pin(async { Err(CallError::transient("PutObject", "SlowDown")) });
        }
        let text = String::from_utf8(body.to_vec()).unwrap();
        self.0.lock().unwrap().push((Instant::now(), text));
        Box::pin(async { Ok(()) })
    }
    fn append(&self, more: Bytes) -> PutFuture<'_> {
        if self.fail() {
            return Box::pin(async { Err(CallError::transient("UploadPart", "SlowDown")) });
        }
        let mut stored = self.0.lock().unwrap();
        let mut text = stored.last().map(|(_, t)| t.clone()).unwrap_or_default();
        // The object is copied in as part 1 of a multipart upload, and S3 refuses a part
        // (but the last) under 5 MiB.
        assert!(
            text.len() >= 5 * 1024 * 1024,
            "appended to an object of {} bytes",
            text.len()
        );
        text.push_str(std::str::from_utf8(&more).unwrap());
        stored.push((Instant::now(), text));
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test(start_paused = true)]
async fn the_log_object_stops_at_its_limit_with_a_note() {
    let store = Arc::new(Recorder::default());
    let log = JobLog::start_with_limit("s".into(), Some(store.clone() as Arc<dyn LogStore>), 300);
    let sink = log.sink();
    for i in 0..20 {
        sink.line(&format!("line number {i:02}"));
    }
    log.finish().await;
    let last = store.0.lock().unwrap().last().unwrap().1.clone();
    let lines: Vec<&str> = last.lines().collect();
    assert!(
        last.len() - lines.last().unwrap().len() - 1 <= 300,
        "{last}"
    );
    assert!(
        lines.last().unwrap().contains("larger than 300 bytes"),
        "{last}"
    );
    assert!(lines.len() > 3 && lines.len() < 10, "{last}");
    assert!(lines[0].contains("line number 00"));
    assert_eq!(MAX_LOG_BYTES, 64 * 1024 * 1024);
}

#[test]
fn a_tag_cannot_forge_a_log_line() {
    let log = JobLog::start("step\n[other] forged\r".into(), None);
    assert_eq!(log.sink().tag, "step?[other] forged?");
}

#[tokio::test(start_paused = true)]
async fn lines_are_synced_while_the_job_runs_at_most_every_ten_seconds() {
    let store = Arc::new(Recorder::default());
    let begin = Instant::now();
    let log = JobLog::start("step".into(), Some(store.clone() as Arc<dyn LogStore>));
    let sink = log.sink();
    sink.line("first");
    tokio::time::sleep(Duration::from_secs(1)).await;
    sink.line("second");
    tokio::time::sleep(Duration::from_secs(15)).await;
    sink.line("third");
    log.finish().await;
    let puts = store.0.lock().unwrap().clone();
    let at: Vec<u64> = puts.iter().map(|(t, _)| (*t - begin).as_secs()).collect();
    // At once for the first line, then not before 10 s, then at the end.
    assert_eq!(at, [0, 10, 16], "{puts:?}");
    assert!(puts[0].1.contains("\"data\":\"first\""));
    assert_eq!(puts[1].1.lines().count(), 2);
    assert_eq!(puts[2].1.lines().count(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_log_past_five_mib_is_appended_to_and_no_longer_kept() {
    let store = Arc::new(Recorder::default());
    let log = JobLog::start("big".into(), Some(store.clone() as Arc<dyn LogStore>));
    let sink = log.sink();
    let filler = "x".repeat(1000);
    let mut sent = Vec::new();
    for round in 0..3 {
        for i in 0..3000 {
            let line = format!("{round}-{i} {filler}");
            sink.line(&line);
            sent.push(line);
        }
        tokio::time::sleep(SYNC_INTERVAL + Duration::from_secs(1)).await;
    }
    assert_eq!(
        sink.lock().head.capacity(),
        0,
        "the stored log is still kept"
    );
    log.finish().await;
    assert_eq!(data(&store.last()), sent);
    let sizes: Vec<usize> = store
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| t.len())
        .collect();
    assert!(sizes.len() >= 3, "{sizes:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_upload_keeps_its_lines_for_the_next_one() {
    let store = Arc::new(Recorder::failing(2));
    let log = JobLog::start("flaky".into(), Some(store.clone() as Arc<dyn LogStore>));
    let sink = log.sink();
    sink.line("one");
    tokio::time::sleep(SYNC_INTERVAL + Duration::from_secs(1)).await;
    sink.line("two");
    tokio::time::sleep(SYNC_INTERVAL + Duration::from_secs(1)).await;
    sink.line("three");
    log.finish().await;
    assert_eq!(data(&store.last()), ["one", "two", "three"]);
    assert_eq!(*store.1.lock().unwrap(), 0, "both failures were met");
}

/// Upload times in whole seconds since `begin`.
fn upload_times(store: &Recorder, begin: Instant) -> Vec<u64> {
    let puts = store.0.lock().unwrap();
    puts.iter().map(|(t, _)| (*t - begin).as_secs()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_line_after_a_quiet_spell_is_stored_at_once() {
    let store = Arc::new(Recorder::default());
    let begin = Instant::now();
    let log = JobLog::start("quiet".into(), Some(store.clone() as Arc<dyn LogStore>));
    let sink = log.sink();
    sink.line("first");
    tokio::time::sleep(Duration::from_secs(15)).await;
    sink.line("after a pause");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(upload_times(&store, begin), [0, 15]);
    log.finish().await;
}

#[tokio::test(start_paused = true)]
async fn four_mib_waiting_are_stored_before_the_interval() {
    let store = Arc::new(Recorder::default());
    let begin = Instant::now();
    let log = JobLog::start("burst".into(), Some(store.clone() as Arc<dyn LogStore>));
    let sink = log.sink();
    sink.line("first");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let filler = "x".repeat(1000);
    // About 2 MiB waiting: not yet.
    for _ in 0..2000 {
        sink.line(&filler);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        upload_times(&store, begin),
        [0],
        "stored before 4 MiB were waiting"
    );
    // About 4.1 MiB waiting: at once.
    for _ in 0..2100 {
        sink.line(&filler);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(upload_times(&store, begin), [0, 2]);
    log.finish().await;
}

#[tokio::test(start_paused = true)]
async fn lines_past_what_may_wait_are_left_out_with_a_note() {
    let store = Arc::new(Recorder::default());
    let log = JobLog::start("flood".into(), Some(store.clone() as Arc<dyn LogStore>));
    let sink = log.sink();
    // More than MAX_PENDING at once, before the uploader can take any.
    let filler = "y".repeat(1000);
    let lines = MAX_PENDING / 1000 + 500;
    for _ in 0..lines {
        sink.line(&filler);
    }
    log.finish().await;
    let stored = data(&store.last());
    let note = stored.last().unwrap();
    assert!(
        note.contains("lines are missing here") && note.contains("CloudWatch"),
        "{note}"
    );
    assert!(
        stored.len() < lines,
        "{} of {lines} lines stored",
        stored.len()
    );
    let missing: usize = note
        .trim_start_matches("[attini-runner] ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {note}"));
    assert_eq!(missing + stored.len() - 1, lines, "{note}");
}

#[tokio::test(start_paused = true)]
async fn lines_filling_what_may_wait_to_the_byte_are_all_kept() {
    let store = Arc::new(Recorder::default());
    let log = JobLog::start("full".into(), Some(store.clone() as Arc<dyn LogStore>));
    let sink = log.sink();
    // Lines of exactly 1 KiB as stored: 8192 of them fill MAX_PENDING to the byte.
    let filler = "w".repeat(1024 - entry("").len());
    assert_eq!(entry(&filler).len(), 1024);
    let lines = MAX_PENDING / 1024;
    for _ in 0..lines {
        sink.line(&filler);
    }
    log.finish().await;
    let stored = data(&store.last());
    assert_eq!(stored.len(), lines);
    assert!(stored.iter().all(|line| *line == filler), "a note came");
}

#[tokio::test(start_paused = true)]
async fn a_log_that_fills_its_limit_to_the_byte_has_no_note() {
    let store = Arc::new(Recorder::default());
    let limit = 3 * entry("abc").len();
    let log = JobLog::start_with_limit("s".into(), Some(store.clone() as Arc<dyn LogStore>), limit);
    let sink = log.sink();
    for _ in 0..3 {
        sink.line("abc");
    }
    log.finish().await;
    assert_eq!(data(&store.last()), ["abc", "abc", "abc"]);
}

#[tokio::test(start_paused = true)]
async fn the_note_of_lines_left_out_counts_toward_the_size_limit() {
    let store = Arc::new(Recorder::default());
    let limit = MAX_PENDING + 1024 * 1024;
    let log = JobLog::start_with_limit(
        "flood".into(),
        Some(store.clone() as Arc<dyn LogStore>),
        limit,
    );
    let sink = log.sink();
    let filler = "y".repeat(1000);
    for _ in 0..MAX_PENDING / 1000 + 10 {
        sink.line(&filler);
    }
    // The uploader stores what waited and notes the lines left out.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let note = data(&store.last()).pop().unwrap();
    assert!(note.contains("lines are missing here"), "{note}");
    // Then small lines until the limit.
    let small = entry("z").len();
    for _ in 0..2 * (limit - MAX_PENDING) / small {
        sink.line("z");
    }
    log.finish().await;
    let last = store.last();
    let kept = last.len() - last.lines().last().unwrap().len() - 1;
    assert!(
        last.ends_with(&format!(
            "larger than {limit} bytes; later lines are in CloudWatch only\"}}\n"
        )),
        "{}",
        &last[last.len() - 200..]
    );
    assert!(
        kept <= limit && kept > limit - small,
        "{kept} bytes kept under a limit of {limit}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_log_dropped_without_finishing_stores_nothing_more() {
    let store = Arc::new(Recorder::default());
    let log = JobLog::start("dropped".into(), Some(store.clone() as Arc<dyn LogStore>));
    let sink = log.sink();
    sink.line("first");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(data(&store.last()), ["first"]);
    drop(log);
    sink.line("after");
    tokio::time::sleep(3 * SYNC_INTERVAL).await;
    assert_eq!(store.0.lock().unwrap().len(), 1, "stored after the drop");
}

#[test]
fn a_flush_writes_out_the_lines_waiting_for_stdout() {
    let log = JobLog::start("out".into(), None);
    let sink = log.sink();
    sink.line("waiting");
    assert_eq!(sink.stdout.waiting(), "[out] waiting\n".len());
    sink.flush();
    assert_eq!(sink.stdout.waiting(), 0);
}
