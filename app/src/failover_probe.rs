//! Probes of a locality whose traffic a rule has moved away: without them
//! it would serve nothing, and its recovery could not be seen. Once a
//! second the control plane sends one `GET <probe_path>` to each of the
//! service's endpoints there, over mTLS as
//! `spiffe://<trust domain>/ns/meshtwin/sa/failover-probe` (a certificate
//! its own CA issues), verifying the endpoint as the service. The inbound
//! proxies report those requests like any others, so the twin's signals
//! for the locality show whether it has recovered.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use meshtwin_model::peer_verify::ExpectedServer;
use meshtwin_model::routing::ServiceConfig;
use meshtwin_model::spiffe::SpiffeId;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::certificate_authority::CertificateAuthority;

/// The longest a probe may take, connection and answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The probe's certificate and key, and when to get new ones.
struct Credentials {
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    renew_at: SystemTime,
}

pub(crate) struct Prober {
    ca: Arc<CertificateAuthority>,
    trust_domain: String,
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    credentials: Mutex<Option<Arc<Credentials>>>,
}

impl Prober {
    pub(crate) fn new(ca: Arc<CertificateAuthority>, trust_domain: &str) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca.ca_der().to_vec()))
            .map_err(|e| format!("the mesh CA certificate: {e}"))?;
        Ok(Self {
            ca,
            trust_domain: trust_domain.to_owned(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            roots: Arc::new(roots),
            credentials: Mutex::new(None),
        })
    }

    /// The probe's identity, issued again at two-thirds of its lifetime.
    fn credentials(&self) -> Result<Arc<Credentials>, String> {
        let mut held = self.credentials.lock().expect("probe credentials");
        if let Some(current) = held.as_ref()
            && SystemTime::now() < current.renew_at
        {
            return Ok(current.clone());
        }
        let id = SpiffeId::new(&self.trust_domain, "meshtwin", "failover-probe")
            .map_err(|e| e.to_string())?;
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        let uri = id
            .to_string()
            .try_into()
            .map_err(|e: rcgen::Error| e.to_string())?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        let csr = params.serialize_request(&key).map_err(|e| e.to_string())?;
        let issued = SystemTime::now();
        let (chain, not_after) = self
            .ca
            .certify(&id.to_string(), csr.der())
            .map_err(|e| e.to_string())?;
        let lifetime = not_after.duration_since(issued).unwrap_or_default();
        let credentials = Arc::new(Credentials {
            chain: chain.into_iter().map(CertificateDer::from).collect(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            renew_at: issued + lifetime * 2 / 3,
        });
        *held = Some(credentials.clone());
        Ok(credentials)
    }

    /// One `GET path` to the inbound proxy at `address` serving `service`:
    /// the status it answered, or why there was none.
    pub(crate) async fn probe(
        &self,
        service: &ServiceConfig,
        address: SocketAddr,
        path: &str,
    ) -> Result<u16, String> {
        let credentials = self.credentials()?;
        let expected = SpiffeId::new(&self.trust_domain, &service.namespace, &service.name)
            .map_err(|e| e.to_string())?;
        let verifier = ExpectedServer::new(self.roots.clone(), expected, self.provider.clone());
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_auth_cert(
                credentials.chain.clone(),
                PrivateKeyDer::Pkcs8(credentials.key.clone_key()),
            )
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let request = hyper::Request::get(path)
            .header("host", service.name.as_str())
            .header("user-agent", "meshtwin-failover-probe")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let tcp = tokio::net::TcpStream::connect(address)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let tls = connector
                .connect(ServerName::IpAddress(address.ip().into()), tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| format!("HTTP: {e}"))?;
            tokio::spawn(connection);
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("HTTP: {e}"))?;
            Ok(response.status().as_u16())
        };
        tokio::time::timeout(PROBE_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {PROBE_TIMEOUT:?}")))
    }
}
