//! A job's trace: its root span ([`job_span`], one trace per message; the job's details are
//! recorded on it once admitted, and its steps are DEBUG spans under it), and the W3C
//! `TRACEPARENT` and `TRACESTATE` of that span, given to its commands so that an instrumented
//! build or test links its spans under the job (nothing when no exporter is configured: the
//! span has no valid context). Pure; nothing to cancel.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::Message;

/// `TRACEPARENT` (and `TRACESTATE` when not empty) naming `span`, for a job's environment.
pub fn job_variables(span: &tracing::Span) -> Vec<(String, String)> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    let mut variables = Vec::new();
    for (key, name) in [("traceparent", "TRACEPARENT"), ("tracestate", "TRACESTATE")] {
        if let Some(value) = carrier.remove(key).filter(|v| !v.is_empty()) {
            variables.push((name.to_string(), value));
        }
    }
    variables
}

/// The root span of one message's trace; the job's details are recorded once admitted.
pub fn job_span(message: &Message) -> tracing::Span {
    tracing::info_span!(
        parent: None,
        "job",
        message_id = %message.id,
        job_id = tracing::field::Empty,
        task = tracing::field::Empty,
        kind = tracing::field::Empty,
        step = tracing::field::Empty,
        execution = tracing::field::Empty,
        execution_arn = tracing::field::Empty,
        outcome = tracing::field::Empty,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn a_job_gets_the_traceparent_of_its_span_only_when_traces_are_on() {
        assert!(job_variables(&tracing::info_span!("job")).is_empty());
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("job");
            let variables = job_variables(&span);
            assert_eq!(variables.len(), 1, "{variables:?}");
            let (name, value) = &variables[0];
            assert_eq!(name, "TRACEPARENT");
            // 00-<32 hex trace id>-<16 hex span id>-<flags>
            let parts: Vec<&str> = value.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [2, 32, 16, 2]
            );
        });
    }
}
