//! What a stop does with each running job (Fargate Spot gives 2 minutes): jobs whose commands
//! have not started go back to the queue at once; a job expected to finish within the drain
//! window goes on; one expected to outlast it is interrupted at once, so that its
//! `Runner.Interrupted` answer and log are out long before the deadline and its retry starts
//! elsewhere now; a job of unknown length goes on until the window closes. A job that must
//! not be interrupted (`interruptible: false`) is never interrupted early. The window is the
//! stop timeout less what answering takes (`ATTINI_DRAIN_GRACE`). Pure; nothing to cancel.

use std::time::Duration;

use super::durations::Basis;
use crate::engine::executor::progress::Phase;

/// A running job as the drain sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// How long it has run (since its job task started).
    pub elapsed: Duration,
    /// Where it is.
    pub phase: Option<Phase>,
    /// How long it is expected to run in all, and why.
    pub expected: Option<(Duration, Basis)>,
    /// False: it must not be cut short.
    pub interruptible: bool,
    /// Its message can go back to the queue (lease mode).
    pub can_hand_back: bool,
}

/// What the drain does with one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Its commands have not started: end it and put its message back, unanswered.
    HandBack,
    /// Let it run, at most until the window closes; how long it is expected to need still.
    Continue(Option<Duration>),
    /// Expected to need this much more than the window has: interrupt it now.
    InterruptNow(Duration),
}

impl Decision {
    /// The name the drain's log line gives it.
    pub fn label(self) -> &'static str {
        match self {
            Decision::HandBack => "handed back",
            Decision::Continue(_) => "goes on",
            Decision::InterruptNow(_) => "interrupted now",
        }
    }
}

/// What to do with `job` when the drain has `window` left.
pub fn decide(job: &Seen, window: Duration) -> Decision {
    let started = matches!(
        job.phase,
        Some(Phase::Commands | Phase::Output | Phase::Report)
    );
    if !started && job.can_hand_back {
        return Decision::HandBack;
    }
    let Some((expected, _)) = job.expected else {
        return Decision::Continue(None);
    };
    let left = expected.saturating_sub(job.elapsed);
    if left <= window || !job.interruptible || !started {
        Decision::Continue(Some(left))
    } else {
        Decision::InterruptNow(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(100);

    fn seen(elapsed: u64, phase: Phase, expected: Option<u64>) -> Seen {
        Seen {
            elapsed: Duration::from_secs(elapsed),
            phase: Some(phase),
            expected: expected.map(|s| (Duration::from_secs(s), Basis::Declared)),
            interruptible: true,
            can_hand_back: true,
        }
    }

    #[test]
    fn what_fits_goes_on_what_does_not_is_interrupted_now() {
        let s = Duration::from_secs;
        // 100 s more fits a 100 s window exactly; 101 s does not.
        assert_eq!(
            decide(&seen(20, Phase::Commands, Some(120)), WINDOW),
            Decision::Continue(Some(s(100)))
        );
        assert_eq!(
            decide(&seen(19, Phase::Commands, Some(120)), WINDOW),
            Decision::InterruptNow(s(101))
        );
        // Past its expected time: nothing left to wait for, it goes on to the window's end.
        assert_eq!(
            decide(&seen(300, Phase::Output, Some(120)), WINDOW),
            Decision::Continue(Some(s(0)))
        );
        // Unknown length: it goes on.
        assert_eq!(
            decide(&seen(5, Phase::Commands, None), WINDOW),
            Decision::Continue(None)
        );
    }

    #[test]
    fn a_job_that_has_not_started_goes_back_when_it_can() {
        for phase in [Phase::Admission, Phase::Workspace] {
            assert_eq!(decide(&seen(1, phase, Some(5)), WINDOW), Decision::HandBack);
            let mut kept = seen(1, phase, Some(500));
            kept.can_hand_back = false;
            assert_eq!(
                decide(&kept, WINDOW),
                Decision::Continue(Some(Duration::from_secs(499)))
            );
        }
        let mut unknown = seen(1, Phase::Admission, None);
        unknown.phase = None;
        assert_eq!(decide(&unknown, WINDOW), Decision::HandBack);
    }

    #[test]
    fn a_job_that_must_not_be_interrupted_is_never_interrupted_early() {
        let mut migration = seen(10, Phase::Commands, Some(600));
        migration.interruptible = false;
        assert_eq!(
            decide(&migration, WINDOW),
            Decision::Continue(Some(Duration::from_secs(590)))
        );
        migration.phase = Some(Phase::Workspace);
        assert_eq!(decide(&migration, WINDOW), Decision::HandBack);
        let labels = [
            Decision::HandBack,
            Decision::Continue(None),
            Decision::InterruptNow(WINDOW),
        ]
        .map(Decision::label);
        assert_eq!(labels, ["handed back", "goes on", "interrupted now"]);
    }
}
