//! `examples/sql-migration` with real Liquibase (the npm package's distribution and driver, the
//! machine's Java) against a real PostgreSQL started by the test: the migration applies, a
//! second run changes nothing, a broken changeset fails the job with Liquibase's error and
//! leaves the schema as it was, and the password is in none of the runner's output, in local
//! mode and in `serve` with the password in the emulator's Secrets Manager.

use serde_json::{Value, json};

use crate::postgres::Postgres;
use crate::tools::{Tools, example};
use crate::world::*;

const PASSWORD: &str = "pg-Pw-58213-liquid";

/// The example's local job, pointed at `db`.
fn local_job(db: &Postgres, dist: &std::path::Path) -> Value {
    let file = example("sql-migration").join("job.json");
    let mut job: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    job["environment"]["LIQUIBASE_COMMAND_URL"] = json!(db.jdbc_url());
    job["secretEnvironment"]["LIQUIBASE_COMMAND_PASSWORD"] = json!(PASSWORD);
    job["distribution"] = json!({"path": dist});
    job
}

fn path(tools: &Tools) -> Vec<(String, String)> {
    vec![("PATH".into(), Tools::path_with(&[tools.liquibase_bin()]))]
}

fn assert_hidden(text: &str) {
    assert!(!text.contains(PASSWORD), "the password was shown:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_applies_once_and_a_second_run_changes_nothing() {
    let Some(tools) = Tools::get("sql migration") else {
        return;
    };
    let db = Postgres::start(PASSWORD);
    let tmp = tempfile::tempdir().unwrap();
    let job = local_job(&db, &example("sql-migration").join("dist"));

    let (first, logs) = crate::tools::run_local(&job, tmp.path(), &path(&tools)).await;
    assert_eq!(first["status"], "SUCCEEDED", "{first}\n{logs}");
    assert_eq!(
        first["output"],
        json!({"changesetsRun": 2, "previouslyRun": 0})
    );
    assert_eq!(
        db.query("select column_name from information_schema.columns where table_name = 'customers' order by ordinal_position"),
        "id\nname\nemail"
    );
    assert_hidden(&logs);

    let (second, logs) = crate::tools::run_local(&job, tmp.path(), &path(&tools)).await;
    assert_eq!(
        second["output"],
        json!({"changesetsRun": 0, "previouslyRun": 2}),
        "{second}"
    );
    assert_eq!(db.query("select count(*) from databasechangelog"), "2");
    assert_hidden(&logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_changeset_fails_the_job_with_liquibases_error_and_changes_nothing() {
    let Some(tools) = Tools::get("broken sql migration") else {
        return;
    };
    let db = Postgres::start(PASSWORD);
    let tmp = tempfile::tempdir().unwrap();
    let good = local_job(&db, &example("sql-migration").join("dist"));
    let (applied, _) = crate::tools::run_local(&good, tmp.path(), &path(&tools)).await;
    assert_eq!(applied["status"], "SUCCEEDED", "{applied}");
    let before = db.schema();

    // A third changeset whose first change is fine and whose second fails.
    let dist = tmp.path().join("broken");
    std::fs::create_dir(&dist).unwrap();
    let source = example("sql-migration").join("dist");
    std::fs::copy(source.join("migrate.sh"), dist.join("migrate.sh")).unwrap();
    let changelog = std::fs::read_to_string(source.join("changelog.yaml")).unwrap()
        + "  - changeSet:\n      id: 3-phone-and-a-typo\n      author: platform\n      changes:\n\
           \x20       - addColumn:\n            tableName: customers\n            columns:\n\
           \x20             - column: {name: phone, type: varchar(40)}\n\
           \x20       - sql: ALTER TABLE no_such_table ADD COLUMN x int\n";
    std::fs::write(dist.join("changelog.yaml"), changelog).unwrap();
    let (failed, logs) =
        crate::tools::run_local(&local_job(&db, &dist), tmp.path(), &path(&tools)).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["error"], "ScriptExecutionError");
    let cause = failed["cause"].as_str().unwrap();
    assert!(
        cause.contains("relation \"no_such_table\" does not exist"),
        "Liquibase's error is in the cause: {cause}"
    );
    assert_eq!(
        db.schema(),
        before,
        "the failed changeset left no column behind"
    );
    assert_eq!(db.query("select count(*) from databasechangelog"), "2");
    assert_hidden(&logs);
    assert_hidden(&failed.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_serve_the_password_comes_from_secrets_manager_and_is_never_shown() {
    let Some(tools) = Tools::get("sql migration via Secrets Manager") else {
        return;
    };
    let db = Postgres::start(PASSWORD);
    let world = World::new().await;
    world
        .clients
        .secrets
        .secrets_manager
        .create_secret()
        .name("prod/customers-db")
        .secret_string(json!({"username": "app", "password": PASSWORD}).to_string())
        .send()
        .await
        .unwrap();
    let dist = example("sql-migration").join("dist");
    let read = |name: &str| std::fs::read_to_string(dist.join(name)).unwrap();
    let (migrate, changelog) = (read("migrate.sh"), read("changelog.yaml"));
    let bucket = world.bucket("artifacts").await;
    let zip = zip_bytes(&[
        ("migrate.sh", &migrate, 0o755),
        ("changelog.yaml", &changelog, 0o644),
    ]);
    world.put(&bucket, "sql-migration/dist.zip", zip).await;
    let aws = example("sql-migration").join("job-aws.json");
    let mut body: Value = serde_json::from_str(&std::fs::read_to_string(aws).unwrap()).unwrap();
    body["environment"]["LIQUIBASE_COMMAND_URL"] = json!(db.jdbc_url());
    body["environment"]["LIQUIBASE_COMMAND_USERNAME"] = json!("app");
    body["distribution"] = json!({"bucket": bucket, "key": "sql-migration/dist.zip"});

    let queue = world.fifo_queue("migrations").await;
    let path = Tools::path_with(&[tools.liquibase_bin()]);
    // The job names a lock, as shipped: the runner has a lock table, as the stack gives it.
    let locks = world
        .table(
            "locks",
            "lock",
            "ticket",
            aws_sdk_dynamodb::types::ScalarAttributeType::N,
        )
        .await;
    let env = [
        ("PATH", path.as_str()),
        ("ATTINI_LOCK_TABLE", locks.as_str()),
    ];
    let runner = serve_binary(&world, &queue, &env);
    let machine = world
        .state_machine("migrate", &native_machine(&queue, body))
        .await;
    let done = world
        .finished(&world.start(&machine, "migrate", &json!({})).await)
        .await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    assert_eq!(
        done.output,
        Some(json!({"changesetsRun": 2, "previouslyRun": 0}))
    );
    assert_eq!(db.query("select count(*) from databasechangelog"), "2");
    // A migration killed mid-run leaves Liquibase's own lock set; under the runner's lock the
    // next run clears it instead of waiting five minutes for it.
    db.query("update databasechangeloglock set locked = true, lockgranted = now(), lockedby = 'a killed runner'");
    let again = world
        .finished(&world.start(&machine, "again", &json!({})).await)
        .await;
    assert_eq!(
        again.output,
        Some(json!({"changesetsRun": 0, "previouslyRun": 2})),
        "{again:?}"
    );
    let logs = crate::secrets::stop_and_read(runner).await;
    assert!(
        logs.contains("Running Changeset"),
        "the job's log lines are there: {logs}"
    );
    assert_hidden(&logs);
}
