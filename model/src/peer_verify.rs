//! Peer verification: the certificate chains to the mesh CA *and* names
//! the SPIFFE ID the caller expects. Used by the proxy's outbound side and
//! by the control plane's failover probes.

use std::sync::Arc;

use crate::spiffe::SpiffeId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// The SPIFFE ID in a certificate's URI SAN, if it has exactly one.
pub fn spiffe_id_of(certificate: &CertificateDer<'_>) -> Option<SpiffeId> {
    let (_, parsed) = X509Certificate::from_der(certificate).ok()?;
    let san = parsed.subject_alternative_name().ok()??;
    let mut uris = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });
    let first = uris.next()?;
    if uris.next().is_some() {
        return None;
    }
    first.parse().ok()
}

/// The server presented a valid certificate for someone else.
#[derive(Debug, thiserror::Error)]
#[error("peer is {found}, expected {expected}")]
pub struct WrongIdentity {
    pub expected: SpiffeId,
    pub found: String,
}

/// Verifies a server (an inbound proxy) as the destination's identity.
#[derive(Debug)]
pub struct ExpectedServer {
    roots: Arc<RootCertStore>,
    expected: SpiffeId,
    provider: Arc<CryptoProvider>,
}

impl ExpectedServer {
    pub fn new(
        roots: Arc<RootCertStore>,
        expected: SpiffeId,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        Self {
            roots,
            expected,
            provider,
        }
    }
}

impl ServerCertVerifier for ExpectedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        match spiffe_id_of(end_entity) {
            Some(found) if found == self.expected => Ok(ServerCertVerified::assertion()),
            found => Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(WrongIdentity {
                    expected: self.expected.clone(),
                    found: found
                        .map_or_else(|| "without a SPIFFE ID".to_owned(), |f| f.to_string()),
                })),
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
