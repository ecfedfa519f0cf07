//! `tokensmith token …`: list long-term tokens (never their hashes) and revoke tokens by id.

use clap::Subcommand;
use reqwest::Method;

use super::output::{self, Table, view_time};
use super::remote::Remote;
use super::{Backend, DatabaseArgs, parse_client_id};
use crate::clock::{Clock, SystemClock};
use crate::domain::ClientId;
use crate::domain::admin::reads::{self, StatusFilter, TokenFilter};
use crate::domain::admin::{self, AdminError};
use crate::http::admin::model::{RevocationView, TokenView};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// List long-term tokens (never the tokens themselves).
    ///
    /// By default those neither revoked nor expired: live, rotating (in a rotation's grace
    /// period) or disabled (their client is disabled); --all adds revoked and expired ones.
    List {
        /// Only this client's tokens.
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<String>,
        /// Also revoked and expired tokens (kept until a week after their expiry).
        #[arg(long)]
        all: bool,
        /// Only tokens not used (exchanged for a short-term token, or presented as a bearer)
        /// for this long, e.g. 30d: those to clean up. A token never used counts from its
        /// issuance. Last uses are recorded to the minute.
        #[arg(long, value_parser = super::parse_duration_with_unit, value_name = "DURATION")]
        unused_for: Option<i64>,
        /// Only valid tokens that end within this long, e.g. 7d: those to renew.
        #[arg(long, value_parser = super::parse_duration_with_unit, value_name = "DURATION")]
        expiring_within: Option<i64>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke a long-term token (and every short-term token minted from it) or a short-term one.
    ///
    /// Idempotent. Running servers refuse the token within one second.
    Revoke {
        /// The token's id (token_id of the issuing response, or from tokensmith token list).
        token_id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub(super) async fn run(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::List { client, all, unused_for, expiring_within, json, db } => {
            let client = client.as_deref().map(parse_client_id).transpose()?;
            let status = if all { StatusFilter::All } else { StatusFilter::Current };
            list(TokenFilter { client, status, unused_for, expiring_within }, json, &db).await
        }
        TokenCommand::Revoke { token_id, json, db } => revoke(&token_id, json, &db).await,
    }
}

const DAY: i64 = 86_400;

async fn list(filter: TokenFilter, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let tokens: Vec<TokenView> = match db.backend().await? {
        Backend::Remote(r) => list_remote(&r, &filter).await?,
        Backend::Local(store, _) => {
            let now = SystemClock.now();
            let tokens = reads::tokens(store.as_ref(), &filter, now).await.map_err(|e| match e {
                AdminError::UnknownClient(id) => unknown_client(&id, &db.name()),
                other => other.into(),
            })?;
            tokens.iter().map(|t| TokenView::of(t, now)).collect()
        }
    };
    print_tokens(&tokens, &filter, json)
}

fn unknown_client(id: &ClientId, place: &str) -> anyhow::Error {
    anyhow::anyhow!("no client {id} in {place} (see tokensmith client list)")
}

/// The filter as the admin API's query: durations in whole days.
async fn list_remote(r: &Remote, filter: &TokenFilter) -> anyhow::Result<Vec<TokenView>> {
    let mut query = vec![("status", if filter.status == StatusFilter::All { "all" } else { "current" }.to_owned())];
    if let Some(c) = &filter.client {
        query.push(("client_id", c.to_string()));
    }
    for (flag, param, secs) in [
        ("--unused-for", "unused_for_days", filter.unused_for),
        ("--expiring-within", "expiring_within_days", filter.expiring_within),
    ] {
        if let Some(secs) = secs {
            if secs % DAY != 0 {
                anyhow::bail!("{flag}: with --server, give whole days (e.g. 7d): the admin API filters by days");
            }
            query.push((param, (secs / DAY).to_string()));
        }
    }
    r.get(&["tokens"], &query).await
}

fn print_tokens(tokens: &[TokenView], filter: &TokenFilter, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json_of(&tokens);
    }
    if tokens.is_empty() {
        let what = match (filter.unused_for.is_some() || filter.expiring_within.is_some(), filter.status) {
            (true, _) => "no long-term tokens match",
            (false, StatusFilter::All) => "no long-term tokens",
            (false, _) => "no valid long-term tokens (--all adds revoked and expired ones)",
        };
        return output::print(&format!("{what}\n"));
    }
    let columns = ["TOKEN_ID", "CLIENT_ID", "NAME", "STATUS", "ISSUED", "VALID_UNTIL", "LAST_USED", "SCOPES"];
    let mut t = Table::new(&columns).max_width(2, 24);
    for r in tokens {
        // When it stops (stopped) being valid: its expiry, or its revocation (a rotation's
        // end of grace is recorded as one).
        let ends = match &r.revoked_at {
            Some(revoked) if output::secs_of(revoked) < output::secs_of(&r.expires_at) => revoked,
            _ => &r.expires_at,
        };
        t.row([
            r.token_id.clone(),
            r.client_id.clone(),
            r.name.clone().unwrap_or_else(|| "-".into()),
            r.status.clone(),
            view_time(&r.issued_at),
            view_time(ends),
            r.last_used_at.as_deref().map_or_else(|| "-".into(), view_time),
            r.scopes.join(" "),
        ]);
    }
    output::print(&t.render())
}

async fn revoke(target: &str, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let r: RevocationView = match db.backend().await? {
        Backend::Remote(remote) => remote.send(Method::POST, &["tokens", target, "revoke"], None).await?,
        Backend::Local(store, keyring) => {
            let now = SystemClock.now();
            let r = admin::revoke_token(store.as_ref(), &keyring, now, target).await.map_err(|e| match e {
                AdminError::UnknownToken(id) => {
                    anyhow::anyhow!("no long-term token {id} in {} (see tokensmith token list --all)", db.name())
                }
                AdminError::Invalid(msg) => anyhow::anyhow!("{msg} (see tokensmith token list)"),
                other => anyhow::anyhow!("{other}"),
            })?;
            RevocationView::from(&r)
        }
    };
    if json {
        return output::json_of(&r);
    }
    print_revocation(&r)
}

fn print_revocation(r: &RevocationView) -> anyhow::Result<()> {
    let kind = output::clean(&r.token_type);
    let id = output::clean(&r.token_id);
    let of = r.client_id.as_ref().map(|c| format!(" of client {}", output::clean(c))).unwrap_or_default();
    let text = match (kind.as_str(), r.outcome.as_str()) {
        ("long", "revoked") => format!(
            "revoked long-term token {id}{of}, and with it every short-term token minted from it \
             (running servers refuse them within one second)"
        ),
        (_, "revoked") => format!("revoked short-term token {id}{of} (running servers refuse it within one second)"),
        (_, "already_revoked") => format!("{kind}-term token {id}{of} was already revoked"),
        _ => format!("{kind}-term token {id}{of} has already expired; nothing to revoke"),
    };
    output::print(&format!("{text}\n"))
}
