//! The proxy's side of the control API (`model/proto/control.proto`).

use std::time::Duration;

use meshtwin_model::control::{
    ACK_PATH, AckRequest, AckResponse, CERTIFY_PATH, CertifyRequest, CertifyResponse, RoutesUpdate,
    WATCH_PATH, WatchRequest,
};
use tonic::Streaming;
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

/// A lazily connected client; calls fail fast while the control plane is
/// down and succeed again once it is back.
#[derive(Clone)]
pub struct ControlClient {
    channel: Channel,
}

impl ControlClient {
    pub fn new(address: &str) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(address.to_owned())
            .map_err(|e| format!("control plane address `{address}`: {e}"))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10));
        Ok(Self {
            channel: endpoint.connect_lazy(),
        })
    }

    async fn ready(&self) -> Result<Grpc<Channel>, tonic::Status> {
        let mut grpc = Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("control plane unreachable: {e}")))?;
        Ok(grpc)
    }

    /// Asks the CA to sign a certificate signing request.
    pub async fn certify(&self, request: CertifyRequest) -> Result<CertifyResponse, tonic::Status> {
        let response = self
            .ready()
            .await?
            .unary(
                tonic::Request::new(request),
                PathAndQuery::from_static(CERTIFY_PATH),
                ProstCodec::default(),
            )
            .await?;
        Ok(response.into_inner())
    }

    /// The routes stream: the current version, then each new one.
    pub async fn watch(
        &self,
        request: WatchRequest,
    ) -> Result<Streaming<RoutesUpdate>, tonic::Status> {
        let response = self
            .ready()
            .await?
            .server_streaming(
                tonic::Request::new(request),
                PathAndQuery::from_static(WATCH_PATH),
                ProstCodec::default(),
            )
            .await?;
        Ok(response.into_inner())
    }

    /// Says which routes version was applied (or why not).
    pub async fn ack(&self, request: AckRequest) -> Result<AckResponse, tonic::Status> {
        let response = self
            .ready()
            .await?
            .unary(
                tonic::Request::new(request),
                PathAndQuery::from_static(ACK_PATH),
                ProstCodec::default(),
            )
            .await?;
        Ok(response.into_inner())
    }
}
