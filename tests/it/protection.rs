//! ECS task scale-in protection in `serve`: the runner binary, a real state machine on the
//! emulator, and a stand-in ECS agent on loopback (`ECS_AGENT_URI`) that records every
//! `PUT /task-protection/v1/state`. While a job runs the task is protected; when the runner is
//! idle again the protection is cleared; a refusal is logged once and jobs still run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::world::*;

/// What the stand-in agent answers.
#[derive(Clone, Copy)]
enum Answer {
    Protect,
    DenyAccess,
}

#[derive(Clone)]
struct Agent {
    seen: Arc<Mutex<Vec<Value>>>,
    answer: Answer,
}

impl Agent {
    /// Serves on a loopback port; returns the agent and its `ECS_AGENT_URI`.
    async fn start(answer: Answer) -> (Agent, String) {
        let agent = Agent {
            seen: Arc::default(),
            answer,
        };
        let app = Router::new()
            .route("/api/task-protection/v1/state", put(state))
            .with_state(agent.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/api", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (agent, uri)
    }

    fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (up to a minute) until the agent has seen `count` requests.
    async fn wait_for(&self, count: usize) -> Vec<Value> {
        for _ in 0..600 {
            let seen = self.seen();
            if seen.len() >= count {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the agent saw {:?}, not {count} requests", self.seen());
    }
}

async fn state(State(agent): State<Agent>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    agent.seen.lock().unwrap().push(body.clone());
    let arn = "arn:aws:ecs:us-east-1:000000000000:task/runners/0123456789abcdef";
    match agent.answer {
        Answer::Protect => (
            StatusCode::OK,
            Json(json!({"protection": {
                "ProtectionEnabled": body["ProtectionEnabled"],
                "ExpirationDate": "2026-11-30T12:15:00Z",
                "TaskArn": arn,
            }})),
        ),
        Answer::DenyAccess => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {
                "Arn": arn,
                "Code": "AccessDeniedException",
                "Message": "User is not authorized to perform: ecs:UpdateTaskProtection",
            }})),
        ),
    }
}

/// A job that runs until `release` exists (it first writes `started`).
fn held_job(world: &World, name: &str) -> (Value, std::path::PathBuf, std::path::PathBuf) {
    let started = world.tmp.path().join(format!("{name}.started"));
    let release = world.tmp.path().join(format!("{name}.release"));
    let command = format!(
        "touch '{}'; while [ ! -e '{}' ]; do sleep 0.1; done",
        started.display(),
        release.display()
    );
    (json!({"commands": [command]}), started, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_is_protected_while_a_job_runs_and_unprotected_when_idle() {
    let world = World::new().await;
    let queue = world.fifo_queue("protect").await;
    let (agent, uri) = Agent::start(Answer::Protect).await;
    let log = std::fs::File::create(world.tmp.path().join("runner.log")).unwrap();
    let mut runner = serve_binary_to(&world, &queue, &[("ECS_AGENT_URI", &uri)], log);

    let (body, started, release) = held_job(&world, "held");
    let machine = world
        .state_machine("protect", &native_machine(&queue, body))
        .await;
    let execution = world.start(&machine, "protect-1", &json!({})).await;
    wait_for_file(&started).await;
    let seen = agent.wait_for(1).await;
    assert_eq!(
        seen,
        [json!({"ProtectionEnabled": true, "ExpiresInMinutes": 15})],
        "protected while the job runs"
    );
    std::fs::write(&release, "").unwrap();
    assert_eq!(world.finished(&execution).await.status, "SUCCEEDED");
    let seen = agent.wait_for(2).await;
    assert_eq!(
        seen[1],
        json!({"ProtectionEnabled": false}),
        "cleared when idle"
    );

    runner.start_kill().unwrap();
    runner.wait().await.unwrap();
    assert_eq!(agent.seen().len(), 2, "{:?}", agent.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_protection_is_logged_once_and_jobs_still_run() {
    let world = World::new().await;
    let queue = world.fifo_queue("refused").await;
    let (agent, uri) = Agent::start(Answer::DenyAccess).await;
    let log_path = world.tmp.path().join("runner.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut runner = serve_binary_to(&world, &queue, &[("ECS_AGENT_URI", &uri)], log);

    let (body, _, release) = held_job(&world, "first");
    let held = world
        .state_machine("refused", &native_machine(&queue, body))
        .await;
    let execution = world.start(&held, "refused-1", &json!({})).await;
    agent.wait_for(1).await;
    std::fs::write(&release, "").unwrap();
    assert_eq!(world.finished(&execution).await.status, "SUCCEEDED");
    let quick = world
        .state_machine(
            "quick",
            &native_machine(&queue, json!({"commands": ["true"]})),
        )
        .await;
    let execution = world.start(&quick, "refused-2", &json!({})).await;
    assert_eq!(world.finished(&execution).await.status, "SUCCEEDED");
    runner.start_kill().unwrap();
    runner.wait().await.unwrap();

    assert_eq!(agent.seen().len(), 1, "asked once: {:?}", agent.seen());
    let log = std::fs::read_to_string(&log_path).unwrap();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("add ecs:UpdateTaskProtection"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("AccessDeniedException"),
        "{}",
        warnings[0]
    );
}
