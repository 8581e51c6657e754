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
