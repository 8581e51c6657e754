//! OTLP/gRPC receiver (default port 4317): the `TraceService` and
//! `MetricsService` of opentelemetry-proto, served by tonic.

use std::future::Future;
use std::sync::Arc;

use http::HeaderValue;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};

use crate::ingest::{Ingest, IngestError};
use crate::metrics::{BadRequest, CollectorMetrics, Transport};

mod codec;
mod trace_server;

struct Receiver {
    ingest: Ingest,
}

impl From<IngestError> for Status {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Malformed(message) => Status::invalid_argument(message),
            IngestError::Overloaded => Status::unavailable(error.to_string()),
        }
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let response = self
            .ingest
            .metrics_export(request.get_ref(), Transport::Grpc);
        Ok(Response::new(response))
    }
}

/// Maps the errors tonic raises before a request reaches the receiver
/// (a broken frame, a message over the size limit, bad compression) to
/// `INVALID_ARGUMENT`, which OTLP clients must not retry, and counts them.
/// Tonic reports them as INTERNAL, OUT_OF_RANGE or RESOURCE_EXHAUSTED, which
/// clients would retry forever.
fn normalize_status(
    metrics: &CollectorMetrics,
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32);
    let reason = match code {
        Some(Code::Internal) => BadRequest::Malformed,
        Some(Code::OutOfRange | Code::ResourceExhausted) => BadRequest::TooLarge,
        Some(Code::Unimplemented) => {
            metrics.bad_request(Transport::Grpc, BadRequest::Encoding);
            return response;
        }
        _ => return response,
    };
    metrics.bad_request(Transport::Grpc, reason);
    let invalid = HeaderValue::from(Code::InvalidArgument as i32);
    response.headers_mut().insert("grpc-status", invalid);
    response
}

const STREAM_WINDOW_BYTES: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW_BYTES: u32 = 8 * 1024 * 1024;
const MAX_FRAME_BYTES: u32 = 256 * 1024;

/// Serves OTLP/gRPC on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    ingest: Ingest,
    max_request_bytes: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let metrics: Arc<CollectorMetrics> = ingest.metrics().clone();
    let traces = trace_server::TraceServer::new(ingest.clone(), max_request_bytes);
    let metrics_service = MetricsServiceServer::new(Receiver { ingest })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_request_bytes);
    let mut server = tonic::transport::Server::builder()
        // OTLP requests are ~100 KB (512 spans); tonic's default 64 KiB
        // windows and 16 KiB frames stall every request mid-stream.
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .layer(tower::util::MapResponseLayer::new(
            move |response: http::Response<tonic::body::Body>| normalize_status(&metrics, response),
        ));
    server
        .add_service(traces)
        .add_service(metrics_service)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}
