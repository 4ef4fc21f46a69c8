//! Parsing tests for both formats, with the CONTRACT.md 5.3 message as the reference.

use super::*;
use serde_json::json;

const ATTINI: &str = include_str!("../../tests/fixtures/attini-message.json");

fn attini_with(edit: impl FnOnce(&mut Value)) -> Result<JobSpec, ParseError> {
    let mut v: Value = serde_json::from_str(ATTINI).unwrap();
    edit(&mut v);
    parse(&v.to_string())
}

fn err(result: Result<JobSpec, ParseError>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn attini_reference_message() {
    let job = parse(ATTINI).unwrap();
    assert_eq!(job.format, JobFormat::Attini);
    assert_eq!(job.token.as_deref(), Some("AQCEAAAAKgAAAAMAAAAAAAAAA..."));
    assert_eq!(job.step_name.as_deref(), Some("RunTests"));
    assert_eq!(job.commands.len(), 3);
    assert_eq!(job.environment["STAGE"], "dev");
    let a = job.attini.as_ref().unwrap();
    assert_eq!(a.config_hash, -1102536878);
    assert_eq!(a.execution_name(), "0b7c4f1e-2f3a-4c55-9d1e-8a9b0c1d2e3f");
    assert_eq!(a.deployment_name(), "dev-demo");
    assert_eq!(
        job.distribution,
        Some(DistributionRef::S3 {
            bucket: "attini-artifact-store-eu-west-1-111122223333".into(),
            key: "dev/demo/5ed6cd45-636d-4dd9-b7ed-a90580fd0b7e/distribution-origin/demo.zip"
                .into(),
            identity: Some("dev/demo/demo.zip#3v4JtzjjXZMJiS2_qAFYCdB0ZKATEJh3".into()),
        })
    );
    // ATTINI_INPUT: the body without the four keys, in the original order.
    let keys: Vec<&str> = job
        .input
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "output",
            "deploymentOriginData",
            "dependencies",
            "customData",
            "stackParameters",
            "appConfig",
            "taskConfigHashCode"
        ]
    );
}

#[test]
fn attini_tolerates_nulls_numbers_and_extra_keys() {
    let job = attini_with(|v| {
        v["Properties"]["Environment"] = Value::Null;
        v["Properties"]["Commands"] = json!(["echo", 42, true]);
        v["attiniActionType"] = json!("ExecuteRunner");
        v["somethingNew"] = json!({"x": 1});
        v.as_object_mut().unwrap().remove("taskConfigHashCode");
    })
    .unwrap();
    assert!(job.environment.is_empty());
    assert_eq!(job.commands, ["echo", "42", "true"]);
    assert_eq!(job.attini.unwrap().config_hash, 0);
    assert!(job.input.get("attiniActionType").is_none());
    assert!(job.input.get("somethingNew").is_some());
    let job =
        attini_with(|v| v["Properties"]["Environment"] = json!({"N": 5, "B": false})).unwrap();
    assert_eq!(job.environment["N"], "5");
    assert_eq!(job.environment["B"], "false");
    // The configuration hash as a number or a numeric string.
    for hash in [json!(-42), json!(" -42 ")] {
        let job = attini_with(|v| v["taskConfigHashCode"] = hash).unwrap();
        assert_eq!(job.attini.unwrap().config_hash, -42);
    }
}

#[test]
fn attini_errors_name_the_field() {
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["Properties"]["Commands"] = json!("echo")),
            "field `Properties.Commands` must be a list of commands, got a string",
        ),
        (
            Box::new(|v| v["Properties"]["Commands"] = json!(["ok", {"a": 1}])),
            "field `Properties.Commands[1]` must be a string",
        ),
        (
            Box::new(|v| {
                v["Properties"].as_object_mut().unwrap().remove("Commands");
            }),
            "field `Properties.Commands` is missing",
        ),
        (
            Box::new(|v| v["Properties"]["Environment"] = json!({"A": {"nested": true}})),
            "field `Properties.Environment.A` must be a string",
        ),
        (
            Box::new(|v| v["Properties"]["Environment"] = json!({"BAD-NAME": "x"})),
            "field `Properties.Environment.BAD-NAME` is not a valid variable name",
        ),
        (
            Box::new(|v| v["Properties"]["Environment"] = json!(["A"])),
            "field `Properties.Environment` must be an object",
        ),
        (
            Box::new(|v| v["deploymentPlanExecutionMetadata"]["sfnToken"] = json!(" ")),
            "field `deploymentPlanExecutionMetadata.sfnToken` is empty",
        ),
        (
            Box::new(|v| v["deploymentPlanExecutionMetadata"]["sfnToken"] = json!(7)),
            "field `deploymentPlanExecutionMetadata.sfnToken` must be a string, got a number",
        ),
        (
            Box::new(|v| v["deploymentOriginData"]["deploymentSource"] = Value::Null),
            "field `deploymentOriginData.deploymentSource` is missing",
        ),
        (
            Box::new(|v| {
                v["deploymentOriginData"]
                    .as_object_mut()
                    .unwrap()
                    .remove("distributionId");
            }),
            "field `deploymentOriginData.distributionId` is missing",
        ),
        (
            Box::new(|v| v["taskConfigHashCode"] = json!("abc")),
            "field `taskConfigHashCode` must be an integer",
        ),
        (
            Box::new(|v| v["taskConfigHashCode"] = json!(1.5)),
            "field `taskConfigHashCode` must be an integer",
        ),
        (
            Box::new(|v| v["Properties"]["Environment"] = json!({"A": "nul\u{0}byte"})),
            "contains a NUL character",
        ),
    ];
    for (edit, expected) in cases {
        let message = err(attini_with(edit));
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
    }
    let message = err(attini_with(|v| {
        v.as_object_mut()
            .unwrap()
            .remove("deploymentPlanExecutionMetadata");
    }));
    assert!(
        message.contains("deploymentPlanExecutionMetadata` is missing"),
        "{message}"
    );
}

#[test]
fn secret_environment_holds_values_and_references_side_by_side() {
    let job = parse(
        &json!({
            "taskToken": "tok", "commands": ["x"],
            "environment": {"STAGE": "dev"},
            "secretEnvironment": {
                "PLAIN": "v",
                "DB_PASSWORD": {"secretsManager": "prod/db", "jsonKey": "password"},
                "TOKEN": {"ssmParameter": "/app/token"}
            }
        })
        .to_string(),
    )
    .unwrap();
    assert_eq!(job.secret_environment.keys().collect::<Vec<_>>(), ["PLAIN"]);
    assert_eq!(
        job.secret_references["DB_PASSWORD"],
        crate::job::SecretRef::SecretsManager {
            id: "prod/db".into(),
            json_key: Some("password".into())
        }
    );
    assert_eq!(
        job.secret_references["TOKEN"],
        crate::job::SecretRef::SsmParameter {
            name: "/app/token".into()
        }
    );
    for (body, says) in [
        (
            json!({"commands": ["x"], "environment": {"A": "1"}, "secretEnvironment": {"A": {"ssmParameter": "/a"}}}),
            "field `secretEnvironment.A` is also in `environment`",
        ),
        (
            json!({"commands": ["x"], "secretEnvironment": {"1A": {"ssmParameter": "/a"}}}),
            "field `secretEnvironment.1A` is not a valid variable name",
        ),
        (
            json!({"commands": ["x"], "secretEnvironment": {"A": {"vault": "x"}}}),
            "field `secretEnvironment.A.vault` is not a field of a secret reference",
        ),
    ] {
        let e = parse(&body.to_string()).unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
    }
}

#[test]
fn native_full_job() {
    let job = parse(
        &json!({
            "taskToken": "tok", "stepName": "Migrate",
            "commands": ["./migrate.sh", 3],
            "environment": {"STAGE": "dev", "N": 1},
            "secretEnvironment": {"DB_PASSWORD": "s3cret"},
            "input": [1, 2],
            "distribution": {"bucket": "b", "key": "app/1.zip"},
            "workingDirectory": "db/./migrations",
            "timeoutSeconds": 900, "heartbeatSeconds": 60
        })
        .to_string(),
    )
    .unwrap();
    assert_eq!(job.format, JobFormat::Native);
    assert_eq!(job.commands, ["./migrate.sh", "3"]);
    assert_eq!(job.environment["N"], "1");
    assert_eq!(job.secret_environment["DB_PASSWORD"], "s3cret");
    assert_eq!(job.input, json!([1, 2]));
    assert_eq!(job.timeout, Some(Duration::from_secs(900)));
    assert_eq!(job.heartbeat, Some(Duration::from_secs(60)));
    assert_eq!(job.working_directory.as_deref(), Some("db/./migrations"));
    assert!(matches!(
        job.distribution,
        Some(DistributionRef::S3 { identity: None, .. })
    ));
}

#[test]
fn native_minimal_job_has_defaults() {
    let job = parse(r#"{"commands": ["true"]}"#).unwrap();
    assert_eq!(job.token, None);
    assert_eq!(job.input, json!({}));
    assert_eq!(job.distribution, None);
    assert_eq!(job.timeout, None);
    assert_eq!(job.execution, None);
    // The execution ARN is trimmed, and a blank one is none.
    let job = parse(r#"{"commands": ["true"], "executionArn": "   "}"#).unwrap();
    assert_eq!(job.execution, None);
    let job = parse(r#"{"commands": ["true"], "executionArn": " arn:aws:states:x "}"#).unwrap();
    assert_eq!(job.execution.as_deref(), Some("arn:aws:states:x"));
}

#[test]
fn native_errors_name_the_field() {
    let cases = [
        (
            r#"{"commands": ["x"], "timeoutSecond": 5}"#,
            "unknown field `timeoutSecond`",
        ),
        (
            r#"{"commands": "echo"}"#,
            "field `commands` must be a list of commands, got a string",
        ),
        (r#"{"commands": []}"#, "field `commands` is empty"),
        (
            r#"{"commands": ["x"], "distribution": {"bucket": "", "key": "k"}}"#,
            "with non-empty values",
        ),
        (
            r#"{"commands": ["x"], "distribution": {"bucket": "b", "key": ""}}"#,
            "with non-empty values",
        ),
        (
            r#"{"commands": ["x"], "distribution": {"path": ""}}"#,
            "with non-empty values",
        ),
        (r#"{"environment": {}}"#, "field `commands` is missing"),
        (
            r#"{"commands": ["x"], "environment": {"A": [1]}}"#,
            "field `environment.A` must be a string",
        ),
        (
            r#"{"commands": ["x"], "environment": "A=1"}"#,
            "field `environment` must be an object",
        ),
        (
            r#"{"commands": ["x"], "taskToken": ""}"#,
            "field `taskToken` is empty",
        ),
        (
            r#"{"commands": ["x"], "taskToken": 5}"#,
            "field `taskToken` is invalid: invalid type: integer `5`, expected a string",
        ),
        (
            r#"{"commands": ["x"], "timeoutSeconds": 0}"#,
            "field `timeoutSeconds` must be between 1 and",
        ),
        (
            r#"{"commands": ["x"], "timeoutSeconds": "60"}"#,
            "field `timeoutSeconds` is invalid",
        ),
        (
            r#"{"commands": ["x"], "distribution": {"bucket": "b"}}"#,
            "field `distribution` must be either",
        ),
        (
            r#"{"commands": ["x"], "distribution": {"bucket": "b", "key": "k", "region": "x"}}"#,
            "field `distribution.region` is invalid: unknown field `region`",
        ),
        (
            r#"{"commands": ["x"], "workingDirectory": "../up"}"#,
            "field `workingDirectory` must be a relative directory",
        ),
        (
            r#"{"commands": ["x"], "workingDirectory": "/abs"}"#,
            "field `workingDirectory` must be a relative directory",
        ),
        (
            r#"{"commands": ["x"], "environment": {"A": "1"}, "secretEnvironment": {"A": "2"}}"#,
            "field `secretEnvironment.A` is also in `environment`",
        ),
        (
            r#"{"commands": ["x"], "kind": "cdk"}"#,
            "field `kind` cannot be combined",
        ),
        (r#"{"kind": "terraform"}"#, "field `kind`"),
    ];
    for (body, expected) in cases {
        let message = err(parse(body));
        assert!(
            message.contains(expected),
            "{body}: {message:?} should contain {expected:?}"
        );
    }
}

#[test]
fn bodies_that_are_not_jobs() {
    assert!(err(parse("{not json")).starts_with("the job is not valid JSON"));
    assert_eq!(
        err(parse("[1]")),
        "the job must be a JSON object, got an array"
    );
    assert_eq!(
        err(parse("\"x\"")),
        "the job must be a JSON object, got a string"
    );
    let big = format!(r#"{{"commands": ["{}"]}}"#, "x".repeat(MAX_BODY_BYTES));
    assert!(err(parse(&big)).contains("the limit is 262144 bytes"));
    assert!(
        err(parse(r#"{"Properties": {"Commands": []}}"#))
            .contains("deploymentPlanExecutionMetadata` is missing")
    );
}

#[test]
fn token_salvage_for_reporting_bad_jobs() {
    assert_eq!(
        salvage_token(r#"{"taskToken": "t1", "commands": 5}"#).as_deref(),
        Some("t1")
    );
    assert_eq!(
        salvage_token(r#"{"deploymentPlanExecutionMetadata": {"sfnToken": "t2"}}"#).as_deref(),
        Some("t2")
    );
    assert_eq!(salvage_token(r#"{"taskToken": ""}"#), None);
    assert_eq!(salvage_token("garbage"), None);
}

#[test]
fn a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_not() {
    let job = r#"{"taskToken": "t", "commands": ["true"]}"#;
    let exact = format!("{job}{}", " ".repeat(MAX_BODY_BYTES - job.len()));
    assert_eq!(exact.len(), MAX_BODY_BYTES);
    assert!(parse(&exact).is_ok());
    let over = format!("{exact} ");
    assert!(matches!(parse(&over), Err(ParseError::TooLarge { .. })));
}

#[test]
fn a_task_id_is_the_start_of_the_tokens_sha256_in_hex() {
    // sha256("abc") = ba7816bf8f01cfea...
    assert_eq!(task_id("abc"), "ba7816bf8f01");
    assert_eq!(task_id("abc").len(), TASK_ID_CHARS);
    assert_ne!(task_id("abd"), task_id("abc"));
}

#[test]
fn expected_seconds_and_interruptible_are_read_and_checked() {
    let job =
        parse(r#"{"commands": ["x"], "expectedSeconds": 90, "interruptible": false}"#).unwrap();
    assert_eq!(job.expected, Some(Duration::from_secs(90)));
    assert!(!job.interruptible);
    let job = parse(r#"{"commands": ["x"]}"#).unwrap();
    assert_eq!((job.expected, job.interruptible), (None, true));
    assert!(err(parse(r#"{"commands": ["x"], "expectedSeconds": 0}"#)).contains("expectedSeconds"));
    assert!(err(parse(r#"{"commands": ["x"], "interruptible": "no"}"#)).contains("interruptible"));
    let attini = parse(ATTINI).unwrap();
    assert_eq!((attini.expected, attini.interruptible), (None, true));
}

#[test]
fn a_lock_name_is_read_and_checked() {
    let job = parse(r#"{"commands": ["x"], "lock": "db/orders:prod@eu-1_a.b"}"#).unwrap();
    assert_eq!(job.lock.as_deref(), Some("db/orders:prod@eu-1_a.b"));
    assert_eq!(parse(r#"{"commands": ["x"]}"#).unwrap().lock, None);
    for bad in ["", "has space", "x#y"] {
        let body = json!({"commands": ["x"], "lock": bad}).to_string();
        assert!(
            err(parse(&body)).contains("lock` must be 1 to 200 letters"),
            "{bad}"
        );
    }
    let long = json!({"commands": ["x"], "lock": "a".repeat(201)}).to_string();
    assert!(err(parse(&long)).contains("lock"));
    let max = json!({"commands": ["x"], "lock": "a".repeat(200)}).to_string();
    assert!(parse(&max).is_ok());
}

#[test]
fn workspace_caches_are_folders_of_the_working_directory_keyed_by_files() {
    let body = r#"{"commands": ["x"], "workspaceCaches": [
        {"path": "node_modules/", "keyFiles": ["package-lock.json", "app/.nvmrc"]}]}"#;
    let job = parse(body).unwrap();
    assert_eq!(
        job.workspace_caches,
        [super::WorkspaceCache {
            path: "node_modules".into(),
            key_files: vec!["package-lock.json".into(), "app/.nvmrc".into()],
        }]
    );
    assert!(
        parse(r#"{"commands": ["x"]}"#)
            .unwrap()
            .workspace_caches
            .is_empty()
    );
    let cases = [
        (
            json!({"path": "../up", "keyFiles": ["a"]}),
            "workspaceCaches[0].path` must be a folder inside the working directory",
        ),
        (json!({"path": ".", "keyFiles": ["a"]}), "got \".\""),
        (json!({"path": "/abs", "keyFiles": ["a"]}), "got \"/abs\""),
        (
            json!({"path": "m", "keyFiles": []}),
            "workspaceCaches[0].keyFiles` must name at least one file",
        ),
        (
            json!({"path": "m", "keyFiles": ["ok", "../lock"]}),
            "got \"../lock\"",
        ),
        (json!({"path": "m"}), "missing field `keyFiles`"),
        (
            json!({"path": "m", "keyFiles": ["a"], "key": "x"}),
            "unknown field `key`",
        ),
        (
            json!({"path": "m", "keyFiles": ["m/lock"]}),
            "must be outside the folder they key (\"m\")",
        ),
    ];
    for (entry, expected) in cases {
        let body = json!({"commands": ["x"], "workspaceCaches": [entry]}).to_string();
        let e = err(parse(&body));
        assert!(e.contains(expected), "{entry}: {e}");
    }
}

#[test]
fn caches_are_named_tools_or_folders_under_home() {
    let job =
        parse(r#"{"commands": ["x"], "caches": ["npm", "maven", "~/.cache/tool/", ".local/x"]}"#)
            .unwrap();
    assert_eq!(job.caches, [".npm", ".m2", ".cache/tool", ".local/x"]);
    assert!(parse(r#"{"commands": ["x"]}"#).unwrap().caches.is_empty());
    for bad in ["", "~/", "/etc", "../up", "~/a/../../b"] {
        let body = json!({"commands": ["x"], "caches": ["npm", bad]}).to_string();
        let e = err(parse(&body));
        assert!(
            e.contains("caches[1]` must be one of npm, yarn, pip, maven, gradle, go, cargo"),
            "{bad}: {e}"
        );
    }
}
