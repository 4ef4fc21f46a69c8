//! Each recipe runs in an image this repository builds, as ECS would run it: user 10001, a
//! read-only root filesystem, `/work` the only writable place. The example folder is mounted
//! read-only and its `job.json` runs unchanged through `attini-runner local`; only what a user
//! would pass anyway comes as `--env` (the database's URL, the service's URL). The host's
//! network reaches the emulator and the database on loopback.
//! - `sam`: the SAM example is built and deployed into ministack's CloudFormation;
//! - `cdk`: the Python CDK example is synthesized and deployed (Python and the CDK library are
//!   in the image);
//! - `liquibase`: the SQL migration applies to a real PostgreSQL;
//! - `pytest`: the integration tests run against a real HTTP service and store their report.
//!
//! Each test prints its image's size (`image <target>: N MB`).

use serde_json::{Value, json};

use crate::deploys::stack;
use crate::image::LOCKED_DOWN;
use crate::podman::Podman;
use crate::postgres::Postgres;
use crate::world::*;

/// Builds `target` (once per store and binary; see `podman.rs`); its tag.
fn built(podman: &Podman, target: &str) -> String {
    let tag = format!("localhost/attini-runner:{target}");
    podman.build(target, &tag);
    tag
}

/// Runs `examples/<recipe>/job.json` with `attini-runner local` in `tag`, locked down, on the
/// host's network, with `container_env` in the container and `job_env` as `--env` of the job;
/// the result line and everything printed.
fn run_recipe(
    podman: &Podman,
    tag: &str,
    recipe: &str,
    container_env: &[(String, String)],
    job_env: &[(&str, &str)],
) -> (Value, String) {
    let folder = format!(
        "{}/examples/{recipe}:/recipe:ro",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut args: Vec<String> = LOCKED_DOWN.iter().map(|a| a.to_string()).collect();
    args.extend(["--network", "host", "--volume", &folder].map(String::from));
    for (key, value) in container_env {
        args.extend(["--env".into(), format!("{key}={value}")]);
    }
    args.extend([tag, "attini-runner", "local", "/recipe/job.json"].map(String::from));
    for (key, value) in job_env {
        args.extend(["--env".into(), format!("{key}={value}")]);
    }
    let out = podman.output(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let printed = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let result = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("no result line ({e}):\n{printed}"));
    (result, printed)
}

/// The emulator's variables for a container, with credentials long enough not to be masked
/// all over the job's output (the runner masks its own secret key).
fn aws_env(world: &World) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = world
        .emulator
        .env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"))
        .collect();
    env.push(("AWS_ACCESS_KEY_ID".into(), "emulator-access-key".into()));
    env.push(("AWS_SECRET_ACCESS_KEY".into(), "emulator-secret-key".into()));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sam_image_deploys_the_sam_example() {
    let Some(podman) = Podman::if_installed() else {
        return;
    };
    let tag = built(&podman, "sam");
    let world = World::new().await;
    let (result, printed) = run_recipe(&podman, &tag, "sam-app", &aws_env(&world), &[]);
    assert_eq!(result["status"], "SUCCEEDED", "{printed}");
    assert!(printed.contains("Build Succeeded"), "{printed}");
    let deployed = stack(&world, "reports-dev").await;
    assert_eq!(deployed.status, "CREATE_COMPLETE");
    assert_eq!(
        result["output"], deployed.outputs,
        "the job's output is the stack's outputs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cdk_image_deploys_the_python_cdk_example() {
    let Some(podman) = Podman::if_installed() else {
        return;
    };
    let tag = built(&podman, "cdk");
    let world = World::new().await;
    let (result, printed) = run_recipe(&podman, &tag, "cdk-app", &aws_env(&world), &[]);
    assert_eq!(result["status"], "SUCCEEDED", "{printed}");
    let deployed = stack(&world, "reports-cdk").await;
    assert_eq!(deployed.status, "CREATE_COMPLETE");
    assert_eq!(
        result["output"],
        json!({"Reports (reports-cdk)": deployed.outputs}),
        "{printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_liquibase_image_applies_the_sql_migration() {
    let Some(podman) = Podman::if_installed() else {
        return;
    };
    let tag = built(&podman, "liquibase");
    // The example job's own password, so that its file runs as it is.
    let job: Value = serde_json::from_str(
        &std::fs::read_to_string(crate::tools::example("sql-migration").join("job.json")).unwrap(),
    )
    .unwrap();
    let password = job["secretEnvironment"]["LIQUIBASE_COMMAND_PASSWORD"]
        .as_str()
        .unwrap();
    let db = Postgres::start(password);
    let url = db.jdbc_url();
    let (result, printed) = run_recipe(
        &podman,
        &tag,
        "sql-migration",
        &[],
        &[("LIQUIBASE_COMMAND_URL", &url)],
    );
    assert_eq!(result["status"], "SUCCEEDED", "{printed}");
    assert_eq!(
        result["output"],
        json!({"changesetsRun": 2, "previouslyRun": 0})
    );
    assert_eq!(
        db.query("select column_name from information_schema.columns where table_name = 'customers' order by ordinal_position"),
        "id\nname\nemail"
    );
    assert!(!printed.contains(password), "the password was shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pytest_image_runs_the_integration_tests_and_stores_the_report() {
    let Some(podman) = Podman::if_installed() else {
        return;
    };
    let tag = built(&podman, "pytest");
    let world = World::new().await;
    let site = crate::integration_tests::site(world.tmp.path());
    let (_service, url) = crate::integration_tests::service(&site).await;
    let store = world.bucket("artifact-store").await;
    let mut env = aws_env(&world);
    env.push(("ATTINI_ARTIFACT_STORE".into(), store.clone()));
    let (result, printed) = run_recipe(
        &podman,
        &tag,
        "integration-tests",
        &env,
        &[("SERVICE_URL", &url)],
    );
    assert_eq!(result["status"], "SUCCEEDED", "{printed}");
    let summary = &result["output"];
    assert_eq!(
        (&summary["passed"], &summary["failed"]),
        (&json!(3), &json!(0)),
        "{summary}"
    );
    let key = summary["report"]
        .as_str()
        .unwrap()
        .strip_prefix(&format!("s3://{store}/"))
        .unwrap()
        .to_string();
    let report = String::from_utf8(world.get(&store, &key).await.unwrap()).unwrap();
    assert!(report.contains("tests=\"3\""), "{report}");
}

/// The `tools` target adds git (with the OpenSSH client) to `runtime`: a job clones a
/// repository, as user 10001 on a read-only root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_image_has_git_for_jobs_that_clone() {
    let Some(podman) = Podman::if_installed() else {
        return;
    };
    let tag = built(&podman, "tools");
    let script = "set -e; cd \"$TMPDIR\"; git init -q origin; \
                  git -C origin -c user.name=t -c user.email=t@example.com commit -q --allow-empty -m first; \
                  git clone -q origin copy; git -C copy log --format=%s; ssh -V 2>&1 | cut -c1-7";
    let seen = crate::image::locked_down(&podman, &[&tag, "bash", "-c", script]);
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        ["first", "OpenSSH"],
        "{seen}"
    );
}
