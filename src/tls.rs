//! TLS client settings shared by the clients of other servers (Milvus, the
//! Schema Registry): the roots a server's certificate must chain to, and a
//! client certificate for mutual TLS.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A rustls client configuration: the roots are the CA file's certificates
/// (or the system's), with `client` (certificate, key) when given. Errors
/// name the file by its config key, `prefix` + `ca_file` and so on.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
    prefix: &str,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let bad =
                |e: &dyn std::fmt::Display| format!("{prefix}ca_file {}: {e}", path.display());
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{prefix}client_cert_file {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("{prefix}client_key_file {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{prefix}client_cert_file: {e}"))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}
