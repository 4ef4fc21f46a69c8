//! The worker's ordering rules, with the in-memory queue and tokens under tokio's paused clock
//! and a scripted stand-in for the engine: what each job does is its first command (`ok`,
//! `sleep N` in seconds, `wait` for cancellation, `panic`, `workspace N`: N seconds preparing
//! its workspace before a command runs).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::memory::{Event, Journal, MemoryQueue, MemoryTokens};
use super::*;
use crate::engine::executor::progress::Phase;
use crate::engine::executor::{Execution, OutputSummary, Sweep, Termination};
use crate::engine::outcome::{INTERRUPTED_ERROR, RUNTIME_ERROR, Report};

/// Runs jobs by their first command; counts runs.
#[derive(Default)]
struct Scripted {
    runs: AtomicUsize,
}

fn ended(termination: Termination, report: Report) -> JobResult {
    JobResult {
        job_id: "j".into(),
        report,
        execution: Some(Execution {
            termination,
            sweep: Sweep::default(),
            output: OutputSummary::default(),
            pgid: 0,
        }),
    }
}

fn success() -> JobResult {
    let output = r#"{"done":true}"#.to_string();
    ended(Termination::Exited(0), Report::Success { output })
}

fn cancelled() -> JobResult {
    let report = Report::failure(INTERRUPTED_ERROR, "stopped");
    ended(Termination::Cancelled, report)
}

impl JobRunner for Scripted {
    async fn run(
        &self,
        job: &JobSpec,
        options: &RunOptions,
        _sink: Arc<dyn LogSink>,
        cancel: &CancellationToken,
    ) -> JobResult {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let command = job.commands[0].clone();
        let progress = options.progress.as_ref();
        if let Some(secs) = command.strip_prefix("workspace ") {
            if let Some(p) = progress {
                p.enter(Phase::Workspace);
            }
            let secs = secs.parse().expect("workspace takes seconds");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
                _ = cancel.cancelled() => return cancelled(),
            }
        }
        if let Some(p) = progress {
            p.enter(Phase::Commands);
        }
        if let Some(secs) = command.strip_prefix("sleep ") {
            let secs = secs.parse().expect("sleep takes seconds");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(secs)) => return success(),
                _ = cancel.cancelled() => return cancelled(),
            }
        }
        match command.as_str() {
            "ok" => success(),
            "wait" => {
                cancel.cancelled().await;
                cancelled()
            }
            "panic" => panic!("boom in the job"),
            other => panic!("unknown scripted command {other}"),
        }
    }
}

/// Admits every parsable job; the message whose body contains `stop-now` trips `shutdown`
/// while it is admitted (a signal arriving mid-batch), one with `slow-admission` takes 100 s
/// to admit (DynamoDB throttling, say), one with `policy-stop` stops the runner (another
/// runner took over, say).
struct TestPolicy {
    shutdown: CancellationToken,
}

impl Policy for TestPolicy {
    async fn admit(&self, message: &Message) -> Admission {
        if message.body.contains("stop-now") {
            self.shutdown.cancel();
        }
        if message.body.contains("slow-admission") {
            tokio::time::sleep(Duration::from_secs(100)).await;
        }
        if message.body.contains("policy-stop") {
            return Admission::Shutdown("the policy says stop".into());
        }
        match admit::parse_message(message) {
            Ok((job, token)) => Admission::Run(Box::new(Admitted {
                job,
                token,
                source: None,
                log_store: None,
                logs_at: None,
                credentials: None,
            })),
            Err(refusal) => refusal,
        }
    }
}

struct Rig {
    queue: Arc<MemoryQueue>,
    tokens: Arc<MemoryTokens>,
    journal: Arc<Journal>,
    runner: Arc<Scripted>,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
}

fn config(max_jobs: usize, idle_ttl: Option<u64>) -> WorkerConfig {
    WorkerConfig {
        max_jobs,
        idle_ttl: idle_ttl.map(Duration::from_secs),
        receive_wait: Duration::from_secs(20),
        drain_grace: Duration::from_secs(5),
        report_retries: Default::default(),
        max_lease: SQS_MAX_LEASE,
        max_runner_failures: 5,
    }
}

impl Rig {
    /// A queue with a 30 s visibility timeout (beats every 10 s).
    fn new(may_extend: bool, heartbeat_denied: bool) -> Rig {
        let queue = Arc::new(MemoryQueue::new(Duration::from_secs(30), may_extend));
        let journal = queue.journal();
        Rig {
            tokens: Arc::new(MemoryTokens::new(journal.clone(), heartbeat_denied)),
            queue,
            journal,
            runner: Arc::default(),
            stats: Arc::default(),
            shutdown: CancellationToken::new(),
        }
    }

    fn job(&self, token: &str, command: &str) -> String {
        self.job_with(token, command, serde_json::json!({}))
    }

    /// A job with more fields (`expectedSeconds`, `stepName`, ...).
    fn job_with(&self, token: &str, command: &str, extra: serde_json::Value) -> String {
        let mut body = serde_json::json!({"taskToken": token, "commands": [command]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.queue.push(&body.to_string())
    }

    async fn start(&self, config: WorkerConfig) -> JoinHandle<Exit> {
        let (q, t, r) = (self.queue.clone(), self.tokens.clone(), self.runner.clone());
        let worker = Worker::new(r, q, t, config, self.stats.clone()).await;
        let policy = Arc::new(TestPolicy {
            shutdown: self.shutdown.clone(),
        });
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move { worker.run(policy, shutdown).await })
    }

    fn events(&self) -> Vec<Event> {
        self.journal.events()
    }

    fn position(&self, wanted: impl Fn(&Event) -> bool) -> usize {
        let events = self.events();
        events
            .iter()
            .position(wanted)
            .unwrap_or_else(|| panic!("event not found in {events:?}"))
    }

    fn count(&self, wanted: impl Fn(&Event) -> bool) -> usize {
        self.events().iter().filter(|e| wanted(e)).count()
    }
}

/// Waits (in virtual time, at most an hour of it) until `condition` holds.
async fn until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..36_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting until {what}");
}

fn is_report(e: &Event) -> bool {
    matches!(e, Event::Succeeded(..) | Event::Failed(..))
}

mod answers;
mod beats;
mod drain;
mod lease;
