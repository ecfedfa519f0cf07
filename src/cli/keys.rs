//! `tokensmith keys …`: list the signing keys and rotate them.

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::output::{self, Table, fields, view_time};
use super::{Backend, DatabaseArgs, parse_duration};
use crate::clock::{Clock, SystemClock};
use crate::config::parse_alg;
use crate::domain::keys;
use crate::http::admin::model::KeyView;
use crate::signer::SigningAlg;

/// The longest short-term token lifetime assumed for a key's state, unless told.
const DEFAULT_SHORT_TTL_MAX_SECS: i64 = 900;

/// How long a rotated-in key is published before it signs, by default: longer than the JWKS
/// `max-age` (300 s) plus the servers' key reload interval (60 s by default).
const DEFAULT_PUBLISH_DELAY: &str = "10m";

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys and where each is in its life (never key material).
    List {
        /// The longest short-term token lifetime of the servers, in seconds: a retired key
        /// stays published this long (plus 60 s) after its retirement [default: 900].
        /// With --server, the server's own setting is used.
        #[arg(long, value_name = "SECS")]
        short_ttl_max_secs: Option<i64>,
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

async fn list(short_ttl_max_secs: Option<i64>, json: bool, db: DatabaseArgs) -> anyhow::Result<()> {
    let keys: Vec<KeyView> = match db.backend().await? {
        Backend::Remote(r) => {
            if short_ttl_max_secs.is_some() {
                anyhow::bail!("--short-ttl-max-secs is the server's own setting with --server; leave it out");
            }
            r.get(&["keys"], &[]).await?
        }
        Backend::Local(store, _) => {
            let now = SystemClock.now();
            let ttl = short_ttl_max_secs.unwrap_or(DEFAULT_SHORT_TTL_MAX_SECS);
            keys::list(store.as_ref()).await?.iter().map(|k| KeyView::of(k, now, ttl)).collect()
        }
    };
    if json {
        return output::json_of(&keys);
    }
    let mut t = Table::new(&["KID", "ALG", "STATE", "PUBLISHED", "SIGNS FROM", "RETIRES"]);
    for k in &keys {
        t.row([
            k.kid.clone(),
            k.alg.clone(),
            k.state.clone(),
            view_time(&k.created_at),
            view_time(&k.activates_at),
            k.retired_at.as_deref().map_or_else(|| "-".to_owned(), view_time),
        ]);
    }
    output::print(&t.render())
}

async fn rotate(alg: Option<SigningAlg>, publish_delay: i64, json: bool, db: DatabaseArgs) -> anyhow::Result<()> {
    let key: KeyView = match db.backend().await? {
        Backend::Remote(r) => {
            let body = json!({"alg": alg.map(|a| a.as_str()), "publish_delay_secs": publish_delay});
            r.send(Method::POST, &["keys", "rotate"], Some(body)).await?
        }
        Backend::Local(store, keyring) => {
            let now = SystemClock.now();
            let rotated = keys::rotate_by_operator(store.as_ref(), &keyring, now, alg, publish_delay).await?;
            KeyView::of(&rotated.key, now, DEFAULT_SHORT_TTL_MAX_SECS)
        }
    };
    if json {
        return output::json_of(&key);
    }
    let mut pairs = vec![
        ("kid", key.kid.clone()),
        ("alg", key.alg.clone()),
        ("published", format!("{} (in the JWKS from now on)", view_time(&key.created_at))),
        ("signs from", view_time(&key.activates_at)),
    ];
    // Asked to wait, it signs at once only when no key of its algorithm was signing.
    if publish_delay > 0 && key.activates_at == key.created_at {
        pairs.push(("note", format!("no {} key was signing, so it signs at once", key.alg)));
    }
    output::print(&format!(
        "signing key rotated\n{}Running servers pick it up at their next key reload (every cleanup interval, \
         60 s by default).\n",
        fields(&pairs)
    ))
}
