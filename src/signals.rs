//! Process signals: SIGTERM (ECS stop, Fargate Spot) and SIGINT ask the runner to stop; a
//! second one kills every job's processes and ends the process at once. Nothing to cancel.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGTERM or SIGINT; on the second, kills the jobs' processes and
/// exits with code 130.
pub fn stop_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot watch SIGTERM/SIGINT; the runner stops only when killed");
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("stop requested by signal; no new jobs are taken");
        token.cancel();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::warn!("second stop signal: killing the running jobs and exiting now");
        crate::executor::procs::kill_all();
        std::process::exit(130);
    });
}
