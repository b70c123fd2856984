//! `tongban-social-insurance`: the social-insurance service on its own, registered with the
//! platform's registry until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use tongban_core::config::LogConfig;
use tongban_sdk::platform::PlatformConfig;
use tongban_sdk::third_party::BearerKey;
use tongban_social_insurance::{Config, DEFAULT_SERVICE_NAME, IndexKey, Platform, serve};
use zeroize::Zeroizing;

/// 社保缴费记录查询: contribution records from the provincial system, behind Tongban's gateway.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "TONGBAN_SI_ADDR", default_value = "127.0.0.1:18090")]
    addr: SocketAddr,
    /// `host:port` to register for the gateway (default: the address listened on).
    #[arg(long, env = "TONGBAN_SI_ADVERTISE")]
    advertise: Option<String>,
    /// The service's database: `sqlite:…` or `postgres://…`.
    #[arg(
        long,
        env = "TONGBAN_SI_DATABASE_URL",
        default_value = "sqlite://social-insurance.db",
        hide_env_values = true
    )]
    database_url: String,
    /// The platform's admin listener, `https://host:port`.
    #[arg(long, env = "TONGBAN_ADMIN_URL")]
    admin_url: String,
    /// A file holding the admin token.
    #[arg(long, env = "TONGBAN_ADMIN_TOKEN_FILE")]
    admin_token_file: PathBuf,
    /// PEM certificates to trust for the admin listener besides the system's.
    #[arg(long, env = "TONGBAN_ADMIN_CA")]
    admin_ca: Option<PathBuf>,
    /// The provincial social-insurance system, `http(s)://host[:port][/prefix]`.
    #[arg(
        long,
        env = "TONGBAN_SI_PROVINCE_URL",
        default_value = "http://127.0.0.1:18080"
    )]
    province_url: String,
    /// A file holding the province's API key (sent as `Authorization: Bearer`).
    #[arg(long, env = "TONGBAN_SI_PROVINCE_KEY_FILE")]
    province_key_file: Option<PathBuf>,
    /// Opening a connection to the province, milliseconds.
    #[arg(long, default_value_t = 1_000)]
    province_connect_timeout_ms: u64,
    /// Silence allowed from the province once connected, milliseconds.
    #[arg(long, default_value_t = 3_000)]
    province_read_timeout_ms: u64,
    /// A whole province call, retries included, milliseconds.
    #[arg(long, default_value_t = 5_000)]
    province_total_timeout_ms: u64,
    /// A file holding the query log's blind-index key: 32 hexadecimal digits.
    #[arg(long, env = "TONGBAN_SI_INDEX_KEY_FILE")]
    index_key_file: PathBuf,
    /// The version of that key (raise it with a new key; older rows keep theirs).
    #[arg(long, env = "TONGBAN_SI_INDEX_KEY_VERSION", default_value_t = 1)]
    index_key_version: u32,
    /// The registry name, and the name caller contexts are sealed for.
    #[arg(long, env = "TONGBAN_SI_SERVICE_NAME", default_value = DEFAULT_SERVICE_NAME)]
    service_name: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(error) = tongban_log::init(&LogConfig::default(), false) {
        eprintln!("tongban-social-insurance: {error}");
        return ExitCode::FAILURE;
    }
    let code = match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "The service could not run.");
            eprintln!("tongban-social-insurance: {error:#}");
            ExitCode::FAILURE
        }
    };
    tongban_log::flush();
    code
}

async fn run(args: Args) -> anyhow::Result<()> {
    let admin_token = secret_file(&args.admin_token_file, "the admin token")?;
    let ca_pem = match &args.admin_ca {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read the admin CA {}", path.display()))?,
        ),
        None => None,
    };
    let index_hex = secret_file(&args.index_key_file, "the index key")?;
    let index_key = IndexKey::from_hex(args.index_key_version, &index_hex)
        .with_context(|| format!("in {}", args.index_key_file.display()))?;
    let platform = Platform::Admin(PlatformConfig {
        admin_url: args.admin_url,
        admin_token,
        ca_pem,
        resolve: None,
    });
    let mut config = Config::new(args.database_url, args.province_url, index_key, platform);
    config.province.connect_timeout_ms = args.province_connect_timeout_ms;
    config.province.read_timeout_ms = args.province_read_timeout_ms;
    config.province.total_timeout_ms = args.province_total_timeout_ms;
    if let Some(path) = &args.province_key_file {
        let key = secret_file(path, "the province key")?;
        config.province.bearer_key = Some(BearerKey::new(key.as_str()));
    }
    config.service_name = args.service_name;
    config.addr = args.addr;
    config.advertise = args.advertise;
    let service = serve(config).await.context("cannot start")?;
    stopped().await;
    tracing::info!("Stopping: deregistering, then finishing the requests in flight.");
    service.shutdown().await;
    Ok(())
}

/// A secret kept in a file (so it is not in the process list), trimmed, wiped when dropped.
fn secret_file(path: &Path, what: &str) -> anyhow::Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {what} from {}", path.display()))?,
    );
    let trimmed = text.trim();
    anyhow::ensure!(!trimmed.is_empty(), "{} holds no {what}", path.display());
    Ok(Zeroizing::new(trimmed.to_owned()))
}

/// Resolves on SIGTERM (a service manager stopping us) or Ctrl-C.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "SIGTERM cannot be caught; stopping on Ctrl-C only.");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
