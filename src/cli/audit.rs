//! `tokensmith audit`: read the audit trail.

use std::io::Write;

use clap::Args;

use super::{DatabaseArgs, parse_time};
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
    /// At most this many events (the most recent ones), at least 1 [default: all].
    #[arg(long, value_name = "N", value_parser = parse_limit)]
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
        Some(t) => Some(crate::clock::millis(parse_time(t, now).map_err(|e| anyhow::anyhow!("--since: {e}"))?)),
        None => None,
    };
    let (store, _) = args.db.open_existing().await?;
    let mut out = std::io::stdout().lock();
    let mut printed = 0usize;
    let mut print = |out: &mut std::io::StdoutLock<'_>, records: &[AuditRecord]| -> anyhow::Result<()> {
        for r in records {
            if printed == 0 && !args.json {
                writeln!(
                    out,
                    "{:<24} {:<20} {:<8} {:<25} {:<44} {:<16} {:<13} {:<26} DETAIL",
                    "TIME", "EVENT", "OUTCOME", "CLIENT", "TOKEN", "SOURCE", "MECHANISM", "REASON"
                )?;
            }
            printed += 1;
            writeln!(out, "{}", if args.json { json_line(r)? } else { table_line(r) })?;
        }
        Ok(())
    };
    // Pages of the trail, oldest first: printed as they come, or, with --limit, only the last
    // N kept (so memory stays bounded either way).
    let mut tail: std::collections::VecDeque<AuditRecord> = std::collections::VecDeque::new();
    let mut after_id = 0;
    loop {
        let page = store.list_audit(&AuditQuery { client_id: client.clone(), since, after_id, limit: PAGE }).await?;
        let Some(last) = page.last() else { break };
        after_id = last.id;
        match args.limit {
            None => print(&mut out, &page)?,
            Some(limit) => {
                tail.extend(page);
                while tail.len() > limit {
                    tail.pop_front();
                }
            }
        }
    }
    print(&mut out, tail.make_contiguous())?;
    if printed == 0 && !args.json {
        writeln!(out, "no audit events")?;
    }
    Ok(())
}

fn json_line(r: &AuditRecord) -> anyhow::Result<String> {
    let mut v = serde_json::to_value(&r.event)?;
    v["id"] = r.id.into();
    v["at"] = crate::clock::rfc3339_millis(r.event.at).into();
    v["detail"] = r.event.detail.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()).into();
    Ok(v.to_string())
}

fn table_line(r: &AuditRecord) -> String {
    let e = &r.event;
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    format!(
        "{:<24} {:<20} {:<8} {:<25} {:<44} {:<16} {:<13} {:<26} {}",
        crate::clock::rfc3339_millis(e.at),
        e.event,
        e.outcome,
        dash(&e.client_id),
        dash(&e.token_id),
        dash(&e.source),
        dash(&e.mechanism),
        dash(&e.reason),
        e.detail.as_deref().unwrap_or("")
    )
}

fn parse_limit(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a number of events (1 or more)")),
    }
}
