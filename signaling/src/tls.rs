//! The certificate STARTTLS presents: configured PEM files, or a
//! self-signed one made with rcgen for the XMPP domain (and its conference
//! subdomain). rustls with the aws-lc-rs provider, named explicitly so that
//! no other provider in the process can make the choice ambiguous.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS identity could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or parsing the PEM files failed.
    #[error("certificate files: {0}")]
    Files(String),
    /// Generating the self-signed certificate failed.
    #[error("generating a certificate: {0}")]
    Generate(String),
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A certificate and key ready for STARTTLS.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate chain in PEM (clients that pin it can trust it).
    pub cert_pem: String,
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsIdentity")
    }
}

impl TlsIdentity {
    /// A fresh self-signed certificate for `domain` and
    /// `conference.<domain>`.
    pub fn self_signed(domain: &str) -> Result<TlsIdentity, TlsError> {
        let names = vec![domain.to_string(), format!("conference.{domain}")];
        let cert = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let cert_pem = cert.cert.pem();
        let key_pem = cert.signing_key.serialize_pem();
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// The self-signed certificate kept in `dir` (`xmpp-cert.pem`,
    /// `xmpp-key.pem`): made at the first start, reused afterwards so that
    /// clients which pinned it keep trusting it.
    pub fn self_signed_in(dir: &Path, domain: &str) -> Result<TlsIdentity, TlsError> {
        let cert_path = dir.join("xmpp-cert.pem");
        let key_path = dir.join("xmpp-key.pem");
        if cert_path.exists() && key_path.exists() {
            return Self::from_files(&cert_path, &key_path);
        }
        let names = vec![domain.to_string(), format!("conference.{domain}")];
        let cert = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let cert_pem = cert.cert.pem();
        let key_pem = cert.signing_key.serialize_pem();
        std::fs::create_dir_all(dir)
            .map_err(|e| TlsError::Files(format!("{}: {e}", dir.display())))?;
        std::fs::write(&cert_path, &cert_pem)
            .map_err(|e| TlsError::Files(format!("{}: {e}", cert_path.display())))?;
        write_private(&key_path, key_pem.as_bytes())
            .map_err(|e| TlsError::Files(format!("{}: {e}", key_path.display())))?;
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// Configured certificate chain and private key files (PEM).
    pub fn from_files(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
        let cert_pem = std::fs::read_to_string(cert)
            .map_err(|e| TlsError::Files(format!("{}: {e}", cert.display())))?;
        let key_pem = std::fs::read_to_string(key)
            .map_err(|e| TlsError::Files(format!("{}: {e}", key.display())))?;
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// From PEM text.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<TlsIdentity, TlsError> {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| TlsError::Files(format!("certificate: {e}")))?;
        if certs.is_empty() {
            return Err(TlsError::Files("no certificate in the PEM".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| TlsError::Files(format!("key: {e}")))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(TlsIdentity {
            cert_pem: cert_pem.to_string(),
            config: Arc::new(config),
        })
    }

    /// The acceptor for a STARTTLS upgrade.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}

/// Write a secret file that only its owner can read (the STARTTLS key,
/// the SCRAM salt key).
pub(crate) fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(data)
}
