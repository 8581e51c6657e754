//! The collector's own counters, exported on `/metrics`.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Which receiver took the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Grpc,
    Http,
}

/// Why a request was refused as bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BadRequest {
    /// Not decodable, or a field malformed (ids of the wrong length).
    Malformed,
    /// Larger than `max_request_bytes`, before or after decompression.
    TooLarge,
    /// A content type other than protobuf or JSON.
    ContentType,
    /// A content encoding other than gzip or none.
    Encoding,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::Http => "http",
        }
    }
}

impl BadRequest {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::ContentType => "content_type",
            Self::Encoding => "encoding",
        }
    }
}

impl EncodeLabelValue for Transport {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

impl EncodeLabelValue for BadRequest {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TransportLabels {
    transport: Transport,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BadRequestLabels {
    transport: Transport,
    reason: BadRequest,
}

/// Counters shared by both receivers.
#[derive(Debug, Default)]
pub struct CollectorMetrics {
    spans_received: Family<TransportLabels, Counter>,
    spans_rejected: Family<TransportLabels, Counter>,
    spans_refused: Family<TransportLabels, Counter>,
    metric_points_received: Family<TransportLabels, Counter>,
    bad_requests: Family<BadRequestLabels, Counter>,
}

impl CollectorMetrics {
    /// Registers every counter under `meshtwin_collector_*`.
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("meshtwin_collector");
        sub.register(
            "spans_received",
            "Spans accepted and handed to the twin",
            self.spans_received.clone(),
        );
        sub.register(
            "spans_rejected",
            "Well-formed spans rejected (all-zero ids, end before start), reported as OTLP partial success",
            self.spans_rejected.clone(),
        );
        sub.register(
            "spans_refused",
            "Spans refused with a retryable error because the twin's queue was full",
            self.spans_refused.clone(),
        );
        sub.register(
            "metric_points_received",
            "OTLP metric data points accepted",
            self.metric_points_received.clone(),
        );
        sub.register(
            "bad_requests",
            "Requests refused as malformed, too large, or of an unsupported type or encoding",
            self.bad_requests.clone(),
        );
    }

    pub(crate) fn spans_received(&self, transport: Transport, n: u64) {
        self.spans_received
            .get_or_create(&TransportLabels { transport })
            .inc_by(n);
    }

    pub(crate) fn spans_rejected(&self, transport: Transport, n: u64) {
        self.spans_rejected
            .get_or_create(&TransportLabels { transport })
            .inc_by(n);
    }

    pub(crate) fn spans_refused(&self, transport: Transport, n: u64) {
        self.spans_refused
            .get_or_create(&TransportLabels { transport })
            .inc_by(n);
    }

    pub(crate) fn metric_points_received(&self, transport: Transport, n: u64) {
        self.metric_points_received
            .get_or_create(&TransportLabels { transport })
            .inc_by(n);
    }

    pub(crate) fn bad_request(&self, transport: Transport, reason: BadRequest) {
        self.bad_requests
            .get_or_create(&BadRequestLabels { transport, reason })
            .inc();
    }

    /// Bad requests so far, of one transport and reason.
    pub fn bad_requests(&self, transport: Transport, reason: BadRequest) -> u64 {
        self.bad_requests
            .get_or_create(&BadRequestLabels { transport, reason })
            .get()
    }
}
