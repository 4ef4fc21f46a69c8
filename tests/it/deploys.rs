//! The `sam` and `cdk` kinds with the real tools (the AWS SAM CLI, the AWS CDK CLI with a
//! Python CDK app), deploying the examples into the emulator's CloudFormation through the
//! runner binary in local mode (the emulator's endpoint in its environment): the stacks exist
//! with their resources, their outputs are the job's output, a second deploy without changes
//! succeeds, a template CloudFormation refuses fails the job with CloudFormation's reason in
//! the cause, and a job whose tool is missing fails before it starts, saying so.

use std::path::Path;

use serde_json::{Value, json};

use crate::tools::{Tools, example};
use crate::world::World;

/// Runs `job` with `attini-runner local` against the world's emulator, `PATH` = `path`; the
/// result line.
async fn run_local(world: &World, job: &Value, path: &str) -> Value {
    run_local_logged(world, job, path).await.0
}

/// As [`run_local`], with everything the runner printed.
async fn run_local_logged(world: &World, job: &Value, path: &str) -> (Value, String) {
    let mut env = world.emulator.env();
    // The runner masks its AWS credentials in job output; the emulator's `test` would mask
    // every "test" (even in "latest").
    env.push(("AWS_ACCESS_KEY_ID".into(), "emulator-access-key".into()));
    env.push(("AWS_SECRET_ACCESS_KEY".into(), "emulator-secret-key".into()));
    env.push(("PATH".into(), path.into()));
    crate::tools::run_local(job, world.tmp.path(), &env).await
}

/// The example's job, its distribution at the example's folder.
fn example_job(name: &str) -> Value {
    let dir = example(name);
    let mut job: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("job.json")).unwrap()).unwrap();
    job["distribution"] = json!({"path": dir});
    job
}

/// What CloudFormation has of a stack: its status, outputs and tags.
pub struct Described {
    pub status: String,
    pub outputs: Value,
    pub tags: std::collections::HashMap<String, String>,
}

/// The stack `name` on the world's emulator.
pub async fn stack(world: &World, name: &str) -> Described {
    let described = world
        .clients
        .cloudformation
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .unwrap();
    let stack = &described.stacks()[0];
    let outputs: serde_json::Map<String, Value> = stack
        .outputs()
        .iter()
        .map(|o| (o.output_key().unwrap().to_string(), json!(o.output_value())))
        .collect();
    let text = |v: Option<&str>| v.unwrap_or_default().to_string();
    Described {
        status: stack.stack_status().unwrap().as_str().to_string(),
        outputs: Value::Object(outputs),
        tags: stack
            .tags()
            .iter()
            .map(|t| (text(t.key()), text(t.value())))
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sam_job_deploys_the_example_and_its_outputs_are_the_jobs_output() {
    let Some(tools) = Tools::get("sam deploy") else {
        return;
    };
    let world = World::new().await;
    let name = world.unique("reports");
    let mut job = example_job("sam-app");
    job["properties"]["StackName"] = json!(name);
    // Values SAM would split or unquote unless the kind quotes them its way.
    let stage = "dev \"blue\" it's";
    job["properties"]["ParameterOverrides"]["Stage"] = json!(stage);
    job["properties"]["Tags"]["team"] = json!("platform team");
    let path = Tools::path_with(&[tools.sam_bin()]);

    let (first, logs) = run_local_logged(&world, &job, &path).await;
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    assert!(
        logs.contains("Build Succeeded")
            && logs.contains("--template-file .aws-sam/build/template.yaml"),
        "the example builds, and what was built is deployed:\n{logs}"
    );
    let output = &first["output"];
    let deployed = stack(&world, &name).await;
    assert_eq!(deployed.status, "CREATE_COMPLETE");
    assert_eq!(
        output, &deployed.outputs,
        "the job's output is the stack's outputs"
    );
    assert_eq!(
        output["Stage"], stage,
        "the parameter override reached the stack whole"
    );
    let tags = &deployed.tags;
    assert_eq!(
        tags.get("team").map(String::as_str),
        Some("platform team"),
        "{tags:?}"
    );
    let bucket = output["ReportsBucket"].as_str().unwrap();
    world
        .clients
        .s3
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let queue = output["WorkQueueUrl"].as_str().unwrap();
    assert!(queue.contains(&name), "{queue}");

    let again = run_local(&world, &job, &path).await;
    assert_eq!(
        again["status"], "SUCCEEDED",
        "a deploy without changes succeeds: {again}"
    );
    assert_eq!(&again["output"], output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sam_deploy_cloudformation_refuses_or_rolls_back_fails_the_job_with_its_reason() {
    let Some(tools) = Tools::get("failing sam deploy") else {
        return;
    };
    let world = World::new().await;
    let dist = world.tmp.path().join("broken");
    std::fs::create_dir(&dist).unwrap();
    // CloudFormation accepts the template and fails the queue: a FIFO queue's name must end
    // with `.fifo`.
    let template = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: plain-name\n      FifoQueue: true\n";
    std::fs::write(dist.join("template.yaml"), template).unwrap();
    let job = json!({"kind": "sam", "properties": {"StackName": "broken"}, "distribution": {"path": dist}});

    let result = run_local(&world, &job, &Tools::path_with(&[tools.sam_bin()])).await;
    assert_eq!(result["status"], "FAILED", "{result}");
    assert_eq!(result["error"], "ScriptExecutionError");
    let cause = result["cause"].as_str().unwrap();
    assert!(
        cause.contains(
            "CloudFormation's first failure: Queue (AWS::SQS::Queue) CREATE_FAILED: The name of a FIFO queue"
        ),
        "{cause}"
    );
    assert!(
        cause.contains("stack broken is ROLLBACK_COMPLETE"),
        "{cause}"
    );

    // A template CloudFormation refuses outright (an unknown resource type): its validation
    // error, as SAM prints it, is in the cause.
    let template = "Resources:\n  Thing:\n    Type: AWS::Nope::Thing\n";
    std::fs::write(dist.join("template.yaml"), template).unwrap();
    let job = json!({"kind": "sam", "properties": {"StackName": "refused"}, "distribution": {"path": dist}});
    let result = run_local(&world, &job, &Tools::path_with(&[tools.sam_bin()])).await;
    assert_eq!(result["status"], "FAILED", "{result}");
    let cause = result["cause"].as_str().unwrap();
    assert!(
        cause.contains("Template format error: Unrecognized resource types: [AWS::Nope::Thing]"),
        "{cause}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdk_job_deploys_the_python_example_with_the_real_cdk() {
    let Some(tools) = Tools::get("cdk deploy") else {
        return;
    };
    let world = World::new().await;
    let name = world.unique("reports-cdk");
    let mut job = example_job("cdk-app");
    job["properties"]["Context"]["stackName"] = json!(name);
    let path = Tools::path_with(&[tools.cdk_python_bin(), tools.cdk_bin()]);

    let result = run_local(&world, &job, &path).await;
    assert_eq!(result["status"], "SUCCEEDED", "{result}");
    let Described {
        status, outputs, ..
    } = stack(&world, &name).await;
    assert_eq!(status, "CREATE_COMPLETE");
    // The dispatcher's shape: the stack's id as `cdk ls` prints it -> its outputs.
    let id = format!("Reports ({name})");
    assert_eq!(result["output"], json!({id: outputs}), "{result}");
    let bucket = outputs["ReportsBucket"].as_str().unwrap();
    world
        .clients
        .s3
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_tool_fails_the_job_before_it_starts_and_a_named_one_is_used() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::new().await;
    let tools = world.tmp.path().join("tools");
    std::fs::create_dir(&tools).unwrap();
    let bash_only = format!("{}:{}", tools.display(), bash_dir().display());
    let job = json!({"kind": "sam", "properties": {"StackName": "never"}});
    let result = run_local(&world, &job, &bash_only).await;
    assert_eq!(result["status"], "FAILED", "{result}");
    assert_eq!(result["error"], "Runner.MissingTool");
    let cause = result["cause"].as_str().unwrap();
    assert!(
        cause.contains("`sam` is not on the job's PATH") && cause.contains("ATTINI_SAM_CLI"),
        "{cause}"
    );

    // ATTINI_SAM_CLI names a program with another name: the job's `sam` commands run it.
    let program = tools.join("sam-1.170");
    std::fs::write(
        &program,
        "#!/bin/bash\necho \"called as sam-1.170 $*\"\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut env = world.emulator.env();
    env.push(("PATH".into(), bash_only));
    env.push(("ATTINI_SAM_CLI".into(), program.display().to_string()));
    let (result, _) = crate::tools::run_local(&job, world.tmp.path(), &env).await;
    assert_eq!(result["error"], "ScriptExecutionError", "{result}");
    let cause = result["cause"].as_str().unwrap();
    assert!(
        cause.contains("called as sam-1.170 deploy --stack-name never"),
        "{cause}"
    );
}

/// The folder of the `bash` this process would run.
fn bash_dir() -> std::path::PathBuf {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(Path::new)
        .find(|dir| dir.join("bash").is_file() && !dir.join("sam").exists())
        .expect("bash on PATH")
        .to_path_buf()
}
