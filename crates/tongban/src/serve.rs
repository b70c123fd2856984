//! `tongban serve`: opens storage, builds both applications and runs both listeners until
//! SIGTERM or Ctrl-C, then drains in-flight requests.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tongban_core::config::Config;

use crate::app::{self, AppState};
use crate::platform::Platform;
use tongban_server::tls::{self, CertSource};
use tongban_server::{self as server, Listener};

/// Runs the server until a termination signal; with `demo`, the demo services beside it
/// (`crate::demo`).
pub async fn run(cfg: Config, demo: bool) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    tracing::info!(
        profile = %cfg.profile,
        data_dir = %cfg.data_dir.display(),
        version = env!("CARGO_PKG_VERSION"),
        "Starting Tongban."
    );
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;

    let mut cert_not_after = None;
    let tls = if cfg.server.plain_http {
        tracing::warn!("Serving plain HTTP on loopback: test profile only.");
        None
    } else {
        let tls::ServerTls {
            config,
            source,
            not_after,
        } = tls::server_config(&cfg)?;
        cert_not_after = not_after;
        match &source {
            CertSource::Configured(p) => {
                tracing::info!(cert = %p.display(), "Using the configured certificate.")
            }
            CertSource::GeneratedSelfSigned(p) => tracing::warn!(
                cert = %p.display(),
                "No certificate configured: generated a self-signed one (test profile only)."
            ),
            CertSource::ReusedSelfSigned(p) => tracing::warn!(
                cert = %p.display(),
                "No certificate configured: using the self-signed one generated earlier (test profile only)."
            ),
        }
        Some(TlsAcceptor::from(config))
    };

    // Both listeners are bound first: a port chosen by the system (`:0`) is then known to
    // what needs the public address (the test profile's login simulator sends users back to
    // it).
    let public_tcp = server::bind_shared("public", cfg.server.public_addr).await?;
    let admin_tcp = server::bind("admin", cfg.server.admin_addr).await?;
    let mut app_cfg = (*cfg).clone();
    app_cfg.server.public_addr = public_tcp.local_addr().context("listener address")?;
    app_cfg.server.admin_addr = admin_tcp.local_addr().context("listener address")?;
    if app_cfg.admin.token_sm3.is_empty() {
        // Only the test profile gets here: configuration validation refuses production
        // without a token.
        let (digest, path, made) = generated_admin_token(&cfg.data_dir)?;
        app_cfg.admin.token_sm3 = digest;
        if made {
            tracing::warn!(file = %path.display(), "No admin token configured: generated one into this file (test profile only).");
        } else {
            tracing::info!(file = %path.display(), "No admin token configured: using the one generated earlier (test profile only).");
        }
    }
    let state = AppState::open(app_cfg).await?;
    let store = state.store.clone();
    tracing::info!(backend = store.backend().as_str(), kcv = %state.keys.meta_info().kcv, "Storage and keyring ready.");
    // Rotations made by `tongban keys` or another instance reach this one within 30 s (and at
    // once on a request that meets an unknown key version).
    let reloader = {
        let keys = state.keys.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(error) = keys.reload().await {
                    tracing::warn!(error = %format!("{error:#}"), "Keyring reload failed.");
                }
            }
        })
    };
    let platform = Platform::start(&state).await?;
    tracing::info!(
        routes = platform.gateway.routes().len(),
        "Gateway, governance and identity ready."
    );
    let public_app = app::public(
        state.clone(),
        tongban_core::routes::Routes::new(),
        Some(platform.public_parts()),
    );
    let admin_app = app::admin(state.clone(), platform.admin_routes(&state, cert_not_after));

    let (tx, rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for (name, tcp, app) in [
        ("public", public_tcp, public_app),
        ("admin", admin_tcp, admin_app),
    ] {
        let public = name == "public";
        let local = tcp.local_addr().context("listener address")?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(listener = name, addr = %local, %scheme, "Listening.");
        let l = Listener {
            name,
            tcp,
            tls: tls.clone(),
            app,
            handshake_timeout: Duration::from_secs(cfg.server.handshake_timeout_secs),
            grace: Duration::from_secs(cfg.server.shutdown_grace_secs),
            limits: server::Limits::from_config(&cfg.server),
        };
        if public {
            // The public listener carries the traffic: one event loop per CPU.
            let workers = match cfg.server.workers {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                n => n,
            };
            tasks.push(tokio::spawn(server::run_per_core(l, workers, rx.clone())));
        } else {
            tasks.push(tokio::spawn(server::run(l, rx.clone())));
        }
    }

    let demo = match demo {
        true => {
            let d = crate::demo::start(&state.config, state.config.server.admin_addr).await?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            // Printed, not logged: what a newcomer reads first.
            println!("{}", d.welcome(state.config.server.public_addr, scheme));
            Some(d)
        }
        false => None,
    };

    wait_for_signal().await?;
    tracing::info!("Shutdown requested; finishing in-flight requests.");
    if let Some(d) = demo {
        d.stop().await;
    }
    let _ = tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    reloader.abort();
    store.close().await;
    tracing::info!("Stopped.");
    Ok(())
}

/// The file under the data directory that holds the admin token generated for a test-profile
/// run without one (readable by the owner only), as `tongban admin-token` would make it.
pub const GENERATED_ADMIN_TOKEN: &str = "admin-token";

/// The SM3 digest of the generated admin token, its file, and whether it was made now.
fn generated_admin_token(
    data_dir: &std::path::Path,
) -> anyhow::Result<(String, std::path::PathBuf, bool)> {
    let path = data_dir.join(GENERATED_ADMIN_TOKEN);
    let digest =
        |t: &str| tongban_crypto::encoding::hex_encode(&tongban_crypto::sm3::sm3(t.as_bytes()));
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok((digest(t.trim()), path, false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let raw = tongban_crypto::random::random_array::<32>().context("random generator")?;
    let token = tongban_crypto::encoding::b64url_encode(&raw);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut f, format!("{token}\n").as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok((digest(&token), path, true))
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        tokio::select! {
            _ = term.recv() => {}
            r = tokio::signal::ctrl_c() => r.context("cannot watch Ctrl-C")?,
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot watch Ctrl-C")?;
    Ok(())
}
