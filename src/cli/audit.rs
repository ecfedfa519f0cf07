//! `tokensmith audit`: read the audit trail.

use std::collections::VecDeque;
use std::io::Write;

use clap::Args;

use super::remote::Remote;
use super::{Backend, DatabaseArgs, parse_time};
use crate::clock::{Clock, SystemClock};
use crate::domain::ClientId;
use crate::domain::admin::reads::MAX_AUDIT_PAGE;
use crate::http::admin::model::{AuditEventView, AuditPageView};
use crate::store::{AuditQuery, Store};

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

/// What `audit` selects: a client's events, those since a time (Unix seconds), the last N.
struct Selection {
    client: Option<String>,
    since: Option<i64>,
    limit: Option<usize>,
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
        Some(t) => Some(parse_time(t, now).map_err(|e| anyhow::anyhow!("--since: {e}"))?),
        None => None,
    };
    let selection = Selection { client, since, limit: args.limit };
    let mut printer = Printer { out: std::io::stdout().lock(), json: args.json, printed: 0 };
    match args.db.backend().await? {
        Backend::Remote(r) => remote(&r, &selection, &mut printer).await?,
        Backend::Local(store, _) => local(store.as_ref(), &selection, &mut printer).await?,
    }
    printer.finish()
}

/// Pages of the trail, oldest first: printed as they come, or, with --limit, only the last N
/// kept (so memory stays bounded either way).
async fn local(store: &dyn Store, selection: &Selection, printer: &mut Printer<'_>) -> anyhow::Result<()> {
    let mut tail: VecDeque<AuditEventView> = VecDeque::new();
    let mut after_id = 0;
    let since = selection.since.map(crate::clock::millis);
    loop {
        let query = AuditQuery { client_id: selection.client.clone(), since, after_id, limit: PAGE };
        let page = store.list_audit(&query).await?;
        let Some(last) = page.last() else { break };
        after_id = last.id;
        let views = page.iter().map(AuditEventView::from);
        match selection.limit {
            None => printer.print(views)?,
            Some(limit) => {
                tail.extend(views);
                while tail.len() > limit {
                    tail.pop_front();
                }
            }
        }
    }
    printer.print(tail)
}

/// The admin API's pages come newest first: read back to the first event asked for (or the
/// last N), then printed oldest first.
async fn remote(r: &Remote, selection: &Selection, printer: &mut Printer<'_>) -> anyhow::Result<()> {
    let mut events: Vec<AuditEventView> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let wanted = selection.limit.map_or(MAX_AUDIT_PAGE as usize, |l| l - events.len());
        let mut query = vec![("limit", wanted.min(MAX_AUDIT_PAGE as usize).to_string())];
        if let Some(c) = &selection.client {
            query.push(("client_id", c.clone()));
        }
        if let Some(s) = selection.since {
            query.push(("since", crate::clock::rfc3339(s)));
        }
        if let Some(c) = cursor.take() {
            query.push(("cursor", c));
        }
        let page: AuditPageView = r.get(&["audit"], &query).await?;
        events.extend(page.events);
        if selection.limit.is_some_and(|l| events.len() >= l) {
            break;
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    events.reverse();
    printer.print(events)
}

/// Prints events as lines of a table, or as one JSON object per line.
struct Printer<'a> {
    out: std::io::StdoutLock<'a>,
    json: bool,
    printed: usize,
}

impl Printer<'_> {
    fn print(&mut self, events: impl IntoIterator<Item = AuditEventView>) -> anyhow::Result<()> {
        for e in events {
            if self.printed == 0 && !self.json {
                writeln!(
                    self.out,
                    "{:<24} {:<20} {:<8} {:<25} {:<44} {:<16} {:<13} {:<26} DETAIL",
                    "TIME", "EVENT", "OUTCOME", "CLIENT", "TOKEN", "SOURCE", "MECHANISM", "REASON"
                )?;
            }
            self.printed += 1;
            let line = if self.json { serde_json::to_string(&e)? } else { table_line(&e) };
            writeln!(self.out, "{line}")?;
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        if self.printed == 0 && !self.json {
            writeln!(self.out, "no audit events")?;
        }
        Ok(())
    }
}

fn table_line(e: &AuditEventView) -> String {
    let dash = |v: &Option<String>| v.as_deref().map_or_else(|| "-".into(), super::output::clean);
    format!(
        "{:<24} {:<20} {:<8} {:<25} {:<44} {:<16} {:<13} {:<26} {}",
        e.at,
        super::output::clean(&e.event),
        e.outcome,
        dash(&e.client_id),
        dash(&e.token_id),
        dash(&e.source),
        dash(&e.mechanism),
        dash(&e.reason),
        e.detail.as_ref().map(ToString::to_string).map(|d| super::output::clean(&d)).unwrap_or_default()
    )
}

fn parse_limit(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a number of events (1 or more)")),
    }
}
