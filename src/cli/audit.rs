//! `tokensmith audit`: read the audit trail.

use std::io::Write;

use clap::Args;

use super::{DatabaseArgs, parse_time};
use crate::app;
use crate::clock::{Clock, SystemClock};
use crate::domain::ClientId;
use crate::store::{AuditQuery, AuditRecord};

/// Rows read from the database per query.
const PAGE: u32 = 1000;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events about this client.
    #[arg(long, value_name = "CLIENT_ID")]
    client: Option<String>,
    /// Only events at or after TIME: RFC 3339 (2026-11-29T12:00:00Z) or a duration ago (90m, 24h, 7d).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// At most this many events (the most recent ones) [default: all].
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Print one JSON object per line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub(super) async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let client = match &args.client {
        Some(c) => Some(
            ClientId::parse(c)
                .ok_or_else(|| anyhow::anyhow!("--client {c:?} is not a client id (see tokensmith client list)"))?
                .to_string(),
        ),
        None => None,
    };
    let now = SystemClock.now();
    let since = match &args.since {
        Some(t) => Some(parse_time(t, now).map_err(|e| anyhow::anyhow!("--since: {e}"))? * 1000),
        None => None,
    };
    let (store, _) = app::open(&args.db.settings()).await?;
    let mut events: Vec<AuditRecord> = Vec::new();
    let mut after_id = 0;
    loop {
        let page = store.list_audit(&AuditQuery { client_id: client.clone(), since, after_id, limit: PAGE }).await?;
        let Some(last) = page.last() else { break };
        after_id = last.id;
        events.extend(page);
        if let Some(limit) = args.limit
            && events.len() > limit
        {
            events.drain(..events.len() - limit);
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        for r in &events {
            let mut v = serde_json::to_value(&r.event)?;
            v["id"] = r.id.into();
            v["at"] = rfc3339_millis(r.event.at).into();
            v["detail"] =
                r.event.detail.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()).into();
            writeln!(out, "{v}")?;
        }
    } else if events.is_empty() {
        writeln!(out, "no audit events")?;
    } else {
        writeln!(
            out,
            "{:<24} {:<20} {:<8} {:<25} {:<38} {:<16} {:<13} {:<26} DETAIL",
            "TIME", "EVENT", "OUTCOME", "CLIENT", "TOKEN", "SOURCE", "MECHANISM", "REASON"
        )?;
        for r in &events {
            let e = &r.event;
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            writeln!(
                out,
                "{:<24} {:<20} {:<8} {:<25} {:<38} {:<16} {:<13} {:<26} {}",
                rfc3339_millis(e.at),
                e.event,
                e.outcome,
                dash(&e.client_id),
                dash(&e.token_id),
                dash(&e.source),
                dash(&e.mechanism),
                dash(&e.reason),
                e.detail.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

fn rfc3339_millis(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}
