//! The real binary as a user runs it: `local`, `dry-run`, `--version`, `command-mode version`,
//! exit codes 0 / 1 / 64 and the one JSON line on stdout.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_attini-runner");
const README: &str = include_str!("../../README.md");

fn runner(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env("ATTINI_WORK_DIR", dir.join("work"))
        .env("ATTINI_JOB_TIMEOUT", "120")
        .output()
        .unwrap()
}

/// The single stdout line as JSON.
fn result(out: &Output) -> Value {
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout must be one line: {stdout:?}"
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn the_readme_example_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let job = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello/job.json");
    let out = runner(&["local", job], tmp.path());
    crate::harness::assert_exit(&out, 0);
    assert_eq!(
        result(&out),
        json!({"status": "SUCCEEDED", "output": {"greeting": "Hello, Attini", "stage": "dev"}})
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Hello, Attini! Running in dev from workspace."),
        "{stderr}"
    );
    // Nothing is left in the work directory.
    let runs: Vec<_> = std::fs::read_dir(tmp.path().join("work"))
        .unwrap()
        .collect();
    assert!(runs.is_empty(), "{runs:?}");
}

#[test]
fn a_failing_job_exits_1_with_a_failed_line() {
    let tmp = tempfile::tempdir().unwrap();
    let job = write(
        tmp.path(),
        "job.json",
        r#"{"commands": ["echo about to fail", "exit 3"]}"#,
    );
    let out = runner(&["local", &job], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        result(&out),
        json!({"status": "FAILED", "error": "ScriptExecutionError",
               "cause": "Script exited with code 3\nLast 1 lines of output:\nabout to fail"})
    );
}

#[test]
fn bad_job_files_and_flags_exit_64_naming_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"commands": ["x"], "timeout": 5}"#,
            vec![],
            "unknown field `timeout`",
        ),
        (
            r#"{"commands": [["nested"]]}"#,
            vec![],
            "field `commands[0]` must be a string",
        ),
        ("not json", vec![], "the job is not valid JSON"),
        (
            r#"{"commands": ["x"], "distribution": {"path": "missing-dir"}}"#,
            vec![],
            "distribution.path: the distribution",
        ),
        (
            r#"{"commands": ["x"]}"#,
            vec!["--env", "NOEQUALS"],
            "--env \"NOEQUALS\" must be KEY=VALUE",
        ),
        (
            r#"{"commands": ["x"]}"#,
            vec!["--timeout", "0"],
            "--timeout",
        ),
        (
            r#"{"commands": ["x"]}"#,
            vec!["--distribution", "/nonexistent/dist.zip"],
            "--distribution: the distribution /nonexistent/dist.zip cannot be read",
        ),
    ];
    for (body, flags, expected) in cases {
        let job = write(tmp.path(), "bad.json", body);
        let mut args = vec!["local", job.as_str()];
        args.extend(flags.iter().copied());
        let out = runner(&args, tmp.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{body}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{body}: {stderr:?} should contain {expected:?}"
        );
        assert!(out.stdout.is_empty());
    }
    let out = runner(&["local", "/nonexistent/job.json"], tmp.path());
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot read the job file /nonexistent/job.json")
    );
    let bad_setting = Command::new(BIN)
        .args([
            "local",
            &write(tmp.path(), "ok.json", r#"{"commands": ["true"]}"#),
        ])
        .env("ATTINI_JOB_TIMEOUT", "ten")
        .output()
        .unwrap();
    assert_eq!(bad_setting.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&bad_setting.stderr)
            .contains("ATTINI_JOB_TIMEOUT=\"ten\" is not valid")
    );
}

#[test]
fn flags_override_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    let job = write(
        tmp.path(),
        "job.json",
        r#"{"commands": ["echo \"$A-$B\" > $ATTINI_OUTPUT", "sleep 30"], "environment": {"A": "job"}, "timeoutSeconds": 600}"#,
    );
    let out = runner(
        &[
            "local",
            &job,
            "--env",
            "A=flag",
            "--env",
            "B=x=y",
            "--timeout",
            "1",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let line = result(&out);
    assert!(
        line["cause"]
            .as_str()
            .unwrap()
            .starts_with("Script timed out after 1 seconds"),
        "{line}"
    );
    let quick = write(
        tmp.path(),
        "quick.json",
        r#"{"commands": ["echo \"$A-$B\" > $ATTINI_OUTPUT"], "environment": {"A": "job"}}"#,
    );
    let out = runner(
        &["local", &quick, "--env", "A=flag", "--env", "B=x=y"],
        tmp.path(),
    );
    assert_eq!(result(&out)["output"], json!({"result": "flag-x=y"}));
}

#[test]
fn an_attini_message_runs_with_a_local_distribution() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("marker.txt"), "from-dist").unwrap();
    let mut message: Value =
        serde_json::from_str(include_str!("../fixtures/attini-message.json")).unwrap();
    message["Properties"]["Commands"] = json!([
        "echo \"{\\\"marker\\\": \\\"$(cat marker.txt)\\\", \\\"stage\\\": \\\"$STAGE\\\"}\" > ${ATTINI_OUTPUT}"
    ]);
    let job = write(tmp.path(), "attini.json", &message.to_string());
    let out = runner(
        &["local", &job, "--distribution", dist.to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(
        result(&out),
        json!({"status": "SUCCEEDED", "output": {"marker": "from-dist", "stage": "dev"}})
    );
    // Without --distribution the S3 distribution cannot be read: warned, empty workspace.
    let out = runner(&["local", &job], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("local mode does not read S3"), "{stderr}");
    assert!(
        stderr.contains("marker.txt: No such file or directory"),
        "{stderr}"
    );
    assert_eq!(
        result(&out)["output"],
        json!({"marker": "", "stage": "dev"})
    );
}

#[test]
fn dry_run_version_and_command_mode_version() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(runner(&["dry-run"], tmp.path()).status.code(), Some(0));
    let out = runner(&["--version"], tmp.path());
    crate::harness::assert_exit(&out, 0);
    let version = String::from_utf8(out.stdout).unwrap();
    let number = version.trim().strip_prefix("attini-runner ").unwrap();
    // The README states 2.1.0, above the 2.0.2 the Attini dispatcher requires.
    assert_eq!(number, "2.1.0");
    assert!(
        README.contains("(2.1.0, above the 2.0.2 the dispatcher requires)"),
        "the README no longer states the version"
    );
    let out = runner(&["command-mode", "version"], tmp.path());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), number);
    let unknown = runner(&["command-mode", "bogus"], tmp.path());
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("Unknown arguments"));
}

#[test]
fn a_word_that_is_no_command_is_refused_and_starts_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // A typo: clap's "did you mean", exit 64, and no Attini mode (which would report the
    // failure to a "token" named by the typo).
    let out = runner(&["serv"], tmp.path());
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unrecognized subcommand 'serv'") && stderr.contains("'serve'"),
        "{stderr}"
    );
    // A newer command this build does not know, with an argument, is not a dispatcher call.
    let out = Command::new(BIN)
        .args([
            "inspect",
            "arn:aws:states:eu-west-1:111122223333:execution:m:e",
        ])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unrecognized subcommand 'inspect'"),
        "{stderr}"
    );
    assert!(!stderr.contains("SendTaskFailure"), "{stderr}");
    // The usage does not lead with the dispatcher's positionals; the help names them once.
    let help = runner(&["--help"], tmp.path());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Usage: attini-runner [COMMAND]"), "{help}");
    assert!(
        help.contains("attini-runner <SFN_TOKEN> <REQUIRED_VERSION>"),
        "{help}"
    );
}

#[test]
fn validate_checks_a_job_without_running_it() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("ran");
    let good = write(
        tmp.path(),
        "good.json",
        &json!({"commands": [format!("touch {}", marker.display())],
                "distribution": {"bucket": "artifacts", "key": "app/1.zip"}})
        .to_string(),
    );
    let out = runner(&["validate", &good], tmp.path());
    crate::harness::assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("a valid native job of kind commands with 1 command(s)")
            && stdout.contains("distribution s3://artifacts/app/1.zip")
            && stdout.contains("no taskToken"),
        "{stdout}"
    );
    assert!(!marker.exists(), "validate ran the job");

    let bad = write(
        tmp.path(),
        "bad.json",
        r#"{"commands": ["true"], "timeoutSeconds": "soon"}"#,
    );
    let out = runner(&["validate", &bad], tmp.path());
    assert_eq!(out.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.json") && stderr.contains("timeoutSeconds"),
        "{stderr}"
    );
    for example in [
        "hello",
        "sam-app",
        "cdk-app",
        "sql-migration",
        "integration-tests",
    ] {
        let job = format!("{}/examples/{example}/job.json", env!("CARGO_MANIFEST_DIR"));
        crate::harness::assert_exit(&runner(&["validate", &job], tmp.path()), 0);
    }
    let missing = runner(&["validate", "/nonexistent/job.json"], tmp.path());
    assert_eq!(missing.status.code(), Some(66));
}

#[test]
fn a_job_can_come_from_standard_input() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["local", "-"])
        .env("ATTINI_WORK_DIR", tmp.path().join("work"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"commands": ["echo '{\"from\": \"stdin\"}' > $ATTINI_OUTPUT"]}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    crate::harness::assert_exit(&out, 0);
    assert_eq!(
        result(&out),
        json!({"status": "SUCCEEDED", "output": {"from": "stdin"}})
    );
}

/// A stand-in for the cdk CLI in `dir/bin`: records its calls in `dir/calls`, answers `ls`
/// and writes the outputs file. Returns the PATH to run with.
pub fn fake_cdk(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    // Node.js, as the real CLI: the job hands it Context and Parameters through NODE_OPTIONS.
    let fake = format!(
        r#"#!/usr/bin/env node
const fs = require("fs");
const args = process.argv.slice(2);
fs.appendFileSync({calls:?}, `cdk ${{args.join(" ")}} (in ${{require("path").basename(process.cwd())}})\n`);
if (args[0] === "synth") fs.mkdirSync("cdk.out", {{ recursive: true }});
if (args[0] === "ls") console.log('[{{"id":"Database","name":"demo-db","environment":{{"account":"unknown-account","region":"unknown-region"}}}}]');
const out = args.indexOf("--outputs-file");
if (args[0] === "deploy" && out >= 0) fs.writeFileSync(args[out + 1], '{{"demo-db":{{"TableName":"t1"}}}}');
"#,
        calls = dir.join("calls").display().to_string()
    );
    std::fs::write(bin.join("cdk"), fake).unwrap();
    std::fs::set_permissions(bin.join("cdk"), std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

/// A cdk job file (Path `infra`, stack `Database`) with its distribution folder, in `dir`.
pub fn cdk_job(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("dist/infra")).unwrap();
    write(
        dir,
        "cdk.json",
        r#"{"kind": "cdk", "properties": {"Path": "infra", "Stacks": ["Database"], "Context": {"stage": "dev"}},
            "distribution": {"path": "dist"}}"#,
    )
}

#[test]
fn a_cdk_job_runs_synth_deploy_and_formats_the_stack_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let path = fake_cdk(tmp.path());
    let calls = tmp.path().join("calls");
    let job = cdk_job(tmp.path());
    let out = Command::new(BIN)
        .args(["local", &job])
        .env("ATTINI_WORK_DIR", tmp.path().join("work"))
        .env("ATTINI_JOB_TIMEOUT", "120")
        .env("PATH", path)
        .env_remove("ATTINI_RESOURCE_STATE_TABLE")
        .output()
        .unwrap();
    crate::harness::assert_exit(&out, 0);
    assert_eq!(
        result(&out),
        json!({"status": "SUCCEEDED", "output": {"Database": {"TableName": "t1"}}})
    );
    let calls = std::fs::read_to_string(calls).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 3, "{calls}");
    // The CLI sees the context after the other arguments (it came through NODE_OPTIONS).
    assert_eq!(
        lines[0], "cdk synth --quiet --no-color Database --context stage=dev (in infra)",
        "{calls}"
    );
    assert_eq!(
        lines[1],
        "cdk ls --long --json --no-color --app cdk.out Database --context stage=dev (in infra)",
        "{calls}"
    );
    assert!(
        lines[2].starts_with("cdk deploy --outputs-file ")
            && lines[2].ends_with("Database --context stage=dev (in infra)"),
        "{calls}"
    );
}

#[test]
fn jobs_run_in_the_bash_found_on_path_whatever_shell_says() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let marker = tmp.path().join("via-path");
    let wrapper = format!(
        "#!/bin/sh\necho used >> {}\nexec /bin/bash \"$@\"\n",
        marker.display()
    );
    std::fs::write(bin.join("bash"), wrapper).unwrap();
    std::fs::set_permissions(bin.join("bash"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let job = write(
        tmp.path(),
        "job.json",
        r#"{"commands": ["echo \"${BASH_VERSION:+bash}\" > $ATTINI_OUTPUT"]}"#,
    );
    let out = Command::new(BIN)
        .args(["local", &job])
        .env("ATTINI_WORK_DIR", tmp.path().join("work"))
        .env("ATTINI_JOB_TIMEOUT", "120")
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("SHELL", "/nonexistent/zsh")
        .output()
        .unwrap();
    crate::harness::assert_exit(&out, 0);
    assert_eq!(result(&out)["output"], json!({"result": "bash"}));
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "used\n");
}

#[test]
fn local_mode_on_sigint_or_sigterm_ends_the_job_as_runner_interrupted() {
    use nix::sys::signal::{Signal, kill};
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let tmp = tempfile::tempdir().unwrap();
        let started = tmp.path().join("started");
        let job = write(
            tmp.path(),
            "job.json",
            &json!({"commands": [format!("touch {}", started.display()), "sleep 60"]}).to_string(),
        );
        let child = Command::new(BIN)
            .args(["local", &job])
            .env("ATTINI_WORK_DIR", tmp.path().join("work"))
            .env("ATTINI_JOB_TIMEOUT", "120")
            .env("ATTINI_KILL_GRACE", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        for _ in 0..600 {
            if started.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(started.exists(), "the job did not start");
        kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let out = child.wait_with_output().unwrap();
        crate::harness::assert_exit(&out, 1);
        let line = result(&out);
        assert_eq!(line["status"], "FAILED", "{signal}");
        assert_eq!(line["error"], "Runner.Interrupted", "{signal}");
    }
}

#[test]
fn distribution_size_settings_are_read_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("big.zip");
    let content = vec![b'x'; 5000];
    crate::harness::write_zip(
        &zip,
        &[crate::harness::Entry::File("big.txt", &content, 0o644)],
    );
    let job = write(
        tmp.path(),
        "job.json",
        r#"{"commands": ["true"], "distribution": {"path": "big.zip"}}"#,
    );
    let run = |name: &str, value: &str| {
        Command::new(BIN)
            .args(["local", &job])
            .env("ATTINI_WORK_DIR", tmp.path().join("work"))
            .env("ATTINI_JOB_TIMEOUT", "120")
            .env(name, value)
            .output()
            .unwrap()
    };
    let out = run("ATTINI_DISTRIBUTION_MAX_BYTES", "1000");
    crate::harness::assert_exit(&out, 1);
    let cause = result(&out)["cause"].as_str().unwrap().to_string();
    assert!(cause.contains("unpacks to more than 1000 bytes"), "{cause}");
    crate::harness::assert_exit(&run("ATTINI_DISTRIBUTION_MAX_BYTES", "10000"), 0);
    let out = run("ATTINI_DISTRIBUTION_CACHE_BYTES", "lots");
    crate::harness::assert_exit(&out, 64);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ATTINI_DISTRIBUTION_CACHE_BYTES=\"lots\" is not valid"),
        "{stderr}"
    );
}

#[test]
fn the_runners_own_aws_secret_key_and_session_token_are_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, token) = (
        "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
        "FwoGZXIvYXdzEXAMPLEsessiontoken12345",
    );
    let job = write(
        tmp.path(),
        "job.json",
        r#"{"commands": ["echo \"key=$AWS_SECRET_ACCESS_KEY token=$AWS_SESSION_TOKEN\"", "echo \"$AWS_SECRET_ACCESS_KEY\" > $ATTINI_OUTPUT", "echo \"$AWS_SESSION_TOKEN\"; exit 3"]}"#,
    );
    let out = Command::new(BIN)
        .args(["local", &job])
        .env("ATTINI_WORK_DIR", tmp.path().join("work"))
        .env("ATTINI_JOB_TIMEOUT", "120")
        .env("AWS_SECRET_ACCESS_KEY", key)
        .env("AWS_SESSION_TOKEN", token)
        .output()
        .unwrap();
    crate::harness::assert_exit(&out, 1);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stderr.contains("key=*** token=***"), "{stderr}");
    let cause = result(&out)["cause"].as_str().unwrap().to_string();
    assert!(cause.ends_with("***"), "{cause}");
    for secret in [key, token] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} leaked"
        );
    }
}

#[test]
fn a_secret_across_the_16_kib_line_cut_stays_masked_in_logs_and_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-across-the-cut";
    // The secret starts 7 bytes before the cut; the job then fails, so the cause carries the
    // tail of its output too.
    let job = json!({
        "commands": ["printf '%16377s' '' | tr ' ' x; printf '%s tail\\n' \"$TOKEN\"; exit 2"],
        "secretEnvironment": {"TOKEN": secret}
    });
    let job = write(tmp.path(), "job.json", &job.to_string());
    let out = runner(&["local", &job], tmp.path());
    crate::harness::assert_exit(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("*** tail"),
        "the line was not split where expected"
    );
    let cause = result(&out)["cause"].as_str().unwrap().to_string();
    for part in ["s3cr3t", "across-the-cut", secret] {
        assert!(
            !stderr.contains(part) && !cause.contains(part),
            "{part} leaked"
        );
    }
}
