//! A broken runner takes itself out: after `limit` jobs in a row failed on the
//! runner's side ([`crate::engine::names::is_runner_fault`]: it could not get a distribution,
//! a role or a secret, had no disk or tool, or failed internally), with no job in between that
//! succeeded or failed by its own fault, the loop is asked to stop as broken: it stops
//! receiving, hands back what it holds, reports not ready, and the mode exits with its own
//! status so that ECS replaces the task. A job's own failures and its timeout never count, and
//! reset the run; a job interrupted by a stop neither counts nor resets it. Atomics only;
//! nothing to cancel.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::engine::names;
use crate::engine::outcome::Report;

/// The run of runner-side failures.
#[derive(Debug, Default)]
pub struct Breaker {
    limit: u32,
    run: AtomicU32,
}

impl Breaker {
    /// A breaker that trips after `limit` runner-side failures in a row (0: never).
    pub fn new(limit: u32) -> Breaker {
        Breaker {
            limit,
            run: AtomicU32::new(0),
        }
    }

    /// Counts the report a job was answered with; `Some(reason)` when the run reaches the
    /// limit (once: the call that reaches it).
    pub fn record(&self, report: &Report) -> Option<String> {
        match report {
            Report::Failure { error, cause } if names::is_runner_fault(error) => {
                let run = self.run.fetch_add(1, Ordering::SeqCst) + 1;
                (self.limit > 0 && run == self.limit).then(|| {
                    format!(
                        "the runner looks broken: {run} jobs in a row failed on its side \
                         (ATTINI_MAX_RUNNER_FAILURES), the last with {error}: {cause}"
                    )
                })
            }
            Report::Failure { error, .. } if error == crate::engine::outcome::INTERRUPTED_ERROR => {
                None
            }
            _ => {
                self.run.store(0, Ordering::SeqCst);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_trips_once_after_a_run_of_runner_faults_and_a_job_fault_resets_the_run() {
        let breaker = Breaker::new(3);
        let runner = Report::failure(names::DISTRIBUTION, "denied");
        let job = Report::failure(names::INVALID_JOB, "no such key");
        assert_eq!(breaker.record(&runner), None);
        assert_eq!(breaker.record(&runner), None);
        assert_eq!(breaker.record(&job), None, "a job's fault resets the run");
        assert_eq!(breaker.record(&runner), None);
        assert_eq!(breaker.record(&runner), None);
        let tripped = breaker
            .record(&runner)
            .expect("the third in a row trips it");
        assert!(tripped.contains("3 jobs in a row"), "{tripped}");
        assert_eq!(breaker.record(&runner), None, "it trips once");
        assert_eq!(Breaker::new(0).record(&runner), None, "0: never");
    }

    #[test]
    fn a_job_interrupted_by_a_stop_neither_counts_nor_resets_the_run() {
        let breaker = Breaker::new(2);
        let runner = Report::failure(names::DISTRIBUTION, "denied");
        let stopped = Report::failure(crate::engine::outcome::INTERRUPTED_ERROR, "stopped");
        assert_eq!(breaker.record(&runner), None);
        assert_eq!(breaker.record(&stopped), None);
        assert!(breaker.record(&runner).is_some(), "the run was reset");
    }
}
