//! `tongban keys …`: initialise, inspect, rotate, retire, rewrap and verify the key hierarchy.
//! Every operation is audited; none prints key material (except `init`'s `env:` components,
//! which the operator must move into the variable's secret store).

use anyhow::{Context, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use tongban_core::config::{Config, Profile};
use tongban_store::{Expect, Store, StoreOptions};

use tongban_keys::{self as keys, CALLER_SUBJECT, KeyService, PII_INDEX, pii};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the root key, split it into components at `keys.components`, and create the
    /// KEKs, DEKs and the first envelope key pair.
    #[command(
        after_help = "Examples:\n  tongban keys init --config tongban.toml                  # n-of-n (XOR) split\n  tongban keys init --config tongban.toml --scheme 2-of-3  # Shamir: any 2 of 3 components"
    )]
    Init {
        /// `xor` (every component needed) or `K-of-N` (Shamir).
        #[arg(long, default_value = "xor")]
        scheme: String,
    },
    /// Assemble the root key and show keys, versions and the audit chain (no material).
    #[command(after_help = "Example:\n  tongban keys status --config tongban.toml")]
    Status,
    /// Make a new version of a key current; older versions still decrypt.
    #[command(
        after_help = "Examples:\n  tongban keys rotate pii-data\n  tongban keys rotate pii-kek && tongban keys rewrap"
    )]
    Rotate {
        /// Key id, e.g. pii-data, pii-kek, envelope-kek; `envelope` makes a new SM2 key pair.
        key_id: String,
    },
    /// Retire versions below V: they no longer decrypt (rewrap first).
    #[command(after_help = "Example:\n  tongban keys retire pii-data --below 2")]
    Retire {
        key_id: String,
        /// The lowest version that still decrypts.
        #[arg(long)]
        below: u32,
    },
    /// Re-wrap DEKs under their KEK's current version and re-encrypt stored personal data under
    /// the current data key. Resumable (progress is saved) and idempotent.
    #[command(
        after_help = "Examples:\n  tongban keys rewrap\n  tongban keys rewrap --batch 200 --max 10000"
    )]
    Rewrap {
        /// Fields per batch.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Stop after this many fields (resume with another run).
        #[arg(long)]
        max: Option<u64>,
        /// Start again from the beginning instead of the saved position.
        #[arg(long)]
        restart: bool,
    },
    /// Verify the audit chain and that every stored key unwraps.
    #[command(after_help = "Example:\n  tongban keys verify")]
    Verify,
}

const ACTOR: &str = "tongban-keys";

async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    let mut opts = StoreOptions::new(cfg.storage_url());
    opts.max_connections = cfg.storage.max_connections.min(4);
    Store::open(&opts).await.with_context(|| {
        format!(
            "cannot open storage {}",
            tongban_core::mask::mask_url(&cfg.storage_url())
        )
    })
}

/// Runs one `keys` command.
pub async fn run(cmd: KeysCommand, cfg: Config) -> anyhow::Result<()> {
    let store = open_store(&cfg).await?;
    let locations = keys::component_locations(&cfg);
    let actor = std::env::var("TONGBAN_OPERATOR").unwrap_or_else(|_| ACTOR.to_owned());
    match cmd {
        KeysCommand::Init { scheme } => {
            if locations.is_empty() {
                bail!("set keys.components (file:, env:, db:) before `tongban keys init`");
            }
            let scheme = keys::parse_scheme(&scheme, locations.len())?;
            let dev = cfg.profile == Profile::Test && cfg.keys.components.is_empty();
            let (svc, env_out) = KeyService::init(&store, &locations, scheme, dev, &actor).await?;
            println!("Root key created; key check value {}.", svc.meta_info().kcv);
            for loc in &locations {
                if !loc.starts_with("env:") {
                    println!("  component written to {loc}");
                }
            }
            for (var, text) in &env_out {
                println!(
                    "  component for env:{var} (put it in your secret store now; it is shown once):\n{var}={}",
                    text.as_str()
                );
            }
            println!(
                "Keys created: pii-kek (pii-data, pii-index), envelope-kek (envelope-data), and an envelope key pair."
            );
        }
        KeysCommand::Status => {
            let svc = KeyService::open(&store, &locations, cfg.profile, &actor).await?;
            let meta = svc.meta_info();
            println!(
                "root: kcv {} scheme {} ({} of {}){}",
                meta.kcv,
                meta.scheme,
                meta.threshold,
                meta.total,
                if meta.dev {
                    ", development keyring"
                } else {
                    ""
                }
            );
            let ring = svc.ring();
            for p in ring.policies() {
                let versions = ring
                    .versions(&p.key_id)
                    .map(|v| {
                        v.iter()
                            .map(|w| w.version.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                println!(
                    "{:<14} {:?} parent {:<12} current v{} decrypts v{}+ versions [{}]",
                    p.key_id,
                    p.kind,
                    p.parent,
                    p.current_version,
                    p.min_decryption_version,
                    versions
                );
            }
            for k in svc.envelope_keys().published() {
                println!(
                    "envelope key {}{}",
                    k.kid,
                    if k.current { " (current)" } else { "" }
                );
            }
            let n = KeyService::verify_audit(&store).await?;
            println!("audit: {n} records, chain verified");
        }
        KeysCommand::Rotate { key_id } => {
            let svc = KeyService::open(&store, &locations, cfg.profile, &actor).await?;
            if key_id == "envelope" {
                let kid = svc.new_envelope_key(&actor).await?;
                println!("New envelope key pair {kid} is current; older ones still open requests.");
            } else {
                if key_id == PII_INDEX {
                    bail!(
                        "{PII_INDEX} cannot be rotated yet: records are found by blind indexes \
                         made with it, and re-indexing is not implemented"
                    );
                }
                if key_id == CALLER_SUBJECT {
                    bail!(
                        "{CALLER_SUBJECT} is never rotated: services know accounts by the \
                         pseudonyms made with its first version"
                    );
                }
                svc.change(&actor, |ring, c| ring.rotate(&key_id, c))
                    .await?;
                let v = svc
                    .ring()
                    .policies()
                    .find(|p| p.key_id == key_id)
                    .map_or(0, |p| p.current_version);
                println!(
                    "{key_id} rotated: version {v} is current. Run `tongban keys rewrap` to move data to it."
                );
            }
        }
        KeysCommand::Retire { key_id, below } => {
            let svc = KeyService::open(&store, &locations, cfg.profile, &actor).await?;
            svc.change(&actor, |ring, c| {
                ring.set_min_decryption_version(&key_id, below, c)
            })
            .await?;
            println!("{key_id}: versions below {below} no longer decrypt.");
        }
        KeysCommand::Rewrap {
            batch,
            max,
            restart,
        } => {
            let svc = KeyService::open(&store, &locations, cfg.profile, &actor).await?;
            rewrap(&svc, &store, batch, max, restart).await?;
        }
        KeysCommand::Verify => {
            let n = KeyService::verify_audit(&store).await?;
            let svc = KeyService::open(&store, &locations, cfg.profile, &actor).await?;
            let keys: usize = svc.ring().policies().count();
            svc.audit_only(&actor, "verify", "root", 0).await?;
            println!("audit chain: {n} records verified; {keys} keys unwrap under the root key.");
        }
    }
    store.close().await;
    Ok(())
}

const CURSOR_NS: &str = "keyring";
const CURSOR_KEY: &str = "rewrap-cursor";

async fn rewrap(
    svc: &KeyService,
    store: &Store,
    batch: usize,
    max: Option<u64>,
    restart: bool,
) -> anyhow::Result<()> {
    // 1. DEKs under the current version of their KEK.
    let keks: Vec<String> = svc
        .ring()
        .policies()
        .filter(|p| p.kind == tongban_crypto::keyring::KeyKind::Kek)
        .map(|p| p.key_id.clone())
        .collect();
    for kek in &keks {
        svc.change(ACTOR, |ring, c| ring.rewrap_children(kek, c))
            .await?;
    }
    // 2. Personal data under the current data key, from the saved position.
    let saved = store.kv().get(CURSOR_NS, CURSOR_KEY).await?;
    let mut cursor = if restart {
        None
    } else {
        saved
            .as_ref()
            .and_then(|e| e.value.clone())
            .filter(|v| !v.is_empty())
    };
    let total = u64::try_from(store.persons().count().await?).unwrap_or(0) * 3;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} fields {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut rewrapped, mut current, mut conflicts, mut failures) = (0u64, 0u64, 0u64, 0usize);
    let mut done = 0u64;
    loop {
        // Small steps, each saving its position, so an interruption loses at most one step.
        let step = max.map_or(batch as u64, |m| m.saturating_sub(done).min(batch as u64));
        if step == 0 {
            break;
        }
        let report = pii::rewrap(svc, store, cursor.clone(), batch, Some(step)).await?;
        rewrapped += report.rewrapped;
        current += report.already_current;
        conflicts += report.conflicts;
        failures += report.failures.len();
        for (c, e) in &report.failures {
            tracing::error!(cursor = %c, error = %e, "Field could not be re-encrypted.");
        }
        done += report.scanned;
        bar.inc(report.scanned);
        let finished = report.scanned < step;
        cursor = report.last_cursor;
        let value = if finished {
            String::new()
        } else {
            cursor.clone().unwrap_or_default()
        };
        store
            .kv()
            .put(CURSOR_NS, CURSOR_KEY, &value, Expect::Any)
            .await?;
        if finished {
            break;
        }
    }
    bar.finish_and_clear();
    svc.audit_only(ACTOR, "rewrap-data", keys::PII_DATA, 0)
        .await?;
    println!(
        "rewrap: {rewrapped} fields re-encrypted, {current} already current, {conflicts} changed meanwhile (left as written), {failures} failed."
    );
    if failures > 0 {
        bail!("{failures} fields could not be re-encrypted; see the log");
    }
    Ok(())
}
