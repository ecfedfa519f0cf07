//! The SQLite store: one file, zero setup, WAL mode.
//!
//! Durability: `synchronous = FULL` makes every commit reach the disk before the call
//! returns, so a 201 or 204 survives `kill -9` and power loss alike. Writers serialise on
//! SQLite's lock; `busy_timeout` turns contention into waiting, not errors.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, Row};
use uuid::Uuid;

use super::{
    ClientRecord, ConnectError, InsertError, LongTokenRecord, NewLongToken, Purged, Rotation, SigningKeyRecord, Store,
    StoreError,
};
use crate::domain::{ClientId, LongTokenId, Scopes, ShortTokenId};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
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

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
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
            .connect_with(opts)
            .await
            .map_err(|e| ConnectError::Open(e.to_string()))?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await.map_err(|e| ConnectError::Migrate(e.to_string()))?;
        Ok(SqliteStore { pool })
    }

    /// `PRAGMA integrity_check`, for tests and operators.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        let row = sqlx::query("PRAGMA integrity_check").fetch_one(&self.pool).await.map_err(map_err)?;
        row.try_get::<String, _>(0).map_err(map_err)
    }
}

#[derive(FromRow)]
struct ClientRow {
    id: String,
    name: String,
    scopes: String,
    secret_hash: Vec<u8>,
    otp_seed_sealed: Option<Vec<u8>>,
    otp_last_step: i64,
    public_key: Option<String>,
    public_key_alg: Option<String>,
    disabled: bool,
    created_at: i64,
}

impl TryFrom<ClientRow> for ClientRecord {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        Ok(ClientRecord {
            id: ClientId::parse(&r.id)
                .ok_or_else(|| StoreError::Backend(format!("bad client id in database: {:?}", r.id)))?,
            name: r.name,
            scopes: Scopes::from_space_separated(&r.scopes).map_err(StoreError::Backend)?,
            secret_hash: r.secret_hash,
            otp_seed_sealed: r.otp_seed_sealed,
            otp_last_step: r.otp_last_step,
            public_key: r.public_key,
            public_key_alg: r.public_key_alg,
            disabled: r.disabled,
            created_at: r.created_at,
        })
    }
}

#[derive(FromRow)]
struct LongTokenRow {
    id: String,
    client_id: String,
    scopes: String,
    name: Option<String>,
    issued_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    client_disabled: bool,
}

impl TryFrom<LongTokenRow> for LongTokenRecord {
    type Error = StoreError;
    fn try_from(r: LongTokenRow) -> Result<Self, StoreError> {
        let bad = |what: &str| StoreError::Backend(format!("bad {what} in database"));
        Ok(LongTokenRecord {
            id: LongTokenId(Uuid::parse_str(&r.id).map_err(|_| bad("token id"))?),
            client_id: ClientId::parse(&r.client_id).ok_or_else(|| bad("client id"))?,
            scopes: Scopes::from_space_separated(&r.scopes).map_err(StoreError::Backend)?,
            name: r.name,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            client_disabled: r.client_disabled,
        })
    }
}

/// The long-token columns with the owner's `disabled` flag, followed by `$tail`. A macro so
/// that every query stays a static string (sqlx refuses dynamic SQL).
macro_rules! long_select {
    ($tail:literal) => {
        concat!(
            "SELECT t.id, t.client_id, t.scopes, t.name, t.issued_at, t.expires_at, t.revoked_at, ",
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

    async fn consume_otp_step(&self, client: &ClientId, step: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE clients SET otp_last_step = ? WHERE id = ? AND otp_last_step < ?")
            .bind(step)
            .bind(client.as_str())
            .bind(step)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn consume_assertion_jti(&self, client: &ClientId, jti: &str, expires_at: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO used_assertions (client_id, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(client.as_str())
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn insert_long_token(
        &self,
        t: &NewLongToken,
        rotation: Option<Rotation>,
        now: i64,
    ) -> Result<(), InsertError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if let Some(rot) = rotation {
            // The first statement writes, so the transaction takes the write lock at once
            // (no read-to-write upgrade that could fail under contention).
            let r = sqlx::query(
                "UPDATE long_tokens SET revoked_at = MIN(COALESCE(revoked_at, ?1), ?1), replaced_by = ?2 \
                 WHERE id = ?3 AND client_id = ?4 AND expires_at > ?5 AND (revoked_at IS NULL OR revoked_at > ?5)",
            )
            .bind(rot.revoke_at)
            .bind(t.id.to_string())
            .bind(rot.old.to_string())
            .bind(t.client_id.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            if r.rows_affected() != 1 {
                return Err(InsertError::RotationTargetNotLive);
            }
        }
        sqlx::query(
            "INSERT INTO long_tokens (id, client_id, token_hash, scopes, name, issued_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t.id.to_string())
        .bind(t.client_id.as_str())
        .bind(&t.token_hash[..])
        .bind(t.scopes.to_space_separated())
        .bind(&t.name)
        .bind(t.issued_at)
        .bind(t.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
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
        sqlx::query("UPDATE long_tokens SET revoked_at = ?1 WHERE id = ?2 AND (revoked_at IS NULL OR revoked_at > ?1)")
            .bind(at)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn revoke_short_token(&self, id: &ShortTokenId) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO revoked_short_tokens (id, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(id.as_str())
            .bind(id.expires_at)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
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
        let rows = sqlx::query(
            "SELECT kid, alg, key_sealed, created_at, retired_at FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter()
            .map(|r| {
                Ok(SigningKeyRecord {
                    kid: r.try_get("kid").map_err(map_err)?,
                    alg: r.try_get("alg").map_err(map_err)?,
                    key_sealed: r.try_get("key_sealed").map_err(map_err)?,
                    created_at: r.try_get("created_at").map_err(map_err)?,
                    retired_at: r.try_get("retired_at").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn insert_signing_key(&self, k: &SigningKeyRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO signing_keys (kid, alg, key_sealed, created_at, retired_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&k.kid)
            .bind(&k.alg)
            .bind(&k.key_sealed)
            .bind(k.created_at)
            .bind(k.retired_at)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
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
        Ok(Purged {
            long_tokens: long.rows_affected(),
            revoked_short_tokens: short.rows_affected(),
            used_assertions: jtis.rows_affected(),
        })
    }
}
