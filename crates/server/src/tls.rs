//! TLS: the serving certificate (given, or a CA and certificates made on first start), the
//! rustls configuration with optional client certificates, and who a client certificate is.
//!
//! Made on first start, in `<data>/tls/` (keys 0600):
//! - `ca.pem`, `ca.key`: a CA for this server only;
//! - `server.pem`, `server.key`: the serving certificate (localhost, 127.0.0.1, ::1, the host
//!   name and `tls.hosts`), signed by it;
//! - `client.pem`, `client.key`: a client certificate (CN `kaudit-apiserver`) for
//!   kube-apiserver's webhook kubeconfig;
//! - `token`: a bearer token, the other way to authenticate.
//!
//! Both credentials map to the cluster `default` unless `clusters` says otherwise.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The Common Name of the generated client certificate.
pub const CLIENT_CN: &str = "kaudit-apiserver";

/// Paths of the generated material.
pub struct Generated {
    pub dir: PathBuf,
}

impl Generated {
    pub fn new(data: &Path) -> Generated {
        Generated {
            dir: data.join("tls"),
        }
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn server(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    pub fn client(&self) -> PathBuf {
        self.dir.join("client.pem")
    }
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client.key")
    }
    pub fn token(&self) -> PathBuf {
        self.dir.join("token")
    }
}

/// Keys and the token: owner-only, replaced whole (a crash never leaves an empty one).
fn write_private(p: &Path, text: &str) -> Result<(), String> {
    kaudit_model::durable::replace_private(p, text.as_bytes())
        .map_err(|e| format!("{}: {e}", p.display()))
}

fn write_public(p: &Path, text: &str) -> Result<(), String> {
    kaudit_model::durable::replace(p, text.as_bytes()).map_err(|e| format!("{}: {e}", p.display()))
}

fn host_name() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Creates the CA, serving and client certificates and the token if they are not there yet.
pub fn ensure_generated(data: &Path, hosts: &[String]) -> Result<Generated, String> {
    let g = Generated::new(data);
    let err = |e: rcgen::Error| format!("generating certificates: {e}");
    kaudit_model::durable::create_dir_all(&g.dir)
        .map_err(|e| format!("{}: {e}", g.dir.display()))?;
    if !g.ca().exists() || !g.ca_key().exists() {
        let key = KeyPair::generate().map_err(err)?;
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.distinguished_name
            .push(DnType::CommonName, "kaudit CA (this server only)");
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let cert = p.self_signed(&key).map_err(err)?;
        write_private(&g.ca_key(), &key.serialize_pem())?;
        write_public(&g.ca(), &cert.pem())?;
        // A new CA invalidates certificates signed by an old one.
        for p in [g.server(), g.client()] {
            let _ = fs::remove_file(p);
        }
    }
    let ca_key_pem =
        fs::read_to_string(g.ca_key()).map_err(|e| format!("{}: {e}", g.ca_key().display()))?;
    let ca_pem = fs::read_to_string(g.ca()).map_err(|e| format!("{}: {e}", g.ca().display()))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(err)?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(err)?;
    if !g.server().exists() || !g.server_key().exists() {
        let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        names.extend(host_name());
        names.extend(hosts.iter().cloned());
        names.dedup();
        let key = KeyPair::generate().map_err(err)?;
        let mut p = CertificateParams::new(names).map_err(err)?;
        p.distinguished_name.push(DnType::CommonName, "kaudit");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let cert = p.signed_by(&key, &issuer).map_err(err)?;
        write_private(&g.server_key(), &key.serialize_pem())?;
        write_public(&g.server(), &cert.pem())?;
    }
    if !g.client().exists() || !g.client_key().exists() {
        let key = KeyPair::generate().map_err(err)?;
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        p.distinguished_name.push(DnType::CommonName, CLIENT_CN);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let cert = p.signed_by(&key, &issuer).map_err(err)?;
        write_private(&g.client_key(), &key.serialize_pem())?;
        write_public(&g.client(), &cert.pem())?;
    }
    if !g.token().exists() {
        let mut b = [0u8; 24];
        getrandom::fill(&mut b).map_err(|e| format!("random token: {e}"))?;
        use base64::Engine;
        let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        write_private(&g.token(), &format!("{t}\n"))?;
    }
    Ok(g)
}

fn certs(p: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let v: Vec<_> = CertificateDer::pem_file_iter(p)
        .map_err(|e| format!("{}: {e}", p.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", p.display()))?;
    if v.is_empty() {
        return Err(format!("{}: no PEM certificate in it", p.display()));
    }
    Ok(v)
}

/// The rustls configuration: the serving certificate, client certificates from `client_ca`
/// accepted but not required (a client may use a token instead), HTTP/2 and HTTP/1.1.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let b = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let b = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca)? {
                roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("{}: {e}", ca.display()))?;
            b.with_client_cert_verifier(v)
        }
        None => b.with_no_client_auth(),
    };
    let mut c = b
        .with_single_cert(chain, key)
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// The Common Name of a (verified) client certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    c.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}
