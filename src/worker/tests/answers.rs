//! How the worker answers and what it does when AWS refuses: report retries and refusals,
//! closed tokens, queues that may not be read, refused jobs and outputs.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_message_is_deleted_only_after_its_report_was_accepted() {
    let rig = Rig::new(true, false);
    rig.tokens.fail_reports(4);
    let id = rig.job("t1", "ok");
    let worker = rig.start(config(1, None)).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    let accepted = rig.position(|e| matches!(e, Event::Succeeded(t, _) if t == "t1"));
    assert!(accepted < rig.position(|e| *e == Event::Deleted(id.clone())));
    assert_eq!(rig.tokens.answers("t1"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_closed_token_ends_the_job_and_nothing_is_reported() {
    let rig = Rig::new(true, false);
    let id = rig.job("t1", "wait");
    let worker = rig.start(config(1, None)).await;
    until("the job runs", || {
        rig.runner.runs.load(Ordering::SeqCst) == 1
    })
    .await;
    rig.tokens.close("t1");
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    assert_eq!(rig.count(is_report), 0, "{:?}", rig.events());
    assert!(rig.events().contains(&Event::Deleted(id)));
    let cancelled = [("outcome", "cancelled")];
    let figures = rig.stats.figures.reading();
    assert_eq!(figures.total("attini_runner_jobs_total", &cancelled), 1.0);
}

#[tokio::test(start_paused = true)]
async fn a_report_is_retried_for_ten_minutes_then_the_message_is_left() {
    let rig = Rig::new(true, false);
    rig.tokens.fail_reports(u32::MAX);
    let id = rig.job("t1", "ok");
    let worker = rig.start(config(1, None)).await;
    until("the job gave up reporting", || {
        rig.stats
            .figures
            .reading()
            .total("attini_runner_jobs_total", &[])
            == 1.0
    })
    .await;
    let attempts = rig.tokens.report_attempts();
    rig.shutdown.cancel();
    worker.await.unwrap();
    let span = *attempts.last().unwrap() - attempts[0];
    assert!(
        span >= Duration::from_secs(590) && span <= Duration::from_secs(620),
        "reports were retried for {span:?}"
    );
    assert!(attempts.len() >= 20, "only {} attempts", attempts.len());
    assert_eq!(rig.tokens.answers("t1"), 0);
    assert!(
        !rig.events().contains(&Event::Deleted(id)),
        "an unanswered job's message was deleted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_denied_report_is_retried_until_the_permission_arrives_and_the_job_runs_once() {
    let rig = Rig::new(true, false);
    // Three denials, as while a new IAM permission propagates, then an allow.
    rig.tokens.deny_reports(3);
    let id = rig.job("t1", "ok");
    let worker = rig.start(config(1, None)).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    assert_eq!(rig.tokens.answers("t1"), 1);
    assert_eq!(rig.tokens.report_attempts().len(), 4);
    assert!(
        rig.stats.board.jobs().is_empty(),
        "an answered job is still on the board (/jobs, the drain)"
    );
    assert_eq!(
        rig.runner.runs.load(Ordering::SeqCst),
        1,
        "the job ran again"
    );
    let accepted = rig.position(|e| matches!(e, Event::Succeeded(t, _) if t == "t1"));
    assert!(accepted < rig.position(|e| *e == Event::Deleted(id.clone())));
}

#[tokio::test(start_paused = true)]
async fn a_report_denied_past_its_retry_window_leaves_the_message_undeleted() {
    let rig = Rig::new(true, false);
    rig.tokens.deny_reports(u32::MAX);
    let id = rig.job("t1", "ok");
    let mut config = config(1, None);
    config.report_retries.refused = Duration::from_secs(120);
    let worker = rig.start(config).await;
    until("the job gave up reporting", || {
        let figures = rig.stats.figures.reading();
        figures.total("attini_runner_reports_total", &[("result", "undelivered")]) == 1.0
    })
    .await;
    let attempts = rig.tokens.report_attempts();
    rig.shutdown.cancel();
    worker.await.unwrap();
    let span = *attempts.last().unwrap() - attempts[0];
    assert!(
        span >= Duration::from_secs(110) && span <= Duration::from_secs(125),
        "a denied report was retried for {span:?}"
    );
    assert_eq!(rig.tokens.answers("t1"), 0);
    assert!(
        !rig.events().contains(&Event::Deleted(id)),
        "a message whose report was denied was deleted unanswered"
    );
}

#[tokio::test(start_paused = true)]
async fn a_report_to_a_closed_token_counts_as_answered_and_the_message_goes() {
    let rig = Rig::new(true, false);
    // Closed before the job even ran (stopped execution): no beat notices it, the report does.
    rig.tokens.close("t1");
    let id = rig.job("t1", "ok");
    let worker = rig.start(config(1, None)).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    assert_eq!(rig.tokens.answers("t1"), 0);
    assert!(rig.events().contains(&Event::Deleted(id)));
    assert_eq!(
        rig.tokens.report_attempts().len(),
        1,
        "a closed token is not retried"
    );
    let figures = rig.stats.figures.reading();
    assert_eq!(
        figures.total("attini_runner_reports_total", &[("result", "task_gone")]),
        1.0,
        "a closed token is counted as gone, not as refused"
    );
}

#[tokio::test(start_paused = true)]
async fn a_queue_that_may_not_be_read_stops_the_worker_with_its_reason() {
    let rig = Rig::new(true, false);
    rig.queue.fail_receives(CallError {
        operation: "ReceiveMessage",
        class: ErrorClass::Denied,
        message: "AccessDenied: no".into(),
        source: None,
    });
    let worker = rig.start(config(1, None)).await;
    match worker.await.unwrap() {
        Exit::Stopped(reason) => {
            assert!(
                reason.contains("cannot be used: ReceiveMessage failed: AccessDenied"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// How `worker` ended, failing the test when it runs on for ten minutes of virtual time.
async fn stops_within_ten_minutes(worker: JoinHandle<Exit>) -> Exit {
    tokio::time::timeout(Duration::from_secs(600), worker)
        .await
        .expect("the worker did not stop by itself")
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_policy_stop_ends_the_runner_with_its_reason_and_leaves_the_message() {
    let rig = Rig::new(true, false);
    rig.job_with("t1", "ok", serde_json::json!({"note": "policy-stop"}));
    let worker = rig.start(config(1, None)).await;
    assert_eq!(
        stops_within_ten_minutes(worker).await,
        Exit::Stopped("the policy says stop".into())
    );
    assert_eq!(rig.runner.runs.load(Ordering::SeqCst), 0);
    assert_eq!(rig.tokens.answers("t1"), 0);
    assert!(!rig.queue.is_empty(), "the message was deleted");
}

#[tokio::test(start_paused = true)]
async fn jobs_failing_on_the_runners_side_in_a_row_stop_it_as_broken() {
    let rig = Rig::new(true, false);
    // A panic is answered as a runtime error: the runner's side, not the job's.
    for i in 0..6 {
        rig.job(&format!("t{i}"), "panic");
    }
    let worker = rig.start(config(1, None)).await;
    match stops_within_ten_minutes(worker).await {
        Exit::Broken(reason) => assert!(
            reason.contains("5 jobs in a row failed on its side"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(rig.runner.runs.load(Ordering::SeqCst), 5);
    assert_eq!(rig.tokens.answers("t5"), 0, "the sixth job ran");
}

#[tokio::test(start_paused = true)]
async fn a_transient_receive_error_is_retried_not_fatal() {
    let rig = Rig::new(true, false);
    rig.queue
        .fail_receives(CallError::transient("ReceiveMessage", "ServiceUnavailable"));
    let worker = rig.start(config(1, Some(60))).await;
    // It keeps trying until its idle TTL ends it, not the error.
    assert_eq!(worker.await.unwrap(), Exit::Idle);
    // Backing off, from half a second doubling to 30 s: tries at 0, 0.5, 1.5, 3.5, 7.5, 15.5
    // and 31.5 s; the next would be at 61.5 s, past the TTL.
    assert_eq!(rig.queue.polls(), 7);
}

#[tokio::test(start_paused = true)]
async fn a_refused_job_is_answered_then_its_message_deleted() {
    let rig = Rig::new(true, false);
    // A token, but no commands: refused as Job.Invalid, naming the field.
    let body = serde_json::json!({"taskToken": "t1"}).to_string();
    let id = rig.queue.push(&body);
    let worker = rig.start(config(1, None)).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    let failed = rig.position(|e| matches!(e, Event::Failed(t, error, cause) if t == "t1" && error == crate::engine::names::INVALID_JOB && cause.contains("commands")));
    assert!(failed < rig.position(|e| *e == Event::Deleted(id.clone())));
    assert_eq!(rig.runner.runs.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn an_output_refused_for_good_is_reported_as_a_failure_and_the_message_goes() {
    let rig = Rig::new(true, false);
    rig.tokens.refuse_outputs();
    let id = rig.job("t1", "ok");
    let worker = rig.start(config(1, None)).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    let cause = rig.events().into_iter().find_map(|e| match e {
        Event::Failed(t, error, cause) if t == "t1" && error == RUNTIME_ERROR => Some(cause),
        _ => None,
    });
    let cause = cause.expect("the refused output was not turned into a failure");
    assert!(
        cause.contains("refused its output") && cause.contains("InvalidOutput"),
        "{cause}"
    );
    // One refused success, one accepted failure: nothing retried.
    assert_eq!(rig.tokens.report_attempts().len(), 2);
    assert!(rig.events().contains(&Event::Deleted(id)));
}

#[tokio::test(start_paused = true)]
async fn a_job_whose_report_is_retried_frees_its_slot_and_reports_in_flight_are_bounded() {
    let rig = Rig::new(true, false);
    // t1's report is retried for over a minute.
    rig.tokens.fail_reports(12);
    let ids: Vec<String> = (1..=3).map(|i| rig.job(&format!("t{i}"), "ok")).collect();
    let worker = rig.start(config(1, None)).await;
    until("the queue is empty", || rig.queue.is_empty()).await;
    rig.shutdown.cancel();
    worker.await.unwrap();
    let answered =
        |token: &str| rig.position(|e| matches!(e, Event::Succeeded(t, _) if t == token));
    let received = |id: &String| rig.position(|e| *e == Event::Received(id.clone()));
    // One slot: t2 was received while t1 was still being answered, so t1 had freed it.
    assert!(received(&ids[1]) < answered("t1"), "{:?}", rig.events());
    // One report place: t2, done, waited in its slot for t1's answer, so t3 came after it.
    assert!(received(&ids[2]) > answered("t1"), "{:?}", rig.events());
    for token in ["t1", "t2", "t3"] {
        assert_eq!(rig.tokens.answers(token), 1, "{token}");
    }
    assert_eq!(rig.stats.figures.slots.running(), 0);
    assert_eq!(rig.stats.figures.slots.peak(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_idle_ttl_counts_from_the_end_of_a_job_whose_answer_is_still_retried() {
    let rig = Rig::new(true, false);
    // t1's answer is retried for over a minute after its 50 s run.
    rig.tokens.fail_reports(12);
    rig.job("t1", "sleep 50");
    let worker = rig.start(config(1, Some(30))).await;
    // The paused clock runs to 15 s after t1 ended, within the 30 s TTL.
    tokio::time::sleep(Duration::from_secs(65)).await;
    assert_eq!(rig.tokens.answers("t1"), 0, "t1's answer is still retried");
    rig.job("t2", "ok");
    assert_eq!(worker.await.unwrap(), Exit::Idle);
    assert_eq!(rig.tokens.answers("t1"), 1);
    assert_eq!(rig.tokens.answers("t2"), 1, "{:?}", rig.events());
}
