use super::*;

#[test]
fn the_text_is_openmetrics_with_every_family() {
    let m = Figures::new();
    m.slots.set_total(5);
    m.slots.started();
    m.slots.started();
    m.job_finished("cdk", Outcome::Failed, Duration::from_secs(3));
    m.aws_error(AwsErrorLabels {
        service: "sqs",
        operation: "ReceiveMessage",
        class: "transient",
    });
    m.cache_lookup(true);
    m.report(ReportResult::TaskGone);
    let text = m.render();
    for line in [
        "attini_runner_slots_in_use 2",
        "attini_runner_slots_free 3",
        "attini_runner_slots_peak 2",
        "attini_runner_draining 0",
        "attini_runner_jobs_total{kind=\"cdk\",outcome=\"failed\"} 1",
        "attini_runner_job_duration_seconds_count{kind=\"cdk\"} 1",
        "attini_runner_aws_errors_total{service=\"sqs\",operation=\"ReceiveMessage\",class=\"transient\"} 1",
        "attini_runner_distribution_cache_lookups_total{result=\"hit\"} 1",
        "attini_runner_reports_total{result=\"task_gone\"} 1",
        "attini_runner_build_info{version=\"2.1.0\"} 1",
        "# TYPE attini_runner_queue_wait_seconds histogram",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
}
