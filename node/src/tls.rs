//! TLS for the RPC, server and client side: the node's acceptor from its configured PEM
//! certificate and key, the rule that plain HTTP stays on loopback unless the operator says
//! otherwise, and the root certificates the CLI and a follower trust (a CA file, or the
//! public roots).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::RpcConfig;

/// The acceptor for `rpc`'s certificate and key (paths relative to `data_dir`), or `None` for
/// plain HTTP — which is refused on an address other than loopback unless `rpc.insecure`.
pub fn acceptor(data_dir: &Path, rpc: &RpcConfig) -> Result<Option<TlsAcceptor>, String> {
    if rpc.tls_cert.as_os_str().is_empty() {
        return plain_allowed(rpc.listen, rpc.insecure).map(|()| None);
    }
    let (cert, key) = (data_dir.join(&rpc.tls_cert), data_dir.join(&rpc.tls_key));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("cannot read the certificate chain {} (rpc.tls_cert): {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} (rpc.tls_cert) holds no PEM certificate", cert.display()));
    }
    let secret = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| format!("cannot read the private key {} (rpc.tls_key): {e}", key.display()))?;
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|c| c.with_no_client_auth().with_single_cert(chain, secret))
            .map_err(|e| {
                format!(
                    "the certificate {} and key {} do not make a TLS server: {e}",
                    cert.display(),
                    key.display()
                )
            })?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// Plain HTTP only on loopback, unless the operator said `insecure`: tokens would cross the
/// network in clear.
fn plain_allowed(listen: SocketAddr, insecure: bool) -> Result<(), String> {
    if listen.ip().is_loopback() || insecure {
        return Ok(());
    }
    Err(format!(
        "rpc.listen {listen} is not a loopback address, so tokens would cross the network in clear: serve HTTPS (rpc.tls_cert and rpc.tls_key), or, on a network you trust or behind a TLS proxy, pass --insecure-rpc (rpc.insecure = true, HASHMESH_RPC_INSECURE=true)"
    ))
}

/// An HTTP client agent's TLS settings: the CA certificates in `ca_file` if given (a private
/// CA, a self-signed node), else the public roots.
pub fn client(ca_file: Option<&Path>) -> Result<ureq::tls::TlsConfig, String> {
    let Some(path) = ca_file.filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(ureq::tls::TlsConfig::default());
    };
    let pem = std::fs::read(path).map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(Ok(cert)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the CA file {} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("the CA file {} holds no certificate", path.display()));
    }
    Ok(ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&certs)).build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_http_is_for_loopback_unless_the_operator_says_otherwise() {
        let at = |a: &str| a.parse().expect("an address");
        assert!(super::plain_allowed(at("127.0.0.1:7800"), false).is_ok());
        assert!(super::plain_allowed(at("[::1]:7800"), false).is_ok());
        let refused = super::plain_allowed(at("0.0.0.0:7800"), false).expect_err("refused");
        assert!(refused.contains("--insecure-rpc") && refused.contains("rpc.tls_cert"), "{refused}");
        assert!(super::plain_allowed(at("10.0.0.5:7800"), true).is_ok());
    }
}
