//! The lease, slot and drain rules of the worker: beats, deletion order, redelivery, the
//! batch and 12 h leases, free slots, drain, heartbeat permission, panics and the idle TTL.
//! The beats under faults are in `beats.rs`.

use super::*;

#[tokio::test(start_paused = true)]
async fn the_lease_is_extended_on_each_beat_and_the_message_deleted_after_the_report() {
    let rig = Rig::new(true, false);
    let id = rig.job("t1", "sleep 35");
    let worker = rig.start(config(2, None)).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    assert_eq!(worker.await.unwrap(), Exit::Requested);
    // 35 s of job with a beat every 10 s: three extensions and three heartbeats.
    assert_eq!(rig.count(|e| *e == Event::Extended(id.clone())), 3);
    assert_eq!(
        rig.count(|e| matches!(e, Event::Heartbeat(t) if t == "t1")),
        3
    );
    let report = rig.position(is_report);
    let last_extension = rig.position(|e| *e == Event::Extended(id.clone()));
    assert!(last_extension < report, "{:?}", rig.events());
    assert!(report < rig.position(|e| *e == Event::Deleted(id.clone())));
    assert_eq!(rig.tokens.answers("t1"), 1);
}

#[tokio::test(start_paused = true)]
async fn without_the_visibility_permission_the_message_is_deleted_before_the_job_runs() {
    let rig = Rig::new(false, false);
    let id = rig.job("t1", "sleep 40");
    let worker = rig.start(config(1, None)).await;
    until("the report", || rig.tokens.answers("t1") == 1).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    assert!(rig.position(|e| *e == Event::Deleted(id.clone())) < rig.position(is_report));
    assert_eq!(rig.count(|e| matches!(e, Event::Extended(_))), 0);
}

#[tokio::test(start_paused = true)]
async fn a_redelivered_message_of_a_running_job_is_not_started_again() {
    let rig = Rig::new(true, false);
    let id = rig.job("t1", "sleep 50");
    let worker = rig.start(config(2, None)).await;
    until("the job runs", || {
        rig.runner.runs.load(Ordering::SeqCst) == 1
    })
    .await;
    // The lease lapses (an outage, say): the queue hands the message out again.
    rig.queue.expire(&id);
    until("the redelivery", || rig.queue.deliveries(&id) == 2).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    assert_eq!(rig.runner.runs.load(Ordering::SeqCst), 1);
    assert_eq!(rig.tokens.answers("t1"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_drain_gives_back_what_did_not_start_and_interrupts_the_rest_after_the_grace() {
    let rig = Rig::new(true, false);
    let running = rig.job("t1", "wait");
    let body = serde_json::json!({"taskToken": "t2", "commands": ["ok"], "stepName": "stop-now"});
    rig.queue.push(&body.to_string());
    let not_started = rig.job("t3", "ok");
    // All three arrive in one batch; admitting the second trips the shutdown (a signal), so
    // the third goes straight back.
    let worker = rig.start(config(3, None)).await;
    assert_eq!(worker.await.unwrap(), Exit::Requested);
    let events = rig.events();
    assert!(
        events.contains(&Event::Released(not_started.clone())),
        "{events:?}"
    );
    assert_eq!(rig.tokens.answers("t3"), 0, "{events:?}");
    assert_eq!(rig.queue.len(), 1, "only the given-back message is left");
    // A job that finishes inside the grace is reported normally.
    assert_eq!(rig.tokens.answers("t2"), 1, "{events:?}");
    let interrupted = events.iter().any(
        |e| matches!(e, Event::Failed(t, error, _) if t == "t1" && error == INTERRUPTED_ERROR),
    );
    assert!(interrupted, "{events:?}");
    let cause = events.iter().find_map(|e| match e {
        Event::Failed(t, _, cause) if t == "t1" => Some(cause.clone()),
        _ => None,
    });
    let cause = cause.unwrap();
    assert!(
        cause.contains("did not finish within the 5 s drain grace period"),
        "{cause}"
    );
    assert!(events.contains(&Event::Deleted(running)));
}

#[tokio::test(start_paused = true)]
async fn a_role_without_heartbeat_permission_is_tolerated() {
    let rig = Rig::new(true, true);
    rig.job("t1", "sleep 45");
    let worker = rig.start(config(1, None)).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    assert_eq!(rig.tokens.answers("t1"), 1);
    assert_eq!(rig.count(|e| matches!(e, Event::Heartbeat(_))), 0);
    assert_eq!(rig.count(|e| matches!(e, Event::Extended(_))), 4);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_job_frees_its_slot_is_reported_and_the_idle_ttl_still_fires() {
    let rig = Rig::new(true, false);
    let id = rig.job("t1", "panic");
    let worker = rig.start(config(1, Some(30))).await;
    // The worker ends by itself: the idle TTL fires once the panicked job freed its slot.
    assert_eq!(worker.await.unwrap(), Exit::Idle);
    assert_eq!(rig.stats.figures.slots.running(), 0);
    let cause = rig
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::Failed(t, error, cause) if t == "t1" && error == RUNTIME_ERROR => Some(cause),
            _ => None,
        })
        .expect("the panicked job is reported");
    assert!(cause.contains("boom in the job"), "{cause}");
    assert!(rig.events().contains(&Event::Deleted(id)));
}

#[tokio::test(start_paused = true)]
async fn a_job_that_ran_here_and_comes_back_is_deleted_not_run() {
    let rig = Rig::new(true, false);
    let id = rig.job("t1", "ok");
    let worker = rig.start(config(1, None)).await;
    until("the report", || rig.tokens.answers("t1") == 1).await;
    // Its delete failed (a lost receipt, say) and the message came back.
    rig.queue.resurrect(&id);
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    assert_eq!(rig.runner.runs.load(Ordering::SeqCst), 1);
    assert_eq!(rig.count(|e| *e == Event::Deleted(id.clone())), 2);
}

#[tokio::test(start_paused = true)]
async fn the_runner_receives_no_more_messages_than_it_has_free_slots() {
    let rig = Rig::new(true, false);
    for i in 0..6 {
        rig.job(&format!("t{i}"), "sleep 10");
    }
    let worker = rig.start(config(2, None)).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    // Held = received and neither deleted nor given back; it never exceeds the two slots.
    let mut held = 0i32;
    let mut most = 0;
    for event in rig.events() {
        match event {
            Event::Received(_) => held += 1,
            Event::Deleted(_) | Event::Released(_) => held -= 1,
            _ => {}
        }
        most = most.max(held);
    }
    assert_eq!(most, 2, "{:?}", rig.events());
    assert_eq!(rig.count(|e| matches!(e, Event::Released(_))), 0);
    assert_eq!(rig.count(|e| matches!(e, Event::Succeeded(..))), 6);
}

#[tokio::test(start_paused = true)]
async fn the_lease_holds_through_a_report_that_takes_longer_than_the_visibility_window() {
    let rig = Rig::new(true, false);
    // Twelve transient failures: at least 62 s of backoff (125 s before jitter halves it at
    // most), more than two 30 s windows.
    rig.tokens.fail_reports(12);
    let id = rig.job("t1", "ok");
    let worker = rig.start(config(1, None)).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    let attempts = rig.tokens.report_attempts();
    let span = *attempts.last().unwrap() - attempts[0];
    assert!(
        span > Duration::from_secs(60),
        "the report took only {span:?}"
    );
    assert_eq!(
        rig.count(|e| *e == Event::Received(id.clone())),
        1,
        "{:?}",
        rig.events()
    );
    assert!(rig.count(|e| *e == Event::Extended(id.clone())) >= 3);
    assert_eq!(rig.tokens.answers("t1"), 1);
    // The job ended before its first beat: the beats while its report is retried extend the
    // message and send no heartbeat.
    assert_eq!(rig.tokens.heartbeat_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_slow_admission_holds_only_its_own_slot_and_keeps_its_lease() {
    let rig = Rig::new(true, false);
    let body =
        serde_json::json!({"taskToken": "t1", "commands": ["ok"], "stepName": "slow-admission"});
    let slow = rig.queue.push(&body.to_string());
    let other = rig.job("t2", "ok");
    // One batch of two; the first takes 100 s to admit, more than three 30 s windows.
    let worker = rig.start(config(3, None)).await;
    until("the other job is answered", || {
        rig.tokens.answers("t2") == 1
    })
    .await;
    // A message sent later is received and run while the slow one is still being admitted.
    let later = rig.job("t3", "ok");
    until("the later job is answered", || {
        rig.tokens.answers("t3") == 1
    })
    .await;
    assert_eq!(rig.tokens.answers("t1"), 0, "{:?}", rig.events());
    assert_eq!(rig.count(|e| *e == Event::Received(other.clone())), 1);
    assert_eq!(rig.count(|e| *e == Event::Received(later.clone())), 1);
    until("the slow job is answered", || rig.tokens.answers("t1") == 1).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    // Its lease held through the admission: never delivered twice.
    assert!(rig.count(|e| *e == Event::Extended(slow.clone())) >= 3);
    assert_eq!(rig.count(|e| *e == Event::Received(slow.clone())), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stop_during_a_slow_admission_drains_at_once_and_gives_the_message_back() {
    let rig = Rig::new(true, false);
    let body =
        serde_json::json!({"taskToken": "t1", "commands": ["ok"], "stepName": "slow-admission"});
    let slow = rig.queue.push(&body.to_string());
    let worker = rig.start(config(2, None)).await;
    until("the slow message's lease was extended", || {
        rig.count(|e| *e == Event::Extended(slow.clone())) >= 1
    })
    .await;
    let stopped_at = tokio::time::Instant::now();
    rig.shutdown.cancel();
    assert_eq!(worker.await.unwrap(), Exit::Requested);
    // Virtual time: the drain did not wait for the admission's remaining ~90 s.
    assert!(
        stopped_at.elapsed() < Duration::from_secs(5),
        "the drain waited for the admission"
    );
    assert!(
        rig.events().contains(&Event::Released(slow.clone())),
        "{:?}",
        rig.events()
    );
    assert_eq!(rig.tokens.answers("t1"), 0);
    assert_eq!(rig.queue.len(), 1, "the message stays in the queue");
}

#[tokio::test(start_paused = true)]
async fn a_slow_refusal_does_not_hold_the_loop() {
    let rig = Rig::new(true, false);
    // Refused (no commands), and its report takes 200 s to be answered.
    let refused = rig
        .queue
        .push(&serde_json::json!({"taskToken": "bad", "commands": []}).to_string());
    rig.tokens.slow_reports("bad", Duration::from_secs(200));
    let worker = rig.start(config(2, None)).await;
    until("the refused message is received", || {
        rig.count(|e| *e == Event::Received(refused.clone())) == 1
    })
    .await;
    let good = rig.job("t2", "ok");
    until("the good job is answered", || rig.tokens.answers("t2") == 1).await;
    assert_eq!(
        rig.tokens.answers("bad"),
        0,
        "the refusal was not the slow one"
    );
    until("the refusal is answered", || rig.tokens.answers("bad") == 1).await;
    until("the refused message is deleted", || {
        rig.events().contains(&Event::Deleted(refused.clone()))
    })
    .await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    assert!(rig.events().contains(&Event::Deleted(good)));
}

#[tokio::test(start_paused = true)]
async fn a_job_longer_than_sqs_allows_a_lease_has_its_message_deleted_before_the_cap() {
    let rig = Rig::new(true, false);
    let id = rig.job("t1", "sleep 100");
    // A cap of 60 s stands in for SQS's 12 hours; the visibility is 30 s, a beat every 10 s.
    let worker = rig
        .start(WorkerConfig {
            max_lease: Duration::from_secs(60),
            ..config(1, None)
        })
        .await;
    until("the report", || rig.tokens.answers("t1") == 1).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    let deleted = rig.position(|e| *e == Event::Deleted(id.clone()));
    assert!(deleted < rig.position(is_report), "{:?}", rig.events());
    assert_eq!(rig.count(|e| *e == Event::Deleted(id.clone())), 1);
    assert_eq!(
        rig.queue.deletes(),
        1,
        "the message deleted at the cap was deleted again after the report"
    );
    assert_eq!(
        rig.count(|e| *e == Event::Received(id.clone())),
        1,
        "the job came back"
    );
    // Extended while within the cap (at 10, 20 and 30 s), never after.
    assert_eq!(rig.count(|e| *e == Event::Extended(id.clone())), 3);
    // The heartbeat goes on: it alone notices a dead runner now.
    assert!(rig.count(|e| matches!(e, Event::Heartbeat(_))) >= 9);
}

#[tokio::test(start_paused = true)]
async fn a_denied_heartbeat_is_not_tried_again() {
    let rig = Rig::new(true, true);
    rig.job("t1", "sleep 45");
    let worker = rig.start(config(1, None)).await;
    until("the report", || rig.tokens.answers("t1") == 1).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    assert_eq!(rig.tokens.heartbeat_calls(), 1);
}

/// Runs a 50 s job on a worker of `slots` with a 30 s idle TTL; asserts the worker left 30 s
/// after the job ended, not before; returns the rig.
async fn a_job_longer_than_the_idle_ttl(slots: usize) -> Rig {
    let rig = Rig::new(true, false);
    rig.job("t1", "sleep 50");
    let begin = tokio::time::Instant::now();
    let worker = rig.start(config(slots, Some(30))).await;
    assert_eq!(worker.await.unwrap(), Exit::Idle);
    let lived = begin.elapsed();
    assert!(
        lived >= Duration::from_secs(80) && lived < Duration::from_secs(81),
        "the worker lived {lived:?}"
    );
    assert_eq!(rig.tokens.answers("t1"), 1);
    rig
}

#[tokio::test(start_paused = true)]
async fn the_idle_ttl_runs_from_the_end_of_the_last_job() {
    a_job_longer_than_the_idle_ttl(1).await;
}

#[tokio::test(start_paused = true)]
async fn the_idle_ttl_waits_for_a_job_still_running_while_slots_are_free() {
    // A free slot keeps the loop polling while the job runs past the TTL.
    let rig = a_job_longer_than_the_idle_ttl(2).await;
    // Polls of the TTL's length at most (20 s, SQS's longest) while the job ran, not a spin.
    assert!(rig.queue.polls() <= 6, "{} polls", rig.queue.polls());
}

#[tokio::test(start_paused = true)]
async fn one_receive_takes_as_many_messages_as_there_are_free_slots() {
    let rig = Rig::new(true, false);
    for i in 0..3 {
        rig.job(&format!("t{i}"), "sleep 10");
    }
    let worker = rig.start(config(3, None)).await;
    until("the three jobs run", || {
        rig.runner.runs.load(Ordering::SeqCst) == 3
    })
    .await;
    assert_eq!(rig.queue.polls(), 1);
    rig.shutdown.cancel();
    worker.await.unwrap();
}
