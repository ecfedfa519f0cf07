//! The SQLite store: one file, zero setup, WAL mode.
//!
//! Durability: `synchronous = FULL` makes every commit reach the disk before the call
//! returns, so a 201 or 204 survives `kill -9` and power loss alike. Writers serialise on
//! SQLite's lock; `busy_timeout` turns contention into waiting, not errors.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::ConnectOptions;
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot};

use super::rows::{AuditRow, ClientRow, LongTokenRow, SigningKeyRow, long_ids};
use super::{
    AuditEvent, AuditQuery, AuditRecord, ClientRecord, ConnectError, FailureCounter, FailureRecorded, InsertError,
    LimitRow, LongTokenRecord, NewLongToken, Purged, RESET_VISIBLE_MS, Rotation, SigningKeyRecord, Store, StoreError,
    apply_failure,
};
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

    async fn insert_long(
        &self,
        t: &NewLongToken,
        rotation: Option<Rotation>,
        now: i64,
        audit: Option<AuditEvent>,
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

/// The long-token columns with the owner's `disabled` flag, followed by `$tail`. A macro so
/// that every query stays a static string (sqlx refuses dynamic SQL).
macro_rules! long_select {
    ($tail:literal) => {
        concat!(
            "SELECT t.id, t.client_id, t.scopes, t.name, t.issued_at, t.expires_at, t.revoked_at, t.parent_id, ",
            "c.disabled AS client_disabled FROM long_tokens t JOIN clients c ON c.id = t.client_id ",
            $tail
        )
    };
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn insert_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO clients (id, name, scopes, secret_hash, otp_seed_sealed, otp_last_step, public_key, \
             public_key_alg, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(c.id.as_str())
        .bind(&c.name)
        .bind(c.scopes.to_space_separated())
        .bind(&c.secret_hash)
        .bind(&c.otp_seed_sealed)
        .bind(c.otp_last_step)
        .bind(&c.public_key)
        .bind(&c.public_key_alg)
        .bind(c.disabled)
        .bind(c.created_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_client(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        let row: Option<ClientRow> = sqlx::query_as("SELECT * FROM clients WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let rows: Vec<ClientRow> = sqlx::query_as("SELECT * FROM clients ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn set_client_disabled(&self, id: &ClientId, disabled: bool) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE clients SET disabled = ? WHERE id = ?")
            .bind(disabled)
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_client_otp(&self, id: &ClientId, sealed: Option<&[u8]>) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE clients SET otp_seed_sealed = ?1, otp_last_step = 0 WHERE id = ?2")
            .bind(sealed)
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
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
    ) -> Result<(), InsertError> {
        self.insert_long(t, rotation, now, None).await.map(drop)
    }

    async fn find_long_token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<LongTokenRecord>, StoreError> {
        let row: Option<LongTokenRow> = sqlx::query_as(long_select!("WHERE t.token_hash = ?"))
            .bind(&hash[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn get_long_token(&self, id: &LongTokenId) -> Result<Option<LongTokenRecord>, StoreError> {
        let row: Option<LongTokenRow> = sqlx::query_as(long_select!("WHERE t.id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_long_tokens(&self, client: Option<&ClientId>) -> Result<Vec<LongTokenRecord>, StoreError> {
        let rows: Vec<LongTokenRow> = match client {
            Some(c) => {
                sqlx::query_as(long_select!("WHERE t.client_id = ? ORDER BY t.issued_at, t.id"))
                    .bind(c.as_str())
                    .fetch_all(&self.pool)
                    .await
            }
            None => sqlx::query_as(long_select!("ORDER BY t.issued_at, t.id")).fetch_all(&self.pool).await,
        }
        .map_err(map_err)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn revoke_long_token(&self, id: &LongTokenId, at: i64) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(|reply| WriteOp::RevokeLong { id, at, audit: None, reply }).await.map(drop)
    }

    async fn revoke_short_token(&self, id: &ShortTokenId) -> Result<(), StoreError> {
        let (id, expires_at) = (id.as_str().to_owned(), id.expires_at);
        self.write(|reply| WriteOp::RevokeShort { id, expires_at, audit: None, reply }).await
    }

    async fn insert_long_token_audited(
        &self,
        t: &NewLongToken,
        rotation: Option<Rotation>,
        now: i64,
        event: AuditEvent,
    ) -> Result<Vec<LongTokenId>, InsertError> {
        self.insert_long(t, rotation, now, Some(event)).await
    }

    async fn revoke_long_token_audited(
        &self,
        id: &LongTokenId,
        at: i64,
        event: AuditEvent,
    ) -> Result<Vec<LongTokenId>, StoreError> {
        let (id, audit) = (id.to_string(), Some(event));
        let revoked = self.write(|reply| WriteOp::RevokeLong { id, at, audit, reply }).await?;
        long_ids(&revoked)
    }

    async fn revoke_short_token_audited(&self, id: &ShortTokenId, event: AuditEvent) -> Result<(), StoreError> {
        let (id, expires_at, audit) = (id.as_str().to_owned(), id.expires_at, Some(event));
        self.write(|reply| WriteOp::RevokeShort { id, expires_at, audit, reply }).await
    }

    async fn is_short_token_revoked(&self, id: &ShortTokenId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM revoked_short_tokens WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(row.is_some())
    }

    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows: Vec<SigningKeyRow> = sqlx::query_as(
            "SELECT kid, alg, key_sealed, created_at, activates_at, retired_at FROM signing_keys \
             ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn insert_signing_key(&self, k: &SigningKeyRecord) -> Result<(), StoreError> {
        insert_signing_key(&self.pool, k).await
    }

    async fn rotate_signing_key(&self, k: &SigningKeyRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(
            "UPDATE signing_keys SET retired_at = ?1 WHERE alg = ?2 AND (retired_at IS NULL OR retired_at > ?1)",
        )
        .bind(k.activates_at.max(k.created_at))
        .bind(&k.alg)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_signing_key(&mut *tx, k).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn rotate_client_secret(
        &self,
        id: &ClientId,
        new_hash: &[u8],
        previous_until: Option<i64>,
    ) -> Result<bool, StoreError> {
        // The right-hand sides read the row as it was, so the old hash moves over.
        let r = sqlx::query(
            "UPDATE clients SET previous_secret_hash = CASE WHEN ?1 IS NULL THEN NULL ELSE secret_hash END, \
             previous_secret_expires_at = ?1, secret_hash = ?2 WHERE id = ?3",
        )
        .bind(previous_until)
        .bind(new_hash)
        .bind(id.as_str())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn record_audit(&self, events: Vec<AuditEvent>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.write(|reply| WriteOp::Audit { events, reply }).await
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at, event, outcome, client_id, token_id, source, mechanism, reason, detail \
             FROM audit_events WHERE id > ?1 AND (?2 IS NULL OR client_id = ?2) AND (?3 IS NULL OR at >= ?3) \
             ORDER BY id LIMIT ?4",
        )
        .bind(q.after_id)
        .bind(&q.client_id)
        .bind(q.since)
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn purge_audit(&self, before: i64, batch: u32) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < ? ORDER BY id LIMIT ?)",
        )
        .bind(before)
        .bind(batch)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected())
    }

    async fn purge_expired(&self, now: i64, long_before: i64, batch: u32) -> Result<Purged, StoreError> {
        // Bounded batches keep each write transaction short, so requests never wait long
        // behind the cleanup.
        let long = sqlx::query(
            "DELETE FROM long_tokens WHERE id IN (SELECT id FROM long_tokens WHERE expires_at < ? LIMIT ?)",
        )
        .bind(long_before)
        .bind(batch)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        let short = sqlx::query(
            "DELETE FROM revoked_short_tokens WHERE id IN (SELECT id FROM revoked_short_tokens WHERE expires_at < ? LIMIT ?)",
        )
        .bind(now)
        .bind(batch)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        let jtis = sqlx::query(
            "DELETE FROM used_assertions WHERE rowid IN (SELECT rowid FROM used_assertions WHERE expires_at < ? LIMIT ?)",
        )
        .bind(now)
        .bind(batch)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        let limits = sqlx::query(
            "DELETE FROM auth_limits WHERE key IN (SELECT key FROM auth_limits WHERE expires_at < ? LIMIT ?)",
        )
        .bind(now * 1000)
        .bind(batch)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(Purged {
            long_tokens: long.rows_affected(),
            revoked_short_tokens: short.rows_affected(),
            used_assertions: jtis.rows_affected(),
            limits: limits.rows_affected(),
        })
    }

    async fn record_failure(&self, counters: &[FailureCounter], now_ms: i64) -> Result<FailureRecorded, StoreError> {
        let counters = counters.to_vec();
        self.write(|reply| WriteOp::RecordFailure { counters, now_ms, reply }).await
    }

    async fn changed_locks(&self, since_ms: i64) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as("SELECT key, locked_until FROM auth_limits WHERE changed_at >= ?")
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn reset_limits(&self, keys: &[String], now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for key in keys {
            sqlx::query(
                "UPDATE auth_limits SET recent = '', locked_until = 0, changed_at = ?2, \
                 expires_at = MAX(expires_at, ?3) WHERE key = ?1",
            )
            .bind(key)
            .bind(now_ms)
            .bind(now_ms + RESET_VISIBLE_MS)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    // ----- admin listings and changes (the command line) -----

    async fn list_current_long_tokens(
        &self,
        client: Option<&ClientId>,
        now: i64,
    ) -> Result<Vec<LongTokenRecord>, StoreError> {
        let rows: Vec<LongTokenRow> = match client {
            Some(c) => {
                sqlx::query_as(long_select!("WHERE t.client_id = ?1 AND t.expires_at > ?2 AND (t.revoked_at IS NULL OR t.revoked_at > ?2) ORDER BY t.issued_at, t.id"))
                    .bind(c.as_str())
                    .bind(now)
                    .fetch_all(&self.pool)
                    .await
            }
            None => sqlx::query_as(long_select!("WHERE t.expires_at > ?1 AND (t.revoked_at IS NULL OR t.revoked_at > ?1) ORDER BY t.issued_at, t.id")).bind(now).fetch_all(&self.pool).await,
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
        let r = sqlx::query(
            "UPDATE clients SET public_key = ?1, public_key_alg = ?2 WHERE id = ?3 AND (?4 OR public_key IS NULL)",
        )
        .bind(public_key)
        .bind(alg)
        .bind(id.as_str())
        .bind(replace)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }
}

async fn insert_signing_key<'e>(
    exec: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    k: &SigningKeyRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, key_sealed, created_at, activates_at, retired_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&k.kid)
    .bind(&k.alg)
    .bind(&k.key_sealed)
    .bind(k.created_at)
    .bind(k.activates_at)
    .bind(k.retired_at)
    .execute(exec)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn insert_audit(conn: &mut SqliteConnection, events: &[AuditEvent]) -> Result<(), StoreError> {
    for e in events {
        sqlx::query(
            "INSERT INTO audit_events (at, event, outcome, client_id, token_id, source, mechanism, reason, detail) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.at)
        .bind(&e.event)
        .bind(&e.outcome)
        .bind(&e.client_id)
        .bind(&e.token_id)
        .bind(&e.source)
        .bind(&e.mechanism)
        .bind(&e.reason)
        .bind(&e.detail)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    }
    Ok(())
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
        audit: Option<AuditEvent>,
        reply: Reply<InsertOutcome>,
    },
    /// Answers the ids of the tokens it revoked (the token and its descendants).
    RevokeLong {
        id: String,
        at: i64,
        audit: Option<AuditEvent>,
        reply: Reply<Vec<String>>,
    },
    RevokeShort {
        id: String,
        expires_at: i64,
        audit: Option<AuditEvent>,
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
    RecordFailure {
        counters: Vec<FailureCounter>,
        now_ms: i64,
        reply: Reply<FailureRecorded>,
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
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let mut answers = Vec::with_capacity(group.len());
        let begin = sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await.map(|_| ()).map_err(map_err);
        if let Err(e) = begin {
            for op in group.drain(..) {
                fail(op)(&Err(e.clone()));
            }
            continue;
        }
        for op in group.drain(..) {
            answers.push(run_op(&mut conn, op).await);
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
        WriteOp::RecordFailure { reply, .. } => done(reply, not_run()),
    }
}

/// Runs one op inside the group's transaction, in a savepoint, so that an op of several
/// statements (a rotation's update and insert, a write and its audit event) applies whole or
/// not at all while the rest of the group commits.
async fn run_op(conn: &mut SqliteConnection, op: WriteOp) -> Done {
    match op {
        WriteOp::InsertLong { token, rotation, now, audit, reply } => {
            // Anything but `Inserted` leaves nothing behind either.
            let r = in_savepoint(
                conn,
                |c| {
                    Box::pin(async move {
                        let outcome = insert_long(c, &token, rotation, now).await?;
                        if matches!(outcome, InsertOutcome::Inserted(_))
                            && let Some(e) = &audit
                        {
                            insert_audit(c, std::slice::from_ref(e)).await?;
                        }
                        Ok(outcome)
                    })
                },
                |r| matches!(r, Ok(InsertOutcome::Inserted(_))),
            )
            .await;
            done(reply, r)
        }
        WriteOp::Audit { events, reply } => {
            let r =
                in_savepoint(conn, |c| Box::pin(async move { insert_audit(c, &events).await }), Result::is_ok).await;
            done(reply, r)
        }
        WriteOp::RevokeLong { id, at, audit, reply } => {
            let r = in_savepoint(
                conn,
                |c| {
                    Box::pin(async move {
                        let revoked = revoke_lineage(c, &id, at).await?;
                        insert_audit(c, audit.as_slice()).await?;
                        Ok(revoked)
                    })
                },
                Result::is_ok,
            )
            .await;
            done(reply, r)
        }
        WriteOp::RevokeShort { id, expires_at, audit, reply } => {
            let r = in_savepoint(
                conn,
                |c| {
                    Box::pin(async move {
                        sqlx::query(
                            "INSERT INTO revoked_short_tokens (id, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                        )
                        .bind(id)
                        .bind(expires_at)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                        insert_audit(c, audit.as_slice()).await
                    })
                },
                Result::is_ok,
            )
            .await;
            done(reply, r)
        }
        WriteOp::RecordFailure { counters, now_ms, reply } => {
            let r = in_savepoint(
                conn,
                |c| Box::pin(async move { record_failure(c, &counters, now_ms).await }),
                |r| matches!(r, Ok(FailureRecorded::Counted { .. })),
            )
            .await;
            done(reply, r)
        }
        WriteOp::ConsumeOtp { client, step, reply } => {
            let r = sqlx::query("UPDATE clients SET otp_last_step = ?1 WHERE id = ?2 AND otp_last_step < ?1")
                .bind(step)
                .bind(client)
                .execute(&mut *conn)
                .await;
            done(reply, r.map(|r| r.rows_affected() == 1).map_err(map_err))
        }
        WriteOp::ConsumeJti { client, jti, expires_at, reply } => {
            let r = sqlx::query(
                "INSERT INTO used_assertions (client_id, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(client)
            .bind(jti)
            .bind(expires_at)
            .execute(&mut *conn)
            .await;
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

/// Revokes a long-term token and every token descended from it at `at` (each unless already
/// revoked at or before `at`); returns the ids it changed. One statement: the writer is the
/// only one, so no insert can slip in between.
async fn revoke_lineage(conn: &mut SqliteConnection, id: &str, at: i64) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "WITH RECURSIVE lineage(id) AS (SELECT ?1 UNION SELECT t.id FROM long_tokens t JOIN lineage l ON t.parent_id = l.id) \
         UPDATE long_tokens SET revoked_at = ?2 WHERE id IN (SELECT id FROM lineage) AND (revoked_at IS NULL OR revoked_at > ?2) \
         RETURNING id",
    )
    .bind(id)
    .bind(at)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_err)
}

/// The parent check, the rotation (a conditional update and the cascade to the rotated
/// token's descendants) and the insert.
async fn insert_long(
    conn: &mut SqliteConnection,
    t: &NewLongToken,
    rotation: Option<Rotation>,
    now: i64,
) -> Result<InsertOutcome, StoreError> {
    if let Some(parent) = t.parent {
        let live: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM long_tokens WHERE id = ?1 AND client_id = ?2 AND expires_at > ?3 \
             AND (revoked_at IS NULL OR revoked_at > ?3)",
        )
        .bind(parent.to_string())
        .bind(t.client_id.as_str())
        .bind(now)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        if live.is_none() {
            return Ok(InsertOutcome::ParentNotLive);
        }
    }
    let mut ended = Vec::new();
    if let Some(rot) = rotation {
        let r = sqlx::query(
            "UPDATE long_tokens SET revoked_at = MIN(COALESCE(revoked_at, ?1), ?1), replaced_by = ?2 \
             WHERE id = ?3 AND client_id = ?4 AND expires_at > ?5 AND (revoked_at IS NULL OR revoked_at > ?5) \
             AND replaced_by IS NULL",
        )
        .bind(rot.revoke_at)
        .bind(t.id.to_string())
        .bind(rot.old.to_string())
        .bind(t.client_id.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        if r.rows_affected() != 1 {
            return Ok(InsertOutcome::RotationTargetNotLive);
        }
        ended = revoke_lineage(conn, &rot.old.to_string(), rot.revoke_at).await?;
        ended.push(rot.old.to_string());
    }
    sqlx::query(
        "INSERT INTO long_tokens (id, client_id, token_hash, scopes, name, issued_at, expires_at, parent_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(t.id.to_string())
    .bind(t.client_id.as_str())
    .bind(&t.token_hash[..])
    .bind(t.scopes.to_space_separated())
    .bind(&t.name)
    .bind(t.issued_at)
    .bind(t.expires_at)
    .bind(t.parent.map(|p| p.to_string()))
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(InsertOutcome::Inserted(ended))
}

/// Reads the counters' rows, applies the failure (`apply_failure`) and writes them back; the
/// writer is the only one, so nothing changes in between.
async fn record_failure(
    conn: &mut SqliteConnection,
    counters: &[FailureCounter],
    now_ms: i64,
) -> Result<FailureRecorded, StoreError> {
    let mut rows = Vec::with_capacity(counters.len());
    for counter in counters {
        let row: Option<LimitRow> =
            sqlx::query_as("SELECT key, recent, locked_until, changed_at, expires_at FROM auth_limits WHERE key = ?")
                .bind(&counter.key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(map_err)?;
        rows.extend(row);
    }
    let writes = match apply_failure(counters, &rows, now_ms) {
        Ok(writes) => writes,
        Err(refused) => return Ok(refused),
    };
    for row in &writes.rows {
        sqlx::query(
            "INSERT INTO auth_limits (key, recent, locked_until, changed_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (key) DO UPDATE SET recent = excluded.recent, locked_until = excluded.locked_until, \
             changed_at = excluded.changed_at, expires_at = excluded.expires_at",
        )
        .bind(&row.key)
        .bind(&row.recent)
        .bind(row.locked_until)
        .bind(row.changed_at)
        .bind(row.expires_at)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    }
    Ok(FailureRecorded::Counted { locked: writes.locked })
}
