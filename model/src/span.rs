//! Span facts: the few fields of an OTLP span that the service graph needs.
//!
//! Ingest extracts them once, so the twin never walks attribute lists.

use std::sync::Arc;

use crate::ids::{SpanId, SpanKey, TraceId};

/// OTLP `Span.SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// Maps the OTLP enum value; unknown values are treated as unspecified.
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    /// The caller's half of a call: CLIENT or PRODUCER.
    pub fn is_caller(self) -> bool {
        matches!(self, Self::Client | Self::Producer)
    }

    /// The callee's half of a call: SERVER or CONSUMER.
    pub fn is_callee(self) -> bool {
        matches!(self, Self::Server | Self::Consumer)
    }
}

/// Who emitted a span, from its OTLP resource (`service.*`, `cloud.region`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceIdentity {
    /// `namespace/name`, or `name` when there is no namespace.
    pub node_id: Box<str>,
    pub name: Box<str>,
    pub namespace: Option<Box<str>>,
    pub version: Option<Box<str>>,
    pub instance_id: Option<Box<str>>,
    pub region: Option<Box<str>>,
}

impl ServiceIdentity {
    /// A service identity; `node_id` is derived from namespace and name.
    pub fn new(name: &str, namespace: Option<&str>) -> Self {
        let node_id = match namespace {
            Some(ns) => format!("{ns}/{name}").into_boxed_str(),
            None => name.into(),
        };
        Self {
            node_id,
            name: name.into(),
            namespace: namespace.map(Into::into),
            version: None,
            instance_id: None,
            region: None,
        }
    }
}

/// What a CLIENT or PRODUCER span says about a callee that may not report
/// spans itself; it names the virtual node the call goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerHint {
    /// `peer.service`.
    Service(Box<str>),
    /// `db.system.name` / `db.system`, named by `server.address` when present.
    Database { system: Box<str>, name: Box<str> },
    /// `messaging.system`, named by `messaging.destination.name` when present.
    Messaging { system: Box<str>, name: Box<str> },
    /// Only `server.address` (or the older `net.peer.name`).
    Address(Box<str>),
}

impl PeerHint {
    /// The name the virtual node is shown under.
    pub fn node_name(&self) -> &str {
        match self {
            Self::Service(name) | Self::Address(name) => name,
            Self::Database { name, .. } | Self::Messaging { name, .. } => name,
        }
    }
}

/// One span, reduced to what the twin uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub kind: SpanKind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    /// Status ERROR, HTTP status >= 500, or a gRPC status other than OK.
    pub failed: bool,
    /// The call was carried over mutual TLS (`mesh.tls` from meshtwin's
    /// proxy).
    pub mtls: bool,
    pub peer: Option<PeerHint>,
    /// Span links (producer spans a consumer span was started from).
    pub links: Vec<SpanKey>,
}

impl Span {
    /// This span's own key.
    pub fn key(&self) -> SpanKey {
        SpanKey {
            trace_id: self.trace_id,
            span_id: self.span_id,
        }
    }

    /// The key of the span this one was called from: its parent, or for a
    /// consumer without a parent, its first link.
    pub fn caller_key(&self) -> Option<SpanKey> {
        match self.parent_span_id {
            Some(span_id) => Some(SpanKey {
                trace_id: self.trace_id,
                span_id,
            }),
            None if self.kind == SpanKind::Consumer => self.links.first().copied(),
            None => None,
        }
    }

    /// Duration in nanoseconds (0 when the clock went backwards).
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos)
    }
}

/// The spans one service reported, as OTLP groups them under a resource.
/// One shared identity per group, not one per span: the twin and ingest
/// run on different threads, and a per-span reference count would bounce
/// between their caches.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpans {
    pub service: Arc<ServiceIdentity>,
    pub spans: Vec<Span>,
}

/// What ingest hands the twin: the spans of one export request.
pub type SpanBatch = Vec<ServiceSpans>;

/// How many spans a batch holds.
pub fn span_count(batch: &[ServiceSpans]) -> usize {
    batch.iter().map(|group| group.spans.len()).sum()
}
