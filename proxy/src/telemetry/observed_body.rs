//! A response body that finishes its span when it ends: after the last
//! frame, on an error, or when dropped early (the caller went away).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::span::{ErrorSource, SpanInFlight};

pub struct ObservedBody<B: Body> {
    inner: B,
    span: Option<SpanInFlight>,
    /// Who to blame when the body fails mid-stream.
    failure_source: ErrorSource,
}

impl<B: Body> ObservedBody<B> {
    pub fn new(inner: B, span: Option<SpanInFlight>, failure_source: ErrorSource) -> Self {
        Self {
            inner,
            span,
            failure_source,
        }
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<i64> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

impl<B> Body for ObservedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_frame(cx);
        match &poll {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(span)) = (frame.trailers_ref(), this.span.as_mut())
                    && let Some(code) = grpc_status(trailers)
                {
                    span.grpc_status(code);
                }
            }
            Poll::Ready(Some(Err(error))) => {
                if let Some(mut span) = this.span.take() {
                    span.fail(
                        this.failure_source,
                        format!("response body failed: {error}"),
                    );
                    span.finish();
                }
            }
            Poll::Ready(None) => {
                if let Some(span) = this.span.take() {
                    span.finish();
                }
            }
            Poll::Pending => {}
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        if let Some(mut span) = self.span.take() {
            // Dropped before the last frame was read: unless the body was
            // already complete, the receiver went away.
            if !self.inner.is_end_stream() {
                span.fail(
                    ErrorSource::Downstream,
                    "the caller went away before the response ended",
                );
            }
            span.finish();
        }
    }
}

/// gRPC "trailers-only" responses carry the status in the headers.
pub fn grpc_status_in_headers(headers: &http::HeaderMap) -> Option<i64> {
    grpc_status(headers)
}
