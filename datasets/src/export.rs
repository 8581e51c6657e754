//! Sends export requests to any OTLP endpoint, over gRPC or HTTP/protobuf.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
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

/// An OTLP trace exporter for one endpoint.
pub enum Exporter {
    Grpc(TraceServiceClient<Channel>),
    Http(Box<HttpExporter>),
}

/// The OTLP/HTTP side: a pooled client and the `/v1/traces` URL.
pub struct HttpExporter {
    client: Client<HttpConnector, Full<Bytes>>,
    url: http::Uri,
}

impl Exporter {
    /// An exporter for `endpoint`: `http://host:4317` for gRPC, or
    /// `http://host:4318` (the `/v1/traces` path is added) for HTTP.
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
                Ok(Self::Grpc(TraceServiceClient::new(channel)))
            }
            OtlpProtocol::HttpProtobuf => {
                let base = endpoint.trim_end_matches('/');
                let url = if base.ends_with("/v1/traces") {
                    base.to_owned()
                } else {
                    format!("{base}/v1/traces")
                };
                let url: http::Uri = url
                    .parse()
                    .map_err(|e: http::uri::InvalidUri| invalid(e.to_string()))?;
                if url.scheme_str() != Some("http") {
                    return Err(invalid("only http:// endpoints are supported".to_owned()));
                }
                let client = Client::builder(TokioExecutor::new()).build_http();
                Ok(Self::Http(Box::new(HttpExporter { client, url })))
            }
        }
    }

    pub async fn export(&mut self, request: ExportTraceServiceRequest) -> Result<(), ExportError> {
        match self {
            Self::Grpc(client) => {
                client.export(request).await?;
                Ok(())
            }
            Self::Http(http) => {
                let HttpExporter { client, url } = http.as_mut();
                let body = Full::new(Bytes::from(request.encode_to_vec()));
                let post = http::Request::post(url.clone())
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                    .body(body)
                    .map_err(|e| ExportError::Http(e.to_string()))?;
                let response = tokio::time::timeout(TIMEOUT, client.request(post))
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
    }
}
