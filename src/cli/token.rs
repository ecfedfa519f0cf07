//! `tokensmith token …`: list long-term tokens (never their hashes) and revoke tokens by id.

use clap::Subcommand;
use serde_json::json;

use super::output::{self, Table, json_time, time};
use super::{DatabaseArgs, parse_client_id};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::domain::TokenKind;
use crate::domain::admin::{self, AdminError, RevokeOutcome};
use crate::domain::token::LongToken;

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
            let filter = Filter { all, unused_for, expiring_within };
            list(client.as_deref(), filter, json, &db).await
        }
        TokenCommand::Revoke { token_id, json, db } => revoke(&token_id, json, &db).await,
    }
}

/// Which tokens `token list` shows.
struct Filter {
    all: bool,
    unused_for: Option<i64>,
    expiring_within: Option<i64>,
}

impl Filter {
    fn keeps(&self, t: &LongToken, now: i64) -> bool {
        self.unused_for.is_none_or(|d| t.unused_for(d, now))
            && self.expiring_within.is_none_or(|d| t.expiring_within(d, now))
    }
}

async fn list(client: Option<&str>, filter: Filter, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let all = filter.all;
    let client = client.map(parse_client_id).transpose()?;
    let (store, _) = db.open_existing().await?;
    if let Some(id) = &client
        && store.get_client(id).await?.is_none()
    {
        anyhow::bail!("no client {id} in {} (see tokensmith client list)", db.name());
    }
    let now = SystemClock.now();
    let mut tokens = if all {
        store.list_long_tokens(client.as_ref()).await?
    } else {
        store.list_current_long_tokens(client.as_ref(), now).await?
    };
    tokens.retain(|t| filter.keeps(t, now));
    if json {
        let list: Vec<_> = tokens
            .iter()
            .map(|t| {
                json!({
                    "token_id": t.id.to_string(),
                    "client_id": t.client_id.as_str(),
                    "name": t.name,
                    "scopes": t.scopes.to_vec(),
                    "issued_at": rfc3339(t.issued_at),
                    "expires_at": rfc3339(t.expires_at),
                    "revoked_at": json_time(t.revoked_at),
                    "last_used_at": json_time(t.last_used_at),
                    "origin": t.origin.encode(),
                    "status": t.status(now).as_str(),
                })
            })
            .collect();
        return output::json(&list.into());
    }
    if tokens.is_empty() {
        let what = match (filter.unused_for.is_some() || filter.expiring_within.is_some(), all) {
            (true, _) => "no long-term tokens match",
            (false, true) => "no long-term tokens",
            (false, false) => "no valid long-term tokens (--all adds revoked and expired ones)",
        };
        return output::print(&format!("{what}\n"));
    }
    let columns = ["TOKEN_ID", "CLIENT_ID", "NAME", "STATUS", "ISSUED", "VALID_UNTIL", "LAST_USED", "SCOPES"];
    let mut t = Table::new(&columns).max_width(2, 24);
    for r in &tokens {
        let status = r.status(now);
        // When it stops (stopped) being valid: its expiry, or the end of a rotation's grace
        // period, or its revocation.
        let ends = r.valid_until();
        t.row([
            r.id.to_string(),
            r.client_id.to_string(),
            r.name.clone().unwrap_or_else(|| "-".into()),
            status.as_str().to_owned(),
            time(r.issued_at),
            time(ends),
            r.last_used_at.map_or_else(|| "-".into(), time),
            r.scopes.to_space_separated(),
        ]);
    }
    output::print(&t.render())
}

async fn revoke(target: &str, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let (store, keyring) = db.open_existing().await?;
    let now = SystemClock.now();
    let r = admin::revoke_token(store.as_ref(), &keyring, now, target).await.map_err(|e| match e {
        AdminError::UnknownToken(id) => {
            anyhow::anyhow!("no long-term token {id} in {} (see tokensmith token list --all)", db.name())
        }
        AdminError::Invalid(msg) => anyhow::anyhow!("{msg} (see tokensmith token list)"),
        other => anyhow::anyhow!("{other}"),
    })?;
    let kind = match r.kind {
        TokenKind::Long => "long",
        TokenKind::Short => "short",
    };
    let outcome = match r.outcome {
        RevokeOutcome::Revoked => "revoked",
        RevokeOutcome::AlreadyRevoked => "already_revoked",
        RevokeOutcome::AlreadyExpired => "already_expired",
    };
    if json {
        return output::json(&json!({
            "token_id": r.token_id,
            "token_type": kind,
            "client_id": r.client_id.as_ref().map(|c| c.as_str()),
            "outcome": outcome,
        }));
    }
    let of = r.client_id.map(|c| format!(" of client {c}")).unwrap_or_default();
    let text = match (r.kind, r.outcome) {
        (TokenKind::Long, RevokeOutcome::Revoked) => format!(
            "revoked long-term token {}{of}, and with it every short-term token minted from it \
             (running servers refuse them within one second)",
            r.token_id
        ),
        (TokenKind::Short, RevokeOutcome::Revoked) => {
            format!("revoked short-term token {}{of} (running servers refuse it within one second)", r.token_id)
        }
        (_, RevokeOutcome::AlreadyRevoked) => format!("{kind}-term token {}{of} was already revoked", r.token_id),
        (_, RevokeOutcome::AlreadyExpired) => {
            format!("{kind}-term token {}{of} has already expired; nothing to revoke", r.token_id)
        }
    };
    output::print(&format!("{text}\n"))
}
