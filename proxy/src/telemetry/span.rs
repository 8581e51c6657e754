//! A span being recorded by the data path, finished when its response
//! body ends (or is dropped), so that streamed bodies and gRPC trailers
//! are part of it.

use std::sync::Arc;

use http::HeaderValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};

use super::trace_context::TraceContext;
use super::{Telemetry, bool_attribute, int_attribute, string_attribute, unix_nanos};

/// Where a failure came from, as seen by this proxy (pingora's
/// `ErrorSource`): `upstream` is the side the request goes to,
/// `downstream` the side it came from, `internal` the proxy itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    Upstream,
    Downstream,
    Internal,
}

impl ErrorSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upstream => "upstream",
            Self::Downstream => "downstream",
            Self::Internal => "internal",
        }
    }
}

/// gRPC codes a server reports as its own error (OTel semantic conventions).
fn grpc_server_error(code: i64) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// A string attribute value as the data path records it: literals and
/// shared strings cost no allocation.
pub enum Text {
    Static(&'static str),
    Shared(Arc<str>),
    Owned(String),
}

impl Text {
    fn into_string(self) -> String {
        match self {
            Self::Static(text) => text.to_owned(),
            Self::Shared(text) => text.as_ref().to_owned(),
            Self::Owned(text) => text,
        }
    }
}

impl From<&'static str> for Text {
    fn from(text: &'static str) -> Self {
        Self::Static(text)
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Self::Owned(text)
    }
}

impl From<&Arc<str>> for Text {
    fn from(text: &Arc<str>) -> Self {
        Self::Shared(text.clone())
    }
}

enum Value {
    Text(Text),
    Int(i64),
    Bool(bool),
}

/// A finished span on its way to the exporter. Keys are static and most
/// values literals or shared strings, so recording one allocates little
/// on the serving thread (and leaves little for the telemetry thread to
/// free); the telemetry thread builds the OTLP span.
pub struct SpanRecord {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_span_id: Option<[u8; 8]>,
    trace_state: Option<HeaderValue>,
    flags: u32,
    name: String,
    kind: SpanKind,
    start_time_unix_nano: u64,
    end_time_unix_nano: u64,
    attributes: Vec<(&'static str, Value)>,
    /// The status message of a failed span.
    error: Option<String>,
}

impl SpanRecord {
    /// The OTLP span.
    pub fn into_otlp(self) -> Span {
        let attributes = self
            .attributes
            .into_iter()
            .map(|(key, value)| match value {
                Value::Text(text) => string_attribute(key, text.into_string()),
                Value::Int(value) => int_attribute(key, value),
                Value::Bool(value) => bool_attribute(key, value),
            })
            .collect::<Vec<KeyValue>>();
        Span {
            trace_id: self.trace_id.to_vec(),
            span_id: self.span_id.to_vec(),
            parent_span_id: self.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
            trace_state: self
                .trace_state
                .as_ref()
                .and_then(|s| s.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            flags: self.flags,
            name: self.name,
            kind: self.kind as i32,
            start_time_unix_nano: self.start_time_unix_nano,
            end_time_unix_nano: self.end_time_unix_nano,
            attributes,
            status: self.error.map(|message| Status {
                code: StatusCode::Error as i32,
                message,
            }),
            ..Default::default()
        }
    }
}

pub struct SpanInFlight {
    span: SpanRecord,
    telemetry: Arc<Telemetry>,
    server: bool,
    http_status: Option<u16>,
    grpc_status: Option<i64>,
    failure: Option<(ErrorSource, String)>,
}

impl SpanInFlight {
    /// Starts a span with id `span_id` in `context`, or `None` when
    /// telemetry is off.
    pub fn start(
        telemetry: &Arc<Telemetry>,
        server: bool,
        name: String,
        context: &TraceContext,
        span_id: [u8; 8],
    ) -> Option<Self> {
        if !telemetry.enabled() {
            return None;
        }
        let kind = if server {
            SpanKind::Server
        } else {
            SpanKind::Client
        };
        let span = SpanRecord {
            trace_id: context.trace_id,
            span_id,
            parent_span_id: context.parent_span_id,
            trace_state: context.tracestate.clone(),
            flags: u32::from(context.flags) | 0x100,
            name,
            kind,
            start_time_unix_nano: unix_nanos(),
            end_time_unix_nano: 0,
            attributes: Vec::with_capacity(16),
            error: None,
        };
        Some(Self {
            span,
            telemetry: telemetry.clone(),
            server,
            http_status: None,
            grpc_status: None,
            failure: None,
        })
    }

    pub fn string(&mut self, key: &'static str, value: impl Into<Text>) {
        self.span.attributes.push((key, Value::Text(value.into())));
    }

    pub fn int(&mut self, key: &'static str, value: i64) {
        self.span.attributes.push((key, Value::Int(value)));
    }

    pub fn flag(&mut self, key: &'static str, value: bool) {
        self.span.attributes.push((key, Value::Bool(value)));
    }

    pub fn http_status(&mut self, status: u16) {
        self.http_status = Some(status);
    }

    pub fn grpc_status(&mut self, code: i64) {
        self.grpc_status = Some(code);
    }

    /// Records a failure; the first one wins.
    pub fn fail(&mut self, source: ErrorSource, message: impl Into<String>) {
        if self.failure.is_none() {
            self.failure = Some((source, message.into()));
        }
    }

    pub fn finish(mut self) {
        self.span.end_time_unix_nano = unix_nanos();
        let mut error = None;
        if let Some(status) = self.http_status {
            self.int("http.response.status_code", i64::from(status));
            if status >= 500 || (!self.server && status >= 400) {
                error = Some(status.to_string());
            }
        }
        if let Some(code) = self.grpc_status {
            self.int("rpc.grpc.status_code", code);
            if code != 0 && (!self.server || grpc_server_error(code)) {
                error = Some(format!("grpc status {code}"));
            }
        }
        if let Some((source, message)) = self.failure.take() {
            self.string("mesh.error.source", source.as_str());
            self.string("error.type", source.as_str());
            error = Some(message);
        } else if let Some(kind) = &error {
            self.string("error.type", kind.clone());
        }
        self.span.error = error;
        let telemetry = self.telemetry.clone();
        telemetry.record(self.span);
    }
}

#[cfg(test)]
mod tests;
