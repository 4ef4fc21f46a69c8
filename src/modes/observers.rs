//! What an AWS mode shows an operator besides its logs: the ops server ([`crate::ops`]) on
//! `ATTINI_OPS_ADDR` and, with `ATTINI_METRICS=emf`, the EMF writer
//! ([`crate::metrics::emf`]). Both run until [`Observers::stop`], which the mode calls after
//! its worker has drained, so `/livez` answers until the process exits and the EMF writer
//! writes a last set. Cancellation: `stop` cancels both and waits for them, at most
//! [`STOP_BOUND`].

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::ops::{BindError, OpsServer};
use crate::worker::Stats;

/// Longest the exit waits for the ops server's open connections and the last EMF set.
pub const STOP_BOUND: Duration = Duration::from_secs(2);

/// The running observers.
pub struct Observers {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts the ops server on [`Settings::ops_addr`] (a clear error when the address is taken)
/// and, with [`Settings::emf_interval`], the EMF writer for the queue at `queue_url`.
pub async fn start(
    settings: &Settings,
    stats: Arc<Stats>,
    queue_url: &str,
) -> Result<Observers, BindError> {
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    if let Some(addr) = settings.ops_addr {
        let server = OpsServer::bind(addr).await?;
        let listening = server
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(
            addr = listening,
            "ops server: /livez /readyz /metrics /jobs"
        );
        tasks.push(tokio::spawn(server.serve(stats.clone(), stop.clone())));
    }
    if let Some(every) = settings.emf_interval {
        let queue = queue_name(queue_url).to_string();
        tracing::info!(
            interval_s = every.as_secs(),
            queue,
            "CloudWatch EMF metrics on stdout"
        );
        let figures = stats.figures.clone();
        let writer = crate::metrics::emf::write_every(figures, every, queue, stop.clone());
        tasks.push(tokio::spawn(writer));
    }
    Ok(Observers { stop, tasks })
}

impl Observers {
    /// Stops the ops server and writes the last EMF set, waiting at most [`STOP_BOUND`]: a
    /// client that keeps a connection open must not keep the runner from exiting.
    pub async fn stop(self) {
        self.stop.cancel();
        for mut task in self.tasks {
            if tokio::time::timeout(STOP_BOUND, &mut task).await.is_err() {
                tracing::warn!(
                    bound_s = STOP_BOUND.as_secs(),
                    "the ops server did not close its connections in time; closing them now"
                );
                task.abort();
            }
        }
    }
}

/// The queue's name: the last segment of its URL.
fn queue_name(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_queue_name_is_the_last_segment() {
        assert_eq!(
            super::queue_name("https://sqs.eu-west-1.amazonaws.com/1/jobs.fifo"),
            "jobs.fifo"
        );
        assert_eq!(super::queue_name("jobs"), "jobs");
    }
}
