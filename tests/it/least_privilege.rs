//! The stacks grant the least, read from the templates as CloudFormation sees them (decoded
//! by cfn-lint's parser): in `runner-service.yaml` a job role can neither take nor send jobs
//! on the queue, whatever policies it is given, and no role but the runner's may answer task
//! tokens; the runner may assume only the job roles; `attini-runner.yaml` reaches only its
//! own environment's queue, deployment data and artifacts.

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::describe;

/// The template as JSON, intrinsic functions as objects (`{"Fn::GetAtt": [...]}`).
pub fn decoded(path: &str) -> Value {
    let python = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/test-tools/lint-venv/bin/python"
    );
    let script = "import json, sys\nfrom cfnlint.decode import decode\n\
                  template, errors = decode(sys.argv[1])\n\
                  assert not errors, errors\nprint(json.dumps(template, default=str))";
    let out = Command::new(python)
        .args(["-c", script, path])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}; ./scripts/test installs it"));
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => vec![],
        other => vec![other.clone()],
    }
}

/// Whether an IAM action pattern (`sqs:*`, `states:SendTask*`) covers `action`.
fn covers(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => action.to_lowercase().starts_with(&prefix.to_lowercase()),
        None => pattern.eq_ignore_ascii_case(action),
    }
}

fn arn_of(logical: &str) -> Value {
    json!({"Fn::GetAtt": [logical, "Arn"]})
}

/// Every statement the role's identity policies hold: inline, and AWS::IAM::Policy resources
/// attached to it.
fn identity_statements(template: &Value, role: &str) -> Vec<Value> {
    let resources = template["Resources"].as_object().unwrap();
    let mut statements = Vec::new();
    for policy in list(&resources[role]["Properties"]["Policies"]) {
        statements.extend(list(&policy["PolicyDocument"]["Statement"]));
    }
    for (_, resource) in resources {
        let attached = list(&resource["Properties"]["Roles"]).contains(&json!({"Ref": role}));
        if resource["Type"] == "AWS::IAM::Policy" && attached {
            statements.extend(list(&resource["Properties"]["PolicyDocument"]["Statement"]));
        }
    }
    // `!If [cond, statement, NoValue]`: the statement as if the condition held.
    statements
        .into_iter()
        .map(|s| match s.get("Fn::If") {
            Some(branches) => branches[1].clone(),
            None => s,
        })
        .collect()
}

/// Whether the queue's resource policy denies `action` to `principal` (a role's ARN as the
/// template names it), whatever the principal's own policies allow.
fn queue_denies(template: &Value, policy: &str, action: &str, principal: &Value) -> bool {
    let statements =
        list(&template["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]);
    statements.iter().any(|s| {
        let matches = list(&s["Action"])
            .iter()
            .any(|a| covers(a.as_str().unwrap_or_default(), action));
        let condition = &s["Condition"];
        let allowed = &condition["ArnNotEquals"]["aws:PrincipalArn"];
        let excepted =
            allowed == principal || format!("{allowed}").contains(&format!("{principal}"));
        s["Effect"] == "Deny" && matches && condition["Bool"].is_null() && !excepted
    })
}

#[test]
fn a_job_role_cannot_reach_the_queue_or_answer_task_tokens() {
    let t = decoded("cloudformation/runner-service.yaml");
    let (task, job, sender) = (
        arn_of("TaskRole"),
        arn_of("JobRole"),
        arn_of("ExampleStateMachineRole"),
    );

    // The queue: only the runner takes jobs, only the named senders send them, TLS only.
    for action in [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:SendMessage",
    ] {
        assert!(
            queue_denies(&t, "JobQueuePolicy", action, &job),
            "a job role may {action}"
        );
    }
    for action in [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
    ] {
        assert!(
            !queue_denies(&t, "JobQueuePolicy", action, &task),
            "the runner may not {action}"
        );
        assert!(
            queue_denies(&t, "JobQueuePolicy", action, &sender),
            "a sender may {action}"
        );
    }
    assert!(!queue_denies(
        &t,
        "JobQueuePolicy",
        "sqs:SendMessage",
        &sender
    ));
    assert!(
        queue_denies(&t, "JobQueuePolicy", "sqs:SendMessage", &task),
        "the runner may send jobs"
    );
    for policy in ["JobQueuePolicy", "DeadLetterQueuePolicy"] {
        let statements = list(&t["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]);
        assert!(
            statements.iter().any(|s| s["Effect"] == "Deny"
                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"),
            "{policy} allows plain HTTP"
        );
    }

    // Answering task tokens: the runner's role only.
    let resources = t["Resources"].as_object().unwrap();
    for (name, resource) in resources {
        if resource["Type"] != "AWS::IAM::Role" {
            continue;
        }
        let answers = identity_statements(&t, name).iter().any(|s| {
            s["Effect"] == "Allow"
                && list(&s["Action"])
                    .iter()
                    .any(|a| covers(a.as_str().unwrap_or_default(), "states:SendTaskSuccess"))
        });
        assert_eq!(
            answers,
            name == "TaskRole",
            "{name} may answer task tokens: {answers}"
        );
    }

    // The job role: trusted by the runner's role only; the jobs' policies are on it, not on
    // the runner's role.
    let trust =
        list(&t["Resources"]["JobRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]);
    assert_eq!(trust.len(), 1, "{trust:?}");
    assert_eq!(trust[0]["Principal"], json!({"AWS": task}));
    assert!(t["Resources"]["TaskRole"]["Properties"]["ManagedPolicyArns"].is_null());
    assert!(
        t["Resources"]["JobRole"]["Properties"]["ManagedPolicyArns"]
            .to_string()
            .contains("JobPolicyArns")
    );

    // The runner assumes the job roles and nothing else.
    let assumes: Vec<Value> = identity_statements(&t, "TaskRole")
        .into_iter()
        .filter(|s| {
            list(&s["Action"])
                .iter()
                .any(|a| a.as_str().unwrap_or_default().starts_with("sts:"))
        })
        .collect();
    let mut targets: Vec<String> = assumes.iter().map(|s| s["Resource"].to_string()).collect();
    targets.sort();
    let mut expected = [job, json!({"Ref": "ExtraJobRoleArns"})].map(|v| v.to_string());
    expected.sort();
    assert_eq!(targets, expected, "{assumes:?}");
    for s in &assumes {
        assert_eq!(s["Action"], json!(["sts:AssumeRole", "sts:TagSession"]));
    }

    // The lock table: the runner's role only, the four calls of a lock's line, that table only.
    for (name, _) in resources {
        let reaches = identity_statements(&t, name)
            .iter()
            .any(|s| s["Effect"] == "Allow" && s["Resource"].to_string().contains("LockTable"));
        assert_eq!(reaches, name == "TaskRole", "{name} reaches the lock table");
    }
    let locks: Vec<Value> = identity_statements(&t, "TaskRole")
        .into_iter()
        .filter(|s| s["Sid"] == "LocksAcrossRunners")
        .collect();
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert_eq!(
        locks[0]["Action"],
        json!([
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:DeleteItem"
        ])
    );
    assert_eq!(
        locks[0]["Resource"],
        json!({"Fn::GetAtt": ["LockTable", "Arn"]})
    );
    let dynamodb_anywhere = identity_statements(&t, "TaskRole").iter().any(|s| {
        s["Sid"] != "LocksAcrossRunners"
            && list(&s["Action"])
                .iter()
                .any(|a| a.as_str().unwrap_or_default().starts_with("dynamodb:"))
    });
    assert!(
        !dynamodb_anywhere,
        "the runner reaches DynamoDB beyond the lock table"
    );
}

#[test]
fn the_attini_role_reaches_only_its_environment() {
    let t = decoded("cloudformation/attini-runner.yaml");
    let statements = identity_statements(&t, "RunnerRole");
    let text = serde_json::to_string(&statements).unwrap();
    for wide in [
        "*AttiniRunnerQueue*",
        "AttiniDeployData*",
        "AttiniResourceStates*",
        "${AWS::AccountId}/*\"",
    ] {
        assert!(
            !text.contains(wide),
            "the Attini role still reaches {wide}: {text}"
        );
    }
    let by_sid = |sid: &str| {
        statements
            .iter()
            .find(|s| s["Sid"] == sid)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        by_sid("RunnerQueue")["Resource"],
        arn_of("AttiniRunnerQueueRunner")
    );
    for sid in [
        "ReadThisEnvironmentsDeployments",
        "ReadThisEnvironmentsDistributions",
        "WriteJobLogs",
    ] {
        assert!(
            by_sid(sid).to_string().contains("${AttiniEnvironmentName}"),
            "{sid}"
        );
    }
    assert_eq!(
        by_sid("RunnerState")["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"],
        json!(["Runner"])
    );

    // The steps run as JobRole: trusted by the runner's role only, no queue, no task tokens,
    // and what it writes is this environment's.
    let trust =
        list(&t["Resources"]["JobRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]);
    assert_eq!(trust.len(), 1, "{trust:?}");
    assert_eq!(trust[0]["Principal"], json!({"AWS": arn_of("RunnerRole")}));
    let job = serde_json::to_string(&identity_statements(&t, "JobRole")).unwrap();
    for reach in ["sqs:", "states:", "AttiniRunnerQueue", "AttiniDeployData"] {
        assert!(!job.contains(reach), "the job role reaches {reach}: {job}");
    }
    let assumes = identity_statements(&t, "RunnerRole")
        .into_iter()
        .filter(|s| s.to_string().contains("sts:AssumeRole"))
        .collect::<Vec<_>>();
    assert_eq!(assumes.len(), 1);
    assert_eq!(assumes[0]["Resource"], arn_of("JobRole"));
}
