//! The outcome a message that is not run records on its job span.
use super::*;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Collects the values recorded into `outcome` fields.
#[derive(Clone, Default)]
struct Outcomes(Arc<Mutex<Vec<String>>>);

impl Visit for Outcomes {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "outcome" {
            self.0.lock().unwrap().push(value.to_string());
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Outcomes {
    fn on_record(
        &self,
        _: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: Context<'_, S>,
    ) {
        values.record(&mut self.clone());
    }
}

#[test]
fn a_message_not_run_records_why_on_its_job_span() {
    let report = || Report::Failure {
        error: "Job.Invalid".into(),
        cause: "no commands".into(),
    };
    let cases = [
        (Admission::Leave("another runner's".into()), "left"),
        (Admission::Delete("no token".into()), "deleted"),
        (
            Admission::Fail {
                token: "t".into(),
                report: report(),
            },
            "refused",
        ),
        (
            Admission::FailAndShutdown {
                token: "t".into(),
                report: report(),
                reason: "bad".into(),
            },
            "refused",
        ),
        (Admission::Shutdown("told to".into()), "shutdown"),
    ];
    for (admission, want) in cases {
        let outcomes = Outcomes::default();
        let subscriber = tracing_subscriber::registry().with(outcomes.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("job", outcome = tracing::field::Empty);
            record_outcome(&span, &admission);
        });
        assert_eq!(*outcomes.0.lock().unwrap(), [want]);
    }
}
