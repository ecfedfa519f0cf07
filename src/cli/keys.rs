//! `tokensmith keys …`: list the signing keys and rotate them.

use clap::Subcommand;

use super::output::{self, Table, fields};
use super::{DatabaseArgs, parse_duration};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::config::parse_alg;
use crate::domain::audit::{self, AuditEventExt, event};
use crate::domain::keys::{self, KeyInfo};

/// How long a rotated-in key is published before it signs, by default: longer than the JWKS
/// `max-age` (300 s) plus the servers' key reload interval (60 s by default).
const DEFAULT_PUBLISH_DELAY: &str = "10m";

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys and where each is in its life (never key material).
    List {
        /// The longest short-term token lifetime of the servers, in seconds: a retired key
        /// stays published this long (plus 60 s) after its retirement [default: 900].
        #[arg(long, default_value_t = 900, value_name = "SECS")]
        short_ttl_max_secs: i64,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Create a new signing key. It is published in the JWKS at once and signs after
    /// --publish-delay; the current key of the same algorithm stops signing then and stays
    /// published until every token it signed has expired.
    Rotate {
        /// EdDSA or ES256 [default: the algorithm of the key signing now, else EdDSA].
        #[arg(long, value_parser = parse_alg)]
        alg: Option<crate::signer::SigningAlg>,
        /// How long verifiers have to fetch the new key before it signs, e.g. 10m, 1h, 0s.
        /// Keep it above the JWKS cache time (300 s) plus the servers' cleanup interval.
        #[arg(long, default_value = DEFAULT_PUBLISH_DELAY, value_parser = parse_duration, value_name = "DURATION")]
        publish_delay: i64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub(super) async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List { short_ttl_max_secs, json, db } => {
            let (store, _) = db.open_existing().await?;
            let now = SystemClock.now();
            let keys = keys::list(store.as_ref()).await?;
            if json {
                return output::json(&keys.iter().map(|k| key_json(k, now, short_ttl_max_secs)).collect());
            }
            let mut t = Table::new(&["KID", "ALG", "STATE", "PUBLISHED", "SIGNS FROM", "RETIRES"]);
            for k in &keys {
                t.row([
                    k.kid.clone(),
                    k.alg.clone(),
                    k.times.state(now, short_ttl_max_secs).as_str().to_owned(),
                    output::time(k.times.created_at),
                    output::time(k.times.activates_at),
                    k.times.retired_at.map_or_else(|| "-".to_owned(), output::time),
                ]);
            }
            output::print(&t.render())
        }
        KeysCommand::Rotate { alg, publish_delay, json, db } => {
            let (store, keyring) = db.open_existing().await?;
            let now = SystemClock.now();
            let existing = keys::list(store.as_ref()).await?;
            let alg = match alg {
                Some(a) => a,
                None => existing
                    .iter()
                    .filter(|k| k.times.state(now, 900) == keys::KeyState::Active)
                    .max_by_key(|k| k.times.created_at)
                    .and_then(|k| crate::signer::SigningAlg::parse(&k.alg))
                    .unwrap_or(crate::signer::SigningAlg::EdDSA),
            };
            // With nothing of this algorithm signing, waiting would leave servers without a key.
            let signing =
                existing.iter().any(|k| k.alg == alg.as_str() && k.times.state(now, 900) == keys::KeyState::Active);
            let delay = if signing { publish_delay } else { 0 };
            let key = keys::rotate(store.as_ref(), &keyring, now, alg, delay).await?;
            store
                .record_audit(vec![
                    audit::new(now * 1000, event::SIGNING_KEY_ROTATED, audit::SUCCESS)
                        .token(&key.kid)
                        .source(audit::CLI)
                        .detail(serde_json::json!({ "alg": key.alg, "activates_at": key.times.activates_at })),
                ])
                .await?;
            if json {
                return output::json(&key_json(&key, now, 900));
            }
            let mut pairs = vec![
                ("kid", key.kid.clone()),
                ("alg", key.alg.clone()),
                ("published", format!("{} (in the JWKS from now on)", output::time(key.times.created_at))),
                ("signs from", output::time(key.times.activates_at)),
            ];
            if !signing {
                pairs.push(("note", format!("no {alg} key was signing, so it signs at once")));
            }
            output::print(&format!(
                "signing key rotated\n{}Running servers pick it up at their next key reload (every cleanup interval, \
                 60 s by default).\n",
                fields(&pairs)
            ))
        }
    }
}

fn key_json(k: &KeyInfo, now: i64, short_ttl_max_secs: i64) -> serde_json::Value {
    serde_json::json!({
        "kid": k.kid,
        "alg": k.alg,
        "state": k.times.state(now, short_ttl_max_secs).as_str(),
        "created_at": rfc3339(k.times.created_at),
        "activates_at": rfc3339(k.times.activates_at),
        "retired_at": k.times.retired_at.map(rfc3339),
    })
}
