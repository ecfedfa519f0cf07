//! Row types shared by the SQL stores: the same columns, decoded by sqlx for either
//! database, and checked once when they become records.

use sqlx::FromRow;
use uuid::Uuid;

use super::{ClientRecord, LongTokenRecord, StoreError};
use crate::domain::{ClientId, LongTokenId, Scopes};

#[derive(FromRow)]
pub(super) struct ClientRow {
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
pub(super) struct LongTokenRow {
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
