//! Optional TLS (rustls) for every gRPC endpoint. A server given `--tls-cert` and
//! `--tls-key` (PEM) serves only TLS; a process given `--tls-ca` (PEM) verifies the servers
//! it dials against that CA, and dials `https://` URLs (a worker's coordinator, the
//! coordinator's workers, the client's coordinator). One CA for the cluster keeps it
//! simple: every server's certificate is signed by it and names the host it is dialled by.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// The TLS flags of the servers (`--tls-cert`, `--tls-key`) and dialers (`--tls-ca`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Serve gRPC over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "WICK_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "WICK_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificate (PEM) that signed the servers this process dials; with it, they are
    /// dialled over TLS (https://).
    #[arg(long, env = "WICK_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
}

/// The PEM files of [`TlsArgs`], read once.
#[derive(Clone, Default, PartialEq)]
pub struct Tls {
    /// Certificate chain and key this process serves with.
    identity: Option<(Vec<u8>, Vec<u8>)>,
    /// CA the servers it dials are verified against.
    ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tls {{ serves: {}, dials: {} }}",
            self.identity.is_some(),
            self.ca.is_some()
        )
    }
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {flag} {}", path.display()))?;
    if !String::from_utf8_lossy(&bytes).contains("-----BEGIN ") {
        bail!(
            "{flag} {} is not PEM (no -----BEGIN line); give the PEM file",
            path.display()
        );
    }
    Ok(bytes)
}

impl TlsArgs {
    /// Reads the files named.
    pub fn load(&self) -> Result<Tls> {
        let identity = match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some((read(c, "--tls-cert")?, read(k, "--tls-key")?)),
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        let ca = self
            .tls_ca
            .as_deref()
            .map(|p| read(p, "--tls-ca"))
            .transpose()?;
        Ok(Tls { identity, ca })
    }
}

/// Picks rustls' ring provider for the process, once: the dependency tree enables two
/// providers (ring and aws-lc), and rustls refuses to guess between them.
fn crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only when a provider is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Tls {
    /// TLS from PEM bytes: `identity` to serve with, `ca` to verify servers with.
    pub fn from_pem(identity: Option<(Vec<u8>, Vec<u8>)>, ca: Option<Vec<u8>>) -> Tls {
        Tls { identity, ca }
    }

    /// The server configuration, when this process serves TLS.
    pub fn server(&self) -> Option<ServerTlsConfig> {
        crypto_provider();
        self.identity
            .as_ref()
            .map(|(cert, key)| ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
    }

    /// Whether servers this process dials are dialled over TLS.
    pub fn dials_tls(&self) -> bool {
        self.ca.is_some()
    }

    /// The scheme to dial a bare `host:port` with.
    pub fn scheme(&self) -> &'static str {
        if self.dials_tls() { "https" } else { "http" }
    }

    /// `endpoint` with TLS set up for an `https://` URL; an `https://` URL without
    /// `--tls-ca`, or an `http://` one with it, is refused with what to change.
    pub fn endpoint(&self, endpoint: Endpoint) -> Result<Endpoint> {
        crypto_provider();
        let https = endpoint.uri().scheme_str() == Some("https");
        match (&self.ca, https) {
            (Some(ca), true) => endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
                .context("cannot set up TLS for this URL"),
            (None, false) => Ok(endpoint),
            (None, true) => bail!(
                "{} is an https:// URL but no CA was given to verify it; pass --tls-ca FILE (or WICK_TLS_CA)",
                endpoint.uri()
            ),
            (Some(_), false) => bail!(
                "--tls-ca is set but {} is a plain http:// URL; use https://",
                endpoint.uri()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatched_schemes_and_non_pem_files_are_refused_with_the_fix() {
        let plain = Tls::default();
        let e = plain
            .endpoint(Endpoint::from_static("https://h:1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--tls-ca"), "{e}");
        let ca = Tls::from_pem(None, Some(b"-----BEGIN CERTIFICATE-----".to_vec()));
        let e = ca
            .endpoint(Endpoint::from_static("http://h:1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("https://"), "{e}");
        assert_eq!((plain.scheme(), ca.scheme()), ("http", "https"));
        let dir = std::env::temp_dir().join(format!("wick-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x.pem"), "not a pem").unwrap();
        let e = TlsArgs {
            tls_ca: Some(dir.join("x.pem")),
            ..Default::default()
        }
        .load()
        .unwrap_err()
        .to_string();
        assert!(e.contains("not PEM"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
