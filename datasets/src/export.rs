//! Sends trace and metrics export requests to any OTLP endpoint, over
//! gRPC or HTTP/protobuf.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tonic::transport::{Channel, Endpoint};

const TIMEOUT: Duration = Duration::from_secs(5);
/// Room for a whole request in flight (tonic's default is 64 KiB).
const WINDOW_BYTES: u32 = 2 * 1024 * 1024;

/// The OTLP transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("export failed: {0}")]
    Grpc(#[from] tonic::Status),
    #[error("export failed: {0}")]
    Http(String),
}

impl ExportError {
    /// Worth sending again later: the receiver is busy or not reachable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Endpoint { .. } => false,
            Self::Grpc(status) => matches!(
                status.code(),
                tonic::Code::Unavailable
                    | tonic::Code::ResourceExhausted
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Aborted
            ),
            Self::Http(message) => {
                !message.starts_with("HTTP 4") || message.starts_with("HTTP 429")
            }
        }
    }
}

/// An OTLP exporter for one endpoint.
pub enum Exporter {
    Grpc(Box<GrpcExporter>),
    Http(Box<HttpExporter>),
}

/// The OTLP/gRPC side: both services' clients on one channel.
pub struct GrpcExporter {
    traces: TraceServiceClient<Channel>,
    metrics: MetricsServiceClient<Channel>,
}

/// The OTLP/HTTP side: a pooled client and the `/v1/traces` and
/// `/v1/metrics` URLs.
pub struct HttpExporter {
    client: Client<HttpConnector, Full<Bytes>>,
    traces: http::Uri,
    metrics: http::Uri,
}

impl Exporter {
    /// An exporter for `endpoint`: `http://host:4317` for gRPC, or
    /// `http://host:4318` (the `/v1/traces` and `/v1/metrics` paths are
    /// added) for HTTP.
    /// Connects lazily: a collector that is not up yet is not an error.
    pub fn new(endpoint: &str, protocol: OtlpProtocol) -> Result<Self, ExportError> {
        let invalid = |reason: String| ExportError::Endpoint {
            endpoint: endpoint.to_owned(),
            reason,
        };
        match protocol {
            OtlpProtocol::Grpc => {
                let channel = Endpoint::from_shared(endpoint.to_owned())
                    .map_err(|e| invalid(e.to_string()))?
                    .connect_timeout(TIMEOUT)
                    .timeout(TIMEOUT)
                    .initial_stream_window_size(WINDOW_BYTES)
                    .initial_connection_window_size(WINDOW_BYTES)
                    .connect_lazy();
                Ok(Self::Grpc(Box::new(GrpcExporter {
                    traces: TraceServiceClient::new(channel.clone()),
                    metrics: MetricsServiceClient::new(channel),
                })))
            }
            OtlpProtocol::HttpProtobuf => {
                let base = endpoint.trim_end_matches('/');
                let base = base.strip_suffix("/v1/traces").unwrap_or(base);
                let url = |path: &str| -> Result<http::Uri, ExportError> {
                    let url: http::Uri = format!("{base}{path}")
                        .parse()
                        .map_err(|e: http::uri::InvalidUri| invalid(e.to_string()))?;
                    if url.scheme_str() != Some("http") {
                        return Err(invalid("only http:// endpoints are supported".to_owned()));
                    }
                    Ok(url)
                };
                let client = Client::builder(TokioExecutor::new()).build_http();
                Ok(Self::Http(Box::new(HttpExporter {
                    client,
                    traces: url("/v1/traces")?,
                    metrics: url("/v1/metrics")?,
                })))
            }
        }
    }

    pub async fn export(&mut self, request: ExportTraceServiceRequest) -> Result<(), ExportError> {
        match self {
            Self::Grpc(grpc) => {
                grpc.traces.export(request).await?;
                Ok(())
            }
            Self::Http(http) => {
                let url = http.traces.clone();
                http.post(url, request.encode_to_vec()).await
            }
        }
    }

    pub async fn export_metrics(
        &mut self,
        request: ExportMetricsServiceRequest,
    ) -> Result<(), ExportError> {
        match self {
            Self::Grpc(grpc) => {
                grpc.metrics.export(request).await?;
                Ok(())
            }
            Self::Http(http) => {
                let url = http.metrics.clone();
                http.post(url, request.encode_to_vec()).await
            }
        }
    }
}

impl HttpExporter {
    async fn post(&self, url: http::Uri, body: Vec<u8>) -> Result<(), ExportError> {
        let post = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ExportError::Http(e.to_string()))?;
        let response = tokio::time::timeout(TIMEOUT, self.client.request(post))
            .await
            .map_err(|_| ExportError::Http("timed out".to_owned()))?
            .map_err(|e| ExportError::Http(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.into_body().collect().await.map(|b| b.to_bytes());
        let detail = body
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Err(ExportError::Http(format!("HTTP {status}: {detail}")))
    }
}
