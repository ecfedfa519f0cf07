//! The SQLite store: one file, zero setup, WAL mode.
//!
//! Durability: `synchronous = FULL` makes every commit reach the disk before the call
//! returns, so a 201 or 204 survives `kill -9` and power loss alike. Writers serialise on
//! SQLite's lock; `busy_timeout` turns contention into waiting, not errors.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::ConnectOptions;
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot};

use super::rows::{
    AuditRow, ClientRow, DeliveryRow, IssuerRow, LongTokenRow, RuleRow, SigningKeyRow, WebhookRow, long_ids,
};
use super::sql;
use super::{
    AuditEvent, AuditPage, AuditQuery, AuditRecord, Client, ConnectError, Delivery, DeliveryQuery, DeliveryUpdate,
    FailureCounter, FailureRecorded, FederationRule, InsertError, IssuerName, LastUses, LongToken, MessageId,
    NewLongToken, Purged, RESET_VISIBLE_MS, Rotation, SigningKeyRecord, Store, StoreError, TrustedIssuer, Webhook,
    WebhookId, apply_failure,
};
use crate::clock;
use crate::domain::{ClientId, LongTokenId, ShortTokenId};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads, and the rare administrative writes.
    pool: SqlitePool,
    /// The writes of the request path, committed in groups by one writer task.
    writer: mpsc::Sender<WriteOp>,
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("5" | "6" | "517")) => {
            // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_BUSY_SNAPSHOT: contention beyond the timeout.
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Creates the database file readable by its owner only, or tightens one that others could
/// read, with its WAL and shared-memory files: they hold no secret in the clear, but token
/// hashes, sealed seeds and the audit trail are nobody else's business. SQLite creates the
/// `-wal` and `-shm` files with the database file's mode.
#[cfg(unix)]
fn make_private(url: &str) -> Result<(), ConnectError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let Some(path) = super::sqlite_path(url) else { return Ok(()) };
    let cannot = |e: std::io::Error| ConnectError::Open(format!("cannot create {}: {e}", path.display()));
    if !path.exists() {
        let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path);
        match created {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(cannot(e)),
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let Ok(meta) = std::fs::metadata(&file) else { continue };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
                ConnectError::Open(format!("cannot make {} private (chmod 600): {e}", file.to_string_lossy()))
            })?;
            tracing::info!(file = %file.to_string_lossy(), "made a database file readable by its owner only");
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_url: &str) -> Result<(), ConnectError> {
    Ok(())
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        make_private(url)?;
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| ConnectError::Open(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts.clone())
            .await
            .map_err(|e| ConnectError::Open(e.to_string()))?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await.map_err(|e| ConnectError::Migrate(e.to_string()))?;
        let conn = opts.connect().await.map_err(|e| ConnectError::Open(e.to_string()))?;
        let (writer, rx) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(group_commit(conn, rx));
        Ok(SqliteStore { pool, writer })
    }

    /// Sends `op` to the writer and waits for its commit.
    async fn write<T>(
        &self,
        op: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> WriteOp,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer.send(op(tx)).await.map_err(|_| StoreError::Unavailable("database writer stopped".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("database writer stopped".into()))?
    }

    /// Inserts a long-term token through the writer; see [`Store::insert_long_token`].
    async fn insert_long(
        &self,
        t: &NewLongToken,
        rotation: Option<Rotation>,
        now: i64,
        audit: AuditEvent,
    ) -> Result<Vec<LongTokenId>, InsertError> {
        let token = t.clone();
        match self.write(|reply| WriteOp::InsertLong { token, rotation, now, audit, reply }).await? {
            InsertOutcome::Inserted(ended) => Ok(long_ids(&ended)?),
            InsertOutcome::RotationTargetNotLive => Err(InsertError::RotationTargetNotLive),
            InsertOutcome::ParentNotLive => Err(InsertError::ParentNotLive),
        }
    }

    /// `PRAGMA integrity_check`, for tests and operators.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let row = sqlx::query("PRAGMA integrity_check").fetch_one(&self.pool).await.map_err(map_err)?;
        row.try_get::<String, _>(0).map_err(map_err)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(sql::PING).execute(&self.pool).await.map_err(map_err).map(drop)
    }

    async fn insert_client(&self, c: &Client) -> Result<(), StoreError> {
        sql::insert_client!(c).execute(&self.pool).await.map_err(map_err).map(drop)
    }

    async fn get_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        let row: Option<ClientRow> =
            sqlx::query_as(sql::GET_CLIENT).bind(id.as_str()).fetch_optional(&self.pool).await.map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let rows: Vec<ClientRow> = sqlx::query_as(sql::LIST_CLIENTS).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn set_client_disabled(&self, id: &ClientId, disabled: bool, event: AuditEvent) -> Result<bool, StoreError> {
        let query = sqlx::query(sql::SET_CLIENT_DISABLED).bind(disabled).bind(id.as_str());
        self.change_one_with_event(query, &event).await
    }

    async fn set_client_otp(&self, id: &ClientId, sealed: Option<&[u8]>) -> Result<bool, StoreError> {
        let query = sqlx::query(sql::SET_CLIENT_OTP).bind(sealed).bind(id.as_str());
        Ok(query.execute(&self.pool).await.map_err(map_err)?.rows_affected() == 1)
    }

    async fn consume_otp_step(&self, client: &ClientId, step: i64) -> Result<bool, StoreError> {
        let client = client.as_str().to_owned();
        self.write(|reply| WriteOp::ConsumeOtp { client, step, reply }).await
    }

    async fn consume_assertion_jti(&self, client: &ClientId, jti: &str, expires_at: i64) -> Result<bool, StoreError> {
        let (client, jti) = (client.as_str().to_owned(), jti.to_owned());
        self.write(|reply| WriteOp::ConsumeJti { client, jti, expires_at, reply }).await
    }

    async fn insert_long_token(
        &self,
        t: &NewLongToken,
        rotation: Option<Rotation>,
        now: i64,
        event: AuditEvent,
    ) -> Result<Vec<LongTokenId>, InsertError> {
        self.insert_long(t, rotation, now, event).await
    }

    async fn find_long_token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<LongToken>, StoreError> {
        let query = sqlx::query_as(sql::FIND_LONG_BY_HASH).bind(&hash[..]);
        let row: Option<LongTokenRow> = query.fetch_optional(&self.pool).await.map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn get_long_token(&self, id: &LongTokenId) -> Result<Option<LongToken>, StoreError> {
        let query = sqlx::query_as(sql::GET_LONG).bind(id.to_string());
        let row: Option<LongTokenRow> = query.fetch_optional(&self.pool).await.map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_long_tokens(&self, client: Option<&ClientId>) -> Result<Vec<LongToken>, StoreError> {
        let rows: Vec<LongTokenRow> = match client {
            Some(c) => sqlx::query_as(sql::LIST_LONG_OF_CLIENT).bind(c.as_str()).fetch_all(&self.pool).await,
            None => sqlx::query_as(sql::LIST_LONG).fetch_all(&self.pool).await,
        }
        .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn revoke_long_token(
        &self,
        id: &LongTokenId,
        at: i64,
        event: AuditEvent,
    ) -> Result<Vec<LongTokenId>, StoreError> {
        let (id, audit) = (id.to_string(), event);
        let revoked = self.write(|reply| WriteOp::RevokeLong { id, at, audit, reply }).await?;
        long_ids(&revoked)
    }

    async fn revoke_short_token(&self, id: &ShortTokenId, event: AuditEvent) -> Result<(), StoreError> {
        let (id, expires_at, audit) = (id.as_str().to_owned(), id.expires_at, event);
        self.write(|reply| WriteOp::RevokeShort { id, expires_at, audit, reply }).await
    }

    async fn is_short_token_revoked(&self, id: &ShortTokenId) -> Result<bool, StoreError> {
        let query = sqlx::query(sql::IS_SHORT_REVOKED).bind(id.as_str());
        Ok(query.fetch_optional(&self.pool).await.map_err(map_err)?.is_some())
    }

    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows: Vec<SigningKeyRow> =
            sqlx::query_as(sql::LIST_SIGNING_KEYS).fetch_all(&self.pool).await.map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn insert_signing_key(&self, k: &SigningKeyRecord) -> Result<(), StoreError> {
        sql::insert_signing_key!(k).execute(&self.pool).await.map_err(map_err).map(drop)
    }

    async fn rotate_signing_key(&self, k: &SigningKeyRecord, event: AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let retire = sqlx::query(sql::RETIRE_SIGNING_KEYS).bind(k.activates_at.max(k.created_at)).bind(&k.alg);
        retire.execute(&mut *tx).await.map_err(map_err)?;
        sql::insert_signing_key!(k).execute(&mut *tx).await.map_err(map_err)?;
        sql::record_event!(tx, event).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn rotate_client_secret(
        &self,
        id: &ClientId,
        new_hash: &[u8],
        previous_until: Option<i64>,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(sql::ROTATE_CLIENT_SECRET).bind(previous_until).bind(new_hash).bind(id.as_str());
        Ok(query.execute(&self.pool).await.map_err(map_err)?.rows_affected() == 1)
    }

    async fn record_audit(&self, events: Vec<AuditEvent>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.write(|reply| WriteOp::Audit { events, reply }).await
    }

    async fn list_expiring_long_tokens(
        &self,
        now: i64,
        until: i64,
        longer_than: i64,
    ) -> Result<Vec<LongToken>, StoreError> {
        let query = sqlx::query_as(sql::LIST_EXPIRING_LONG).bind(now).bind(until).bind(longer_than);
        let rows: Vec<LongTokenRow> = query.fetch_all(&self.pool).await.map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn list_unwarned_expiring(&self, now: i64, lead_secs: i64) -> Result<Vec<LongToken>, StoreError> {
        let query = sqlx::query_as(sql::LIST_UNWARNED_EXPIRING_LONG).bind(now).bind(lead_secs);
        let rows: Vec<LongTokenRow> = query.fetch_all(&self.pool).await.map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn warn_expiring(&self, token: &LongTokenId, lead_secs: i64, event: AuditEvent) -> Result<bool, StoreError> {
        let token = token.to_string();
        self.write(|reply| WriteOp::WarnExpiring { token, lead_secs, event, reply }).await
    }

    async fn record_last_use(&self, uses: LastUses) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        self.write(|reply| WriteOp::LastUse { uses, reply }).await
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let query =
            sqlx::query_as(sql::LIST_AUDIT).bind(q.after_id).bind(&q.client_id).bind(q.since).bind(i64::from(q.limit));
        let rows: Vec<AuditRow> = query.fetch_all(&self.pool).await.map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn list_audit_page(&self, p: &AuditPage) -> Result<Vec<AuditRecord>, StoreError> {
        let query = sqlx::query_as(sql::LIST_AUDIT_PAGE)
            .bind(p.before_id)
            .bind(&p.client_id)
            .bind(&p.event)
            .bind(&p.outcome)
            .bind(p.since)
            .bind(i64::from(p.limit));
        let rows: Vec<AuditRow> = query.fetch_all(&self.pool).await.map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn count_audit(&self, since_ms: i64, bucket_ms: i64) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let query = sqlx::query_as(sql::COUNT_AUDIT).bind(since_ms).bind(bucket_ms.max(1));
        query.fetch_all(&self.pool).await.map_err(map_err)
    }

    async fn list_audit_tallies(&self, since_ms: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let query = sqlx::query_as(sql::LIST_AUDIT_TALLIES).bind(since_ms).bind(i64::from(limit));
        let rows: Vec<AuditRow> = query.fetch_all(&self.pool).await.map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn purge_audit(&self, before: i64, batch: u32) -> Result<u64, StoreError> {
        let query = sqlx::query(sql::PURGE_AUDIT).bind(before).bind(i64::from(batch));
        Ok(query.execute(&self.pool).await.map_err(map_err)?.rows_affected())
    }

    async fn purge_expired(&self, now: i64, long_before: i64, batch: u32) -> Result<Purged, StoreError> {
        let purge = |sql: &'static str, before: i64| {
            let query = sqlx::query(sql).bind(before).bind(i64::from(batch));
            async move { query.execute(&self.pool).await.map(|r| r.rows_affected()).map_err(map_err) }
        };
        Ok(Purged {
            long_tokens: purge(sql::PURGE_LONG, long_before).await?,
            revoked_short_tokens: purge(sql::PURGE_SHORT, now).await?,
            used_assertions: purge(sql::PURGE_JTIS, now).await?,
            limits: purge(sql::PURGE_LIMITS, clock::millis(now)).await?,
            webhook_deliveries: purge(sql::PURGE_DELIVERIES, clock::millis(long_before)).await?,
        })
    }

    async fn record_failure(&self, counters: &[FailureCounter], now_ms: i64) -> Result<FailureRecorded, StoreError> {
        let counters = counters.to_vec();
        self.write(|reply| WriteOp::RecordFailure { counters, now_ms, reply }).await
    }

    async fn changed_locks(&self, since_ms: i64) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as(sql::CHANGED_LOCKS).bind(since_ms).fetch_all(&self.pool).await.map_err(map_err)
    }

    async fn reset_limits(&self, keys: &[String], now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for key in keys {
            let query = sqlx::query(sql::RESET_LIMIT).bind(key).bind(now_ms).bind(now_ms + RESET_VISIBLE_MS);
            query.execute(&mut *tx).await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    // ----- admin listings and changes (the command line) -----

    async fn list_current_long_tokens(
        &self,
        client: Option<&ClientId>,
        now: i64,
    ) -> Result<Vec<LongToken>, StoreError> {
        let rows: Vec<LongTokenRow> = match client {
            Some(c) => {
                let query = sqlx::query_as(sql::LIST_CURRENT_LONG_OF_CLIENT).bind(now).bind(c.as_str());
                query.fetch_all(&self.pool).await
            }
            None => sqlx::query_as(sql::LIST_CURRENT_LONG).bind(now).fetch_all(&self.pool).await,
        }
        .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn set_client_public_key(
        &self,
        id: &ClientId,
        public_key: &str,
        alg: &str,
        replace: bool,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(sql::SET_CLIENT_PUBLIC_KEY).bind(public_key).bind(alg).bind(id.as_str()).bind(replace);
        Ok(query.execute(&self.pool).await.map_err(map_err)?.rows_affected() == 1)
    }

    async fn insert_issuer(&self, issuer: &TrustedIssuer, event: AuditEvent) -> Result<bool, StoreError> {
        self.change_one_with_event(sql::insert_issuer!(issuer), &event).await
    }

    async fn list_issuers(&self) -> Result<Vec<TrustedIssuer>, StoreError> {
        let rows: Vec<IssuerRow> = sqlx::query_as(sql::LIST_ISSUERS).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn remove_issuer(&self, name: &IssuerName, event: AuditEvent) -> Result<bool, StoreError> {
        self.change_one_with_event(sqlx::query(sql::REMOVE_ISSUER).bind(name.as_str()), &event).await
    }

    async fn insert_federation_rule(
        &self,
        rule: &FederationRule,
        created_at: i64,
        event: AuditEvent,
    ) -> Result<(), StoreError> {
        self.change_one_with_event(sql::insert_rule!(rule, created_at), &event).await.map(drop)
    }

    async fn list_federation_rules(&self, client: Option<&ClientId>) -> Result<Vec<FederationRule>, StoreError> {
        let rows: Vec<RuleRow> = match client {
            Some(c) => sqlx::query_as(sql::LIST_RULES_OF_CLIENT).bind(c.as_str()).fetch_all(&self.pool).await,
            None => sqlx::query_as(sql::LIST_RULES).fetch_all(&self.pool).await,
        }
        .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn remove_federation_rule(&self, id: &str, event: AuditEvent) -> Result<bool, StoreError> {
        self.change_one_with_event(sqlx::query(sql::REMOVE_RULE).bind(id), &event).await
    }

    async fn insert_webhook(&self, w: &Webhook, max: u32, event: AuditEvent) -> Result<bool, StoreError> {
        // The insert is the transaction's first statement, so it holds the write lock while it
        // counts: two adds at once are counted one after the other.
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let insert = sqlx::query(sql::INSERT_WEBHOOK).bind(w.id.as_str()).bind(&w.url).bind(&w.secret_sealed);
        let query = insert.bind(w.created_at).bind(i64::from(max));
        if query.execute(&mut *tx).await.map_err(map_err)?.rows_affected() != 1 {
            return Ok(false);
        }
        for t in &w.events {
            let query = sqlx::query(sql::INSERT_WEBHOOK_EVENT).bind(w.id.as_str()).bind(t.as_str());
            query.execute(&mut *tx).await.map_err(map_err)?;
        }
        sql::record_event!(tx, event).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err).map(|()| true)
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let rows: Vec<WebhookRow> = sqlx::query_as(sql::LIST_WEBHOOKS).fetch_all(&self.pool).await.map_err(map_err)?;
        let events: Vec<(String, String)> =
            sqlx::query_as(sql::LIST_WEBHOOK_EVENTS).fetch_all(&self.pool).await.map_err(map_err)?;
        Ok(rows.into_iter().map(|r| r.into_webhook(&events)).collect())
    }

    async fn remove_webhook(&self, id: &WebhookId, event: AuditEvent) -> Result<bool, StoreError> {
        self.change_one_with_event(sqlx::query(sql::REMOVE_WEBHOOK).bind(id.as_str()), &event).await
    }

    async fn any_delivery_due(&self, now: i64) -> Result<bool, StoreError> {
        let due = sqlx::query(sql::ANY_DUE_DELIVERY).bind(now).fetch_optional(&self.pool).await.map_err(map_err)?;
        Ok(due.is_some())
    }

    async fn claim_deliveries(
        &self,
        webhook: &WebhookId,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        // A read first: a receiver with nothing due costs no write lock.
        let due = sqlx::query(sql::ANY_DUE_DELIVERY_OF).bind(now).bind(webhook.as_str());
        if due.fetch_optional(&self.pool).await.map_err(map_err)?.is_none() {
            return Ok(Vec::new());
        }
        let webhook = webhook.as_str().to_owned();
        let rows = self.write(|reply| WriteOp::ClaimDeliveries { webhook, now, lease_until, limit, reply }).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn update_delivery(&self, d: &Delivery, update: &DeliveryUpdate) -> Result<bool, StoreError> {
        let (d, update) = (d.clone(), update.clone());
        self.write(|reply| WriteOp::UpdateDelivery { delivery: d, update, reply }).await
    }

    async fn list_deliveries(&self, q: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
        let query = sqlx::query_as(sql::LIST_DELIVERIES)
            .bind(q.webhook.as_ref().map(WebhookId::as_str))
            .bind(q.status.map(|s| s.as_str()))
            .bind(i64::from(q.limit));
        let rows: Vec<DeliveryRow> = query.fetch_all(&self.pool).await.map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn redeliver(&self, message: &MessageId, webhook: Option<&WebhookId>, now: i64) -> Result<u64, StoreError> {
        let query = sqlx::query(sql::REDELIVER).bind(message.as_str()).bind(now).bind(webhook.map(WebhookId::as_str));
        Ok(query.execute(&self.pool).await.map_err(map_err)?.rows_affected())
    }
}

impl SqliteStore {
    /// Runs `query` and, if it changed exactly one row, records `event` in the same
    /// transaction; `false` (nothing written) otherwise. For the operator's rare changes.
    async fn change_one_with_event(
        &self,
        query: sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if query.execute(&mut *tx).await.map_err(map_err)?.rows_affected() != 1 {
            return Ok(false);
        }
        sql::record_event!(tx, *event).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err).map(|()| true)
    }
}

// ----- group commit -------------------------------------------------------------------------

/// Most writes that may wait for one commit together.
const MAX_GROUP: usize = 256;
const WRITE_QUEUE: usize = 4096;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// What an insert of a long-term token did.
enum InsertOutcome {
    /// Inserted; the ids of the tokens whose end it brought forward (a rotation's target and
    /// its descendants).
    Inserted(Vec<String>),
    RotationTargetNotLive,
    ParentNotLive,
}

/// A write of the request path. Each is one atomic step; the writer runs a group of them in
/// one transaction and answers none before the commit.
enum WriteOp {
    InsertLong {
        token: NewLongToken,
        rotation: Option<Rotation>,
        now: i64,
        audit: AuditEvent,
        reply: Reply<InsertOutcome>,
    },
    /// Answers the ids of the tokens it revoked (the token and its descendants).
    RevokeLong {
        id: String,
        at: i64,
        audit: AuditEvent,
        reply: Reply<Vec<String>>,
    },
    RevokeShort {
        id: String,
        expires_at: i64,
        audit: AuditEvent,
        reply: Reply<()>,
    },
    ConsumeOtp {
        client: String,
        step: i64,
        reply: Reply<bool>,
    },
    ConsumeJti {
        client: String,
        jti: String,
        expires_at: i64,
        reply: Reply<bool>,
    },
    Audit {
        events: Vec<AuditEvent>,
        reply: Reply<()>,
    },
    LastUse {
        uses: LastUses,
        reply: Reply<()>,
    },
    WarnExpiring {
        token: String,
        lead_secs: i64,
        event: AuditEvent,
        reply: Reply<bool>,
    },
    RecordFailure {
        counters: Vec<FailureCounter>,
        now_ms: i64,
        reply: Reply<FailureRecorded>,
    },
    ClaimDeliveries {
        webhook: String,
        now: i64,
        lease_until: i64,
        limit: u32,
        reply: Reply<Vec<DeliveryRow>>,
    },
    UpdateDelivery {
        delivery: Delivery,
        update: DeliveryUpdate,
        reply: Reply<bool>,
    },
}

/// The answer of one op, held until its group commits: given the commit's outcome, it sends
/// the op's own result (or the commit's error) to the caller.
type Done = Box<dyn FnOnce(&Result<(), StoreError>) + Send>;

fn done<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Done {
    Box::new(move |commit| {
        // A receiver that went away (client disconnected) is not an error.
        let _ = reply.send(match commit {
            Ok(()) => result,
            Err(e) => Err(e.clone()),
        });
    })
}

/// Group commit: with `synchronous = FULL` every commit costs an fsync (about 1 ms here),
/// so committing the writes that queued up during the previous fsync together multiplies
/// durable throughput while each caller still gets its answer only after its data is on disk.
async fn group_commit(mut conn: SqliteConnection, mut rx: mpsc::Receiver<WriteOp>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut subscribed = Subscribed::Unknown;
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let mut answers = Vec::with_capacity(group.len());
        let begin = sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await.map(|_| ()).map_err(map_err);
        if let Err(e) = begin {
            for op in group.drain(..) {
                fail(op)(&Err(e.clone()));
            }
            continue;
        }
        let subs = subscribed.refresh(&mut conn).await;
        for op in group.drain(..) {
            answers.push(run_op(&mut conn, op, &subs).await);
        }
        let commit = sqlx::query("COMMIT").execute(&mut conn).await.map(|_| ()).map_err(map_err);
        if commit.is_err() {
            let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
        }
        for answer in answers {
            answer(&commit);
        }
    }
}

/// The event types receivers subscribe to, as the writer last read them, and when: the
/// writer skips the outbox's fan-out statement for the others (most writes, when no receiver
/// is registered). Receivers are added by other connections (the command line), so the set is
/// read again whenever `PRAGMA data_version` says another connection committed; the writer
/// reads it inside its `BEGIN IMMEDIATE` transaction, during which nobody else can commit, so
/// it is exact for the whole group.
enum Subscribed {
    Unknown,
    Read { data_version: i64, types: Arc<Types> },
}

/// A set of event types; `None`: every type (the set could not be read).
type Types = Option<std::collections::HashSet<String>>;

impl Subscribed {
    async fn refresh(&mut self, conn: &mut SqliteConnection) -> Arc<Types> {
        let version: Option<i64> = sqlx::query_scalar("PRAGMA data_version").fetch_one(&mut *conn).await.ok();
        if let (Some(v), Subscribed::Read { data_version, types }) = (version, &*self)
            && v == *data_version
        {
            return types.clone();
        }
        let read: Result<Vec<String>, _> = sqlx::query_scalar(sql::SUBSCRIBED_EVENT_TYPES).fetch_all(&mut *conn).await;
        match (version, read) {
            (Some(data_version), Ok(types)) => {
                let types = Arc::new(Some(types.into_iter().collect()));
                *self = Subscribed::Read { data_version, types: types.clone() };
                types
            }
            _ => {
                *self = Subscribed::Unknown;
                Arc::new(None)
            }
        }
    }
}

fn wants(types: &Types, event_type: &str) -> bool {
    types.as_ref().is_none_or(|t| t.contains(event_type))
}

/// An op's reply slot, for a group that failed as a whole (the commit's error is sent).
fn fail(op: WriteOp) -> Done {
    fn not_run<T>() -> Result<T, StoreError> {
        Err(StoreError::Backend("not run".into()))
    }
    match op {
        WriteOp::InsertLong { reply, .. } => done(reply, not_run()),
        WriteOp::RevokeLong { reply, .. } => done(reply, not_run()),
        WriteOp::ConsumeOtp { reply, .. } | WriteOp::ConsumeJti { reply, .. } => done(reply, not_run()),
        WriteOp::RevokeShort { reply, .. } | WriteOp::Audit { reply, .. } => done(reply, not_run()),
        WriteOp::LastUse { reply, .. } => done(reply, not_run()),
        WriteOp::WarnExpiring { reply, .. } => done(reply, not_run()),
        WriteOp::RecordFailure { reply, .. } => done(reply, not_run()),
        WriteOp::ClaimDeliveries { reply, .. } => done(reply, not_run()),
        WriteOp::UpdateDelivery { reply, .. } => done(reply, not_run()),
    }
}

/// Runs one op inside the group's transaction, in a savepoint, so that an op of several
/// statements (a rotation's update and insert, a write and its audit event) applies whole or
/// not at all while the rest of the group commits.
async fn run_op(conn: &mut SqliteConnection, op: WriteOp, subs: &Arc<Types>) -> Done {
    let s = subs.clone();
    match op {
        WriteOp::InsertLong { token, rotation, now, audit, reply } => {
            let inserted = |r: &Result<InsertOutcome, StoreError>| matches!(r, Ok(InsertOutcome::Inserted(_)));
            let r = in_savepoint(conn, |c| Box::pin(insert_long(c, token, rotation, now, audit, s)), inserted).await;
            done(reply, r)
        }
        WriteOp::RevokeLong { id, at, audit, reply } => {
            let r = in_savepoint(conn, |c| Box::pin(revoke_long(c, id, at, audit, s)), Result::is_ok).await;
            done(reply, r)
        }
        WriteOp::RevokeShort { id, expires_at, audit, reply } => {
            let r = in_savepoint(conn, |c| Box::pin(revoke_short(c, id, expires_at, audit, s)), Result::is_ok).await;
            done(reply, r)
        }
        WriteOp::Audit { events, reply } => {
            let r = in_savepoint(conn, |c| Box::pin(insert_audit(c, events, s)), Result::is_ok).await;
            done(reply, r)
        }
        WriteOp::LastUse { uses, reply } => {
            let r = in_savepoint(conn, |c| Box::pin(record_last_use(c, uses)), Result::is_ok).await;
            done(reply, r)
        }
        WriteOp::WarnExpiring { token, lead_secs, event, reply } => {
            let r = in_savepoint(conn, |c| Box::pin(warn_expiring(c, token, lead_secs, event, s)), Result::is_ok).await;
            done(reply, r)
        }
        WriteOp::RecordFailure { counters, now_ms, reply } => {
            let counted = |r: &Result<FailureRecorded, StoreError>| matches!(r, Ok(FailureRecorded::Counted { .. }));
            let r = in_savepoint(conn, |c| Box::pin(record_failure(c, counters, now_ms, s)), counted).await;
            done(reply, r)
        }
        WriteOp::ClaimDeliveries { webhook, now, lease_until, limit, reply } => {
            let query =
                sqlx::query_as(sql::CLAIM_DELIVERIES).bind(now).bind(lease_until).bind(i64::from(limit)).bind(webhook);
            done(reply, query.fetch_all(&mut *conn).await.map_err(map_err))
        }
        WriteOp::UpdateDelivery { delivery: d, update: u, reply } => {
            let query = sqlx::query(sql::UPDATE_DELIVERY)
                .bind(d.message_id.as_str())
                .bind(d.webhook_id.as_str())
                .bind(u.status.as_str())
                .bind(u.next_attempt_at)
                .bind(u.last_error)
                .bind(u.finished_at)
                .bind(i64::from(d.attempts));
            done(reply, query.execute(&mut *conn).await.map(|r| r.rows_affected() == 1).map_err(map_err))
        }
        WriteOp::ConsumeOtp { client, step, reply } => {
            let r = sqlx::query(sql::CONSUME_OTP_STEP).bind(step).bind(client).execute(&mut *conn).await;
            done(reply, r.map(|r| r.rows_affected() == 1).map_err(map_err))
        }
        WriteOp::ConsumeJti { client, jti, expires_at, reply } => {
            let query = sqlx::query(sql::CONSUME_JTI).bind(client).bind(jti).bind(expires_at);
            let r = query.execute(&mut *conn).await;
            done(reply, r.map(|r| r.rows_affected() == 1).map_err(map_err))
        }
    }
}

type OpFuture<'c, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'c>>;

/// Runs `op` in a savepoint: released when `keep` says so, rolled back to otherwise.
async fn in_savepoint<T>(
    conn: &mut SqliteConnection,
    op: impl for<'c> FnOnce(&'c mut SqliteConnection) -> OpFuture<'c, T>,
    keep: impl FnOnce(&Result<T, StoreError>) -> bool,
) -> Result<T, StoreError> {
    sqlx::query("SAVEPOINT op").execute(&mut *conn).await.map_err(map_err)?;
    let r = op(&mut *conn).await;
    let end = if keep(&r) { "RELEASE op" } else { "ROLLBACK TO op; RELEASE op" };
    let _ = sqlx::raw_sql(end).execute(&mut *conn).await;
    r
}

async fn warn_expiring(
    conn: &mut SqliteConnection,
    token: String,
    lead_secs: i64,
    event: AuditEvent,
    subs: Arc<Types>,
) -> Result<bool, StoreError> {
    let query = sqlx::query(sql::WARN_EXPIRING).bind(token).bind(lead_secs);
    if query.execute(&mut *conn).await.map_err(map_err)?.rows_affected() == 0 {
        return Ok(false);
    }
    sql::record_event!(conn, event, |t: &str| wants(&subs, t)).await.map_err(map_err)?;
    Ok(true)
}

async fn record_last_use(conn: &mut SqliteConnection, uses: LastUses) -> Result<(), StoreError> {
    for (id, at) in &uses.tokens {
        sqlx::query(sql::TOKEN_LAST_USED).bind(at).bind(id.to_string()).execute(&mut *conn).await.map_err(map_err)?;
    }
    for (id, at) in &uses.clients {
        sqlx::query(sql::CLIENT_LAST_USED).bind(at).bind(id.as_str()).execute(&mut *conn).await.map_err(map_err)?;
    }
    Ok(())
}

async fn insert_audit(
    conn: &mut SqliteConnection,
    events: Vec<AuditEvent>,
    subs: Arc<Types>,
) -> Result<(), StoreError> {
    for e in &events {
        sql::record_event!(conn, *e, |t: &str| wants(&subs, t)).await.map_err(map_err)?;
    }
    Ok(())
}

/// Revokes a long-term token and every token descended from it at `at` (each unless already
/// revoked at or before `at`); returns the ids it changed. One statement: the writer is the
/// only one, so no insert can slip in between.
async fn revoke_lineage(conn: &mut SqliteConnection, id: &str, at: i64) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "WITH RECURSIVE lineage(id) AS (SELECT $1 UNION SELECT t.id FROM long_tokens t JOIN lineage l ON t.parent_id = l.id) \
         UPDATE long_tokens SET revoked_at = $2 WHERE id IN (SELECT id FROM lineage) AND (revoked_at IS NULL OR revoked_at > $2) \
         RETURNING id",
    )
    .bind(id)
    .bind(at)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)
}

async fn revoke_long(
    conn: &mut SqliteConnection,
    id: String,
    at: i64,
    audit: AuditEvent,
    subs: Arc<Types>,
) -> Result<Vec<String>, StoreError> {
    let revoked = revoke_lineage(conn, &id, at).await?;
    let cascade = revoked.iter().filter(|r| **r != id).count();
    sql::record_event!(conn, audit.with_cascade(cascade), |t: &str| wants(&subs, t)).await.map_err(map_err)?;
    Ok(revoked)
}

async fn revoke_short(
    conn: &mut SqliteConnection,
    id: String,
    expires_at: i64,
    audit: AuditEvent,
    subs: Arc<Types>,
) -> Result<(), StoreError> {
    sqlx::query(sql::REVOKE_SHORT).bind(id).bind(expires_at).execute(&mut *conn).await.map_err(map_err)?;
    sql::record_event!(conn, audit, |t: &str| wants(&subs, t)).await.map_err(map_err)
}

/// The parent check, the rotation (a conditional update and the cascade to the rotated
/// token's descendants), the insert and its audit event.
async fn insert_long(
    conn: &mut SqliteConnection,
    t: NewLongToken,
    rotation: Option<Rotation>,
    now: i64,
    audit: AuditEvent,
    subs: Arc<Types>,
) -> Result<InsertOutcome, StoreError> {
    if let Some(parent) = t.parent {
        let query = sqlx::query(sql::LIVE_PARENT).bind(parent.to_string()).bind(t.client_id.as_str()).bind(now);
        if query.fetch_optional(&mut *conn).await.map_err(map_err)?.is_none() {
            return Ok(InsertOutcome::ParentNotLive);
        }
    }
    let mut ended = Vec::new();
    let mut audit = audit;
    if let Some(rot) = rotation {
        if sql::rotate_target!(t, rot, now).execute(&mut *conn).await.map_err(map_err)?.rows_affected() != 1 {
            return Ok(InsertOutcome::RotationTargetNotLive);
        }
        let old = rot.old.to_string();
        ended = revoke_lineage(conn, &old, rot.revoke_at).await?;
        audit = audit.with_cascade(ended.iter().filter(|e| **e != old).count());
        ended.push(old);
    }
    sql::insert_long!(t).execute(&mut *conn).await.map_err(map_err)?;
    sql::record_event!(conn, audit, |t: &str| wants(&subs, t)).await.map_err(map_err)?;
    Ok(InsertOutcome::Inserted(ended))
}

/// Reads the counters' rows, applies the failure (`apply_failure`) and writes them back; the
/// writer is the only one, so nothing changes in between.
async fn record_failure(
    conn: &mut SqliteConnection,
    counters: Vec<FailureCounter>,
    now_ms: i64,
    subs: Arc<Types>,
) -> Result<FailureRecorded, StoreError> {
    let mut rows = Vec::with_capacity(counters.len());
    for counter in &counters {
        sqlx::query(sql::ENSURE_LIMIT_ROW).bind(&counter.key).execute(&mut *conn).await.map_err(map_err)?;
        let query = sqlx::query_as(sql::GET_LIMIT_ROW).bind(&counter.key);
        rows.push(query.fetch_one(&mut *conn).await.map_err(map_err)?);
    }
    let writes = match apply_failure(&counters, &rows, now_ms) {
        Ok(writes) => writes,
        Err(refused) => return Ok(refused),
    };
    for row in &writes.rows {
        sql::update_limit_row!(row).execute(&mut *conn).await.map_err(map_err)?;
    }
    for e in &writes.events {
        sql::record_event!(conn, *e, |t: &str| wants(&subs, t)).await.map_err(map_err)?;
    }
    Ok(FailureRecorded::Counted { locked: writes.locked })
}
