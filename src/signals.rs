//! The stop signals: SIGTERM (ECS stop, Fargate Spot) and SIGINT (Ctrl-C). What a signal
//! means is decided by the caller ([`crate::modes::Stop`]): the first asks the runner to stop,
//! the second to stop at once. Waiting is cancelled by dropping the future.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// A watcher of SIGTERM and SIGINT; installing it replaces their default action (exit).
pub struct StopSignals {
    term: Signal,
    int: Signal,
}

impl StopSignals {
    /// Starts watching; fails only when the signal driver cannot be set up.
    pub fn install() -> std::io::Result<Self> {
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT.
    pub async fn recv(&mut self) {
        tokio::select! { _ = self.term.recv() => {}, _ = self.int.recv() => {} }
    }
}
