//! OTLP/HTTP receiver (default port 4318): `POST /v1/traces` and
//! `POST /v1/metrics`, protobuf or JSON, optionally gzip-compressed.
//!
//! Responses follow the OTLP/HTTP spec: the export response in the
//! request's encoding on success, a `google.rpc.Status` on failure.

use std::future::Future;
use std::io::Read;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::ingest::{Ingest, IngestError};
use crate::metrics::{BadRequest, Transport};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The body encodings OTLP/HTTP defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the error body OTLP/HTTP prescribes.
#[derive(Clone, PartialEq, prost::Message, Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// A refused request: HTTP status, message, and the counter reason (none
/// when ingest already counted it).
struct Refusal {
    status: StatusCode,
    reason: Option<BadRequest>,
    message: String,
}

impl Refusal {
    fn bad(reason: BadRequest, message: String) -> Self {
        let status = match reason {
            BadRequest::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self {
            status,
            reason: Some(reason),
            message,
        }
    }
}

#[derive(Clone)]
struct HttpState {
    ingest: Ingest,
    max_request_bytes: usize,
}

/// The OTLP/HTTP routes, with the body limit applied.
pub fn router(ingest: Ingest, max_request_bytes: usize) -> Router {
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
        .layer(DefaultBodyLimit::max(max_request_bytes))
        .with_state(HttpState {
            ingest,
            max_request_bytes,
        })
}

/// Serves OTLP/HTTP on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    ingest: Ingest,
    max_request_bytes: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(ingest, max_request_bytes))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn traces(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = read::<ExportTraceServiceRequest>(&state, &headers, body).and_then(
        |(encoding, request, body)| {
            let protobuf = (encoding == Encoding::Protobuf).then_some(body.as_ref());
            let response = state
                .ingest
                .traces(request, protobuf, Transport::Http)
                .map_err(refusal_of)?;
            Ok(reply(encoding, StatusCode::OK, &response))
        },
    );
    finish(&state, &headers, outcome)
}

async fn metrics(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = read::<ExportMetricsServiceRequest>(&state, &headers, body).map(
        |(encoding, request, _)| {
            let response = state.ingest.metrics_export(&request, Transport::Http);
            reply(encoding, StatusCode::OK, &response)
        },
    );
    finish(&state, &headers, outcome)
}

fn refusal_of(error: IngestError) -> Refusal {
    match error {
        // Already counted by ingest.
        IngestError::Malformed(message) => Refusal {
            status: StatusCode::BAD_REQUEST,
            reason: None,
            message,
        },
        IngestError::Overloaded => Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: None,
            message: error.to_string(),
        },
    }
}

fn finish(state: &HttpState, headers: &HeaderMap, outcome: Result<Response, Refusal>) -> Response {
    let refusal = match outcome {
        Ok(response) => return response,
        Err(refusal) => refusal,
    };
    if let Some(reason) = refusal.reason {
        state.ingest.metrics().bad_request(Transport::Http, reason);
    }
    tracing::debug!(status = %refusal.status, message = %refusal.message, "otlp/http request refused");
    let encoding = encoding_of(headers).unwrap_or(Encoding::Protobuf);
    let code = match refusal.status {
        StatusCode::SERVICE_UNAVAILABLE => tonic::Code::Unavailable,
        _ => tonic::Code::InvalidArgument,
    };
    let status = RpcStatus {
        code: code as i32,
        message: refusal.message,
    };
    let mut response = reply(encoding, refusal.status, &status);
    if refusal.status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

fn encoding_of(headers: &HeaderMap) -> Option<Encoding> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media_type = value.split(';').next()?.trim().to_ascii_lowercase();
    match media_type.as_str() {
        PROTOBUF | "application/protobuf" => Some(Encoding::Protobuf),
        JSON => Some(Encoding::Json),
        _ => None,
    }
}

/// Checks type, size and encoding, then decodes the body; returns it too
/// (decompressed).
fn read<T>(
    state: &HttpState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Encoding, T, Bytes), Refusal>
where
    T: prost::Message + Default + serde::de::DeserializeOwned,
{
    let Some(encoding) = encoding_of(headers) else {
        let found = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        return Err(Refusal::bad(
            BadRequest::ContentType,
            format!("unsupported content type {found:?}: send {PROTOBUF} or {JSON}"),
        ));
    };
    let limit = state.max_request_bytes;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal::bad(
                BadRequest::TooLarge,
                format!("request body exceeds the limit of {limit} bytes"),
            )
        } else {
            Refusal::bad(BadRequest::Malformed, rejection.body_text())
        }
    })?;
    let body = decompress(headers, body, limit)?;
    let decoded = match encoding {
        Encoding::Protobuf => T::decode(body.as_ref())
            .map_err(|e| Refusal::bad(BadRequest::Malformed, format!("malformed protobuf: {e}"))),
        Encoding::Json => serde_json::from_slice(&body)
            .map_err(|e| Refusal::bad(BadRequest::Malformed, format!("malformed JSON: {e}"))),
    }?;
    Ok((encoding, decoded, body))
}

fn decompress(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, Refusal> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(body),
        Some("gzip") => {
            let mut out = Vec::new();
            // One byte past the limit tells "too large" from "exactly the limit".
            flate2::read::GzDecoder::new(body.as_ref())
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    Refusal::bad(BadRequest::Malformed, format!("invalid gzip body: {e}"))
                })?;
            if out.len() > limit {
                return Err(Refusal::bad(
                    BadRequest::TooLarge,
                    format!("decompressed body exceeds the limit of {limit} bytes"),
                ));
            }
            Ok(out.into())
        }
        Some(other) => Err(Refusal::bad(
            BadRequest::Encoding,
            format!("unsupported content encoding {other:?}: send gzip or no encoding"),
        )),
    }
}

fn reply<T: prost::Message + Serialize>(
    encoding: Encoding,
    status: StatusCode,
    message: &T,
) -> Response {
    match encoding {
        Encoding::Protobuf => (
            status,
            [(header::CONTENT_TYPE, PROTOBUF)],
            message.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => match serde_json::to_vec(message) {
            Ok(body) => (status, [(header::CONTENT_TYPE, JSON)], body).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
    }
}
