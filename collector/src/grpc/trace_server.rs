//! Serves opentelemetry-proto's `TraceService` like its generated
//! `TraceServiceServer`, but with [`SliceCodec`](super::codec::SliceCodec),
//! handing each request to [`Ingest`] with the bytes it came as.

use std::convert::Infallible;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::codegen::{BoxFuture, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};

use super::codec::{Received, SliceCodec};
use crate::ingest::{Ingest, IngestError};
use crate::metrics::Transport;

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

#[derive(Clone)]
pub(crate) struct TraceServer {
    ingest: Ingest,
    max_request_bytes: usize,
}

impl TraceServer {
    pub(crate) fn new(ingest: Ingest, max_request_bytes: usize) -> Self {
        Self {
            ingest,
            max_request_bytes,
        }
    }
}

impl NamedService for TraceServer {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

struct Export(Ingest);

impl UnaryService<Received<ExportTraceServiceRequest>> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

    fn call(
        &mut self,
        request: tonic::Request<Received<ExportTraceServiceRequest>>,
    ) -> Self::Future {
        let Received { message, bytes } = request.into_inner();
        let response = self.0.traces(message, Some(&bytes), Transport::Grpc);
        Box::pin(async move { Ok(tonic::Response::new(response?)) })
    }
}

impl<B> tower::Service<http::Request<B>> for TraceServer
where
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
        if !self.ingest.store_has_room() {
            // Before the body is read or decoded: shedding load is cheap.
            let status = tonic::Status::unavailable(IngestError::Overloaded.to_string());
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let method = Export(self.ingest.clone());
        let codec = SliceCodec::new(self.ingest.metrics().clone());
        let max_request_bytes = self.max_request_bytes;
        Box::pin(async move {
            let mut grpc = Grpc::new(codec)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max_request_bytes);
            Ok(grpc.unary(method, request).await)
        })
    }
}
