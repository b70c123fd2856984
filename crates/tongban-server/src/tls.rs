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
    #[error("the certificate is not valid for {name}: {reason} (clause 6.3.2.2 c)")]
    Untrusted { name: String, reason: String },
    #[error("tls.server_names: {0:?} is not a host name")]
    BadName(String),
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

/// The listeners' TLS: the rustls configuration, where its certificate came from, and when
/// the certificate expires.
#[derive(Debug)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    pub source: CertSource,
    /// The end of the leaf certificate's validity, Unix seconds (`None`: not parsable).
    pub not_after: Option<u64>,
}

/// The rustls configuration for the listeners, and where its certificate came from.
pub fn server_config(cfg: &Config) -> Result<ServerTls, TlsError> {
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    if cfg.profile == Profile::Production {
        verify_chain(&certs, &cfg.tls, &provider)?;
    }
    let not_after = not_after(leaf);
    warn_if_expiring(not_after, &cert_path);
    let key =
        PrivateKeyDer::from_pem_file(&key_path).map_err(read_err("private key", &key_path))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Unusable)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Unusable)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        source,
        not_after,
    })
}

/// Where Debian and its derivatives keep the system's certificate authorities.
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Checks the chain as a client would: it leads to a trusted authority (`tls.ca_bundle`, else
/// the system's), is within its validity now, and covers every name of `tls.server_names`.
fn verify_chain(
    certs: &[CertificateDer<'static>],
    tls: &tongban_core::config::TlsConfig,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<(), TlsError> {
    let bundle = tls
        .ca_bundle
        .clone()
        .unwrap_or_else(|| PathBuf::from(SYSTEM_CAS));
    let mut roots = rustls::RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(&bundle)
        .map_err(read_err("certificate authorities", &bundle))?;
    for ca in cas {
        let ca = ca.map_err(read_err("certificate authorities", &bundle))?;
        // An authority the verifier cannot use is skipped, as clients skip it.
        let _ = roots.add(ca);
    }
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| TlsError::Untrusted {
        name: bundle.display().to_string(),
        reason: e.to_string(),
    })?;
    let (leaf, intermediates) = certs.split_first().ok_or_else(|| TlsError::Untrusted {
        name: String::new(),
        reason: "no certificate".to_owned(),
    })?;
    let now = rustls::pki_types::UnixTime::now();
    for name in &tls.server_names {
        let server_name = rustls::pki_types::ServerName::try_from(name.as_str())
            .map_err(|_| TlsError::BadName(name.clone()))?;
        rustls::client::danger::ServerCertVerifier::verify_server_cert(
            verifier.as_ref(),
            leaf,
            intermediates,
            &server_name,
            &[],
            now,
        )
        .map_err(|e| TlsError::Untrusted {
            name: name.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// Days a certificate has left before it is logged as expiring every time the listeners start.
const EXPIRY_WARNING_DAYS: u64 = 30;

fn warn_if_expiring(not_after: Option<u64>, path: &Path) {
    let Some(not_after) = not_after else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days_left = not_after.saturating_sub(now) / 86_400;
    if days_left < EXPIRY_WARNING_DAYS {
        tracing::warn!(cert = %path.display(), days_left, "The server certificate expires soon: renew it.");
    }
}

/// The certificate's remaining validity as a Prometheus gauge, for the admin `/metrics`: an
/// alert fires on it 30 days before expiry (`deploy/` rules), where the start-up log warns
/// only when the server restarts.
pub fn expiry_metric(not_after: u64, now_unix: u64) -> String {
    let left = i128::from(not_after) - i128::from(now_unix);
    format!(
        "# HELP tongban_tls_certificate_expiry_seconds Seconds until the server certificate expires (negative once it has).\n\
         # TYPE tongban_tls_certificate_expiry_seconds gauge\n\
         tongban_tls_certificate_expiry_seconds {left}\n\
         # HELP tongban_tls_certificate_not_after_seconds The end of the server certificate's validity, Unix seconds.\n\
         # TYPE tongban_tls_certificate_not_after_seconds gauge\n\
         tongban_tls_certificate_not_after_seconds {not_after}\n"
    )
}

/// The end of a DER certificate's validity, in Unix seconds. `None` if it cannot be parsed.
pub fn not_after(der: &[u8]) -> Option<u64> {
    let (cert, _) = der_tlv(der)?;
    let (tbs, _) = der_tlv(cert.content)?;
    let mut rest = tbs.content;
    let mut fields = Vec::with_capacity(5);
    while fields.len() < 5 && !rest.is_empty() {
        let (f, r) = der_tlv(rest)?;
        fields.push(f);
        rest = r;
    }
    let skip = usize::from(fields.first()?.tag == 0xA0);
    let validity = fields.get(skip + 3)?;
    let (_, after) = der_tlv(validity.content)?;
    let (t, _) = der_tlv(after)?;
    let text = std::str::from_utf8(t.content).ok()?;
    // UTCTime YYMMDDHHMMSSZ (years 1950-2049) or GeneralizedTime YYYYMMDDHHMMSSZ.
    let (year, rest) = match t.tag {
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let num = |r: std::ops::Range<usize>| -> Option<i64> { rest.get(r)?.parse().ok() };
    let (month, day) = (num(0..2)?, num(2..4)?);
    let (h, m, s) = (num(4..6)?, num(6..8)?, num(8..10)?);
    let days = tongban_core::date::days_from_civil(
        year,
        u32::try_from(month).ok()?,
        u32::try_from(day).ok()?,
    );
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()
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

    /// A CA and a leaf it issued for `names`, valid until `not_after` (year, month, day), as
    /// PEM files under a fresh directory: (dir, ca.pem, leaf chain, leaf key).
    fn issued(names: &[&str], not_after: (i32, u8, u8)) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tongban-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Provincial Government Test CA");
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let mut leaf_params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .expect("params");
        leaf_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf_params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf");
        let (ca_pem, cert, key) = (
            dir.join("ca.pem"),
            dir.join("cert.pem"),
            dir.join("key.pem"),
        );
        std::fs::write(&ca_pem, ca.pem()).expect("write");
        std::fs::write(&cert, leaf.pem()).expect("write");
        std::fs::write(&key, leaf_key.serialize_pem()).expect("write");
        (dir, ca_pem, cert, key)
    }

    fn production(cert: &Path, key: &Path, ca: Option<&Path>, names: &[&str]) -> Config {
        let mut cfg = Config {
            profile: Profile::Production,
            ..Config::default()
        };
        cfg.tls.cert = Some(cert.to_path_buf());
        cfg.tls.key = Some(key.to_path_buf());
        cfg.tls.ca_bundle = ca.map(Path::to_path_buf);
        cfg.tls.server_names = names.iter().map(|n| (*n).to_owned()).collect();
        cfg
    }

    #[test]
    fn production_accepts_a_chain_to_a_trusted_authority_covering_its_names() {
        let (_dir, ca, cert, key) = issued(
            &["zwfw.example.gov.cn", "m.zwfw.example.gov.cn"],
            (2099, 1, 1),
        );
        let cfg = production(
            &cert,
            &key,
            Some(&ca),
            &["zwfw.example.gov.cn", "m.zwfw.example.gov.cn"],
        );
        assert!(server_config(&cfg).is_ok());
    }

    #[test]
    fn production_refuses_another_name_an_expired_certificate_and_an_unknown_authority() {
        let (_dir, ca, cert, key) = issued(&["zwfw.example.gov.cn"], (2099, 1, 1));
        let err = server_config(&production(
            &cert,
            &key,
            Some(&ca),
            &["other.example.gov.cn"],
        ))
        .expect_err("another name");
        assert!(
            matches!(&err, TlsError::Untrusted { name, .. } if name == "other.example.gov.cn"),
            "{err}"
        );
        let (_dir, ca, cert, key) = issued(&["zwfw.example.gov.cn"], (2021, 1, 1));
        let err = server_config(&production(
            &cert,
            &key,
            Some(&ca),
            &["zwfw.example.gov.cn"],
        ))
        .expect_err("expired");
        assert!(err.to_string().to_lowercase().contains("expired"), "{err}");
        // Issued by an authority the bundle does not hold: the system store does not know
        // this test CA either.
        let (_dir, _, cert, key) = issued(&["zwfw.example.gov.cn"], (2099, 1, 1));
        let (_other, other_ca, _, _) = issued(&["x.example"], (2099, 1, 1));
        assert!(
            server_config(&production(
                &cert,
                &key,
                Some(&other_ca),
                &["zwfw.example.gov.cn"]
            ))
            .is_err()
        );
        assert!(server_config(&production(&cert, &key, None, &["zwfw.example.gov.cn"])).is_err());
    }

    #[test]
    fn the_end_of_validity_is_read_from_the_certificate() {
        let (_dir, _, cert, _) = issued(&["a.example"], (2031, 5, 17));
        let der = CertificateDer::from_pem_file(&cert).expect("pem");
        // 2031-05-17T00:00:00Z.
        assert_eq!(not_after(&der), Some(1_936_742_400));
        assert_eq!(not_after(&[0x30, 0x00]), None);
    }

    #[test]
    fn garbage_is_not_parsed() {
        assert_eq!(is_self_issued(&[]), None);
        assert_eq!(is_self_issued(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(is_self_issued(&[0x30, 0x03, 0x30, 0x01]), None);
    }
}
