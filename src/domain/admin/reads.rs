//! What an operator reads, the same from the command line and the admin API: a client with
//! its tokens' counts, long-term tokens through a filter, what a revocation would take with
//! it, a page of the audit trail, and the dashboard's counts over time.

use std::collections::{HashMap, HashSet};

use super::AdminError;
use crate::domain::audit::{AuditRecord, event};
use crate::domain::token::{LongToken, TokenStatus};
use crate::domain::types::{ClientId, LongTokenId};
use crate::store::{AuditPage, Client, Store};

/// Which long-term tokens a listing shows.
#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    pub client: Option<ClientId>,
    pub status: StatusFilter,
    /// Only tokens unused (never exchanged or presented) for this many seconds.
    pub unused_for: Option<i64>,
    /// Only valid tokens ending within this many seconds.
    pub expiring_within: Option<i64>,
}

/// The statuses a listing keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatusFilter {
    /// Neither revoked nor expired (live, rotating, or suspended with their client).
    #[default]
    Current,
    All,
    Only(TokenStatus),
}

impl StatusFilter {
    pub fn parse(s: &str) -> Option<StatusFilter> {
        Some(match s {
            "current" => StatusFilter::Current,
            "all" => StatusFilter::All,
            "live" => StatusFilter::Only(TokenStatus::Live),
            "rotating" => StatusFilter::Only(TokenStatus::Rotating),
            "disabled" => StatusFilter::Only(TokenStatus::Disabled),
            "revoked" => StatusFilter::Only(TokenStatus::Revoked),
            "expired" => StatusFilter::Only(TokenStatus::Expired),
            _ => return None,
        })
    }

    pub const NAMES: &'static str = "current, all, live, rotating, disabled, revoked or expired";

    fn keeps(self, status: TokenStatus) -> bool {
        match self {
            StatusFilter::Current => !matches!(status, TokenStatus::Revoked | TokenStatus::Expired),
            StatusFilter::All => true,
            StatusFilter::Only(s) => s == status,
        }
    }
}

/// A client and how many long-term tokens it holds, by state.
#[derive(Debug, Clone)]
pub struct ClientDetail {
    pub client: Client,
    pub live: usize,
    pub rotating: usize,
    pub suspended: usize,
}

/// One client with its tokens' counts.
pub async fn client_detail(store: &dyn Store, id: &ClientId, now: i64) -> Result<ClientDetail, AdminError> {
    let client = store.get_client(id).await?.ok_or_else(|| AdminError::UnknownClient(id.clone()))?;
    let tokens = store.list_current_long_tokens(Some(id), now).await?;
    let count = |s: TokenStatus| tokens.iter().filter(|t| t.status(now) == s).count();
    Ok(ClientDetail {
        client,
        live: count(TokenStatus::Live),
        rotating: count(TokenStatus::Rotating),
        suspended: count(TokenStatus::Disabled),
    })
}

/// The long-term tokens the filter keeps, oldest first.
pub async fn tokens(store: &dyn Store, filter: &TokenFilter, now: i64) -> Result<Vec<LongToken>, AdminError> {
    if let Some(id) = &filter.client
        && store.get_client(id).await?.is_none()
    {
        return Err(AdminError::UnknownClient(id.clone()));
    }
    let mut tokens = match filter.status {
        StatusFilter::Current => store.list_current_long_tokens(filter.client.as_ref(), now).await?,
        _ => store.list_long_tokens(filter.client.as_ref()).await?,
    };
    tokens.retain(|t| {
        filter.status.keeps(t.status(now))
            && filter.unused_for.is_none_or(|d| t.unused_for(d, now))
            && filter.expiring_within.is_none_or(|d| t.expiring_within(d, now))
    });
    Ok(tokens)
}

/// What revoking a long-term token would also end: its valid descendants (the tokens minted
/// with its short-term tokens, and theirs), and the token itself.
#[derive(Debug, Clone)]
pub struct Cascade {
    pub token: LongToken,
    pub descendants: Vec<LongTokenId>,
}

pub async fn cascade(store: &dyn Store, id: &LongTokenId, now: i64) -> Result<Cascade, AdminError> {
    let token = store.get_long_token(id).await?.ok_or_else(|| AdminError::UnknownToken(id.to_string()))?;
    // A lineage never leaves its client.
    let all = store.list_long_tokens(Some(&token.client_id)).await?;
    let mut children: HashMap<LongTokenId, Vec<&LongToken>> = HashMap::new();
    for t in &all {
        if let Some(p) = t.parent {
            children.entry(p).or_default().push(t);
        }
    }
    let (mut seen, mut todo, mut descendants) = (HashSet::from([token.id]), vec![token.id], Vec::new());
    while let Some(p) = todo.pop() {
        for child in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(child.id) {
                todo.push(child.id);
                if child.is_live(now) {
                    descendants.push(child.id);
                }
            }
        }
    }
    Ok(Cascade { token, descendants })
}

/// The most events one page of the trail holds.
pub const MAX_AUDIT_PAGE: u32 = 500;

/// A page of the audit trail, newest first, and the cursor of the next (older) page.
pub async fn audit_page(store: &dyn Store, page: AuditPage) -> Result<(Vec<AuditRecord>, Option<i64>), AdminError> {
    let limit = page.limit.clamp(1, MAX_AUDIT_PAGE);
    // One more than asked tells whether an older page exists.
    let mut events = store.list_audit_page(&AuditPage { limit: limit + 1, ..page }).await?;
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let next = if more { events.last().map(|r| r.id) } else { None };
    Ok((events, next))
}

/// Issuance and failed authentications in one bucket of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Unix seconds.
    pub start: i64,
    pub long_issued: u64,
    pub short_issued: u64,
    pub auth_failed: u64,
}

/// Events read for the counts standing in one event (at most).
const MAX_TALLIES: u32 = 100_000;

/// The dashboard's counts over the last `hours`, per hour, from the audit trail: long-term
/// issuances and rotations, short-term issuances (one by one, or the per-client counts), and
/// failed authentications (one by one, and those only counted in summaries).
pub async fn activity(store: &dyn Store, now: i64, hours: u32) -> Result<Vec<Bucket>, AdminError> {
    const BUCKET_SECS: i64 = 3600;
    let first = (now / BUCKET_SECS - i64::from(hours.max(1)) + 1) * BUCKET_SECS;
    let mut buckets: Vec<Bucket> =
        (0..i64::from(hours.max(1))).map(|i| Bucket { start: first + i * BUCKET_SECS, ..Bucket::default() }).collect();
    let mut add = |at_secs: i64, f: &dyn Fn(&mut Bucket)| {
        if let Some(b) = usize::try_from((at_secs - first) / BUCKET_SECS).ok().and_then(|i| buckets.get_mut(i)) {
            f(b);
        }
    };
    let bucket_ms = BUCKET_SECS * 1000;
    for (bucket, name, n) in store.count_audit(first * 1000, bucket_ms).await? {
        let n = u64::try_from(n).unwrap_or(0);
        match name.as_str() {
            event::LONG_TOKEN_ISSUED | event::LONG_TOKEN_ROTATED => add(bucket * BUCKET_SECS, &|b| b.long_issued += n),
            event::SHORT_TOKEN_ISSUED => add(bucket * BUCKET_SECS, &|b| b.short_issued += n),
            _ => add(bucket * BUCKET_SECS, &|b| b.auth_failed += n),
        }
    }
    for r in store.list_audit_tallies(first * 1000, MAX_TALLIES).await? {
        let detail: serde_json::Value =
            r.event.detail.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
        let num = |k: &str| detail.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let at = r.event.at / 1000;
        if r.event.event == event::SHORT_TOKENS_ISSUED {
            let n = num("count");
            add(at, &|b| b.short_issued += n);
        } else {
            // The failures past those recorded one by one (already counted above).
            let n = num("failures").saturating_sub(num("recorded"));
            add(at, &|b| b.auth_failed += n);
        }
    }
    Ok(buckets)
}
