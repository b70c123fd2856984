//! Server TLS (clause 6.3.2.2): rustls with TLS 1.2 and 1.3 only. The test profile may generate
//! a self-signed certificate into the data directory; production refuses one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tongban_core::config::{Config, Profile};

/// Why the listeners' TLS cannot be set up; paths are named, key material never.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the production profile needs tls.cert and tls.key (a CA-issued certificate)")]
    ProductionNeedsCertificate,
    #[error("cannot read {what} {}: {reason}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("no certificate found in {}", .0.display())]
    NoCertificate(PathBuf),
    #[error(
        "{} is self-signed; the production profile requires a certificate issued by a CA (clause 6.3.2.2 c)",
        .0.display()
    )]
    SelfSigned(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    #[error("certificate and private key do not form a usable pair: {0}")]
    Unusable(rustls::Error),
}

fn read_err(
    what: &'static str,
    path: &Path,
) -> impl FnOnce(rustls::pki_types::pem::Error) -> TlsError {
    let path = path.to_path_buf();
    move |e| TlsError::Read {
        what,
        path,
        reason: e.to_string(),
    }
}

/// Where the certificate in force came from, for the start-up log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertSource {
    Configured(PathBuf),
    GeneratedSelfSigned(PathBuf),
    ReusedSelfSigned(PathBuf),
}

/// The rustls configuration for the listeners, and where its certificate came from.
pub fn server_config(cfg: &Config) -> Result<(Arc<ServerConfig>, CertSource), TlsError> {
    let (cert_path, key_path, source) = match (&cfg.tls.cert, &cfg.tls.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), CertSource::Configured(c.clone())),
        _ if cfg.profile == Profile::Production => {
            return Err(TlsError::ProductionNeedsCertificate);
        }
        _ => self_signed(&cfg.data_dir)?,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(read_err("certificate", &cert_path))?
        .collect::<Result<_, _>>()
        .map_err(read_err("certificate", &cert_path))?;
    let Some(leaf) = certs.first() else {
        return Err(TlsError::NoCertificate(cert_path));
    };
    if cfg.profile == Profile::Production && is_self_issued(leaf).unwrap_or(false) {
        return Err(TlsError::SelfSigned(cert_path));
    }
    let key =
        PrivateKeyDer::from_pem_file(&key_path).map_err(read_err("private key", &key_path))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Unusable)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Unusable)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), source))
}

/// Generates (once) a self-signed certificate for localhost into `DATA/tls/`.
fn self_signed(data_dir: &Path) -> Result<(PathBuf, PathBuf, CertSource), TlsError> {
    let dir = data_dir.join("tls");
    let cert = dir.join("self-signed-cert.pem");
    let key = dir.join("self-signed-key.pem");
    if cert.exists() && key.exists() {
        return Ok((cert.clone(), key, CertSource::ReusedSelfSigned(cert)));
    }
    std::fs::create_dir_all(&dir).map_err(|e| TlsError::Write {
        path: dir.clone(),
        source: e,
    })?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(&key, generated.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert, generated.cert.pem()).map_err(|e| TlsError::Write {
        path: cert.clone(),
        source: e,
    })?;
    Ok((cert.clone(), key, CertSource::GeneratedSelfSigned(cert)))
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let write = |e| TlsError::Write {
        path: path.to_path_buf(),
        source: e,
    };
    let mut f = opts.open(path).map_err(write)?;
    f.write_all(data).map_err(write)
}

/// Whether a DER certificate's issuer equals its subject. `None` if it cannot be parsed.
pub fn is_self_issued(der: &[u8]) -> Option<bool> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version?, serial, signature,
    // issuer, validity, subject, ... } ... }
    let (cert, _) = der_tlv(der)?;
    let (tbs, _) = der_tlv(cert.content)?;
    let mut rest = tbs.content;
    let mut fields = Vec::with_capacity(6);
    while fields.len() < 6 && !rest.is_empty() {
        let (f, r) = der_tlv(rest)?;
        fields.push(f);
        rest = r;
    }
    let skip = usize::from(fields.first()?.tag == 0xA0);
    let issuer = fields.get(skip + 2)?;
    let subject = fields.get(skip + 4)?;
    Some(issuer.raw == subject.raw)
}

struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    raw: &'a [u8],
}

fn der_tlv(b: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, hdr) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    let content = b.get(hdr..end)?;
    Some((
        Tlv {
            tag,
            content,
            raw: b.get(..end)?,
        },
        b.get(end..)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_is_self_issued() {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("gen");
        assert_eq!(is_self_issued(c.cert.der()), Some(true));
    }

    #[test]
    fn ca_issued_certificate_is_not() {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test Root CA");
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let mut leaf_params =
            rcgen::CertificateParams::new(vec!["gov.example".to_owned()]).expect("params");
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "gov.example");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf");
        assert_eq!(is_self_issued(ca.der()), Some(true));
        assert_eq!(is_self_issued(leaf.der()), Some(false));
    }

    #[test]
    fn garbage_is_not_parsed() {
        assert_eq!(is_self_issued(&[]), None);
        assert_eq!(is_self_issued(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(is_self_issued(&[0x30, 0x03, 0x30, 0x01]), None);
    }
}
