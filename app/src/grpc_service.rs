//! What every hand-written gRPC service of the control API shares: the
//! tower `Service` that tonic's router serves, leaving each service only
//! its name and how it dispatches a method path.

use std::convert::Infallible;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::{BoxFuture, StdError, http};
use tonic::server::NamedService;

/// Largest request message a control API method decodes.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A gRPC service: its full name and its methods.
pub(crate) trait GrpcMethods: Clone + Send + Sync + 'static {
    /// `package.Service`, e.g. `meshtwin.control.v1.Identity`.
    const NAME: &'static str;

    /// Answers one request; an unknown path gets [`unimplemented`].
    fn dispatch<B>(self, request: http::Request<B>) -> BoxFuture<http::Response<Body>, Infallible>
    where
        B: http_body::Body + Send + 'static,
        B::Error: Into<StdError> + Send + 'static;
}

/// The answer to a method the service does not have.
pub(crate) fn unimplemented() -> http::Response<Body> {
    tonic::Status::unimplemented("no such method").into_http()
}

/// Serves `M` through tonic's router.
#[derive(Clone)]
pub(crate) struct GrpcService<M>(pub(crate) M);

impl<M: GrpcMethods> NamedService for GrpcService<M> {
    const NAME: &'static str = M::NAME;
}

impl<M, B> tower::Service<http::Request<B>> for GrpcService<M>
where
    M: GrpcMethods,
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
        self.0.clone().dispatch(request)
    }
}
