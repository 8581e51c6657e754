//! Prost types for `model/proto/control.proto`, written by hand so that no
//! build step needs `protoc`. Field numbers are the wire contract.

/// gRPC path of `Identity.Certify`.
pub const CERTIFY_PATH: &str = "/meshtwin.control.v1.Identity/Certify";

/// A proxy asks the control plane's CA to sign its key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CertifyRequest {
    /// The SPIFFE ID the proxy asks for.
    #[prost(string, tag = "1")]
    pub identity: String,
    /// PKCS#10 request, DER.
    #[prost(bytes = "vec", tag = "2")]
    pub csr_der: Vec<u8>,
}

/// The signed certificate chain.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CertifyResponse {
    /// Leaf first, then intermediates, DER.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub chain_der: Vec<Vec<u8>>,
    /// When the leaf expires, milliseconds since the Unix epoch.
    #[prost(uint64, tag = "2")]
    pub not_after_unix_ms: u64,
}

/// gRPC path of `Routes.Watch` (server streaming).
pub const WATCH_PATH: &str = "/meshtwin.control.v1.Routes/Watch";
/// gRPC path of `Routes.Ack`.
pub const ACK_PATH: &str = "/meshtwin.control.v1.Routes/Ack";

/// Who is watching: a proxy, by identity and instance.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchRequest {
    #[prost(string, tag = "1")]
    pub identity: String,
    #[prost(string, tag = "2")]
    pub instance: String,
    #[prost(string, tag = "3")]
    pub locality: String,
}

/// One version of the routes; only the latest matters.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RoutesUpdate {
    /// Increases with every change.
    #[prost(uint64, tag = "1")]
    pub version: u64,
    /// `meshtwin_model::routing::MeshRoutes` as JSON.
    #[prost(string, tag = "2")]
    pub routes_json: String,
}

/// A proxy says which version it applied, or why it could not.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AckRequest {
    #[prost(string, tag = "1")]
    pub identity: String,
    #[prost(string, tag = "2")]
    pub instance: String,
    #[prost(uint64, tag = "3")]
    pub version: u64,
    /// Empty when applied; otherwise why the proxy kept its last routes.
    #[prost(string, tag = "4")]
    pub error: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AckResponse {}
