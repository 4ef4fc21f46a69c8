//! How long a job is expected to run, for the drain ([`super::drain_plan`]): the job's own
//! `expectedSeconds`, else the longest of its last [`KEPT`] successful runs on this runner.
//! A job is known by its step name, else by a digest of its commands. Kept in memory only
//! (a new task learns again); bounded to [`MAX_JOBS`] jobs, the least recently run forgotten
//! first. Nothing to cancel.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use crate::job::JobSpec;

/// Successful runs kept per job.
pub const KEPT: usize = 5;
/// Jobs remembered.
pub const MAX_JOBS: usize = 1000;

/// Where an expected duration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The job's `expectedSeconds`.
    Declared,
    /// The longest of its last successful runs here.
    Learned,
}

impl Basis {
    /// The name the drain's log line gives it.
    pub fn label(self) -> &'static str {
        match self {
            Basis::Declared => "declared",
            Basis::Learned => "learned",
        }
    }
}

/// Recent run times per job.
#[derive(Debug, Default)]
pub struct Durations {
    runs: Mutex<HashMap<String, (u64, VecDeque<Duration>)>>,
    clock: std::sync::atomic::AtomicU64,
}

impl Durations {
    /// Notes that `job` succeeded after running `took`.
    pub fn record(&self, job: &JobSpec, took: Duration) {
        let now = self
            .clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if runs.len() >= MAX_JOBS && !runs.contains_key(&key(job)) {
            let oldest = runs
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                runs.remove(&oldest);
            }
        }
        let (at, kept) = runs.entry(key(job)).or_default();
        *at = now;
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back(took);
    }

    /// How long `job` is expected to run, and why; `None` when neither declared nor learned.
    pub fn expected(&self, job: &JobSpec) -> Option<(Duration, Basis)> {
        if let Some(declared) = job.expected {
            return Some((declared, Basis::Declared));
        }
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let longest = runs.get(&key(job))?.1.iter().max().copied()?;
        Some((longest, Basis::Learned))
    }
}

/// The name a job's runs are kept under: `step:<step name>`, else `commands:<digest>`.
pub fn key(job: &JobSpec) -> String {
    match &job.step_name {
        Some(step) => format!("step:{step}"),
        None => format!("commands:{}", crate::job::task_id(&job.commands.join("\n"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(step: Option<&str>, command: &str, expected: Option<u64>) -> JobSpec {
        let mut body = serde_json::json!({"taskToken": "t", "commands": [command]});
        if let Some(step) = step {
            body["stepName"] = step.into();
        }
        if let Some(expected) = expected {
            body["expectedSeconds"] = expected.into();
        }
        crate::job::parse(&body.to_string()).unwrap()
    }

    #[test]
    fn a_declared_time_wins_and_a_learned_one_is_the_longest_of_the_last_five() {
        let durations = Durations::default();
        let migrate = job(Some("Migrate"), "a", None);
        assert_eq!(durations.expected(&migrate), None);
        for secs in [50, 10, 20, 30, 40, 15] {
            durations.record(&migrate, Duration::from_secs(secs));
        }
        // 50 s was the sixth run back: forgotten.
        let learned = Some((Duration::from_secs(40), Basis::Learned));
        assert_eq!(durations.expected(&migrate), learned);
        // Same step, other commands: the same job.
        assert_eq!(
            durations.expected(&job(Some("Migrate"), "b", None)),
            learned
        );
        let declared = job(Some("Migrate"), "a", Some(7));
        assert_eq!(
            durations.expected(&declared),
            Some((Duration::from_secs(7), Basis::Declared))
        );
        // Without a step name, by its commands.
        let anonymous = job(None, "a", None);
        assert_eq!(durations.expected(&anonymous), None);
        durations.record(&anonymous, Duration::from_secs(3));
        assert_eq!(
            durations.expected(&anonymous),
            Some((Duration::from_secs(3), Basis::Learned))
        );
        assert_eq!(durations.expected(&job(None, "b", None)), None);
        assert_eq!(
            (Basis::Declared.label(), Basis::Learned.label()),
            ("declared", "learned")
        );
    }

    #[test]
    fn past_the_bound_the_least_recently_run_job_is_forgotten() {
        let durations = Durations::default();
        let first = job(Some("s0"), "a", None);
        durations.record(&first, Duration::from_secs(1));
        for i in 1..MAX_JOBS {
            durations.record(
                &job(Some(&format!("s{i}")), "a", None),
                Duration::from_secs(1),
            );
        }
        // Running the first again makes the second the oldest.
        durations.record(&first, Duration::from_secs(2));
        durations.record(&job(Some("new"), "a", None), Duration::from_secs(1));
        assert!(durations.expected(&first).is_some());
        assert_eq!(durations.expected(&job(Some("s1"), "a", None)), None);
        assert_eq!(durations.runs.lock().unwrap().len(), MAX_JOBS);
    }
}
