//! The `tongban` command.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tongban_core::config::Config;

// The gateway allocates per request across many threads; glibc's arenas showed as a fifth of
// its profile, mimalloc's thread-local free lists as a fraction of that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "tongban",
    version,
    about = "Tongban (通办): the digital-government-services quick-app platform in one binary.",
    after_help = "Examples:\n  tongban serve                      # embedded defaults: SQLite in ./data, HTTPS on :8443\n  tongban config check --config tongban.toml\n  tongban keys status\n  tongban version"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the public (HTTPS :8443) and admin (HTTPS 127.0.0.1:9443) listeners.
    #[command(
        after_help = "Examples:\n  tongban serve\n  tongban serve --demo                # with the demo services, simulators and seeded data\n  tongban serve --config /etc/tongban/tongban.toml\n  TONGBAN_STORAGE__URL=postgres://tongban@db/tongban tongban serve --data-dir /var/lib/tongban"
    )]
    Serve(ServeArgs),
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Key hierarchy: init, status, rotate, retire, rewrap, verify.
    Keys {
        #[command(subcommand)]
        command: tongban::keys_cli::KeysCommand,
        #[command(flatten)]
        args: ConfigArgs,
    },
    /// Make an admin API token: prints the token (give it to operators) and the SM3 digest to
    /// put in `admin.token_sm3`.
    #[command(name = "admin-token", after_help = "Example:\n  tongban admin-token")]
    AdminToken,
    /// Print the version.
    #[command(after_help = "Example:\n  tongban version")]
    Version,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Also run the demo business services, a simulated provincial system, their seeded data
    /// and their routes (test profile only).
    #[arg(long)]
    demo: bool,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective settings, secrets masked.
    #[command(
        after_help = "Examples:\n  tongban config check\n  tongban config check --config tongban.toml\n  TONGBAN_PROFILE=production tongban config check --config prod.toml"
    )]
    Check(ConfigArgs),
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// TOML configuration file; without one, safe embedded defaults apply.
    #[arg(long, short, env = "TONGBAN_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir` from the file and TONGBAN_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

fn load(args: &ConfigArgs) -> anyhow::Result<Config> {
    let env = std::env::vars().filter(|(k, _)| k != "TONGBAN_CONFIG");
    let mut cfg = Config::load(args.config.as_deref(), env)?;
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Config {
            command: ConfigCommand::Check(args),
        } => load(&args)
            .and_then(|cfg| tongban::platform::identity_config(&cfg).map(|_| cfg))
            .map(|cfg| {
                println!(
                    "# effective configuration (profile {}), secrets masked",
                    cfg.profile
                );
                print!("{}", cfg.to_masked_toml());
            }),
        Command::Keys { command, args } => keys(command, &args),
        Command::AdminToken => admin_token(),
        Command::Version => {
            println!("tongban {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: {}",
                tongban_core::mask::mask_text(&format!("{e:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let cfg = load(&args.config)?;
    if args.demo {
        tongban::demo::check(&cfg)?;
    }
    tongban_log::init(&cfg.log, false)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(tongban::serve::run(cfg, args.demo));
    if let Err(e) = &result {
        tracing::error!(error = %format!("{e:#}"), "Tongban stopped on an error.");
    }
    tongban_log::flush();
    result
}

fn keys(command: tongban::keys_cli::KeysCommand, args: &ConfigArgs) -> anyhow::Result<()> {
    let mut cfg = load(args)?;
    // A terminal reads text better; the masking writer applies all the same.
    cfg.log.format = tongban_core::config::LogFormat::Text;
    cfg.log.level = std::env::var("TONGBAN_LOG__LEVEL").unwrap_or_else(|_| "warn".to_owned());
    tongban_log::init(&cfg.log, true)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(tongban::keys_cli::run(command, cfg))
}

fn admin_token() -> anyhow::Result<()> {
    let raw = tongban_crypto::random::random_array::<32>().context("random generator")?;
    let token = tongban_crypto::encoding::b64url_encode(&raw);
    let digest = tongban_crypto::encoding::hex_encode(&tongban_crypto::sm3::sm3(token.as_bytes()));
    println!("token (give to operators; shown once): {token}");
    println!("[admin]\ntoken_sm3 = \"{digest}\"");
    Ok(())
}
