//! A TLS handshake of our own before the SDK connects to an `https://`
//! server: the SDK retries a failed handshake until its connect timeout and
//! then says only "operation timed out", keeping the reason (an unknown
//! issuer, a wrong name, an expired certificate) to its debug log. This
//! names the reason at once.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::config::TlsConfig;

/// How long the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a TLS connection to the server cannot be made, when that is known
/// before the SDK tries: a certificate problem or unreadable TLS files.
/// `None` when the handshake succeeded or the server could not be reached
/// at all (the SDK's own error says that).
pub(super) fn handshake_problem(uri: &str, cfg: &TlsConfig) -> Option<String> {
    let authority = uri
        .strip_prefix("https://")?
        .split(['/', '?', '#'])
        .next()?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:443")
    };
    let config = match client_config(cfg) {
        Ok(config) => config,
        Err(problem) => return Some(problem),
    };
    let name = cfg.server_name.as_deref().unwrap_or(host);
    let name = match ServerName::try_from(name.trim_matches(['[', ']']).to_string()) {
        Ok(name) => name,
        Err(e) => return Some(format!("`{name}` is not a server name: {e}")),
    };
    let socket = address.to_socket_addrs().ok()?.next()?;
    let mut tcp = TcpStream::connect_timeout(&socket, HANDSHAKE_TIMEOUT).ok()?;
    tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT)).ok()?;
    tcp.set_write_timeout(Some(HANDSHAKE_TIMEOUT)).ok()?;
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    while connection.is_handshaking() {
        if let Err(e) = connection.complete_io(&mut tcp) {
            // A TLS verdict comes as an InvalidData error wrapping rustls' own.
            return e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .map(describe);
        }
    }
    let _ = tcp.flush();
    None
}

/// The roots (the CA file, or the system's) and the client certificate.
fn client_config(cfg: &TlsConfig) -> Result<rustls::ClientConfig, String> {
    let client = cfg
        .client_cert_file
        .as_deref()
        .zip(cfg.client_key_file.as_deref());
    crate::tls::client_config(cfg.ca_file.as_deref(), client, "tls.")
}

/// rustls' verdict, with what to do about the common ones.
fn describe(e: &rustls::Error) -> String {
    use rustls::CertificateError;
    let hint = match e {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "; set `tls.ca_file` to the CA that signed the server's certificate"
        }
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName)
        | rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
            "; set `tls.server_name` to a name the certificate carries"
        }
        rustls::Error::InvalidCertificate(CertificateError::Expired)
        | rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. }) => {
            "; the server's certificate has expired"
        }
        _ => "",
    };
    format!("{e}{hint}")
}
