//! The one path both receivers share: convert, count, hand to the twin.

use std::sync::Arc;

use meshtwin_model::span::SpanBatch;
use meshtwin_store::SpanStore;
use meshtwin_store::table::TableAppender;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::sync::mpsc;

use crate::convert::{metric_points, spans_from_request};
use crate::metrics::{BadRequest, CollectorMetrics, Transport};

/// Why a request was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The sender must fix the request; retrying will not help.
    #[error("{0}")]
    Malformed(String),
    /// The twin or the span store is behind; the sender should retry
    /// with backoff.
    #[error("the twin or the span store is behind; retry later")]
    Overloaded,
}

/// Validates requests, logs them in the span store (when there is one)
/// and queues their spans for the twin.
#[derive(Clone)]
pub struct Ingest {
    spans: mpsc::Sender<SpanBatch>,
    metrics: Arc<CollectorMetrics>,
    store: Option<Arc<SpanStore>>,
    metric_table: Option<Arc<TableAppender>>,
}

impl Ingest {
    pub fn new(spans: mpsc::Sender<SpanBatch>, metrics: Arc<CollectorMetrics>) -> Self {
        Self {
            spans,
            metrics,
            store: None,
            metric_table: None,
        }
    }

    /// Every accepted request is logged in `store` before it is
    /// acknowledged, so no acknowledged span is lost to a crash.
    pub fn with_store(mut self, store: Arc<SpanStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Every metric data point received is kept in `table` (the SQL
    /// `metrics` table).
    pub fn with_metric_table(mut self, table: Arc<TableAppender>) -> Self {
        self.metric_table = Some(table);
        self
    }

    pub(crate) fn metrics(&self) -> &Arc<CollectorMetrics> {
        &self.metrics
    }

    /// Whether the span store (if any) would take a request now; asked
    /// before decoding one, so a store that is behind sheds load cheaply.
    /// A refusal is counted by the store.
    pub(crate) fn store_has_room(&self) -> bool {
        self.store
            .as_ref()
            .is_none_or(|store| store.check_room().is_ok())
    }

    /// Takes a trace export; the response carries OTLP partial success.
    /// `protobuf`: the bytes the request was decoded from, when it came as
    /// protobuf (the span store logs them as they are).
    pub fn traces(
        &self,
        request: ExportTraceServiceRequest,
        protobuf: Option<&[u8]>,
        transport: Transport,
    ) -> Result<ExportTraceServiceResponse, IngestError> {
        if !self.store_has_room() {
            let spans = request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len() as u64)
                .sum();
            self.metrics.spans_refused(transport, spans);
            return Err(IngestError::Overloaded);
        }
        let converted = spans_from_request(&request).map_err(|message| {
            self.metrics.bad_request(transport, BadRequest::Malformed);
            IngestError::Malformed(message)
        })?;
        let accepted = converted.accepted as u64;
        if accepted > 0 {
            // Room in the twin's queue first, so a request the store has
            // logged is never refused afterwards (and sent twice).
            let permit = self.spans.try_reserve().map_err(|_| {
                self.metrics.spans_refused(transport, accepted);
                IngestError::Overloaded
            })?;
            if let Some(store) = &self.store
                && let Err(error) = match protobuf {
                    Some(bytes) => store.append_encoded(&request, bytes),
                    None => store.append(&request),
                }
            {
                tracing::warn!(%error, "span store refused a request");
                self.metrics.spans_refused(transport, accepted);
                return Err(IngestError::Overloaded);
            }
            permit.send(converted.spans);
        }
        self.metrics.spans_received(transport, accepted);
        let partial_success = (converted.rejected > 0).then(|| {
            self.metrics.spans_rejected(transport, converted.rejected);
            ExportTracePartialSuccess {
                rejected_spans: converted.rejected as i64,
                error_message: converted.first_rejection.unwrap_or_default(),
            }
        });
        Ok(ExportTraceServiceResponse { partial_success })
    }

    /// Takes a metrics export. The data points are counted and kept in the
    /// metric table when there is one; the twin does not read metrics yet.
    pub fn metrics_export(
        &self,
        request: &ExportMetricsServiceRequest,
        transport: Transport,
    ) -> ExportMetricsServiceResponse {
        self.metrics
            .metric_points_received(transport, metric_points(request));
        if let Some(table) = &self.metric_table {
            match meshtwin_store::metric_rows::metric_rows(request) {
                Ok(rows) if rows.num_rows() > 0 => {
                    table.append(rows);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "metric points not kept"),
            }
        }
        ExportMetricsServiceResponse {
            partial_success: None::<ExportMetricsPartialSuccess>,
        }
    }
}
