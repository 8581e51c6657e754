//! The mesh's certificate authority: an ECDSA P-256 root created on first
//! start in the data directory (`ca.pem`, `ca-key.pem`, mode 0600) and
//! loaded afterwards. It signs proxies' certificate requests for SPIFFE IDs
//! in its trust domain; what a certificate says is decided here, not by
//! the request.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshtwin_model::spiffe::SpiffeId;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateSigningRequestDer;
use time::OffsetDateTime;

pub(crate) const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
/// Certificates start a little in the past, for clocks that disagree.
const BACKDATE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub(crate) enum CertifyError {
    #[error("{0}")]
    BadIdentity(String),
    #[error("the certificate request is invalid: {0}")]
    BadRequest(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

pub(crate) struct CertificateAuthority {
    trust_domain: String,
    issuer: Issuer<'static, KeyPair>,
    ca_der: Vec<u8>,
    lifetime: Duration,
}

impl CertificateAuthority {
    /// Loads the CA from `dir`, or creates it there.
    pub(crate) fn load_or_create(
        dir: &Path,
        trust_domain: &str,
        lifetime: Duration,
    ) -> Result<Self, String> {
        let cert_path = dir.join(CA_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let at = |p: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", p.display());
        let (cert_pem, key) = if cert_path.exists() {
            let cert_pem = std::fs::read_to_string(&cert_path).map_err(|e| at(&cert_path, &e))?;
            let key_pem = std::fs::read_to_string(&key_path).map_err(|e| at(&key_path, &e))?;
            let key = KeyPair::from_pem(&key_pem).map_err(|e| at(&key_path, &e))?;
            (cert_pem, key)
        } else {
            let key = KeyPair::generate().map_err(|e| e.to_string())?;
            let mut params = CertificateParams::default();
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(
                DnType::CommonName,
                format!("meshtwin root CA for {trust_domain}"),
            );
            params.not_before = OffsetDateTime::now_utc() - BACKDATE;
            params.not_after = OffsetDateTime::now_utc() + Duration::from_secs(10 * 365 * 86_400);
            let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
            write_private(&key_path, key.serialize_pem().as_bytes())
                .map_err(|e| at(&key_path, &e))?;
            std::fs::write(&cert_path, cert.pem()).map_err(|e| at(&cert_path, &e))?;
            tracing::info!(path = %cert_path.display(), "created the mesh CA");
            (cert.pem(), key)
        };
        let ca_der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
            .map_err(|e| at(&cert_path, &e))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| at(&cert_path, &e))?;
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            issuer,
            ca_der,
            lifetime,
        })
    }

    /// Signs `csr_der` for `identity`, which must be in this trust domain
    /// and be the request's only subject alternative name. Returns the
    /// chain (leaf, then the CA) and the expiry.
    pub(crate) fn certify(
        &self,
        identity: &str,
        csr_der: &[u8],
    ) -> Result<(Vec<Vec<u8>>, SystemTime), CertifyError> {
        let id: SpiffeId =
            identity
                .parse()
                .map_err(|e: meshtwin_model::spiffe::SpiffeIdError| {
                    CertifyError::BadIdentity(e.to_string())
                })?;
        if id.trust_domain() != self.trust_domain {
            return Err(CertifyError::BadIdentity(format!(
                "{id} is not in trust domain {}",
                self.trust_domain
            )));
        }
        let mut request =
            CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
                .map_err(|e| CertifyError::BadRequest(e.to_string()))?;
        let asked: Vec<String> = request
            .params
            .subject_alt_names
            .iter()
            .map(|san| match san {
                SanType::URI(uri) => uri.as_str().to_owned(),
                other => format!("{other:?}"),
            })
            .collect();
        if asked != [id.to_string()] {
            return Err(CertifyError::BadRequest(format!(
                "it asks for {asked:?}, not exactly {id}"
            )));
        }
        let now = SystemTime::now();
        let not_after = now + self.lifetime;
        let mut params = CertificateParams::default();
        params.subject_alt_names =
            vec![SanType::URI(id.to_string().try_into().map_err(
                |e: rcgen::Error| CertifyError::BadIdentity(e.to_string()),
            )?)];
        params.distinguished_name = DistinguishedName::new();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = OffsetDateTime::from(now - BACKDATE);
        params.not_after = OffsetDateTime::from(not_after);
        params.use_authority_key_identifier_extension = true;
        request.params = params;
        let leaf = request
            .signed_by(&self.issuer)
            .map_err(|e| CertifyError::Signing(e.to_string()))?;
        Ok((vec![leaf.der().to_vec(), self.ca_der.clone()], not_after))
    }
}

impl CertificateAuthority {
    /// The CA certificate (DER), to trust the mesh's peers.
    pub(crate) fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }
}

pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr_for(uri: &str) -> (KeyPair, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
        let csr = params.serialize_request(&key).unwrap();
        (key, csr.der().to_vec())
    }

    #[test]
    fn signs_its_own_trust_domain_and_reloads_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(
            dir.path(),
            "bank.test",
            Duration::from_secs(3600),
        )
        .unwrap();
        let id = "spiffe://bank.test/ns/prod/sa/payments";
        let (_, csr) = csr_for(id);
        let (chain, not_after) = ca.certify(id, &csr).unwrap();
        assert_eq!(chain.len(), 2);
        assert!(not_after > SystemTime::now());
        let again = CertificateAuthority::load_or_create(
            dir.path(),
            "bank.test",
            Duration::from_secs(3600),
        )
        .unwrap();
        assert_eq!(again.ca_der, ca.ca_der, "the CA is loaded, not recreated");
    }

    #[test]
    fn refuses_other_domains_and_mismatched_requests() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(
            dir.path(),
            "bank.test",
            Duration::from_secs(3600),
        )
        .unwrap();
        let (_, csr) = csr_for("spiffe://evil.test/ns/prod/sa/payments");
        assert!(matches!(
            ca.certify("spiffe://evil.test/ns/prod/sa/payments", &csr),
            Err(CertifyError::BadIdentity(_))
        ));
        let (_, csr) = csr_for("spiffe://bank.test/ns/prod/sa/ledger");
        assert!(matches!(
            ca.certify("spiffe://bank.test/ns/prod/sa/payments", &csr),
            Err(CertifyError::BadRequest(_))
        ));
        assert!(matches!(
            ca.certify("spiffe://bank.test/ns/prod/sa/payments", b"junk"),
            Err(CertifyError::BadRequest(_))
        ));
    }
}
