//! The stop (Fargate Spot gives 2 minutes): what has not started goes back at once, what fits
//! the drain grace finishes, what is expected to outlast it is interrupted at once (its
//! expected time declared or learned here), a job of unknown length and one that must not be
//! interrupted run until the grace is over.

use super::*;
use serde_json::json;

/// A grace of 100 s, four slots.
fn drain_config() -> WorkerConfig {
    WorkerConfig {
        drain_grace: Duration::from_secs(100),
        ..config(4, None)
    }
}

fn failure_of(rig: &Rig, token: &str) -> Option<(usize, String, String)> {
    rig.events().iter().enumerate().find_map(|(i, e)| match e {
        Event::Failed(t, error, cause) if t == token => Some((i, error.clone(), cause.clone())),
        _ => None,
    })
}

/// The seconds a cause says the job was expected to need still.
fn expected_more(cause: &str) -> u64 {
    let rest = cause.split("expected to need ").nth(1).expect(cause);
    rest.split(' ').next().unwrap().parse().unwrap()
}

fn success_of(rig: &Rig, token: &str) -> usize {
    rig.position(|e| matches!(e, Event::Succeeded(t, _) if t == token))
}

#[tokio::test(start_paused = true)]
async fn a_stop_finishes_what_fits_interrupts_what_does_not_and_hands_back_what_has_not_started() {
    let rig = Rig::new(true, false);
    rig.job_with("fits", "sleep 30", json!({"expectedSeconds": 40}));
    rig.job_with("long", "sleep 500", json!({"expectedSeconds": 600}));
    let preparing = rig.job("preparing", "workspace 1000");
    rig.job("unknown", "sleep 150");
    let worker = rig.start(drain_config()).await;
    until("four jobs run", || rig.stats.board.jobs().len() == 4).await;
    let stopped = tokio::time::Instant::now();
    rig.shutdown.cancel();
    assert_eq!(worker.await.unwrap(), Exit::Requested);

    // The long job was interrupted at once, before the short one finished.
    let (at, error, cause) = failure_of(&rig, "long").expect("long was answered");
    assert_eq!(error, INTERRUPTED_ERROR);
    assert!(
        cause.contains("s more, past the 100 s drain grace period"),
        "{cause}"
    );
    // 600 s expected, a second or so run when the stop came.
    assert!((590..=600).contains(&expected_more(&cause)), "{cause}");
    assert!(at < success_of(&rig, "fits"), "{:?}", rig.events());
    // What had not started went back unanswered, at once.
    assert!(rig.events().contains(&Event::Released(preparing)));
    assert_eq!(rig.tokens.answers("preparing"), 0);
    // Unknown length: it ran until the grace was over.
    let (_, error, cause) = failure_of(&rig, "unknown").expect("unknown was answered");
    assert_eq!(error, INTERRUPTED_ERROR);
    assert!(
        cause.contains("did not finish within the 100 s drain grace period"),
        "{cause}"
    );
    // Virtual time: the drain took the grace and the kill, not the 150 s of the unknown job.
    assert!(
        stopped.elapsed() < Duration::from_secs(110),
        "{:?}",
        stopped.elapsed()
    );
    // Counted apart from failures: two interrupted, one succeeded, none failed.
    let figures = rig.stats.figures.reading();
    let jobs = |outcome: &str| figures.total("attini_runner_jobs_total", &[("outcome", outcome)]);
    assert_eq!(
        (jobs("interrupted"), jobs("succeeded"), jobs("failed")),
        (2.0, 1.0, 0.0)
    );
}

#[tokio::test(start_paused = true)]
async fn an_expected_time_is_learned_from_the_jobs_last_runs_here() {
    let rig = Rig::new(true, false);
    let step = json!({"stepName": "Build"});
    rig.job_with("first", "sleep 300", step.clone());
    let worker = rig.start(drain_config()).await;
    until("the first run is answered", || {
        rig.tokens.answers("first") == 1
    })
    .await;
    rig.job_with("second", "sleep 300", step);
    until("the second one runs", || rig.stats.board.jobs().len() == 1).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    // 300 s last time, so 300 s more now: interrupted at once.
    let (_, error, cause) = failure_of(&rig, "second").expect("second was answered");
    assert_eq!(error, INTERRUPTED_ERROR);
    assert!((290..=300).contains(&expected_more(&cause)), "{cause}");
}

#[tokio::test(start_paused = true)]
async fn a_job_that_must_not_be_interrupted_runs_until_the_grace_is_over() {
    let rig = Rig::new(true, false);
    let migration = json!({"expectedSeconds": 600, "interruptible": false});
    rig.job_with("migration", "sleep 500", migration);
    let worker = rig.start(drain_config()).await;
    until("it runs", || rig.stats.board.jobs().len() == 1).await;
    let stopped = tokio::time::Instant::now();
    rig.shutdown.cancel();
    worker.await.unwrap();
    let (_, error, cause) = failure_of(&rig, "migration").expect("it was answered");
    assert_eq!(error, INTERRUPTED_ERROR);
    assert!(
        cause.contains("did not finish within the 100 s drain grace"),
        "{cause}"
    );
    assert!(stopped.elapsed() >= Duration::from_secs(100));
}

/// SQS keeps a long poll open to its end even when the runner has stopped listening, and hands
/// it what is sent meanwhile (the in-memory queue's poll goes on likewise once begun): a stop
/// mid-poll waits for the poll, and what it brings goes back to the queue at once.
#[tokio::test(start_paused = true)]
async fn a_message_the_last_long_poll_brings_after_a_stop_goes_back_at_once() {
    let rig = Rig::new(true, false);
    let worker = rig.start(config(1, None)).await;
    until("the runner is in its long poll", || rig.queue.polls() == 1).await;
    rig.shutdown.cancel();
    let late = rig.job("late", "ok");
    assert_eq!(worker.await.unwrap(), Exit::Requested);
    let events = rig.events();
    assert!(
        events.contains(&Event::Received(late.clone())),
        "{events:?}"
    );
    assert!(events.contains(&Event::Released(late)), "{events:?}");
    assert_eq!(rig.tokens.answers("late"), 0, "{events:?}");
    assert_eq!(rig.queue.len(), 1, "the message is still in the queue");
    assert_eq!(rig.queue.polls(), 1, "no receive after the stop");
}
