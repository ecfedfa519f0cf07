//! The PostgreSQL store: one database shared by any number of tokensmith instances.
//!
//! Every method is one statement in autocommit, or (rotation) one short transaction, run on a
//! pool: PostgreSQL commits concurrent writers itself, so unlike the SQLite store there is no
//! writer task. The single-use checks are conditional writes (`UPDATE … WHERE otp_last_step <
//! $1`, `INSERT … ON CONFLICT DO NOTHING`) whose row count is the answer, so they hold across
//! instances. The SQL stays within what CockroachDB and YugabyteDB also accept: no advisory
//! locks (the migrations run without sqlx's lock, see [`PgStore::connect`]), no `rowid`, no
//! notifications.
//!
//! Durability: a statement returns after PostgreSQL committed it (`synchronous_commit` is the
//! server's business; its default, `on`, flushes the WAL before the commit is acknowledged).

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use super::rows::{
    AuditRow, ClientRow, DeliveryRow, IssuerRow, LongTokenRow, RuleRow, SigningKeyRow, WebhookRow, long_ids,
};
use super::sql;
use super::{
    AuditEvent, AuditPage, AuditQuery, AuditRecord, Client, ConnectError, Delivery, DeliveryQuery, DeliveryUpdate,
    FailureCounter, FailureRecorded, FederationRule, InsertError, IssuerName, LastUses, LimitRow, LongToken, MessageId,
    NewLongToken, Purged, RESET_VISIBLE_MS, Rotation, SigningKeyRecord, Store, StoreError, TrustedIssuer, Webhook,
    WebhookId, apply_failure, redact_url,
};
use crate::clock;
use crate::domain::{ClientId, LongTokenId, ShortTokenId};

/// How long a request waits for a connection (including opening a new one) before the store
/// answers `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the first connection at startup may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections per instance. Several instances share one server: keep the product of this
/// and the instance count below the server's `max_connections`.
const MAX_CONNECTIONS: u32 = 16;
/// Attempts of a write that the database aborted for a serialization failure or a deadlock
/// (PostgreSQL's READ COMMITTED never aborts these statements; CockroachDB's SERIALIZABLE and
/// YugabyteDB's snapshot isolation may, under contention).
const WRITE_ATTEMPTS: u32 = 3;
/// Attempts of the migration when instances that start together race to apply it.
const MIGRATE_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// Whether a PostgreSQL error code (SQLSTATE) means "the database cannot serve this now;
/// retrying later may succeed" rather than "this request or the database is broken".
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") // connection exceptions
        || matches!(
            code,
            "57P01" // admin_shutdown (server stopping, pg_terminate_backend)
                | "57P02" // crash_shutdown
                | "57P03" // cannot_connect_now (starting up, recovery)
                | "53300" // too_many_connections
                | "40001" // serialization_failure
                | "40P01" // deadlock_detected
                | "40003" // statement_completion_unknown (CockroachDB: ambiguous commit)
                // Refused when the pool opens a new connection: the database was dropped or
                // renamed, does not accept connections now, or the credentials changed. The
                // server is up but this database cannot serve: unavailable, not a bug.
                | "3D000" // invalid_catalog_name
                | "55000" // object_not_in_prerequisite_state ("not currently accepting connections")
                | "28000" // invalid_authorization_specification
                | "28P01" // invalid_password
        )
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(d) if d.code().is_some_and(|c| is_unavailable_code(&c)) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Whether a failed write may simply be run again: the database rolled it back whole.
fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40001" | "40P01")))
}

/// Runs `write` (one statement or one transaction) again when the database aborted it for a
/// serialization failure or a deadlock, a bounded number of times. A re-run re-evaluates its
/// conditions against the committed state, so a single-use check still has one winner.
async fn retrying<T, F, Fut>(mut write: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Err(e) if attempt < WRITE_ATTEMPTS && is_retryable(&e) => {
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                attempt += 1;
            }
            r => return r.map_err(map_err),
        }
    }
}

impl PgStore {
    /// Connects (failing at once, with the server named, if it cannot be reached) and applies
    /// the migrations in `migrations/postgres`.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| ConnectError::Open(format!("invalid PostgreSQL URL {}: {e}", redact_url(url))))?
            .application_name("tokensmith");
        // One direct attempt first: the pool would retry until its timeout and then report
        // only "pool timed out", hiding the cause (refused, unknown host, bad password…).
        let cannot =
            |e: &dyn std::fmt::Display| ConnectError::Open(format!("cannot connect to {}: {e}", redact_url(url)));
        match tokio::time::timeout(CONNECT_TIMEOUT, opts.connect()).await {
            Ok(Ok(conn)) => drop(conn.close().await),
            Ok(Err(e)) => return Err(cannot(&e)),
            Err(_) => return Err(cannot(&format_args!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))),
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A connection the server closed (restart, pg_terminate_backend, failover) is
            // detected before use and replaced, so the service recovers by itself.
            .test_before_acquire(true)
            .connect_with(opts)
            .await
            .map_err(|e| ConnectError::Open(format!("cannot connect to {}: {e}", redact_url(url))))?;
        Self::migrate(&pool).await?;
        Ok(PgStore { pool })
    }

    /// Applies the migrations without sqlx's advisory lock (CockroachDB has none, YugabyteDB
    /// not always). Instances starting together may race: each migration runs in one
    /// transaction with its bookkeeping row and its DDL is idempotent, so the loser fails (a
    /// catalog conflict or the bookkeeping row's key) and, retried, finds it applied.
    async fn migrate(pool: &PgPool) -> Result<(), ConnectError> {
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.set_locking(false);
        let mut attempt = 1;
        loop {
            match migrator.run(pool).await {
                Ok(()) => return Ok(()),
                Err(
                    e @ (sqlx::migrate::MigrateError::Execute(_) | sqlx::migrate::MigrateError::ExecuteMigration(..)),
                ) if attempt < MIGRATE_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "migration failed, retrying");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(e) => return Err(ConnectError::Migrate(e.to_string())),
            }
        }
    }

    /// The pool, for tests.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// What an insert of a long-term token did.
enum InsertOutcome {
    /// Inserted; the ids of the tokens whose end it brought forward.
    Inserted(Vec<String>),
    RotationTargetNotLive,
    ParentNotLive,
}

/// One pass of the cascade: revokes the token and every token descended from it at `$2`
/// (each unless already revoked at or before), returning the ids it changed.
const REVOKE_LINEAGE: &str = "WITH RECURSIVE lineage(id) AS (SELECT $1::TEXT COLLATE \"C\" \
     UNION SELECT t.id FROM long_tokens t JOIN lineage l ON t.parent_id = l.id) \
     UPDATE long_tokens SET revoked_at = $2 WHERE id IN (SELECT id FROM lineage) \
     AND (revoked_at IS NULL OR revoked_at > $2) RETURNING id";

/// Revokes a token and its lineage at `at`, inside the caller's transaction; returns the ids
/// it changed. Passes run until one changes nothing: a child inserted concurrently holds a
/// share lock on its parent (see `try_insert_long`), so the pass that updates the parent waits
/// for that insert to commit, and the next pass, with a fresh snapshot (READ COMMITTED), finds
/// the child. A child inserted after the parent's update waits for this transaction and then
/// finds its parent revoked.
async fn revoke_lineage(conn: &mut sqlx::PgConnection, id: &str, at: i64) -> Result<Vec<String>, sqlx::Error> {
    let mut revoked = Vec::new();
    loop {
        let pass: Vec<String> = sqlx::query_scalar(REVOKE_LINEAGE).bind(id).bind(at).fetch_all(&mut *conn).await?;
        if pass.is_empty() {
            return Ok(revoked);
        }
        revoked.extend(pass);
    }
}

impl PgStore {
    /// One attempt of `insert_long_token`: the parent check, the rotation's conditional update
    /// and cascade, the insert and its event, in one transaction. Anything but `Inserted` writes
    /// nothing.
    async fn try_insert_long(
        &self,
        t: &NewLongToken,
        rotation: Option<Rotation>,
        now: i64,
        audit: &AuditEvent,
    ) -> Result<InsertOutcome, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if let Some(parent) = t.parent {
            // FOR SHARE: the parent's revocation waits for this insert (see `revoke_lineage`).
            let query = sqlx::query(LIVE_PARENT_FOR_SHARE).bind(parent.to_string()).bind(t.client_id.as_str());
            if query.bind(now).fetch_optional(&mut *tx).await?.is_none() {
                tx.rollback().await?;
                return Ok(InsertOutcome::ParentNotLive);
            }
        }
        let mut ended = Vec::new();
        let mut audit = audit.clone();
        if let Some(rot) = rotation {
            // Under READ COMMITTED a concurrent rotation of the same token waits for this
            // row lock and then re-checks the WHERE clause against the committed row.
            if sql::rotate_target!(t, rot, now).execute(&mut *tx).await?.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(InsertOutcome::RotationTargetNotLive);
            }
            let old = rot.old.to_string();
            ended = revoke_lineage(&mut tx, &old, rot.revoke_at).await?;
            audit = audit.with_cascade(ended.iter().filter(|e| **e != old).count());
            ended.push(old);
        }
        sql::insert_long!(t).execute(&mut *tx).await?;
        sql::record_event!(tx, audit).await?;
        tx.commit().await?;
        Ok(InsertOutcome::Inserted(ended))
    }

    /// One attempt of `record_failure`: the counters' rows are created if missing and locked in
    /// key order (so two failures sharing keys never deadlock), then read, decided and written
    /// back in one transaction. Every instance's failures for one key queue on its row lock.
    async fn try_record_failure(
        &self,
        counters: &[FailureCounter],
        now_ms: i64,
    ) -> Result<FailureRecorded, sqlx::Error> {
        let mut keys: Vec<&str> = counters.iter().map(|c| c.key.as_str()).collect();
        keys.sort_unstable();
        let mut tx = self.pool.begin().await?;
        let mut rows: Vec<LimitRow> = Vec::with_capacity(keys.len());
        for key in keys {
            sqlx::query(sql::ENSURE_LIMIT_ROW).bind(key).execute(&mut *tx).await?;
            rows.push(sqlx::query_as(GET_LIMIT_ROW_FOR_UPDATE).bind(key).fetch_one(&mut *tx).await?);
        }
        let writes = match apply_failure(counters, &rows, now_ms) {
            Ok(writes) => writes,
            Err(refused) => {
                tx.rollback().await?;
                return Ok(refused);
            }
        };
        for row in &writes.rows {
            sql::update_limit_row!(row).execute(&mut *tx).await?;
        }
        for e in &writes.events {
            sql::record_event!(tx, *e).await?;
        }
        tx.commit().await?;
        Ok(FailureRecorded::Counted { locked: writes.locked })
    }

    /// Runs the query `make` builds and, if it changed exactly one row, records `event` in the
    /// same transaction; `false` (nothing written) otherwise. Retried on a serialization failure.
    async fn change_one_with_event<'q>(
        &self,
        make: impl Fn() -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            if make().execute(&mut *tx).await?.rows_affected() != 1 {
                return Ok(false);
            }
            sql::record_event!(tx, *event).await?;
            tx.commit().await.map(|()| true)
        })
        .await
    }

    /// Rows changed by a statement (`true` when exactly one).
    async fn changes_one(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<bool, StoreError> {
        Ok(query.execute(&self.pool).await.map_err(map_err)?.rows_affected() == 1)
    }
}

/// `LIVE_PARENT` with a share lock on the parent's row.
const LIVE_PARENT_FOR_SHARE: &str = concat!(
    "SELECT 1 FROM long_tokens WHERE id = $1 AND client_id = $2 AND expires_at > $3 ",
    "AND (revoked_at IS NULL OR revoked_at > $3) FOR SHARE"
);
/// `GET_LIMIT_ROW` with a lock on the counter's row until the transaction ends.
const GET_LIMIT_ROW_FOR_UPDATE: &str =
    "SELECT key, recent, locked_until, changed_at, expires_at FROM auth_limits WHERE key = $1 FOR UPDATE";

/// Last uses, a batch in one statement: `$1` ids, `$2` times (never moved backwards).
const PG_TOKENS_LAST_USED: &str = "UPDATE long_tokens t SET last_used_at = v.at \
     FROM unnest($1::text[], $2::bigint[]) AS v(id, at) \
     WHERE t.id = v.id AND (t.last_used_at IS NULL OR t.last_used_at < v.at)";
const PG_CLIENTS_LAST_USED: &str = "UPDATE clients c SET last_used_at = v.at \
     FROM unnest($1::text[], $2::bigint[]) AS v(id, at) \
     WHERE c.id = v.id AND (c.last_used_at IS NULL OR c.last_used_at < v.at)";

#[async_trait]
impl Store for PgStore {
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
        let query = || sqlx::query(sql::SET_CLIENT_DISABLED).bind(disabled).bind(id.as_str());
        self.change_one_with_event(query, &event).await
    }

    async fn set_client_otp(&self, id: &ClientId, sealed: Option<&[u8]>) -> Result<bool, StoreError> {
        self.changes_one(sqlx::query(sql::SET_CLIENT_OTP).bind(sealed).bind(id.as_str())).await
    }

    async fn consume_otp_step(&self, client: &ClientId, step: i64) -> Result<bool, StoreError> {
        // Concurrent callers with the same step queue on the row lock; each re-checks the
        // condition against the committed value, so exactly one sees a row updated.
        let r = retrying(|| sqlx::query(sql::CONSUME_OTP_STEP).bind(step).bind(client.as_str()).execute(&self.pool));
        Ok(r.await?.rows_affected() == 1)
    }

    async fn consume_assertion_jti(&self, client: &ClientId, jti: &str, expires_at: i64) -> Result<bool, StoreError> {
        let r = retrying(|| {
            sqlx::query(sql::CONSUME_JTI).bind(client.as_str()).bind(jti).bind(expires_at).execute(&self.pool)
        });
        Ok(r.await?.rows_affected() == 1)
    }

    async fn insert_long_token(
        &self,
        t: &NewLongToken,
        rotation: Option<Rotation>,
        now: i64,
        event: AuditEvent,
    ) -> Result<Vec<LongTokenId>, InsertError> {
        match retrying(|| self.try_insert_long(t, rotation, now, &event)).await? {
            InsertOutcome::Inserted(ended) => Ok(long_ids(&ended)?),
            InsertOutcome::RotationTargetNotLive => Err(InsertError::RotationTargetNotLive),
            InsertOutcome::ParentNotLive => Err(InsertError::ParentNotLive),
        }
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
        let id = id.to_string();
        let revoked = retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let revoked = revoke_lineage(&mut tx, &id, at).await?;
            let cascade = revoked.iter().filter(|r| **r != id).count();
            sql::record_event!(tx, event.clone().with_cascade(cascade)).await?;
            tx.commit().await?;
            Ok(revoked)
        })
        .await?;
        long_ids(&revoked)
    }

    async fn revoke_short_token(&self, id: &ShortTokenId, event: AuditEvent) -> Result<(), StoreError> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(sql::REVOKE_SHORT).bind(id.as_str()).bind(id.expires_at).execute(&mut *tx).await?;
            sql::record_event!(tx, event).await?;
            tx.commit().await
        })
        .await
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
        self.changes_one(query).await
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
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let inserted = sqlx::query(sql::WARN_EXPIRING).bind(&token).bind(lead_secs).execute(&mut *tx).await?;
            if inserted.rows_affected() == 0 {
                return Ok(false);
            }
            sql::record_event!(tx, event).await?;
            tx.commit().await.map(|()| true)
        })
        .await
    }

    async fn record_last_use(&self, uses: LastUses) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        // One statement per table, each on its own (every update is monotonic and idempotent,
        // so no transaction is needed, and no row lock outlives its statement).
        let (token_ids, token_ats): (Vec<String>, Vec<i64>) =
            uses.tokens.iter().map(|(id, at)| (id.to_string(), *at)).unzip();
        let (client_ids, client_ats): (Vec<String>, Vec<i64>) =
            uses.clients.iter().map(|(id, at)| (id.as_str().to_owned(), *at)).unzip();
        retrying(|| async {
            sqlx::query(PG_TOKENS_LAST_USED).bind(&token_ids).bind(&token_ats).execute(&self.pool).await?;
            sqlx::query(PG_CLIENTS_LAST_USED).bind(&client_ids).bind(&client_ats).execute(&self.pool).await.map(drop)
        })
        .await
    }

    async fn record_audit(&self, events: Vec<AuditEvent>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        // One transaction, so a group is recorded whole or not at all.
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            for e in &events {
                sql::record_event!(tx, *e).await?;
            }
            tx.commit().await
        })
        .await
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
        // Two instances purging at once delete disjoint or overlapping sets; a row already gone
        // is simply not counted twice.
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
        retrying(|| self.try_record_failure(counters, now_ms)).await
    }

    async fn changed_locks(&self, since_ms: i64) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as(sql::CHANGED_LOCKS).bind(since_ms).fetch_all(&self.pool).await.map_err(map_err)
    }

    async fn reset_limits(&self, keys: &[String], now_ms: i64) -> Result<(), StoreError> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            for key in keys {
                let query = sqlx::query(sql::RESET_LIMIT).bind(key).bind(now_ms).bind(now_ms + RESET_VISIBLE_MS);
                query.execute(&mut *tx).await?;
            }
            tx.commit().await
        })
        .await
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
        self.changes_one(query).await
    }

    async fn insert_issuer(&self, issuer: &TrustedIssuer, event: AuditEvent) -> Result<bool, StoreError> {
        self.change_one_with_event(|| sql::insert_issuer!(issuer), &event).await
    }

    async fn list_issuers(&self) -> Result<Vec<TrustedIssuer>, StoreError> {
        let rows: Vec<IssuerRow> = sqlx::query_as(sql::LIST_ISSUERS).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn remove_issuer(&self, name: &IssuerName, event: AuditEvent) -> Result<bool, StoreError> {
        self.change_one_with_event(|| sqlx::query(sql::REMOVE_ISSUER).bind(name.as_str()), &event).await
    }

    async fn insert_federation_rule(
        &self,
        rule: &FederationRule,
        created_at: i64,
        event: AuditEvent,
    ) -> Result<(), StoreError> {
        self.change_one_with_event(|| sql::insert_rule!(rule, created_at), &event).await.map(drop)
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
        self.change_one_with_event(|| sqlx::query(sql::REMOVE_RULE).bind(id), &event).await
    }

    async fn insert_webhook(&self, w: &Webhook, max: u32, event: AuditEvent) -> Result<bool, StoreError> {
        retrying(|| async {
            // Serializable: two adds that each count the others out conflict, and the retry
            // of the loser counts again.
            let mut tx = self.pool.begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").execute(&mut *tx).await?;
            let insert = sqlx::query(sql::INSERT_WEBHOOK).bind(w.id.as_str()).bind(&w.url).bind(&w.secret_sealed);
            let query = insert.bind(w.created_at).bind(i64::from(max));
            if query.execute(&mut *tx).await?.rows_affected() != 1 {
                return Ok(false);
            }
            for t in &w.events {
                sqlx::query(sql::INSERT_WEBHOOK_EVENT).bind(w.id.as_str()).bind(t.as_str()).execute(&mut *tx).await?;
            }
            sql::record_event!(tx, event).await?;
            tx.commit().await.map(|()| true)
        })
        .await
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let rows: Vec<WebhookRow> = sqlx::query_as(sql::LIST_WEBHOOKS).fetch_all(&self.pool).await.map_err(map_err)?;
        let events: Vec<(String, String)> =
            sqlx::query_as(sql::LIST_WEBHOOK_EVENTS).fetch_all(&self.pool).await.map_err(map_err)?;
        Ok(rows.into_iter().map(|r| r.into_webhook(&events)).collect())
    }

    async fn remove_webhook(&self, id: &WebhookId, event: AuditEvent) -> Result<bool, StoreError> {
        self.change_one_with_event(|| sqlx::query(sql::REMOVE_WEBHOOK).bind(id.as_str()), &event).await
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
        let due = sqlx::query(sql::ANY_DUE_DELIVERY_OF).bind(now).bind(webhook.as_str());
        if due.fetch_optional(&self.pool).await.map_err(map_err)?.is_none() {
            return Ok(Vec::new());
        }
        let rows: Vec<DeliveryRow> = retrying(|| {
            let query = sqlx::query_as(sql::PG_CLAIM_DELIVERIES).bind(now).bind(lease_until).bind(i64::from(limit));
            query.bind(webhook.as_str()).fetch_all(&self.pool)
        })
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn update_delivery(&self, d: &Delivery, u: &DeliveryUpdate) -> Result<bool, StoreError> {
        let query = sqlx::query(sql::UPDATE_DELIVERY)
            .bind(d.message_id.as_str())
            .bind(d.webhook_id.as_str())
            .bind(u.status.as_str())
            .bind(u.next_attempt_at)
            .bind(&u.last_error)
            .bind(u.finished_at)
            .bind(i64::from(d.attempts));
        self.changes_one(query).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_troubles_are_unavailable_and_the_rest_backend() {
        for code in ["08006", "08001", "57P01", "57P02", "57P03", "53300", "40001", "40P01", "40003"] {
            assert!(is_unavailable_code(code), "{code}");
        }
        for code in ["23505", "23503", "42P01", "42601", "22001", "53100", "57014"] {
            assert!(!is_unavailable_code(code), "{code}");
        }
        assert!(matches!(map_err(sqlx::Error::PoolTimedOut), StoreError::Unavailable(_)));
        assert!(matches!(map_err(sqlx::Error::PoolClosed), StoreError::Unavailable(_)));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(matches!(map_err(sqlx::Error::Io(io)), StoreError::Unavailable(_)));
        assert!(matches!(map_err(sqlx::Error::RowNotFound), StoreError::Backend(_)));
        assert!(matches!(map_err(sqlx::Error::Protocol("x".into())), StoreError::Backend(_)));
    }

    /// A database error with just a SQLSTATE, as the server would send.
    #[derive(Debug)]
    struct Sqlstate(&'static str);

    impl std::fmt::Display for Sqlstate {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "sqlstate {}", self.0)
        }
    }

    impl std::error::Error for Sqlstate {}

    impl sqlx::error::DatabaseError for Sqlstate {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn db_error(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Sqlstate(code)))
    }

    #[test]
    fn database_errors_map_by_sqlstate() {
        assert!(matches!(map_err(db_error("57P01")), StoreError::Unavailable(_)));
        assert!(matches!(map_err(db_error("08006")), StoreError::Unavailable(_)));
        assert!(matches!(map_err(db_error("40001")), StoreError::Unavailable(_)));
        assert!(matches!(map_err(db_error("23505")), StoreError::Backend(_)));
    }

    #[tokio::test]
    async fn aborted_writes_are_retried_a_bounded_number_of_times() {
        // Serialization failures and deadlocks: run again, then succeed.
        for code in ["40001", "40P01"] {
            let mut calls = 0;
            let r = retrying(|| {
                calls += 1;
                let fail = calls < WRITE_ATTEMPTS;
                async move { if fail { Err(db_error(code)) } else { Ok(calls) } }
            })
            .await;
            assert_eq!(r.unwrap(), WRITE_ATTEMPTS);
        }
        // Always aborted: give up after the last attempt, as Unavailable.
        let mut calls = 0;
        let r: Result<(), _> = retrying(|| {
            calls += 1;
            async { Err(db_error("40001")) }
        })
        .await;
        assert!(matches!(r, Err(StoreError::Unavailable(_))));
        assert_eq!(calls, WRITE_ATTEMPTS);
        // Anything else is not retried.
        let mut calls = 0;
        let r: Result<(), _> = retrying(|| {
            calls += 1;
            async { Err(db_error("23505")) }
        })
        .await;
        assert!(matches!(r, Err(StoreError::Backend(_))));
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_fast_with_a_clear_error() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let started = std::time::Instant::now();
        let err = PgStore::connect("postgres://tokensmith:secret@127.0.0.1:1/none").await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cannot connect to postgres://tokensmith:***@127.0.0.1:1/none"), "{msg}");
        assert!(msg.contains("refused"), "the cause is named: {msg}");
        assert!(!msg.contains("secret"), "{msg}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
