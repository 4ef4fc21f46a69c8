//! Secret references in `secretEnvironment`, read by the runner binary in `serve` from the
//! emulator's Secrets Manager and SSM Parameter Store: the values reach the job, are masked in
//! its output and never appear in the runner's logs; a missing secret fails the job with a
//! cause naming the variable and the secret, and the runner goes on serving.

use aws_sdk_ssm::types::ParameterType;
use serde_json::json;

use crate::world::*;

const PASSWORD: &str = "pw-Sm-4417x";
const TOKEN: &str = "tok-Ssm-9921";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_are_read_from_secrets_manager_and_ssm_and_never_shown() {
    let world = World::new().await;
    let secrets = &world.clients.secrets;
    secrets
        .secrets_manager
        .create_secret()
        .name("prod/db")
        .secret_string(json!({"user": "app", "password": PASSWORD}).to_string())
        .send()
        .await
        .unwrap();
    secrets
        .ssm
        .put_parameter()
        .name("/app/token")
        .value(TOKEN)
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let queue = world.fifo_queue("secrets").await;
    let runner = serve_binary(&world, &queue, &[]);
    let body = json!({
        "commands": [
            "echo \"connecting with $DB_PASSWORD and $API_TOKEN\"",
            "printf '{\"pw\":\"%s\",\"pw_len\":%d,\"token_len\":%d}' \"$DB_PASSWORD\" ${#DB_PASSWORD} ${#API_TOKEN} > $ATTINI_OUTPUT"
        ],
        "secretEnvironment": {
            "DB_PASSWORD": {"secretsManager": "prod/db", "jsonKey": "password"},
            "API_TOKEN": {"ssmParameter": "/app/token"}
        }
    });
    let machine = world
        .state_machine("secrets", &native_machine(&queue, body))
        .await;
    let ok = world
        .finished(&world.start(&machine, "ok", &json!({})).await)
        .await;
    assert_eq!(ok.status, "SUCCEEDED", "{ok:?}");
    assert_eq!(
        ok.output,
        Some(json!({"pw": "***", "pw_len": PASSWORD.len(), "token_len": TOKEN.len()})),
        "the values arrived whole and the output shows neither"
    );

    let missing = json!({
        "commands": ["echo never"],
        "secretEnvironment": {"DB_PASSWORD": {"secretsManager": "prod/nope"}}
    });
    let machine = world
        .state_machine("missing", &native_machine(&queue, missing))
        .await;
    let failed = world
        .finished(&world.start(&machine, "missing", &json!({})).await)
        .await;
    assert_eq!(failed.status, "FAILED");
    assert_eq!(failed.error.as_deref(), Some("Job.Invalid"));
    let cause = failed.cause.unwrap_or_default();
    assert!(
        cause.contains("secretEnvironment.DB_PASSWORD")
            && cause.contains("\"prod/nope\"")
            && cause.contains("does not exist"),
        "{cause}"
    );

    // Still serving after the failed one.
    let again = world
        .finished(
            &world
                .start(&machine_of(&world, &queue).await, "again", &json!({}))
                .await,
        )
        .await;
    assert_eq!(again.status, "SUCCEEDED", "{again:?}");

    let logs = stop_and_read(runner).await;
    assert!(logs.contains("job finished"), "{logs}");
    for value in [PASSWORD, TOKEN] {
        assert!(
            !logs.contains(value),
            "{value} in the runner's logs:\n{logs}"
        );
    }
}

async fn machine_of(world: &World, queue: &str) -> String {
    world
        .state_machine(
            "plain",
            &native_machine(queue, json!({"commands": ["true"]})),
        )
        .await
}

/// SIGTERM, then everything the runner wrote.
pub async fn stop_and_read(runner: tokio::process::Child) -> String {
    let pid = nix::unistd::Pid::from_raw(runner.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = runner.wait_with_output().await.unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// At the most verbose levels (`ATTINI_LOG_LEVEL=ALL`, `RUST_LOG=trace`) the runner logs its
/// own steps in detail, but none of the AWS SDK's or HTTP stack's wire logs, which print
/// every ReceiveMessage body with the literal secrets in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_at_the_most_verbose_levels() {
    const SECRET: &str = "wire-s3cret-4471";
    let world = World::new().await;
    let queue = world.fifo_queue("verbose").await;
    let body = json!({
        "commands": ["echo \"using $API_KEY\""],
        "secretEnvironment": {"API_KEY": SECRET}
    });
    let machine = world
        .state_machine("verbose", &native_machine(&queue, body))
        .await;
    for (n, level) in [("ATTINI_LOG_LEVEL", "ALL"), ("RUST_LOG", "trace")]
        .into_iter()
        .enumerate()
    {
        let log = world.tmp.path().join(format!("runner-{n}.log"));
        let runner = serve_binary_to(
            &world,
            &queue,
            &[level],
            std::fs::File::create(&log).unwrap(),
        );
        let done = world
            .finished(&world.start(&machine, &format!("run-{n}"), &json!({})).await)
            .await;
        assert_eq!(done.status, "SUCCEEDED", "{done:?}");
        stop_and_read(runner).await;
        let logs = std::fs::read_to_string(&log).unwrap();
        assert!(
            logs.contains("\"level\":\"DEBUG\"") && logs.contains("using ***"),
            "{level:?}: not the verbose log of the job:\n{logs}"
        );
        assert!(
            !logs.contains(SECRET),
            "{level:?}: the secret is in the log"
        );
    }
}

/// `ATTINI_REFUSE_LITERAL_SECRETS=true`: a job carrying a secret value in its message fails
/// before it starts, naming the variable and the way to refer to it instead; a job with a
/// reference runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_secrets_can_be_refused() {
    const LITERAL: &str = "literal-pw-8830";
    let world = World::new().await;
    world
        .clients
        .secrets
        .secrets_manager
        .create_secret()
        .name("refused/db")
        .secret_string(PASSWORD)
        .send()
        .await
        .unwrap();
    let queue = world.fifo_queue("refuse").await;
    let runner = serve_binary(&world, &queue, &[("ATTINI_REFUSE_LITERAL_SECRETS", "true")]);
    let run = |name: &'static str, secret: serde_json::Value| {
        let body = json!({
            "commands": ["test ${#DB_PASSWORD} -gt 0"],
            "secretEnvironment": {"DB_PASSWORD": secret}
        });
        let world = &world;
        let queue = &queue;
        async move {
            let machine = world
                .state_machine(name, &native_machine(queue, body))
                .await;
            world
                .finished(&world.start(&machine, name, &json!({})).await)
                .await
        }
    };
    let literal = run("literal", json!(LITERAL)).await;
    assert_eq!(literal.status, "FAILED", "{literal:?}");
    assert_eq!(literal.error.as_deref(), Some("Job.Invalid"));
    let cause = literal.cause.unwrap_or_default();
    assert!(
        cause.contains("secretEnvironment.DB_PASSWORD")
            && cause.contains("ATTINI_REFUSE_LITERAL_SECRETS")
            && cause.contains("secretsManager")
            && !cause.contains(LITERAL),
        "{cause}"
    );
    let reference = run("reference", json!({"secretsManager": "refused/db"})).await;
    assert_eq!(reference.status, "SUCCEEDED", "{reference:?}");
    let logs = stop_and_read(runner).await;
    assert!(!logs.contains(LITERAL), "the literal secret in the log");
}
