//! ECS task scale-in protection while jobs run, so that autoscaling or a deployment never
//! stops a task in the middle of a job. The loop watches the number of running jobs: when it
//! becomes non-zero it asks the [`ProtectionAgent`] to protect the task for
//! [`ProtectionConfig::minutes`], renews every third of that while jobs run, and clears the
//! protection when the runner is idle again. The expiry is the safety net: a runner that dies
//! while protected is unprotected again within `minutes`.
//!
//! A task that is never idle would hold off a deployment for ever (ECS waits for protected
//! tasks). So a protection is renewed only until it has been held for
//! [`ProtectionConfig::max_minutes`] without the runner being idle once; then it lapses within
//! `minutes`, ECS may stop the task (which drains), and the runner protects again only after it
//! was idle. A deployment therefore waits at most `max_minutes + minutes` plus the drain grace.
//!
//! A refusal (the task role lacks `ecs:UpdateTaskProtection`) is logged once, with the
//! permission to add, and protection is not asked for again; the runner keeps serving. Other
//! failures (agent unreachable, throttled) are logged once per run of failures and retried
//! after [`RETRY_AFTER`]. Cancellation: trip the token; the loop clears a protection it set
//! (one attempt) and returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Wait before asking again after a failure that was not a refusal.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Why the agent did not set the protection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtectionError {
    /// The task role may not change its protection; asking again will not help.
    #[error("refused: {0}")]
    Refused(String),
    /// Anything else (unreachable, throttled, a server error); worth another try.
    #[error("the ECS agent call failed: {0}")]
    Failed(String),
}

/// The ECS agent's task-protection endpoint, as the loop needs it.
pub trait ProtectionAgent: Send + Sync + 'static {
    /// Sets this task's protection: on for `minutes` from now, or off.
    fn set(
        &self,
        enabled: bool,
        minutes: u32,
    ) -> impl Future<Output = Result<(), ProtectionError>> + Send;
}

/// How long one protection lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtectionConfig {
    /// Minutes a protection lasts unless renewed (`ATTINI_TASK_PROTECTION_MINUTES`, default
    /// 15, 1 to 2880); renewed every third of it.
    pub minutes: u32,
    /// Longest the task stays protected without being idle once
    /// (`ATTINI_TASK_PROTECTION_MAX_MINUTES`, default 60, 1 to 2880).
    pub max_minutes: u32,
}

impl ProtectionConfig {
    /// How often a protection is renewed while jobs run: a third of its length.
    pub fn renew_every(&self) -> Duration {
        Duration::from_secs(u64::from(self.minutes) * 60 / 3)
    }

    /// The longest a protection is renewed without the runner being idle once.
    pub fn hold_at_most(&self) -> Duration {
        Duration::from_secs(u64::from(self.max_minutes) * 60)
    }
}

/// Keeps the task protected while `busy` (running jobs) is above zero, until `stop`.
pub async fn keep_protected<A: ProtectionAgent>(
    agent: Arc<A>,
    config: ProtectionConfig,
    mut busy: watch::Receiver<usize>,
    stop: CancellationToken,
) {
    let mut failing = false;
    // When to act next without a change in `busy`: a renewal or a retry.
    let mut next: Option<Instant> = None;
    // Since when this task is protected (`None`: not protected), and whether the protection
    // was held for the longest allowed and left to lapse.
    let mut held_since: Option<Instant> = None;
    let mut lapsing = false;
    loop {
        let busy_now = *busy.borrow_and_update() > 0;
        if !busy_now {
            lapsing = false;
        }
        let wanted = busy_now && !lapsing;
        let due = next.is_some_and(|at| Instant::now() >= at);
        let protected = held_since.is_some();
        if wanted && due && held_since.is_some_and(|at| at.elapsed() >= config.hold_at_most()) {
            tracing::info!(
                max_minutes = config.max_minutes,
                "task scale-in protection held for its longest without the runner being idle; \
                 not renewed, so that a deployment or scale-in can replace this task (it drains)"
            );
            lapsing = true;
            // The protection lapses by itself; nothing to ask until the runner is idle.
            held_since = None;
            next = None;
        } else if wanted != protected || (wanted && due) {
            match agent.set(wanted, config.minutes).await {
                Ok(()) => {
                    if failing {
                        tracing::info!("task scale-in protection works again");
                    }
                    failing = false;
                    held_since = if wanted {
                        held_since.or(Some(Instant::now()))
                    } else {
                        None
                    };
                    tracing::debug!(protected = wanted, "task scale-in protection set");
                    next = wanted.then(|| Instant::now() + config.renew_every());
                }
                Err(ProtectionError::Refused(why)) => {
                    tracing::warn!(
                        reason = why,
                        "ECS refused task scale-in protection: autoscaling may stop this task while jobs run. \
                         If access was denied, add ecs:UpdateTaskProtection on this task to the task role."
                    );
                    return;
                }
                Err(ProtectionError::Failed(why)) => {
                    if !failing {
                        tracing::warn!(
                            reason = why,
                            "could not set task scale-in protection; retrying"
                        );
                    }
                    failing = true;
                    next = Some(Instant::now() + RETRY_AFTER);
                }
            }
        }
        if !wanted && held_since.is_none() {
            // Idle and unprotected: no renewal and no retry is pending.
            next = None;
        }
        let wake = next.map(tokio::time::sleep_until);
        tokio::select! {
            _ = stop.cancelled() => break,
            changed = busy.changed() => if changed.is_err() { break },
            _ = async { match wake { Some(sleep) => sleep.await, None => std::future::pending().await } } => {}
        }
    }
    if held_since.is_some()
        && let Err(e) = agent.set(false, config.minutes).await
    {
        tracing::warn!(error = %e, "could not clear task scale-in protection at exit");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records every call; answers with `answer`.
    struct Agent {
        calls: Mutex<Vec<(bool, Instant)>>,
        answer: Mutex<Result<(), ProtectionError>>,
    }

    impl Agent {
        fn new(answer: Result<(), ProtectionError>) -> Arc<Agent> {
            Arc::new(Agent {
                calls: Mutex::new(Vec::new()),
                answer: Mutex::new(answer),
            })
        }
        fn calls(&self) -> Vec<bool> {
            self.calls.lock().unwrap().iter().map(|c| c.0).collect()
        }
    }

    impl ProtectionAgent for Agent {
        async fn set(&self, enabled: bool, minutes: u32) -> Result<(), ProtectionError> {
            assert_eq!(minutes, 15);
            self.calls.lock().unwrap().push((enabled, Instant::now()));
            self.answer.lock().unwrap().clone()
        }
    }

    const CONFIG: ProtectionConfig = ProtectionConfig {
        minutes: 15,
        max_minutes: 60,
    };

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn protects_while_busy_renews_every_five_minutes_and_clears_when_idle() {
        let agent = Agent::new(Ok(()));
        let (busy, watch) = watch::channel(0usize);
        let stop = CancellationToken::new();
        let task = tokio::spawn(keep_protected(agent.clone(), CONFIG, watch, stop.clone()));
        settle().await;
        assert!(agent.calls().is_empty(), "idle at start: nothing to ask");

        busy.send_replace(1);
        settle().await;
        assert_eq!(agent.calls(), [true]);
        busy.send_replace(2);
        settle().await;
        assert_eq!(agent.calls(), [true], "already protected");
        tokio::time::sleep(Duration::from_secs(12 * 60)).await;
        assert_eq!(
            agent.calls(),
            [true, true, true],
            "renewed at 5 and 10 minutes"
        );
        let times: Vec<Instant> = agent.calls.lock().unwrap().iter().map(|c| c.1).collect();
        assert_eq!(times[1] - times[0], Duration::from_secs(300));

        busy.send_replace(0);
        settle().await;
        assert_eq!(agent.calls(), [true, true, true, false]);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(agent.calls().len(), 4, "no renewal while idle");
        stop.cancel();
        task.await.unwrap();
        assert_eq!(agent.calls().len(), 4, "nothing to clear at exit");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_never_idle_is_left_unprotected_after_the_longest_hold_until_idle() {
        let agent = Agent::new(Ok(()));
        let (busy, watch) = watch::channel(1usize);
        let stop = CancellationToken::new();
        let task = tokio::spawn(keep_protected(agent.clone(), CONFIG, watch, stop.clone()));
        // Protected at 0, renewed every 5 minutes up to 60; at 60 the hold is over: no renewal.
        tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
        let calls = agent.calls();
        assert_eq!(
            calls.len(),
            12,
            "set at 0 and renewed at 5..55 minutes: {calls:?}"
        );
        assert!(calls.iter().all(|on| *on), "{calls:?}");
        let times: Vec<Instant> = agent.calls.lock().unwrap().iter().map(|c| c.1).collect();
        let last = *times.last().unwrap() - times[0];
        assert_eq!(last, Duration::from_secs(55 * 60), "the last renewal");
        // Another job starts, still never idle: not protected again.
        busy.send_replace(2);
        settle().await;
        assert_eq!(
            agent.calls().len(),
            12,
            "protected again without being idle"
        );
        // Idle once: nothing to clear (it lapsed); busy again: protected again.
        busy.send_replace(0);
        settle().await;
        assert_eq!(
            agent.calls().len(),
            12,
            "a lapsed protection needs no clearing"
        );
        busy.send_replace(1);
        settle().await;
        assert_eq!(agent.calls().len(), 13);
        assert_eq!(agent.calls().last(), Some(&true));
        stop.cancel();
        task.await.unwrap();
    }

    /// Counts the WARN events of the tasks on this thread while installed.
    #[derive(Clone, Default)]
    struct Warnings(Arc<std::sync::atomic::AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_final_and_a_failure_is_retried() {
        use tracing_subscriber::layer::SubscriberExt;
        let warnings = Warnings::default();
        let _logs =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(warnings.clone()));
        let refused = Agent::new(Err(ProtectionError::Refused("AccessDenied".into())));
        let (busy, watch) = watch::channel(1usize);
        let task = tokio::spawn(keep_protected(
            refused.clone(),
            CONFIG,
            watch,
            CancellationToken::new(),
        ));
        task.await.unwrap();
        busy.send_replace(0);
        assert_eq!(refused.calls(), [true], "asked once, then never again");

        let failing = Agent::new(Err(ProtectionError::Failed("503".into())));
        let (_busy, watch) = watch::channel(1usize);
        let stop = CancellationToken::new();
        let task = tokio::spawn(keep_protected(failing.clone(), CONFIG, watch, stop.clone()));
        tokio::time::sleep(RETRY_AFTER * 3 + Duration::from_secs(1)).await;
        assert_eq!(
            failing.calls(),
            [true, true, true, true],
            "retried every 10 s"
        );
        // The refusal and the first of the four failures.
        assert_eq!(warnings.0.load(std::sync::atomic::Ordering::SeqCst), 2);
        *failing.answer.lock().unwrap() = Ok(());
        tokio::time::sleep(RETRY_AFTER).await;
        assert_eq!(failing.calls().len(), 5);
        stop.cancel();
        task.await.unwrap();
        assert_eq!(failing.calls().last(), Some(&false), "cleared at exit");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_followed_by_idleness_leaves_nothing_to_retry() {
        // A loop that kept a past wake-up time would spin here and the paused clock would never
        // advance: the test would hang until nextest ends it.
        let agent = Agent::new(Err(ProtectionError::Failed("503".into())));
        let (busy, watch) = watch::channel(1usize);
        let stop = CancellationToken::new();
        let task = tokio::spawn(keep_protected(agent.clone(), CONFIG, watch, stop.clone()));
        settle().await;
        busy.send_replace(0);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(
            agent.calls(),
            [true],
            "nothing asked while idle and unprotected"
        );
        stop.cancel();
        task.await.unwrap();
    }
}
