//! Batches queued spans into OTLP/gRPC export requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

use super::red::RedMetrics;
use super::{SpanRecord, Telemetry, TelemetryMetrics, string_attribute, unix_nanos};
use crate::config::TelemetryConfig;

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const METRICS_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one warning per this long about a failing collector.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// Who the spans come from.
pub struct Resource {
    pub service: String,
    pub namespace: String,
    pub instance: String,
    pub locality: String,
}

impl Resource {
    fn attributes(&self) -> Vec<KeyValue> {
        let mut attributes = vec![
            string_attribute("service.name", &self.service),
            string_attribute("service.namespace", &self.namespace),
            string_attribute("service.instance.id", &self.instance),
            string_attribute("telemetry.sdk.name", "meshtwin-proxy"),
            string_attribute("telemetry.sdk.language", "rust"),
            string_attribute("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ];
        if !self.locality.is_empty() {
            attributes.push(string_attribute("cloud.region", &self.locality));
        }
        attributes
    }
}

/// The task that owns the queue's receiving end. It runs on a thread of
/// its own, so that encoding and sending a batch never delays a request.
pub struct Exporter {
    queue: mpsc::Receiver<SpanRecord>,
    collector: Endpoint,
    resource: Vec<KeyValue>,
    batch_spans: usize,
    flush_interval: Duration,
    metrics: Arc<TelemetryMetrics>,
    last_warning: Option<Instant>,
    red: Arc<RedMetrics>,
    metrics_interval: Duration,
    batch_ready: Arc<Notify>,
}

impl Exporter {
    /// The data path's [`Telemetry`] and the exporter that drains it.
    pub fn new(
        config: &TelemetryConfig,
        resource: &Resource,
        red: Arc<RedMetrics>,
    ) -> Result<(Telemetry, Self), String> {
        let collector = Endpoint::from_shared(config.collector.clone())
            .map_err(|e| format!("telemetry.collector `{}`: {e}", config.collector))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(EXPORT_TIMEOUT);
        let (tx, rx) = mpsc::channel(config.queue_spans);
        let metrics = Arc::new(TelemetryMetrics::default());
        let batch_ready = Arc::new(Notify::new());
        let exporter = Self {
            queue: rx,
            collector,
            resource: resource.attributes(),
            batch_spans: config.batch_spans,
            flush_interval: Duration::from_millis(config.flush_interval_ms),
            metrics: metrics.clone(),
            last_warning: None,
            red,
            metrics_interval: Duration::from_millis(config.metrics_interval_ms),
            batch_ready: batch_ready.clone(),
        };
        let telemetry = Telemetry::new(tx, metrics, batch_ready.clone(), config.batch_spans);
        Ok((telemetry, exporter))
    }

    /// Runs [`Self::run`] on a thread of its own; the receiver hears when
    /// the last spans have been flushed.
    pub fn spawn(self, stop: watch::Receiver<bool>) -> std::io::Result<oneshot::Receiver<()>> {
        let (done, finished) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("telemetry".to_owned())
            .spawn(move || {
                // SCHED_IDLE: the thread runs only on a core that has
                // nothing else to do, so exports never delay a request.
                if let Err(error) = crate::scheduling::idle() {
                    tracing::debug!(%error, "cannot lower the telemetry thread's priority");
                }
                runtime.block_on(self.run(stop));
                let _ = done.send(());
            })?;
        Ok(finished)
    }

    /// Exports until `stop`, then flushes what is queued.
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let channel = self.collector.connect_lazy();
        let red = tokio::spawn(export_red_metrics(
            channel.clone(),
            self.resource.clone(),
            self.red.clone(),
            self.metrics_interval,
            self.metrics.clone(),
            stop.clone(),
        ));
        // Wake when a batch is waiting or the flush interval is up, never
        // per span: a wake-up per span is a context switch per request.
        let mut stopping = false;
        while !stopping {
            tokio::select! {
                () = self.batch_ready.notified() => {}
                () = tokio::time::sleep(self.flush_interval) => {}
                () = crate::server::stopped(&mut stop) => stopping = true,
            }
            self.export_queued(&channel).await;
        }
        let _ = red.await;
    }

    /// Exports everything queued, in batches.
    async fn export_queued(&mut self, channel: &Channel) {
        let mut batch = Vec::with_capacity(self.batch_spans);
        while let Ok(span) = self.queue.try_recv() {
            batch.push(span.into_otlp());
            if batch.len() == self.batch_spans {
                self.export(channel, std::mem::take(&mut batch)).await;
            }
        }
        if !batch.is_empty() {
            self.export(channel, batch).await;
        }
    }

    async fn export(&mut self, channel: &Channel, spans: Vec<Span>) {
        let count = spans.len() as u64;
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(OtlpResource {
                    attributes: self.resource.clone(),
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        match unary::<_, ExportTraceServiceResponse>(channel, EXPORT_PATH, request).await {
            Ok(()) => {
                self.metrics.exported.inc_by(count);
            }
            Err(status) => {
                self.metrics.dropped("export_failed", count);
                let quiet = self
                    .last_warning
                    .is_some_and(|at| at.elapsed() < WARN_EVERY);
                if !quiet {
                    self.last_warning = Some(Instant::now());
                    tracing::warn!(dropped = count, error = %status.message(), "span export failed; dropping spans");
                }
            }
        }
    }
}

/// Exports the RED metrics every `interval`, and once more at `stop`.
async fn export_red_metrics(
    channel: Channel,
    resource: Vec<KeyValue>,
    red: Arc<RedMetrics>,
    interval: Duration,
    metrics: Arc<TelemetryMetrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut stopping = false;
    while !stopping {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = crate::server::stopped(&mut stop) => stopping = true,
        }
        let snapshot = red.snapshot(unix_nanos());
        if snapshot.is_empty() {
            continue;
        }
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(OtlpResource {
                    attributes: resource.clone(),
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(scope()),
                    metrics: snapshot,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let result =
            unary::<_, ExportMetricsServiceResponse>(&channel, METRICS_PATH, request).await;
        let label = if result.is_ok() { "ok" } else { "failed" };
        metrics
            .metric_exports
            .get_or_create(&vec![("result", label)])
            .inc();
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "meshtwin-proxy".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..Default::default()
    }
}

/// One OTLP/gRPC export call, bounded by [`EXPORT_TIMEOUT`].
async fn unary<Req, Resp>(
    channel: &Channel,
    path: &'static str,
    request: Req,
) -> Result<(), tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let export = grpc.unary::<_, Resp, _>(
        tonic::Request::new(request),
        PathAndQuery::from_static(path),
        ProstCodec::default(),
    );
    tokio::time::timeout(EXPORT_TIMEOUT, export)
        .await
        .map_err(|_| tonic::Status::deadline_exceeded("export timed out"))??;
    Ok(())
}
