//! `tongban serve --demo`: the platform with the demo business services behind its gateway, a
//! simulated provincial social-insurance system, their seeded data and their routes, so a
//! newcomer's first command shows a citizen's journey. The services run in this process but
//! as any other service would: on their own ports, registering through the admin API, their
//! routes stored through it. Refused in the production profile.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{Context, bail};
use tongban_core::config::{Config, Profile};
use tongban_sdk::platform::{PlatformClient, PlatformConfig};

use crate::serve::GENERATED_ADMIN_TOKEN;

/// What the demo runs; stopped (and deregistered) by [`Demo::stop`].
#[derive(Debug)]
pub struct Demo {
    sim: tongban_province_sim::ProvinceSim,
    halls: tongban_hall_booking::HallBooking,
    insurance: tongban_social_insurance::RunningService,
}

/// Refuses the demo where it must not run, before anything starts.
pub fn check(cfg: &Config) -> anyhow::Result<()> {
    if cfg.profile == Profile::Production {
        bail!(
            "--demo runs simulated provincial systems, test accounts and seeded data: refused in the production profile"
        );
    }
    if !cfg.admin.token_sm3.is_empty() {
        bail!(
            "--demo registers its services with the admin token generated into the data directory; this configuration sets admin.token_sm3, so run the demo without it"
        );
    }
    Ok(())
}

/// How the demo's services reach the admin API of this process.
fn platform_config(cfg: &Config, admin: SocketAddr) -> anyhow::Result<PlatformConfig> {
    let token_file = cfg.data_dir.join(GENERATED_ADMIN_TOKEN);
    let token = std::fs::read_to_string(&token_file)
        .with_context(|| format!("cannot read {}", token_file.display()))?;
    // The listener may be on every address: connect on loopback, check the certificate for
    // `localhost`, which the generated one covers.
    let ip = match admin.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let (scheme, ca_pem) = match cfg.server.plain_http {
        true => ("http", None),
        false => ("https", certificate_pem(cfg)?),
    };
    Ok(PlatformConfig {
        admin_url: format!("{scheme}://localhost:{}", admin.port()),
        admin_token: token.trim().to_owned().into(),
        ca_pem,
        resolve: Some(SocketAddr::new(ip, admin.port())),
    })
}

/// The certificate to trust: the generated self-signed one, or the configured chain (which
/// the system's authorities already vouch for).
fn certificate_pem(cfg: &Config) -> anyhow::Result<Option<Vec<u8>>> {
    if cfg.tls.cert.is_some() {
        return Ok(None);
    }
    let path = cfg.data_dir.join("tls/self-signed-cert.pem");
    std::fs::read(&path)
        .map(Some)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// A service's database: its own SQLite file next to the platform's, or the platform's
/// PostgreSQL database (the services' tables have names of their own).
fn database_url(cfg: &Config, service: &str) -> String {
    let url = cfg.storage_url();
    if url.starts_with("sqlite:") {
        sqlite_url(&cfg.data_dir, service)
    } else {
        url
    }
}

fn sqlite_url(dir: &Path, service: &str) -> String {
    format!("sqlite://{}", dir.join(format!("{service}.db")).display())
}

/// Starts the simulator and the services against the running listeners, and installs their
/// routes.
pub async fn start(cfg: &Config, admin: SocketAddr) -> anyhow::Result<Demo> {
    let platform = platform_config(cfg, admin)?;
    let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let sim = tongban_province_sim::serve(
        tokio::net::TcpListener::bind(loopback)
            .await
            .context("cannot bind the province simulator")?,
    )
    .context("cannot start the province simulator")?;
    let halls = tongban_hall_booking::serve(tongban_hall_booking::Config::new(
        loopback,
        database_url(cfg, "hall-booking"),
        tongban_hall_booking::Platform::Admin(platform.clone()),
    ))
    .await
    .context("cannot start the hall-booking service")?;
    let index_key = demo_index_key(&cfg.data_dir)?;
    let insurance = tongban_social_insurance::serve(tongban_social_insurance::Config::new(
        database_url(cfg, "social-insurance"),
        sim.url(),
        index_key,
        tongban_social_insurance::Platform::Admin(platform.clone()),
    ))
    .await
    .context("cannot start the social-insurance service")?;
    let client = PlatformClient::new(&platform).context("the admin API client")?;
    let routes = tongban_hall_booking::routes()
        .into_iter()
        .chain(tongban_social_insurance::routes());
    for spec in routes {
        client
            .put_route(&spec)
            .await
            .with_context(|| format!("cannot install the demo route {}", spec["id"]))?;
    }
    Ok(Demo {
        sim,
        halls,
        insurance,
    })
}

/// The social-insurance service's blind-index key, kept in the data directory (mode 0600)
/// so its query log stays searchable across restarts; made on the first demo run.
fn demo_index_key(dir: &Path) -> anyhow::Result<tongban_social_insurance::IndexKey> {
    let path = dir.join("social-insurance-index-key");
    let hex = match std::fs::read_to_string(&path) {
        Ok(hex) => hex,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let raw = tongban_crypto::random::random_array::<16>().context("random generator")?;
            let hex = tongban_crypto::encoding::hex_encode(&raw);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            std::io::Write::write_all(&mut f, hex.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            hex
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    tongban_social_insurance::IndexKey::from_hex(1, &hex)
        .with_context(|| format!("{} holds no usable key", path.display()))
}

impl Demo {
    /// What to tell the newcomer.
    pub fn welcome(&self, public: SocketAddr, scheme: &str) -> String {
        let host = match public.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let base = format!("{scheme}://{host}:{}", public.port());
        format!(
            "Demo ready.\n  \
             Service halls (anonymous):   curl -k {base}/api/v1/service-halls\n  \
             Contribution records:        {base}/api/v1/contribution-records (signed in at real_name, signed request)\n  \
             Sign in as a test citizen:   zhang-wei (registered), li-na (real-name), wang-fang (real-name; face check with the simulator's image)\n  \
             How to sign in with curl:    docs/identity.md; a whole client walk-through: docs/integration.md\n  \
             Province simulator:          {}\n",
            self.sim.url()
        )
    }

    /// Deregisters the services and stops them and the simulator.
    pub async fn stop(self) {
        self.insurance.shutdown().await;
        self.halls.shutdown().await;
        self.sim.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_production_profile_and_a_configured_admin_token_refuse_the_demo() {
        let mut cfg = Config::default();
        assert!(check(&cfg).is_ok());
        cfg.admin.token_sm3 = "ab".repeat(32);
        assert!(check(&cfg).is_err());
        cfg.admin.token_sm3.clear();
        cfg.profile = Profile::Production;
        let err = check(&cfg).expect_err("refused").to_string();
        assert!(err.contains("production"), "{err}");
    }
}
