//! Serves opentelemetry-proto's `TraceService` like its generated
//! `TraceServiceServer`, but with [`SliceCodec`](super::codec::SliceCodec).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::codegen::{BoxFuture, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};

use super::codec::SliceCodec;
use crate::metrics::CollectorMetrics;

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

pub(crate) struct TraceServer<T> {
    inner: Arc<T>,
    metrics: Arc<CollectorMetrics>,
    max_request_bytes: usize,
}

impl<T> Clone for TraceServer<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            metrics: self.metrics.clone(),
            max_request_bytes: self.max_request_bytes,
        }
    }
}

impl<T> TraceServer<T> {
    pub(crate) fn new(inner: T, metrics: Arc<CollectorMetrics>, max_request_bytes: usize) -> Self {
        Self {
            inner: Arc::new(inner),
            metrics,
            max_request_bytes,
        }
    }
}

impl<T> NamedService for TraceServer<T> {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

struct Export<T>(Arc<T>);

impl<T: TraceService> UnaryService<ExportTraceServiceRequest> for Export<T> {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<ExportTraceServiceRequest>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { inner.export(request).await })
    }
}

impl<T, B> tower::Service<http::Request<B>> for TraceServer<T>
where
    T: TraceService,
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != EXPORT_PATH {
            return Box::pin(async {
                Ok(tonic::Status::unimplemented("no such method").into_http())
            });
        }
        let method = Export(self.inner.clone());
        let codec = SliceCodec::new(self.metrics.clone());
        let max_request_bytes = self.max_request_bytes;
        Box::pin(async move {
            let mut grpc = Grpc::new(codec)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max_request_bytes);
            Ok(grpc.unary(method, request).await)
        })
    }
}
