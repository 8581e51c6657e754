//! The control API's gRPC server (`model/proto/control.proto`): the
//! `Identity` service, which signs proxies' certificate requests, and the
//! `Routes` service (`routes_api.rs`).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use meshtwin_model::control::{CERTIFY_PATH, CertifyRequest, CertifyResponse};
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic_prost::ProstCodec;

use crate::certificate_authority::{CertificateAuthority, CertifyError, unix_ms};
use crate::routes_api::RoutesServer;

#[derive(Clone)]
pub(crate) struct IdentityServer {
    ca: Arc<CertificateAuthority>,
}

impl NamedService for IdentityServer {
    const NAME: &'static str = "meshtwin.control.v1.Identity";
}

struct Certify(Arc<CertificateAuthority>);

impl UnaryService<CertifyRequest> for Certify {
    type Response = CertifyResponse;
    type Future = BoxFuture<tonic::Response<CertifyResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<CertifyRequest>) -> Self::Future {
        let ca = self.0.clone();
        Box::pin(async move {
            let request = request.into_inner();
            match ca.certify(&request.identity, &request.csr_der) {
                Ok((chain_der, not_after)) => {
                    tracing::info!(identity = %request.identity, "certificate issued");
                    Ok(tonic::Response::new(CertifyResponse {
                        chain_der,
                        not_after_unix_ms: unix_ms(not_after),
                    }))
                }
                Err(error) => {
                    tracing::warn!(identity = %request.identity, %error, "certificate refused");
                    Err(match error {
                        CertifyError::BadIdentity(_) => {
                            tonic::Status::permission_denied(error.to_string())
                        }
                        CertifyError::BadRequest(_) => {
                            tonic::Status::invalid_argument(error.to_string())
                        }
                        CertifyError::Signing(_) => tonic::Status::internal(error.to_string()),
                    })
                }
            }
        })
    }
}

impl<B> tower::Service<http::Request<B>> for IdentityServer
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
        if request.uri().path() != CERTIFY_PATH {
            return Box::pin(async {
                Ok(tonic::Status::unimplemented("no such method").into_http())
            });
        }
        let method = Certify(self.ca.clone());
        Box::pin(async move {
            let mut grpc = Grpc::new(ProstCodec::default()).max_decoding_message_size(64 * 1024);
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// Serves the control API on `listener` until `stop` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    ca: Arc<CertificateAuthority>,
    routes: RoutesServer,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(IdentityServer { ca })
        .add_service(routes)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), stop)
        .await
}
