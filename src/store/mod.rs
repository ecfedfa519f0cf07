//! Storage: one trait, one implementation per database.
//!
//! Architecture invariant: the domain reaches storage only through [`Store`]. No SQL, no
//! backend name and no connection type appears outside this module, so a backend is added by
//! implementing the trait, not by branching in the domain.
//!
//! Every method is one atomic step. The methods that enforce single use (`consume_*`) and the
//! rotation in `insert_long_token` are conditional writes, so they stay correct when several
//! processes share the database.

#[cfg(test)]
mod conformance;
pub mod postgres;
mod rows;
mod sql;
pub mod sqlite;

use async_trait::async_trait;

pub use crate::domain::audit::{AuditEvent, AuditRecord};
pub use crate::domain::client::Client;
pub use crate::domain::federation::{FederationRule, IssuerName, TrustedIssuer};
pub use crate::domain::keys::SigningKeyRecord;
use crate::domain::limits::{Admit, Window, decode_times, encode_times};
pub use crate::domain::token::{LongToken, NewLongToken, Rotation};
pub use crate::domain::usage::LastUses;
pub use crate::domain::webhook::{Delivery, DeliveryQuery, DeliveryUpdate, MessageId, Webhook, WebhookId};
use crate::domain::{ClientId, LongTokenId, ShortTokenId};

/// A failure of the database itself (never of the caller's input).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is busy beyond the timeout; retrying may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupt database.
    #[error("database error: {0}")]
    Backend(String),
}

#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    /// Not live at `now`, another client's, or already rotated once.
    #[error("the token to rotate is not a live long-term token of this client")]
    RotationTargetNotLive,
    #[error("the parent token is no longer live")]
    ParentNotLive,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which audit events to read: oldest first, after `after_id`, at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub client_id: Option<String>,
    /// Unix milliseconds; events at or after it.
    pub since: Option<i64>,
    pub after_id: i64,
    pub limit: u32,
}

/// A page of the audit trail, newest first: events before `before_id` (none: the newest),
/// matching every filter given.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub before_id: Option<i64>,
    pub client_id: Option<String>,
    pub event: Option<String>,
    pub outcome: Option<String>,
    /// Unix milliseconds; events at or after it.
    pub since: Option<i64>,
    pub limit: u32,
}

/// How many rows a cleanup pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub long_tokens: u64,
    pub revoked_short_tokens: u64,
    pub used_assertions: u64,
    pub limits: u64,
    /// Webhook deliveries delivered or failed before the retention.
    pub webhook_deliveries: u64,
}

/// A counter of failed authentications that one failure counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCounter {
    /// The key as stored (`LimitKey::encode`).
    pub key: String,
    pub window: Window,
    /// Whether a lock this failure sets on the key is recorded (`client.locked`, in the same
    /// transaction): for a registered client's keys only, so that made-up client ids, which
    /// anyone can lock, add nothing to the audit trail or the webhooks' outbox.
    pub announce_lock: bool,
}

/// What the store did with a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureRecorded {
    /// Counted against every counter; the keys this failure locked, and until when (ms).
    Counted { locked: Vec<(String, i64)> },
    /// Not counted: `key` had already reached its limit, until `until` (ms).
    Refused { key: String, until: i64 },
}

/// One row of `auth_limits`, as read or to be written.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
struct LimitRow {
    key: String,
    recent: String,
    locked_until: i64,
    changed_at: i64,
    expires_at: i64,
}

/// How long a reset row is kept at least, so that every instance's poll sees the unlock.
const RESET_VISIBLE_MS: i64 = 60_000;

/// What one failure writes: the rows of its counters, the locks it sets, and their events.
struct FailureWrites {
    rows: Vec<LimitRow>,
    locked: Vec<(String, i64)>,
    events: Vec<AuditEvent>,
}

/// Applies one failure at `now` to the rows of its counters (a missing row is an empty one),
/// with the domain's window rule: the rows to write back, or the refusal. Both stores run
/// this between reading and writing the rows, under their write lock.
fn apply_failure(counters: &[FailureCounter], rows: &[LimitRow], now: i64) -> Result<FailureWrites, FailureRecorded> {
    let mut writes = FailureWrites { rows: Vec::with_capacity(counters.len()), locked: Vec::new(), events: Vec::new() };
    for counter in counters {
        let row = rows.iter().find(|r| r.key == counter.key).cloned();
        let mut row = row.unwrap_or_else(|| LimitRow { key: counter.key.clone(), ..LimitRow::default() });
        match counter.window.admit(&decode_times(&row.recent), now) {
            Admit::Refused { until } => return Err(FailureRecorded::Refused { key: counter.key.clone(), until }),
            Admit::Counted { recent, locked_until } => {
                row.recent = encode_times(&recent);
                row.expires_at = now + counter.window.window_ms;
                if let Some(until) = locked_until {
                    (row.locked_until, row.changed_at) = (until, now);
                    writes.locked.push((row.key.clone(), until));
                    if counter.announce_lock {
                        writes.events.extend(crate::domain::limits::LimitKey::lock_event(&row.key, until, now));
                    }
                }
                writes.rows.push(row);
            }
        }
    }
    Ok(writes)
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    async fn insert_client(&self, client: &Client) -> Result<(), StoreError>;
    async fn get_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError>;
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Disables or enables a client, with the audit event that records it, in one transaction;
    /// `false` (nothing written) if there is no such client.
    async fn set_client_disabled(&self, id: &ClientId, disabled: bool, event: AuditEvent) -> Result<bool, StoreError>;
    /// Replaces a client's sealed TOTP seed (`None`: removes it) and starts its steps afresh;
    /// `false` if there is no such client.
    async fn set_client_otp(&self, id: &ClientId, sealed: Option<&[u8]>) -> Result<bool, StoreError>;

    /// Marks TOTP `step` used for `client`; `false` if that step or a later one already was.
    async fn consume_otp_step(&self, client: &ClientId, step: i64) -> Result<bool, StoreError>;
    /// Remembers an assertion id until `expires_at`; `false` if it was already seen.
    async fn consume_assertion_jti(&self, client: &ClientId, jti: &str, expires_at: i64) -> Result<bool, StoreError>;

    /// Inserts a long-term token with the audit event that records it, in one transaction,
    /// and atomically with it schedules the revocation of the token it rotates (which must be
    /// live at `now`, belong to the same client and not have been rotated before) and of that
    /// token's descendants. The new token's parent, if any, must be live at `now`. Returns the
    /// tokens whose end it brought forward: the rotated token and its descendants.
    async fn insert_long_token(
        &self,
        token: &NewLongToken,
        rotation: Option<Rotation>,
        now: i64,
        event: AuditEvent,
    ) -> Result<Vec<LongTokenId>, InsertError>;
    async fn find_long_token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<LongToken>, StoreError>;
    async fn get_long_token(&self, id: &LongTokenId) -> Result<Option<LongToken>, StoreError>;
    async fn list_long_tokens(&self, client: Option<&ClientId>) -> Result<Vec<LongToken>, StoreError>;
    /// Revokes the token and its descendants at `at` (each unless already revoked at or before
    /// `at`), with its audit event, in one transaction. Returns the tokens whose end it brought
    /// forward: the token and its descendants.
    async fn revoke_long_token(
        &self,
        id: &LongTokenId,
        at: i64,
        event: AuditEvent,
    ) -> Result<Vec<LongTokenId>, StoreError>;

    /// Records a short-term token id as revoked, with its audit event, in one transaction.
    async fn revoke_short_token(&self, id: &ShortTokenId, event: AuditEvent) -> Result<(), StoreError>;
    async fn is_short_token_revoked(&self, id: &ShortTokenId) -> Result<bool, StoreError>;

    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;

    /// Replaces a client's secret hash; the old one stays valid until `previous_until`
    /// (`None`: not at all). `false` if there is no such client.
    async fn rotate_client_secret(
        &self,
        id: &ClientId,
        new_hash: &[u8],
        previous_until: Option<i64>,
    ) -> Result<bool, StoreError>;

    /// Inserts `key` and, atomically with it and its audit event, schedules every other key of
    /// its algorithm that is still signing at `key.activates_at` to retire then.
    async fn rotate_signing_key(&self, key: &SigningKeyRecord, event: AuditEvent) -> Result<(), StoreError>;

    /// Long-term tokens neither expired nor revoked at `now` that expire by `until` and were
    /// issued for longer than `longer_than` seconds, soonest first.
    async fn list_expiring_long_tokens(
        &self,
        now: i64,
        until: i64,
        longer_than: i64,
    ) -> Result<Vec<LongToken>, StoreError>;
    /// Those that expire within `lead_secs` of `now`, were issued for longer, and were not yet
    /// warned of at that lead time (`warn_expiring`).
    async fn list_unwarned_expiring(&self, now: i64, lead_secs: i64) -> Result<Vec<LongToken>, StoreError>;
    /// Records that `token`'s expiry was announced `lead_secs` ahead, with `event`, both or
    /// neither; false (and nothing written) when it was announced before, here or elsewhere.
    async fn warn_expiring(&self, token: &LongTokenId, lead_secs: i64, event: AuditEvent) -> Result<bool, StoreError>;

    /// Records when tokens and clients were last used (never moving a time backwards), in one
    /// transaction; rows that no longer exist are skipped.
    async fn record_last_use(&self, uses: LastUses) -> Result<(), StoreError>;

    /// Appends events to the audit trail, durably, before returning.
    async fn record_audit(&self, events: Vec<AuditEvent>) -> Result<(), StoreError>;
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;
    /// A page of the trail, newest first (see [`AuditPage`]).
    async fn list_audit_page(&self, page: &AuditPage) -> Result<Vec<AuditRecord>, StoreError>;
    /// How many issuance and failure events (one by one) happened since `since_ms`, per
    /// bucket of `bucket_ms` milliseconds: (bucket number, event, count).
    async fn count_audit(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<(i64, String, i64)>, StoreError>;
    /// The events since `since_ms` that each stand for a count (`short_tokens.issued`,
    /// `auth.failures_summarized`), oldest first, at most `limit`.
    async fn list_audit_tallies(&self, since_ms: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;
    /// Deletes at most `batch` audit events older than `before` (Unix milliseconds).
    async fn purge_audit(&self, before: i64, batch: u32) -> Result<u64, StoreError>;

    /// Deletes long-term tokens that expired before `long_before`, and revoked short-term
    /// tokens and assertion ids that expired before `now`, at most `batch` rows per table.
    async fn purge_expired(&self, now: i64, long_before: i64, batch: u32) -> Result<Purged, StoreError>;

    /// Counts a failed authentication against every counter in one atomic step, unless one
    /// of them has already reached its limit (then nothing is written).
    async fn record_failure(&self, counters: &[FailureCounter], now_ms: i64) -> Result<FailureRecorded, StoreError>;
    /// The locks set or lifted since `since_ms` (key, locked until; 0 when lifted).
    async fn changed_locks(&self, since_ms: i64) -> Result<Vec<(String, i64)>, StoreError>;
    /// Forgets the failures of `keys` and lifts their locks (an operator's unlock).
    async fn reset_limits(&self, keys: &[String], now_ms: i64) -> Result<(), StoreError>;

    // ----- admin listings and changes (the command line) -----

    /// The long-term tokens that are neither expired nor revoked at `now` (a rotation's grace
    /// still running included; a disabled client's included), of one client or all, ordered
    /// like [`Store::list_long_tokens`].
    async fn list_current_long_tokens(&self, client: Option<&ClientId>, now: i64)
    -> Result<Vec<LongToken>, StoreError>;
    /// Registers a client's public key (PEM or JWK, already validated) and its algorithm.
    /// Only where the client has none, unless `replace`; `false` if nothing was changed
    /// (no such client, or it has a key and `replace` is not set).
    async fn set_client_public_key(
        &self,
        id: &ClientId,
        public_key: &str,
        alg: &str,
        replace: bool,
    ) -> Result<bool, StoreError>;

    // ----- federation: trusted issuers and the rules that bind clients to their claims -----

    /// Adds a trusted issuer with its audit event; `false` (nothing written) if one has its
    /// name or its `iss`.
    async fn insert_issuer(&self, issuer: &TrustedIssuer, event: AuditEvent) -> Result<bool, StoreError>;
    /// Every trusted issuer, by name.
    async fn list_issuers(&self) -> Result<Vec<TrustedIssuer>, StoreError>;
    /// Removes an issuer and, in the same statement, every rule that names it, with its audit
    /// event; `false` (nothing written) if there is no such issuer.
    async fn remove_issuer(&self, name: &IssuerName, event: AuditEvent) -> Result<bool, StoreError>;
    async fn insert_federation_rule(
        &self,
        rule: &FederationRule,
        created_at: i64,
        event: AuditEvent,
    ) -> Result<(), StoreError>;
    /// The rules of one client or of all, by id.
    async fn list_federation_rules(&self, client: Option<&ClientId>) -> Result<Vec<FederationRule>, StoreError>;
    /// Removes a rule with its audit event; `false` (nothing written) if there is no such rule.
    async fn remove_federation_rule(&self, id: &str, event: AuditEvent) -> Result<bool, StoreError>;

    // ----- webhooks: receivers and the outbox of their deliveries -----

    /// Registers a receiver and its event types, with its audit event, unless `max` receivers
    /// are registered already (then `false`, nothing written), also when several are added at
    /// once.
    async fn insert_webhook(&self, webhook: &Webhook, max: u32, event: AuditEvent) -> Result<bool, StoreError>;
    /// Every receiver, oldest first.
    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
    /// Removes a receiver and its pending deliveries, with its audit event; `false` (nothing
    /// written) if there is no such receiver.
    async fn remove_webhook(&self, id: &WebhookId, event: AuditEvent) -> Result<bool, StoreError>;
    /// Whether any delivery is due at `now` (ms): a read, so an idle outbox costs no write.
    async fn any_delivery_due(&self, now: i64) -> Result<bool, StoreError>;
    /// Claims at most `limit` of `webhook`'s pending deliveries due at `now` (ms), in one
    /// atomic step: each counts one more attempt and is not due again before `lease_until`, so
    /// no other claim, here or in another instance, takes it meanwhile; if its outcome is never
    /// written (the process died), it is claimed again after the lease.
    async fn claim_deliveries(
        &self,
        webhook: &WebhookId,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Writes an attempt's outcome, if the delivery is still pending at that attempt (`attempts`
    /// as claimed); `false` when another claim has taken it over since.
    async fn update_delivery(&self, delivery: &Delivery, update: &DeliveryUpdate) -> Result<bool, StoreError>;
    /// Deliveries, newest first.
    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError>;
    /// Schedules the failed deliveries of `message` (to `webhook` only, if given) again at `now`
    /// (ms), from the start of the retry schedule; answers how many.
    async fn redeliver(&self, message: &MessageId, webhook: Option<&WebhookId>, now: i64) -> Result<u64, StoreError>;
}

/// Checks that a database URL names a backend this build supports, before anything is opened.
pub fn check_url(url: &str) -> Result<(), ConnectError> {
    if url.starts_with("sqlite:") {
        Ok(())
    } else if is_postgres_url(url) {
        if let Some(key) = unknown_pg_parameter(url) {
            return Err(ConnectError::Unsupported(format!(
                "PostgreSQL URL {:?}: unknown parameter {:?} (known: password, {})",
                redact_url(url),
                key.chars().take(40).collect::<String>(),
                PG_PARAMETERS.join(", ")
            )));
        }
        // Parsed now, so a malformed URL is reported before a key file or a listener exists.
        <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)
            .map(|_| ())
            .map_err(|e| ConnectError::Unsupported(format!("invalid PostgreSQL URL {:?}: {e}", redact_url(url))))
    } else {
        Err(ConnectError::Unsupported(format!(
            "unsupported database URL {:?}; expected sqlite://PATH or postgres://USER@HOST/DATABASE",
            redact_url(url)
        )))
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store named by a database URL, applying its migrations.
pub async fn connect(url: &str) -> Result<std::sync::Arc<dyn Store>, ConnectError> {
    check_url(url)?;
    if is_postgres_url(url) {
        Ok(std::sync::Arc::new(postgres::PgStore::connect(url).await?))
    } else {
        Ok(std::sync::Arc::new(sqlite::SqliteStore::connect(url).await?))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot open database: {0}")]
    Open(String),
    #[error("cannot apply migrations: {0}")]
    Migrate(String),
}

/// The query parameters of a PostgreSQL URL that tokensmith passes on (those its driver
/// knows), `password` aside: another name would be ignored with a warning that prints its
/// value, and might be a secret (libpq's `sslpassword`), so it is refused instead.
const PG_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "application_name",
    "options",
];

/// SQLite URL parameters, none of them secret.
const SQLITE_PARAMETERS: &[&str] = &["mode", "cache", "immutable", "vfs"];

fn is_shown_parameter(key: &str) -> bool {
    PG_PARAMETERS.contains(&key)
        || SQLITE_PARAMETERS.contains(&key)
        || (key.starts_with("options[") && key.ends_with(']'))
}

/// The first query parameter of a PostgreSQL URL that is neither known nor `password`.
fn unknown_pg_parameter(url: &str) -> Option<&str> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or(p, |(k, _)| k))
        .find(|k| *k != "password" && !is_shown_parameter(k))
}

/// A URL for messages: the userinfo's password replaced, and the value of every query
/// parameter but the known, harmless ones (`password`, `sslpassword`, a misspelt name).
pub fn redact_url(url: &str) -> String {
    let redacted = redact_userinfo(url);
    match redacted.split_once('?') {
        Some((base, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if !is_shown_parameter(k) => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => redacted,
    }
}

fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{}:***{}", &url[..s], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The file path of a SQLite URL (`sqlite://tokensmith.db` → `tokensmith.db`), if any.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_paths_found() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
        assert_eq!(
            redact_url("postgres://h/db?sslmode=require&password=pw"),
            "postgres://h/db?sslmode=require&password=***"
        );
        let libpq = "postgres://h/db?sslpassword=pw1&PASSWORD=pw2&application_name=ts&options[search_path]=x";
        assert_eq!(
            redact_url(libpq),
            "postgres://h/db?sslpassword=***&PASSWORD=***&application_name=ts&options[search_path]=x"
        );
        assert_eq!(redact_url("sqlite://a.db?mode=rwc"), "sqlite://a.db?mode=rwc");
        assert_eq!(sqlite_path("sqlite://tokensmith.db"), Some("tokensmith.db".into()));
        assert_eq!(sqlite_path("sqlite:///tmp/x.db?mode=rwc"), Some("/tmp/x.db".into()));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    #[test]
    fn an_unknown_postgres_parameter_is_refused_without_its_value() {
        let err = check_url("postgres://h/db?sslmode=disable&sslpassword=hunter2").unwrap_err().to_string();
        assert!(err.contains("unknown parameter \"sslpassword\""), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(check_url("postgres://h/db?PASSWORD=hunter2").unwrap_err().to_string().contains("PASSWORD"));
        assert!(check_url("postgres://u@h:5432/db?sslmode=require&password=pw&options[search_path]=x").is_ok());
    }
}
