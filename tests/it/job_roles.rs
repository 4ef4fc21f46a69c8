//! A role per job, on ministack enforcing IAM (every call checked against the caller's
//! policies, `AssumeRole` against the role's trust policy): the runner binary serves as an IAM
//! user of its own, and a job naming `role` runs as that role. The job
//! (`tests/fixtures/role-probe.py`) tries every way it has to the runner's keys: its
//! environment, the runner's `/proc` files and ptrace, every process's environment and command
//! line. A role the runner may not assume fails its job before it starts, naming the role and
//! STS's reason, and the runner goes on serving.

use std::process::Command;

use serde_json::{Value, json};

use crate::emulator::Emulator;
use crate::harness::describe;
use crate::secrets::stop_and_read;
use crate::world::*;

/// A value of a runner-only setting that must not reach a job with a role.
const OTEL_SECRET: &str = "x-api-key=otel-h3ader-value";

/// The IAM principals of one test, made with the root key through boto3.
struct Principals {
    key_id: String,
    secret: String,
    job_role: String,
    untrusted_role: String,
}

fn principals(world: &World) -> Principals {
    let script = r#"
import boto3, json, sys
endpoint, suffix = sys.argv[1], sys.argv[2]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
user = "runner-" + suffix
iam.create_user(UserName=user)
iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName=user)["AccessKey"]
user_arn = iam.get_user(UserName=user)["User"]["Arn"]
def role(name, principal, actions):
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": principal, "Action": actions}]}
    return iam.create_role(RoleName=name + "-" + suffix,
                           AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
# The role the test's state machines run as (`world::ROLE`), allowed everything.
try:
    iam.create_role(RoleName="attini-runner-test", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
         "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName="attini-runner-test", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
except iam.exceptions.EntityAlreadyExistsException:
    pass
print(json.dumps({
    "key_id": key["AccessKeyId"], "secret": key["SecretAccessKey"],
    "job_role": role("job", {"AWS": user_arn}, ["sts:AssumeRole", "sts:TagSession"]),
    "untrusted_role": role("other", {"Service": "ecs-tasks.amazonaws.com"}, "sts:AssumeRole"),
}))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &world.emulator.endpoint, &world.id])
        .output()
        .unwrap();
    assert!(out.status.success(), "IAM setup: {}", describe(&out));
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    let field = |k: &str| made[k].as_str().unwrap().to_string();
    Principals {
        key_id: field("key_id"),
        secret: field("secret"),
        job_role: field("job_role"),
        untrusted_role: field("untrusted_role"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_as_its_own_role_and_reaches_none_of_the_runners_keys() {
    let world = World::on(Emulator::with_iam().await).await;
    let who = principals(&world);
    let queue = world.fifo_queue("roles").await;
    let evidence = world.tmp.path().join("evidence");
    std::fs::create_dir_all(&evidence).unwrap();
    let probe = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/role-probe.py");
    let runner = serve_binary(
        &world,
        &queue,
        &[
            ("AWS_ACCESS_KEY_ID", &who.key_id),
            ("AWS_SECRET_ACCESS_KEY", &who.secret),
            ("OTEL_EXPORTER_OTLP_HEADERS", OTEL_SECRET),
            // The credentials a job is given are replaced once they are a second old.
            ("ATTINI_JOB_ROLE_SESSION_SECONDS", "900"),
            ("ATTINI_JOB_ROLE_REFRESH_SECONDS", "899"),
        ],
    );
    let job = |role: &str| {
        json!({
            "role": role,
            "executionArn.$": "$$.Execution.Id",
            "stepName.$": "$$.State.Name",
            "commands": ["RUNNER_PID=$PPID python3 \"$PROBE\""],
            "environment": {
                "PROBE": probe,
                "EVIDENCE": evidence.display().to_string(),
                "QUEUE": queue,
            }
        })
    };

    // A role whose trust policy does not name the runner: the job never starts.
    let denied = world
        .state_machine("denied", &native_machine(&queue, job(&who.untrusted_role)))
        .await;
    let denied = world
        .finished(&world.start(&denied, "denied", &json!({})).await)
        .await;
    assert_eq!(denied.status, "FAILED", "{denied:?}");
    assert_eq!(denied.error.as_deref(), Some("Runner.Credentials"));
    let cause = denied.cause.unwrap_or_default();
    assert!(
        cause.contains(&who.untrusted_role)
            && cause.contains("AccessDenied")
            && cause.contains("sts:AssumeRole"),
        "{cause}"
    );
    assert!(
        !evidence.join("env.json").exists(),
        "the refused job ran anyway"
    );

    // The runner goes on serving; this job runs as its role.
    let machine = world
        .state_machine("allowed", &native_machine(&queue, job(&who.job_role)))
        .await;
    let execution = world.start(&machine, "run-1", &json!({})).await;
    let done = world.finished(&execution).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let output = done.output.unwrap();
    let role_name = who.job_role.rsplit('/').next().unwrap();
    let session = format!(":assumed-role/{role_name}/Run@run-1");
    for call in ["first", "second"] {
        let arn = output[call].as_str().unwrap_or_default();
        assert!(arn.ends_with(&session), "{call} call made as {arn}");
    }
    assert_eq!(output["renewed"], true, "{output}");
    assert_eq!(output["queue"], "AccessDenied", "{output}");

    // Nothing of the runner's credentials or settings reached the job.
    let env: Value =
        serde_json::from_slice(&std::fs::read(evidence.join("env.json")).unwrap()).unwrap();
    let env = env.as_object().unwrap();
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "ATTINI_OPS_ADDR",
        "ATTINI_JOB_ROLE_SESSION_SECONDS",
    ] {
        assert!(!env.contains_key(name), "{name} reached the job");
    }
    assert!(
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let tries: Value =
        serde_json::from_slice(&std::fs::read(evidence.join("tries.json")).unwrap()).unwrap();
    assert_eq!(tries["mem"], "PermissionError", "{tries}");
    assert_eq!(tries["ptrace"], "Operation not permitted", "{tries}");
    // Denied (a non-root runner), or nothing but zeros (a root runner, on kernels that let
    // root read a non-dumpable process's environ without CAP_SYS_PTRACE).
    for environ in ["environ", "task_environ"] {
        let how = tries[environ].as_str().unwrap_or_default();
        assert!(
            how == "PermissionError" || how == "0 non-zero bytes",
            "the job read the runner's {environ}: {tries}"
        );
    }
    let everything = [
        std::fs::read(evidence.join("env.json")).unwrap(),
        std::fs::read(evidence.join("proc.bin")).unwrap(),
    ]
    .concat();
    let everything = String::from_utf8_lossy(&everything);
    for secret in [&who.key_id, &who.secret, OTEL_SECRET] {
        assert!(!everything.contains(secret), "{secret} visible to the job");
    }

    let logs = stop_and_read(runner).await;
    let token = env["AWS_CONTAINER_AUTHORIZATION_TOKEN"].as_str().unwrap();
    assert!(
        !logs.contains(token),
        "the job's token in the runner's logs"
    );
    assert!(logs.contains("the job runs as its own role"), "{logs}");
}

/// One job at a time per task isolates jobs: a job's credential token is revoked when it ends,
/// so the next job on the runner cannot use one an earlier job left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_credential_token_stops_working_when_the_job_ends() {
    let world = World::new().await;
    let queue = world.fifo_queue("tokens").await;
    let evidence = world.tmp.path().join("evidence");
    std::fs::create_dir_all(&evidence).unwrap();
    let probe = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/token-probe.py");
    let runner = serve_binary(
        &world,
        &queue,
        &[
            ("ATTINI_MAX_CONCURRENT_JOBS", "1"),
            ("ATTINI_JOB_ROLE_ARN", "arn:aws:iam::000000000000:role/jobs"),
        ],
    );
    let job = |mode: &str| {
        json!({
            "commands": [format!("python3 \"$PROBE\" {mode}")],
            "environment": {"PROBE": probe, "EVIDENCE": evidence.display().to_string()}
        })
    };
    let mut outputs = Vec::new();
    for mode in ["keep", "steal"] {
        let machine = world
            .state_machine(mode, &native_machine(&queue, job(mode)))
            .await;
        let done = world
            .finished(&world.start(&machine, mode, &json!({})).await)
            .await;
        assert_eq!(done.status, "SUCCEEDED", "{mode}: {done:?}");
        outputs.push(done.output.unwrap());
    }
    assert_eq!(outputs[0], json!({"own": 200}));
    assert_eq!(
        outputs[1],
        json!({"own": 200, "earlier": 403, "same_endpoint": true})
    );
    stop_and_read(runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_that_do_not_work_fail_the_start_check_with_status_3() {
    // Ministack enforcing IAM refuses keys it does not know.
    let world = World::on(Emulator::with_iam().await).await;
    let queue = world.fifo_queue("bad-keys").await;
    let log_path = world.tmp.path().join("runner.log");
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEY0000000"),
        ("AWS_SECRET_ACCESS_KEY", "wrong"),
    ];
    let mut runner = serve_binary_to(
        &world,
        &queue,
        &env,
        std::fs::File::create(&log_path).unwrap(),
    );
    let (code, log) = exit_and_log(&mut runner, &log_path).await;
    assert_eq!(code, Some(3), "{log}");
    assert!(
        log.contains("start check: the runner's AWS credentials do not work"),
        "{log}"
    );
    assert!(log.contains("InvalidClientTokenId"), "{log}");
}
