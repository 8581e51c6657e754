//! A span being recorded by the data path, finished when its response
//! body ends (or is dropped), so that streamed bodies and gRPC trailers
//! are part of it.

use std::sync::Arc;

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

pub struct SpanInFlight {
    span: Span,
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
        let span = Span {
            trace_id: context.trace_id.to_vec(),
            span_id: span_id.to_vec(),
            parent_span_id: context
                .parent_span_id
                .map(|p| p.to_vec())
                .unwrap_or_default(),
            trace_state: context
                .tracestate
                .as_ref()
                .and_then(|s| s.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            flags: u32::from(context.flags) | 0x100,
            name,
            kind: kind as i32,
            start_time_unix_nano: unix_nanos(),
            attributes: Vec::with_capacity(16),
            ..Default::default()
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

    pub fn push(&mut self, attribute: KeyValue) {
        self.span.attributes.push(attribute);
    }

    pub fn string(&mut self, key: &str, value: impl Into<String>) {
        self.push(string_attribute(key, value));
    }

    pub fn int(&mut self, key: &str, value: i64) {
        self.push(int_attribute(key, value));
    }

    pub fn flag(&mut self, key: &str, value: bool) {
        self.push(bool_attribute(key, value));
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
            self.span.attributes.push(int_attribute(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 500 || (!self.server && status >= 400) {
                error = Some(status.to_string());
            }
        }
        if let Some(code) = self.grpc_status {
            self.span
                .attributes
                .push(int_attribute("rpc.grpc.status_code", code));
            if code != 0 && (!self.server || grpc_server_error(code)) {
                error = Some(format!("grpc status {code}"));
            }
        }
        if let Some((source, message)) = self.failure.take() {
            self.span
                .attributes
                .push(string_attribute("mesh.error.source", source.as_str()));
            self.span
                .attributes
                .push(string_attribute("error.type", source.as_str()));
            error = Some(message);
        } else if let Some(kind) = &error {
            self.span
                .attributes
                .push(string_attribute("error.type", kind.clone()));
        }
        if let Some(message) = error {
            self.span.status = Some(Status {
                code: StatusCode::Error as i32,
                message,
            });
        }
        let telemetry = self.telemetry.clone();
        telemetry.record(self.span);
    }
}
