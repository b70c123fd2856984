//! Opens a session for `bench/gateway/run`: loads the same configuration `tongban serve` uses
//! (`--config FILE`), starts the platform on its data directory, signs in a real-name test
//! citizen through identity and prints `TOKEN DEVICE_ID SIGNING_KEY_ID SIGNING_KEY` on one
//! line (the last two `-` when the keyring has no signing key). Test profile only.

use std::path::PathBuf;

use anyhow::{Context, bail};
use tongban::app::AppState;
use tongban::platform::Platform;
use tongban_core::config::{Config, Profile};
use tongban_identity::ExternalIdentity;

const DEVICE: &str = "bench-device-1";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let path = match std::env::args().nth(1).as_deref() {
        Some("--config") => std::env::args().nth(2).map(PathBuf::from),
        _ => None,
    }
    .context("usage: bench_login --config FILE")?;
    let cfg = Config::load(Some(&path), std::iter::empty::<(String, String)>())?;
    if cfg.profile != Profile::Test {
        bail!("bench_login signs in a test citizen: test profile only");
    }
    let state = AppState::open(cfg).await?;
    let platform = Platform::start(&state).await?;
    let issued = platform
        .identity
        .login_external(
            &ExternalIdentity {
                provider: "bench".into(),
                subject: "bench-citizen-1".into(),
                real_name: true,
                person: None,
                acr: None,
                amr: Vec::new(),
            },
            Some(DEVICE),
        )
        .await
        .map_err(|e| anyhow::anyhow!("login: {e}"))?;
    println!(
        "{} {DEVICE} {} {}",
        issued.access_token,
        issued.signing_key_id.as_deref().unwrap_or("-"),
        issued.signing_key.as_deref().unwrap_or("-")
    );
    drop(platform);
    state.store.close().await;
    Ok(())
}
