//! `tongban-hall-booking`: the appointment service on its own, registered with a running
//! platform through its admin API, deregistered on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use tongban_core::config::LogConfig;
use tongban_hall_booking::{Config, Platform, SERVICE_NAME, serve};
use tongban_sdk::platform::PlatformConfig;
use zeroize::Zeroizing;

/// 办事大厅预约: appointments at the service halls of 北京市东城区, behind Tongban's gateway.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18090")]
    addr: SocketAddr,
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`.
    #[arg(long, default_value = "sqlite://hall-booking.db")]
    database_url: String,
    /// The platform's admin listener, `https://host:port`.
    #[arg(long)]
    admin_url: String,
    /// A file holding the admin token.
    #[arg(long)]
    admin_token_file: PathBuf,
    /// PEM certificates to trust for the admin listener besides the system's.
    #[arg(long)]
    admin_ca: Option<PathBuf>,
    /// The name to register under and accept caller contexts for.
    #[arg(long, default_value = SERVICE_NAME)]
    service_name: String,
    /// `host:port` the gateway should call, when not `--addr`.
    #[arg(long)]
    advertise_addr: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    if let Err(error) = tongban_log::init(
        &LogConfig {
            level,
            ..LogConfig::default()
        },
        false,
    ) {
        eprintln!("tongban-hall-booking: {error}");
        return ExitCode::FAILURE;
    }
    let code = match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "Hall booking stopped.");
            eprintln!("tongban-hall-booking: {error:#}");
            ExitCode::FAILURE
        }
    };
    tongban_log::flush();
    code
}

async fn run(args: Args) -> anyhow::Result<()> {
    let token = Zeroizing::new(
        std::fs::read_to_string(&args.admin_token_file)
            .with_context(|| format!("reading {}", args.admin_token_file.display()))?,
    );
    let ca_pem = match &args.admin_ca {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let platform = PlatformConfig {
        admin_url: args.admin_url,
        admin_token: Zeroizing::new(token.trim().to_owned()),
        ca_pem,
        resolve: None,
    };
    let mut config = Config::new(args.addr, args.database_url, Platform::Admin(platform));
    config.service_name = args.service_name;
    config.advertise = args.advertise_addr;
    let running = serve(config).await.context("starting")?;
    stopped().await;
    tracing::info!("Stopping: deregistering, then finishing requests in flight.");
    running.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C or, on Unix, SIGTERM (what systemd and Kubernetes send).
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "SIGTERM cannot be watched; only Ctrl-C stops the service.");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
