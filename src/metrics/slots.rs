//! The job slots: how many there are, how many run a job now (watchable: ECS scale-in
//! protection follows it) and the most that ever ran at once. Kept once, here; the
//! `slots_in_use`, `slots_free` and `slots_peak` gauges of the registry are read from it
//! when the figures are rendered, so no second copy can disagree. Plain atomics and a watch
//! channel; nothing to cancel.

use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use tokio::sync::watch;

/// The runner's job slots.
#[derive(Debug, Default)]
pub struct Slots {
    running: watch::Sender<usize>,
    total: AtomicUsize,
    peak: AtomicUsize,
}

impl Slots {
    /// The loop starts with `total` slots (the most jobs at once).
    pub fn set_total(&self, total: usize) {
        self.total.store(total, Ordering::Relaxed);
    }

    /// A job took a slot.
    pub fn started(&self) {
        let mut now = 0;
        self.running.send_modify(|running| {
            *running += 1;
            now = *running;
        });
        self.peak.fetch_max(now, Ordering::SeqCst);
    }

    /// A job gave its slot back. Every call pairs with an earlier [`Slots::started`].
    pub fn ended(&self) {
        self.running
            .send_modify(|running| *running = running.saturating_sub(1));
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        *self.running.borrow()
    }

    /// Follows the number of jobs running.
    pub fn watch(&self) -> watch::Receiver<usize> {
        self.running.subscribe()
    }

    /// The most jobs that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Slots in all (0 before the loop starts).
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Collector for Slots {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let in_use = self.running();
        let figures = [
            ("slots_in_use", "Job slots running a job now", in_use),
            (
                "slots_free",
                "Job slots free now",
                self.total().saturating_sub(in_use),
            ),
            (
                "slots_peak",
                "Most job slots that ever ran a job at once",
                self.peak(),
            ),
        ];
        for (name, help, value) in figures {
            let gauge = ConstGauge::new(value as i64);
            gauge.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        Ok(())
    }
}
