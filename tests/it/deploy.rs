//! The README's "Deploy to AWS" walkthrough, run as written against moto with the real AWS CLI
//! (`scripts/tools/awscli-requirements.txt`): its `# step N:` blocks are taken from the README,
//! only the settings of step 0 are replaced, and they run in bash in order. What the emulator
//! cannot do is stood in for: steps 1 and 5 get `--image` (no registry to push to), the runner
//! binary serves the stack's queue in place of ECS, and step 3 (CloudWatch Logs) is not run.

use std::path::Path;
use std::process::Output;

use crate::emulator::Emulator;
use crate::harness::describe;
use crate::world::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The README's `# step N:` block, without its fences.
fn step(readme: &str, n: u32) -> String {
    let marker = format!("```sh\n# step {n}:");
    let start = readme.find(&marker).unwrap_or_else(|| panic!("step {n}")) + "```sh\n".len();
    let end = start + readme[start..].find("```").unwrap();
    readme[start..end].to_string()
}

/// A folder that looks like the checkout to the walkthrough (its files are links), so that
/// what the steps write (`hello.zip`, `hello.asl.json`) stays out of the real one.
fn checkout_view(dir: &Path) {
    for entry in [
        "scripts",
        "examples",
        "cloudformation",
        "Cargo.toml",
        "Dockerfile",
    ] {
        std::os::unix::fs::symlink(Path::new(ROOT).join(entry), dir.join(entry)).unwrap();
    }
}

/// Runs `script` in bash (`-euo pipefail`) in `dir`, against the emulator, the AWS CLI first
/// on `PATH`.
async fn bash(world: &World, dir: &Path, script: &str) -> Output {
    let tools =
        std::env::var("ATTINI_TEST_TOOLS").unwrap_or_else(|_| format!("{ROOT}/target/test-tools"));
    let path = format!(
        "{tools}/awscli-venv/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .envs(world.emulator.env())
        .env("PATH", path)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", describe(out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_deploy_walkthrough_runs_on_the_emulator() {
    let world = World::on(Emulator::start_kind("moto").await).await;
    let dir = world.tmp.path().join("checkout");
    std::fs::create_dir(&dir).unwrap();
    checkout_view(&dir);
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let bucket = world.bucket("artifacts").await;
    let network = ok(
        &bash(
            &world,
            &dir,
            "vpc=$(aws --region us-east-1 ec2 create-vpc --cidr-block 10.0.0.0/16 --query Vpc.VpcId --output text)\n\
             a=$(aws --region us-east-1 ec2 create-subnet --vpc-id $vpc --cidr-block 10.0.1.0/24 --query Subnet.SubnetId --output text)\n\
             b=$(aws --region us-east-1 ec2 create-subnet --vpc-id $vpc --cidr-block 10.0.2.0/24 --query Subnet.SubnetId --output text)\n\
             echo $vpc $a,$b",
        )
        .await,
        "a VPC",
    );
    let (vpc, subnets) = network.trim().split_once(' ').unwrap();

    // Step 0 with this emulator's values; nothing else is changed.
    let settings = step(&readme, 0);
    let mut replaced = String::new();
    for line in settings.lines() {
        let line = match line.split_once('=') {
            Some(("REGION", _)) => "REGION=us-east-1".to_string(),
            Some(("VPC", _)) => format!("VPC={vpc}"),
            Some(("SUBNETS", _)) => format!("SUBNETS={subnets}"),
            Some(("BUCKET", _)) => format!("BUCKET={bucket}"),
            _ => line.to_string(),
        };
        replaced.push_str(&line);
        replaced.push('\n');
    }
    let with_image = |block: String, image: &str| {
        let command = block.trim_end();
        assert!(
            command.ends_with("--public-ip") || command.contains("--tag"),
            "{command}"
        );
        format!("{command} --image {image}\n")
    };

    let deployed = ok(
        &bash(
            &world,
            &dir,
            &format!(
                "{replaced}{}",
                with_image(step(&readme, 1), "attini-runner:1")
            ),
        )
        .await,
        "step 1",
    );
    assert!(
        deployed.contains("attini-runner is deployed: stack attini-runner in us-east-1"),
        "{deployed}"
    );
    assert!(deployed.contains("Next, run a job"), "{deployed}");

    // ECS would now start the tasks; the runner binary serves the stack's queue instead.
    let queue = ok(
        &bash(
            &world,
            &dir,
            "aws --region us-east-1 cloudformation describe-stacks --stack-name attini-runner \
             --query \"Stacks[0].Outputs[?OutputKey=='QueueUrl'].OutputValue\" --output text",
        )
        .await,
        "the queue",
    );
    let log = std::fs::File::create(world.tmp.path().join("runner.log")).unwrap();
    let mut runner = serve_binary_to(&world, queue.trim(), &[], log);

    let rest = format!(
        "{replaced}{}{}echo '--- update'\n{}{}",
        step(&readme, 2),
        step(&readme, 4),
        with_image(step(&readme, 5), "attini-runner:2"),
        step(&readme, 6)
    );
    let out = bash(&world, &dir, &rest).await;
    runner.start_kill().unwrap();
    let log = std::fs::read_to_string(world.tmp.path().join("runner.log")).unwrap();
    let said = ok(&out, &format!("steps 2 to 6; runner log:\n{log}"));
    let (run, update) = said.split_once("--- update").unwrap();
    assert!(run.contains("SUCCEEDED"), "{run}");
    assert!(run.contains("Hello, Fargate"), "{run}");
    assert!(update.contains("image attini-runner:2"), "{update}");
    assert!(update.contains("Deleted."), "{update}");

    // Teardown left nothing of the walkthrough behind.
    let gone = bash(
        &world,
        &dir,
        "aws --region us-east-1 cloudformation describe-stacks --stack-name attini-runner",
    )
    .await;
    assert!(!gone.status.success(), "the stack is still there");
    assert!(
        world.get(&bucket, "hello/dist.zip").await.is_none(),
        "the distribution is still there"
    );
    let machines = ok(
        &bash(
            &world,
            &dir,
            "aws --region us-east-1 stepfunctions list-state-machines --query 'stateMachines[].name' --output text",
        )
        .await,
        "state machines",
    );
    assert!(!machines.contains("hello-runner"), "{machines}");
}
