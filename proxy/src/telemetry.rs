//! Spans out of the data path: requests hand finished spans to a bounded
//! queue with `try_send` and move on; one task batches them to the
//! collector over OTLP/gRPC. A full queue or an unreachable collector
//! drops spans and counts them — telemetry never slows or fails a request.
//! Request counts and durations are exported as OTLP metrics on an
//! interval over the same channel.

mod exporter;
mod observed_body;
mod red;
mod span;
pub mod trace_context;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::{Notify, mpsc};

pub use exporter::{Exporter, Resource};
pub use observed_body::{ObservedBody, grpc_status_in_headers};
pub use red::RedMetrics;
pub use span::{ErrorSource, SpanInFlight, SpanRecord, Text};

/// Why spans were not exported.
type DropLabels = Vec<(&'static str, &'static str)>;

#[derive(Default)]
pub(crate) struct TelemetryMetrics {
    pub(crate) exported: Counter,
    pub(crate) dropped: Family<DropLabels, Counter>,
    /// OTLP metric exports by result (ok, failed).
    pub(crate) metric_exports: Family<DropLabels, Counter>,
}

impl TelemetryMetrics {
    pub(crate) fn dropped(&self, reason: &'static str, count: u64) {
        self.dropped
            .get_or_create(&vec![("reason", reason)])
            .inc_by(count);
    }
}

/// The data path's handle on telemetry.
pub struct Telemetry {
    queue: Option<mpsc::Sender<SpanRecord>>,
    metrics: Arc<TelemetryMetrics>,
    /// Wakes the exporter once a batch is waiting; otherwise it wakes on
    /// its flush interval, so a span costs no thread wake-up.
    batch_ready: Arc<Notify>,
    batch_spans: usize,
}

impl Telemetry {
    /// Telemetry that records nothing (`telemetry.enabled = false`).
    pub fn disabled() -> Self {
        Self {
            queue: None,
            metrics: Arc::default(),
            batch_ready: Arc::default(),
            batch_spans: 1,
        }
    }

    pub(crate) fn new(
        queue: mpsc::Sender<SpanRecord>,
        metrics: Arc<TelemetryMetrics>,
        batch_ready: Arc<Notify>,
        batch_spans: usize,
    ) -> Self {
        Self {
            queue: Some(queue),
            metrics,
            batch_ready,
            batch_spans,
        }
    }

    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues a finished span, or drops and counts it.
    pub fn record(&self, span: SpanRecord) {
        let Some(queue) = &self.queue else { return };
        if queue.try_send(span).is_err() {
            self.metrics.dropped("queue_full", 1);
        } else if queue.max_capacity() - queue.capacity() >= self.batch_spans {
            self.batch_ready.notify_one();
        }
    }

    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "meshtwin_proxy_spans_exported",
            "Spans the collector accepted",
            self.metrics.exported.clone(),
        );
        registry.register(
            "meshtwin_proxy_spans_dropped",
            "Spans not exported, by reason (queue_full, export_failed)",
            self.metrics.dropped.clone(),
        );
        registry.register(
            "meshtwin_proxy_metric_exports",
            "OTLP metric exports to the collector, by result (ok, failed)",
            self.metrics.metric_exports.clone(),
        );
    }
}

/// Now, as OTLP timestamps are: nanoseconds since the Unix epoch.
pub(crate) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub fn string_attribute(key: &str, value: impl Into<String>) -> KeyValue {
    attribute(key, any_value::Value::StringValue(value.into()))
}

pub fn int_attribute(key: &str, value: i64) -> KeyValue {
    attribute(key, any_value::Value::IntValue(value))
}

pub fn bool_attribute(key: &str, value: bool) -> KeyValue {
    attribute(key, any_value::Value::BoolValue(value))
}

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}
