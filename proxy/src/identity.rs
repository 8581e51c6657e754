//! This proxy's workload identity: a key generated here (it never leaves
//! the process), a certificate signed by the control plane's CA, renewed
//! at two-thirds of its lifetime, and the rustls configs built on it.
//! Rotation swaps the certificate under live configs, so established and
//! new connections keep working throughout.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use meshtwin_model::control::CertifyRequest;
use meshtwin_model::spiffe::SpiffeId;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SignatureScheme};

pub use meshtwin_model::peer_verify::{WrongIdentity, spiffe_id_of};

use crate::control_client::ControlClient;

/// ALPN names between proxies; the inbound side picks its protocol by them.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";
pub const ALPN_OPAQUE: &[u8] = b"meshtwin.opaque/1";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read trust anchors {path}: {reason}")]
    TrustAnchors { path: String, reason: String },
    #[error("certificate request failed: {0}")]
    Request(String),
    #[error("the control plane returned an unusable certificate: {0}")]
    BadCertificate(String),
}

#[derive(Default)]
struct IdentityMetrics {
    rotations: Family<Vec<(&'static str, &'static str)>, Counter>,
    expiry_seconds: Gauge<f64, AtomicU64>,
}

/// The current certificate, shared by every TLS config.
#[derive(Debug, Default)]
struct CurrentCertificate(ArcSwapOption<CertifiedKey>);

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.load_full()
    }
}

impl ResolvesClientCert for CurrentCertificate {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.load_full()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A destination identity and the ALPN offered to it.
type ClientConfigKey = (SpiffeId, &'static [u8]);

pub struct Identity {
    id: SpiffeId,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    current: Arc<CurrentCertificate>,
    not_after_unix_ms: AtomicU64,
    client_configs: Mutex<HashMap<ClientConfigKey, Arc<ClientConfig>>>,
    metrics: IdentityMetrics,
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Identity {
    /// Loads the trust anchors; no certificate yet (see [`Self::renew`]).
    pub fn new(id: SpiffeId, trust_anchors: &Path) -> Result<Self, IdentityError> {
        let bad = |reason: String| IdentityError::TrustAnchors {
            path: trust_anchors.display().to_string(),
            reason,
        };
        let mut roots = RootCertStore::empty();
        let certificates: Vec<_> = CertificateDer::pem_file_iter(trust_anchors)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let (added, _) = roots.add_parsable_certificates(certificates);
        if added == 0 {
            return Err(bad("no CA certificate in the file".to_owned()));
        }
        Ok(Self {
            id,
            roots: Arc::new(roots),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            current: Arc::default(),
            not_after_unix_ms: AtomicU64::new(0),
            client_configs: Mutex::default(),
            metrics: IdentityMetrics::default(),
        })
    }

    pub fn id(&self) -> &SpiffeId {
        &self.id
    }

    pub fn has_certificate(&self) -> bool {
        self.current.0.load().is_some()
    }

    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "meshtwin_proxy_certificate_rotations",
            "Certificate renewals by result (succeeded, failed)",
            self.metrics.rotations.clone(),
        );
        registry.register(
            "meshtwin_proxy_certificate_expiry_seconds",
            "Seconds until this proxy's certificate expires",
            self.metrics.expiry_seconds.clone(),
        );
    }

    /// Updates gauges that depend on the clock; called before a scrape.
    pub(crate) fn refresh_gauges(&self) {
        let not_after = self.not_after_unix_ms.load(Ordering::Relaxed);
        let now = unix_ms(SystemTime::now());
        let left = (not_after as f64 - now as f64) / 1000.0;
        self.metrics.expiry_seconds.set(left.max(0.0));
    }

    /// Generates a new key, has the CA certify it and installs it.
    /// Returns how long until renewal is due (two-thirds of the lifetime).
    pub async fn renew(&self, control: &ControlClient) -> Result<Duration, IdentityError> {
        let result = self.try_renew(control).await;
        let outcome = if result.is_ok() {
            "succeeded"
        } else {
            "failed"
        };
        self.metrics
            .rotations
            .get_or_create(&vec![("result", outcome)])
            .inc();
        result
    }

    async fn try_renew(&self, control: &ControlClient) -> Result<Duration, IdentityError> {
        let key = KeyPair::generate().map_err(|e| IdentityError::Request(e.to_string()))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        let uri = self
            .id
            .to_string()
            .try_into()
            .map_err(|e: rcgen::Error| IdentityError::Request(e.to_string()))?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        let csr = params
            .serialize_request(&key)
            .map_err(|e| IdentityError::Request(e.to_string()))?;
        let requested_at = SystemTime::now();
        let response = control
            .certify(CertifyRequest {
                identity: self.id.to_string(),
                csr_der: csr.der().to_vec(),
            })
            .await
            .map_err(|s| IdentityError::Request(s.message().to_owned()))?;
        let chain: Vec<CertificateDer<'static>> = response
            .chain_der
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let certified = self.check(chain, key)?;
        self.current.0.store(Some(Arc::new(certified)));
        self.not_after_unix_ms
            .store(response.not_after_unix_ms, Ordering::Relaxed);
        let lifetime = response
            .not_after_unix_ms
            .saturating_sub(unix_ms(requested_at));
        Ok(Duration::from_millis(lifetime * 2 / 3))
    }

    /// Checks that the chain names us and verifies against the trust
    /// anchors, as peers will check it.
    fn check(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: KeyPair,
    ) -> Result<CertifiedKey, IdentityError> {
        let bad = |e: String| IdentityError::BadCertificate(e);
        let leaf = chain.first().ok_or_else(|| bad("empty chain".to_owned()))?;
        if spiffe_id_of(leaf).as_ref() != Some(&self.id) {
            return Err(bad(format!("the certificate does not name {}", self.id)));
        }
        let parsed = ParsedCertificate::try_from(leaf).map_err(|e| bad(e.to_string()))?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            &chain[1..],
            UnixTime::now(),
            self.provider.signature_verification_algorithms.all,
        )
        .map_err(|e| bad(format!("it does not chain to the trust anchors: {e}")))?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing_key = self
            .provider
            .key_provider
            .load_private_key(key_der)
            .map_err(|e| bad(e.to_string()))?;
        Ok(CertifiedKey::new(chain, signing_key))
    }

    /// The inbound side's TLS config: TLS 1.3, client certificate required
    /// and verified against the trust anchors.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, rustls::Error> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.current.clone());
        config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec(), ALPN_OPAQUE.to_vec()];
        Ok(Arc::new(config))
    }

    /// The outbound side's TLS config towards `expected`, offering `alpn`.
    pub fn client_config(
        &self,
        expected: &SpiffeId,
        alpn: &'static [u8],
    ) -> Result<Arc<ClientConfig>, rustls::Error> {
        let mut cache = self.client_configs.lock().expect("client config cache");
        if let Some(config) = cache.get(&(expected.clone(), alpn)) {
            return Ok(config.clone());
        }
        let verifier = meshtwin_model::peer_verify::ExpectedServer::new(
            self.roots.clone(),
            expected.clone(),
            self.provider.clone(),
        );
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(self.current.clone());
        config.alpn_protocols = vec![alpn.to_vec()];
        let config = Arc::new(config);
        cache.insert((expected.clone(), alpn), config.clone());
        Ok(config)
    }
}

/// Obtains the first certificate, retrying until it succeeds, then renews
/// at two-thirds of each lifetime until `stop`.
pub(crate) async fn keep_certified(
    identity: Arc<Identity>,
    control: ControlClient,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut retry = Duration::from_millis(250);
    loop {
        let wait = match identity.renew(&control).await {
            Ok(renew_in) => {
                tracing::info!(identity = %identity.id(), renew_in_s = renew_in.as_secs_f64(), "certificate issued");
                retry = Duration::from_millis(250);
                renew_in
            }
            Err(error) => {
                tracing::warn!(identity = %identity.id(), %error, retry_in_s = retry.as_secs_f64(), "certificate renewal failed");
                let wait = retry;
                retry = (retry * 2).min(Duration::from_secs(10));
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = crate::server::stopped(&mut stop) => return,
        }
    }
}
