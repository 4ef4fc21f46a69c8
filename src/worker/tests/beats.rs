//! The beats under faults: hung, slow, throttled and denied extensions, a hung heartbeat, the
//! retry schedule of a failing extension, and a dropped lease.

use super::*;
use crate::worker::ErrorClass;
use crate::worker::lease::Lease;
use crate::worker::memory::ExtendFault;

/// Runs one 100 s job to its answer on `rig`, with a second slot free to receive it again;
/// asserts it ran once and its message was received once (never came back while it ran);
/// returns the message id.
async fn one_long_job_runs_once(rig: &Rig) -> String {
    let id = rig.job("t1", "sleep 100");
    let worker = rig.start(config(2, None)).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    let received = rig.count(|e| *e == Event::Received(id.clone()));
    assert_eq!(
        received,
        1,
        "the message came back while its job ran: {:?}",
        rig.events()
    );
    assert_eq!(rig.runner.runs.load(Ordering::SeqCst), 1);
    assert_eq!(rig.tokens.answers("t1"), 1);
    id
}

#[tokio::test(start_paused = true)]
async fn a_hung_extension_is_abandoned_and_tried_again_before_the_window_closes() {
    let rig = Rig::new(true, false);
    // Two extensions in a row never answer (a half-open connection).
    rig.queue.fault_extends(ExtendFault::Hang, 2);
    one_long_job_runs_once(&rig).await;
}

#[tokio::test(start_paused = true)]
async fn slow_extensions_are_retried_within_the_beat_and_keep_the_message() {
    let rig = Rig::new(true, false);
    // Three extensions each take a minute: two windows of the 30 s visibility.
    rig.queue
        .fault_extends(ExtendFault::Slow(Duration::from_secs(60)), 3);
    one_long_job_runs_once(&rig).await;
}

#[tokio::test(start_paused = true)]
async fn a_hung_heartbeat_does_not_starve_the_extensions() {
    let rig = Rig::new(true, false);
    rig.tokens.hang_heartbeats(u32::MAX);
    let id = one_long_job_runs_once(&rig).await;
    // 100 s of job, a beat every 10 s: every beat extended, none waited for a heartbeat.
    assert!(rig.count(|e| *e == Event::Extended(id.clone())) >= 9);
    assert!(rig.tokens.heartbeat_calls() >= 9);
}

#[tokio::test(start_paused = true)]
async fn a_throttled_first_extension_is_tried_again_within_the_first_window() {
    let rig = Rig::new(true, false);
    // The beats at 10, 20 and 30 s would all miss without a retry: the message would come back.
    rig.queue
        .fault_extends(ExtendFault::Fail(ErrorClass::Transient), 3);
    one_long_job_runs_once(&rig).await;
}

#[tokio::test(start_paused = true)]
async fn a_throttled_extension_after_a_good_one_is_tried_again_within_its_window() {
    let rig = Rig::new(true, false);
    // The first beat extends to 40 s; the next three tries fail and the fourth, within that
    // window, keeps the message.
    rig.queue
        .fault_extends(ExtendFault::Slow(Duration::ZERO), 1);
    rig.queue
        .fault_extends(ExtendFault::Fail(ErrorClass::Transient), 3);
    one_long_job_runs_once(&rig).await;
}

#[tokio::test(start_paused = true)]
async fn a_denied_extension_is_not_tried_again_within_its_beat() {
    let rig = Rig::new(true, false);
    rig.queue
        .fault_extends(ExtendFault::Fail(ErrorClass::Denied), 1);
    rig.job("t1", "sleep 15");
    let worker = rig.start(config(1, None)).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    // One beat, at 10 s, denied; the job ended at 15 s.
    assert_eq!(rig.queue.extends(), 1);
}

#[tokio::test(start_paused = true)]
async fn retries_of_a_failing_extension_stop_where_they_could_not_end_before_the_window_closes() {
    let rig = Rig::new(true, false);
    rig.queue
        .fault_extends(ExtendFault::Fail(ErrorClass::Transient), 100);
    rig.job("t1", "sleep 25");
    let worker = rig.start(config(1, None)).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    // The window closes at 30 s and a try may take 5 s. The beat at 10 s tries at 10, 10.5,
    // 11.5, 13.5, 17.5 and 22.5 s (a pause of 5 s more would end past 30 s); the next beat,
    // due at 20 s, comes at 22.5 s and tries at 22.5, 23 and 24 s; the job ends at 25 s.
    assert_eq!(rig.queue.extends(), 9);
    assert_eq!(rig.tokens.answers("t1"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_lease_extends_no_more() {
    let rig = Rig::new(true, false);
    rig.job("t1", "ok");
    let mut received = rig.queue.receive(1, Duration::ZERO).await.unwrap();
    let message = received.pop().unwrap();
    let parts = Arc::new(crate::worker::shared::Parts::new(
        rig.runner.clone(),
        rig.queue.clone(),
        rig.tokens.clone(),
        Some(Duration::from_secs(30)),
        rig.stats.clone(),
        &config(1, None),
    ));
    let receipt = Arc::new(std::sync::Mutex::new(message.receipt.clone()));
    let lease = Lease::start(parts, receipt, message.received, CancellationToken::new());
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(rig.queue.extends(), 1);
    drop(lease);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        rig.queue.extends(),
        1,
        "extended after the lease was dropped"
    );
}
