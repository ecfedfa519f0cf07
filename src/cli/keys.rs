//! `tokensmith keys …`: list the signing keys and rotate them.

use clap::Subcommand;

use super::output::{self, Table, fields};
use super::{DatabaseArgs, parse_duration};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::config::parse_alg;
use crate::domain::keys::{self, KeyInfo};
use crate::signer::SigningAlg;

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
        alg: Option<SigningAlg>,
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
        KeysCommand::List { short_ttl_max_secs, json, db } => list(short_ttl_max_secs, json, db).await,
        KeysCommand::Rotate { alg, publish_delay, json, db } => rotate(alg, publish_delay, json, db).await,
    }
}

async fn list(short_ttl_max_secs: i64, json: bool, db: DatabaseArgs) -> anyhow::Result<()> {
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

async fn rotate(alg: Option<SigningAlg>, publish_delay: i64, json: bool, db: DatabaseArgs) -> anyhow::Result<()> {
    let (store, keyring) = db.open_existing().await?;
    let now = SystemClock.now();
    let rotated = keys::rotate_by_operator(store.as_ref(), &keyring, now, alg, publish_delay).await?;
    let key = rotated.key;
    if json {
        return output::json(&key_json(&key, now, 900));
    }
    let mut pairs = vec![
        ("kid", key.kid.clone()),
        ("alg", key.alg.clone()),
        ("published", format!("{} (in the JWKS from now on)", output::time(key.times.created_at))),
        ("signs from", output::time(key.times.activates_at)),
    ];
    if !rotated.delayed {
        pairs.push(("note", format!("no {} key was signing, so it signs at once", key.alg)));
    }
    output::print(&format!(
        "signing key rotated\n{}Running servers pick it up at their next key reload (every cleanup interval, \
         60 s by default).\n",
        fields(&pairs)
    ))
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
