//! HTTPS: the server's certificate and key, read from PEM files into a rustls configuration
//! (aws-lc-rs, TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// Reads `cert` (a PEM certificate chain, leaf first) and `key` (its PEM private key: PKCS#8,
/// PKCS#1 or SEC1) into an acceptor. Every error names the file and what is wrong with it.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain = certificates(cert)?;
    let key = private_key(key)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| anyhow::anyhow!("TLS certificate {} and key do not make a usable pair: {e}", cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = read(path, "certificate", crate::files::MAX_CONFIG_BYTES)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate", path, e))?;
    if chain.is_empty() {
        anyhow::bail!("TLS certificate file {} holds no PEM CERTIFICATE block", path.display());
    }
    Ok(chain)
}

fn private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = read(path, "key", crate::files::MAX_KEY_BYTES)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| pem_error("key", path, e))
}

fn read(path: &Path, what: &str, max: u64) -> anyhow::Result<Vec<u8>> {
    crate::files::read_small(path, max)
        .map_err(|e| anyhow::anyhow!("cannot read TLS {what} file {}: {e}", path.display()))
}

fn pem_error(what: &str, path: &Path, e: rustls_pki_types::pem::Error) -> anyhow::Error {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::Io(io) => anyhow::anyhow!("cannot read TLS {what} file {}: {io}", path.display()),
        E::NoItemsFound => anyhow::anyhow!("TLS {what} file {} holds no PEM {what}", path.display()),
        other => anyhow::anyhow!("TLS {what} file {} is not valid PEM: {other}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a pem file\n").unwrap();
        let err = acceptor(&missing, &garbage).err().unwrap().to_string();
        assert!(err.contains("missing.pem") && err.contains("certificate"), "{err}");
        let err = acceptor(&garbage, &garbage).err().unwrap().to_string();
        assert!(err.contains("garbage.pem") && err.contains("certificate"), "{err}");

        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert_file = dir.path().join("cert.pem");
        std::fs::write(&cert_file, cert.cert.pem()).unwrap();
        let err = acceptor(&cert_file, &garbage).err().unwrap().to_string();
        assert!(err.contains("garbage.pem") && err.contains("key"), "{err}");
        // A key that is not the certificate's.
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other_key = dir.path().join("other.key");
        std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
        assert!(acceptor(&cert_file, &other_key).is_err());
        let key_file = dir.path().join("key.pem");
        std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
        assert!(acceptor(&cert_file, &key_file).is_ok());
        // A device is refused before it is read, however much it would give.
        let err = acceptor(Path::new("/dev/zero"), &key_file).err().unwrap().to_string();
        assert!(err.contains("/dev/zero") && err.contains("not a regular file"), "{err}");
        let err = acceptor(&cert_file, Path::new("/dev/zero")).err().unwrap().to_string();
        assert!(err.contains("key") && err.contains("not a regular file"), "{err}");
    }
}
