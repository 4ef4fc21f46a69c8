//! What a job's commands see and how their end is reported.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn env_values_with_quotes_dollars_and_newlines_arrive_unchanged() {
    let h = Harness::new();
    let tricky =
        "it's \"quoted\" $HOME `id` \\ back\nsecond line; rm -rf /tmp/nothing' && echo pwned";
    let job = native(json!({
        "commands": ["printf '%s' \"$TRICKY\" > \"$ATTINI_OUTPUT\""],
        "environment": {"TRICKY": tricky},
    }));
    let (result, _) = h.run(&job, None).await;
    assert_eq!(output(&result), json!({ "result": tricky }));
}

#[tokio::test]
async fn a_failing_middle_command_stops_the_job_with_its_exit_code() {
    let h = Harness::new();
    let job = native(json!({"commands": ["echo first", "(exit 7)", "echo never"]}));
    let (result, lines) = h.run(&job, None).await;
    let (error, cause) = failure(&result);
    assert_eq!(error, "ScriptExecutionError");
    assert!(cause.starts_with("Script exited with code 7"), "{cause}");
    assert!(cause.ends_with("Last 1 lines of output:\nfirst"), "{cause}");
    assert_eq!(lines, ["first"]);

    let piped = native(json!({"commands": ["false | true", "echo never"]}));
    let (result, lines) = h.run(&piped, None).await;
    assert!(failure(&result).1.starts_with("Script exited with code 1"));
    assert!(lines.is_empty(), "pipefail must stop the job: {lines:?}");
}

#[tokio::test]
async fn commands_share_one_shell_and_see_the_attini_variables() {
    let h = Harness::new();
    let job = native(json!({
        "stepName": "Step1",
        "commands": [
            "mkdir sub && cd sub",
            "X=kept; f() { echo fn-ok; }",
            "echo \"x=$X $(f) pwd=$(pwd)\"",
            "test \"$(pwd)\" = \"$ATTINI_SOURCE_DIR/sub\"",
            "test -x \"$ATTINI_RUNNER_EXEC\"",
            "test \"$ATTINI_STEP_NAME\" = Step1",
            "test \"$(readlink /proc/self/fd/0)\" = /dev/null",
            "cat \"$ATTINI_INPUT\" > \"$ATTINI_OUTPUT\"",
        ],
        "input": {"given": [1, "two"]},
    }));
    let (result, lines) = h.run(&job, None).await;
    assert_eq!(output(&result), json!({"given": [1, "two"]}));
    assert!(lines[0].starts_with("x=kept fn-ok pwd="), "{lines:?}");
    assert!(h.leftover_job_dirs().await.is_empty());
}

#[tokio::test]
async fn attini_jobs_get_the_attini_variables() {
    let h = Harness::new();
    let mut job =
        attini_runner::job::parse(include_str!("../fixtures/attini-message.json")).unwrap();
    job.commands = vec![
        "echo \"$ATTINI_ENVIRONMENT_NAME|$ATTINI_DISTRIBUTION_NAME|$ATTINI_DISTRIBUTION_ID|$ATTINI_STEP_NAME|$STAGE\"".into(),
        "echo \"$ATTINI_DISTRIBUTION_ARTIFACTS_PREFIX|$ATTINI_OBJECT_IDENTIFIER\"".into(),
        "grep -c deploymentPlanExecutionMetadata \"$ATTINI_INPUT\" || echo input-ok".into(),
    ];
    let (result, lines) = h.run(&job, None).await;
    assert!(result.report.is_success(), "{:?}", result.report);
    assert_eq!(
        lines,
        [
            "dev|demo|5ed6cd45-636d-4dd9-b7ed-a90580fd0b7e|RunTests|dev",
            "dev/demo/5ed6cd45-636d-4dd9-b7ed-a90580fd0b7e/distribution-origin|dev/demo/demo.zip#3v4JtzjjXZMJiS2_qAFYCdB0ZKATEJh3",
            "0",
            "input-ok",
        ]
    );
}

#[tokio::test]
async fn stdout_and_stderr_keep_their_order_and_bad_bytes_do_not_break_anything() {
    let h = Harness::new();
    let job = native(json!({"commands": [
        "echo one; echo two >&2; echo three",
        "printf 'bad \\xff\\xfe bytes\\n'",
        "printf 'no newline at the end'",
    ]}));
    let (result, lines) = h.run(&job, None).await;
    assert!(result.report.is_success());
    assert_eq!(
        lines,
        [
            "one",
            "two",
            "three",
            "bad \u{fffd}\u{fffd} bytes",
            "no newline at the end"
        ]
    );
}

#[tokio::test]
async fn output_rules_end_to_end() {
    let h = Harness::new();
    let cases = [
        ("true", json!({})),
        ("rm \"$ATTINI_OUTPUT\"", json!({})),
        (
            "echo '{\"MyKey\":\"MyValue\"}' > \"$ATTINI_OUTPUT\"",
            json!({"MyKey": "MyValue"}),
        ),
        (
            "echo 'plain text' > \"$ATTINI_OUTPUT\"",
            json!({"result": "plain text"}),
        ),
        ("echo '[1,2]' > \"$ATTINI_OUTPUT\"", json!([1, 2])),
    ];
    for (command, expected) in cases {
        let (result, _) = h.run(&native(json!({"commands": [command]})), None).await;
        assert_eq!(output(&result), expected, "{command}");
    }
}

#[tokio::test]
async fn output_over_the_step_functions_limit_fails_clearly() {
    let h = Harness::new();
    let job = native(json!({"commands": [
        "head -c 300000 /dev/zero | tr '\\0' x > \"$ATTINI_OUTPUT\"",
    ]}));
    let (result, _) = h.run(&job, None).await;
    let (error, cause) = failure(&result);
    assert_eq!(error, "Job.InvalidOutput");
    assert!(cause.contains("at most 262144 bytes"), "{cause}");
    let fits = native(json!({"commands": [
        "printf '\"%s\"' \"$(head -c 262142 /dev/zero | tr '\\0' y)\" > \"$ATTINI_OUTPUT\"",
    ]}));
    let (result, _) = h.run(&fits, None).await;
    assert_eq!(output(&result).as_str().unwrap().len(), 262_142);
}

#[tokio::test]
async fn secrets_are_masked_in_logs_output_and_cause() {
    let h = Harness::new();
    let job = native(json!({
        "commands": [
            "echo \"password is $DB_PASSWORD\"",
            "echo \"{\\\"pw\\\": \\\"$DB_PASSWORD\\\"}\" > \"$ATTINI_OUTPUT\"",
        ],
        "secretEnvironment": {"DB_PASSWORD": "correct-horse"},
    }));
    let (result, lines) = h.run(&job, None).await;
    assert_eq!(lines, ["password is ***"]);
    assert_eq!(output(&result), json!({"pw": "***"}));

    let failing = native(json!({
        "commands": ["echo \"oops $DB_PASSWORD AKIAIOSFODNN7EXAMPLE\"", "exit 2"],
        "secretEnvironment": {"DB_PASSWORD": "correct-horse"},
    }));
    let (result, _) = h.run(&failing, None).await;
    let (_, cause) = failure(&result);
    assert!(cause.ends_with("oops *** ***"), "{cause}");
}

#[tokio::test]
async fn a_script_killed_by_a_signal_says_so() {
    let h = Harness::new();
    let (result, _) = h
        .run(&native(json!({"commands": ["kill -KILL $$"]})), None)
        .await;
    let (error, cause) = failure(&result);
    assert_eq!(error, "ScriptExecutionError");
    assert_eq!(cause, "Script was killed by signal 9 (SIGKILL)");
}

#[tokio::test]
async fn a_missing_working_directory_is_a_clear_runtime_error() {
    let h = Harness::new();
    let job = native(json!({"commands": ["true"], "workingDirectory": "not/there"}));
    let (result, _) = h.run(&job, None).await;
    let (error, cause) = failure(&result);
    assert_eq!(error, "Job.Invalid");
    assert!(
        cause.contains("workingDirectory \"not/there\" is not a folder"),
        "{cause}"
    );
}

#[tokio::test]
async fn an_environment_over_the_kernels_limit_says_so_and_not_that_bash_is_missing() {
    let h = Harness::new();
    // One string may hold at most 128 KiB (MAX_ARG_STRLEN).
    let job = native(json!({"commands": ["true"], "environment": {"BIG": "x".repeat(200_000)}}));
    let (result, _) = h.run(&job, None).await;
    let (error, cause) = failure(&result);
    assert_eq!(error, "Job.Invalid");
    assert!(cause.contains("more than the kernel allows"), "{cause}");
    assert!(!cause.contains("Is bash installed"), "{cause}");
    let (next, _) = h.run(&native(json!({"commands": ["true"]})), None).await;
    assert!(next.report.is_success(), "{:?}", next.report);
}

#[tokio::test]
async fn an_output_file_that_is_not_a_regular_file_fails_clearly_and_the_next_job_runs() {
    let h = Harness::new();
    for (make, kind) in [
        ("mkfifo \"$ATTINI_OUTPUT\"", "a FIFO"),
        ("ln -s /etc/passwd \"$ATTINI_OUTPUT\"", "a symlink"),
        ("mkdir \"$ATTINI_OUTPUT\"", "a directory"),
    ] {
        let job = native(json!({"commands": ["rm \"$ATTINI_OUTPUT\"", make]}));
        let (result, _) = h.run(&job, None).await;
        let (error, cause) = failure(&result);
        assert_eq!(error, "Job.InvalidOutput");
        assert!(
            cause.contains(&format!("is not a regular file but {kind}")),
            "{cause}"
        );
    }
    let job = native(json!({"commands": ["echo fine > $ATTINI_OUTPUT"]}));
    let (result, _) = h.run(&job, None).await;
    assert_eq!(output(&result), json!({"result": "fine"}));
}

#[tokio::test]
async fn a_job_cancelled_before_its_first_command_never_starts() {
    let h = Harness::new();
    let marker = h.path("ran");
    let job = native(json!({"commands": [format!("touch {}", marker.display())]}));
    let cancel = tokio_util::sync::CancellationToken::new();
    cancel.cancel();
    let sink = std::sync::Arc::new(Capture::default());
    let result = h.engine.run(&job, &Default::default(), sink, &cancel).await;
    let (error, cause) = failure(&result);
    assert_eq!(error, "Runner.Interrupted");
    assert!(
        cause.contains("before the job's first command started"),
        "{cause}"
    );
    assert!(!marker.exists(), "the job ran");
    assert!(h.leftover_job_dirs().await.is_empty());
}

/// A sink that blocks each line until the runtime has made progress elsewhere (or gives up).
struct Stalled {
    ticks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    gave_up: std::sync::atomic::AtomicBool,
}

impl attini_runner::engine::executor::LogSink for Stalled {
    fn line(&self, _line: &str) {
        use std::sync::atomic::Ordering::SeqCst;
        let start = self.ticks.load(SeqCst);
        for _ in 0..1000 {
            if self.ticks.load(SeqCst) >= start + 5 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.gave_up.store(true, SeqCst);
    }
}

#[tokio::test]
async fn a_sink_that_blocks_does_not_stall_the_runtime() {
    use std::sync::atomic::Ordering::SeqCst;
    // One runtime thread: if writing a job's output blocked it, nothing else could tick.
    let h = Harness::new();
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                ticks.fetch_add(1, SeqCst);
            }
        })
    };
    let sink = std::sync::Arc::new(Stalled {
        ticks: ticks.clone(),
        gave_up: Default::default(),
    });
    let job = native(json!({"commands": ["echo one", "echo two"]}));
    let cancel = tokio_util::sync::CancellationToken::new();
    let result = h
        .engine
        .run(&job, &Default::default(), sink.clone(), &cancel)
        .await;
    ticker.abort();
    assert!(result.report.is_success(), "{:?}", result.report);
    assert!(
        !sink.gave_up.load(SeqCst),
        "the runtime stood still while a sink blocked"
    );
}
