//! TLS for every listener: one rustls configuration (TLS 1.2 and 1.3 only, rustls' modern
//! cipher suites, the `ring` provider) built from PEM files ([`server_config`]), shared by
//! HTTPS ([`crate::net::http`]) and SMTP STARTTLS / implicit TLS ([`certificate`], which also
//! loads or generates the SMTP certificate and gives its fingerprint).
//!
//! Plain HTTP is served only where [`crate::web::check_listener_policy`] allows it: loopback,
//! or behind a TLS-terminating proxy named in `trusted_proxies`.

pub mod certificate;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use certificate::smtp_acceptor;

/// A rustls server configuration from a PEM certificate chain and a PEM private key.
pub fn server_config(cert: &Path, key: &Path, alpn: &[&[u8]]) -> anyhow::Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("invalid PEM certificate in {}", cert.display()))?;
    if certs.is_empty() {
        bail!("no certificate found in {}", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and private key do not match or are unsupported")?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    #[test]
    fn mismatched_or_missing_files_are_refused() -> Result<(), Box<dyn Error>> {
        let dir = tempfile::tempdir()?;
        let a = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        let b = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, a.cert.pem())?;
        std::fs::write(&key, b.signing_key.serialize_pem())?;
        assert!(
            server_config(&cert, &key, &[]).is_err(),
            "key of another certificate"
        );
        assert!(server_config(&dir.path().join("none.pem"), &key, &[]).is_err());
        std::fs::write(&cert, "not pem")?;
        assert!(server_config(&cert, &key, &[]).is_err());
        Ok(())
    }
}
