//! `tongban-province-sim`: the simulated provincial social-insurance system on its own, for
//! manual tests and for services run outside `tongban serve --demo`.

use std::net::SocketAddr;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A provincial social-insurance system, simulated (see docs/third-party.md).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18080")]
    addr: SocketAddr,
    /// Require `Authorization: Bearer <KEY>` on API requests.
    #[arg(long, env = "TONGBAN_PROVINCE_SIM_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let listener = match tokio::net::TcpListener::bind(args.addr).await {
        Ok(l) => l,
        Err(error) => {
            eprintln!(
                "tongban-province-sim: cannot listen on {}: {error}",
                args.addr
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    let options = tongban_province_sim::SimOptions {
        api_key: args.api_key,
        ..Default::default()
    };
    let sim = match tongban_province_sim::serve_with(listener, options) {
        Ok(sim) => sim,
        Err(error) => {
            eprintln!("tongban-province-sim: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing::info!(url = %sim.url(), "Province social-insurance simulator listening.");
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("tongban-province-sim: {error}");
    }
    sim.shutdown().await;
    std::process::ExitCode::SUCCESS
}
