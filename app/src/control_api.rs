//! The control API's gRPC server (`model/proto/control.proto`): the
//! `Identity` service, which signs proxies' certificate requests, and the
//! `Routes` service (`routes_api.rs`).

use std::convert::Infallible;
use std::sync::Arc;

use meshtwin_model::control::{CERTIFY_PATH, CertifyRequest, CertifyResponse};
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, StdError, http};
use tonic::server::{Grpc, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic_prost::ProstCodec;

use crate::certificate_authority::{CertificateAuthority, CertifyError, unix_ms};
use crate::grpc_service::{GrpcMethods, GrpcService, MAX_MESSAGE_BYTES, unimplemented};
use crate::routes_api::RoutesServer;

#[derive(Clone)]
pub(crate) struct IdentityServer {
    ca: Arc<CertificateAuthority>,
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

impl GrpcMethods for IdentityServer {
    const NAME: &'static str = "meshtwin.control.v1.Identity";

    fn dispatch<B>(self, request: http::Request<B>) -> BoxFuture<http::Response<Body>, Infallible>
    where
        B: http_body::Body + Send + 'static,
        B::Error: Into<StdError> + Send + 'static,
    {
        Box::pin(async move {
            if request.uri().path() != CERTIFY_PATH {
                return Ok(unimplemented());
            }
            let mut grpc =
                Grpc::new(ProstCodec::default()).max_decoding_message_size(MAX_MESSAGE_BYTES);
            Ok(grpc.unary(Certify(self.ca), request).await)
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
        .add_service(GrpcService(IdentityServer { ca }))
        .add_service(GrpcService(routes))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), stop)
        .await
}
