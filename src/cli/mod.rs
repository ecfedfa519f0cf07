//! The command line: clap definitions, turned into validated settings, then dispatched.
//!
//! One file per command group: `serve` (the server), `client` (client administration).
//! Every flag of `serve` has a `TOKENSMITH_<FLAG>` environment variable (clap reads it when
//! the flag is absent); a `--config` TOML file sits beneath both.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, Settings};

mod audit;
mod client;
mod keys;
mod serve;

pub use audit::AuditArgs;
pub use client::ClientCommand;
pub use keys::KeysCommand;
pub use serve::ServeArgs;

#[derive(Debug, Parser)]
#[command(name = "tokensmith", version, about = "Long-term tokens for automation, short-term JWTs, instant revocation")]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "TOKENSMITH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Manage clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage the signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Read the audit trail: issuance, rotation, revocation, failed authentication, administration.
    Audit(AuditArgs),
    /// Print the OpenAPI document (the one served at /openapi.json) as JSON.
    Openapi,
}

/// Where an admin command finds the database and its keys.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Database URL [default: sqlite://tokensmith.db].
    #[arg(long, env = "TOKENSMITH_DATABASE", value_name = "URL", default_value = config::DEFAULT_DATABASE)]
    pub database: String,
    /// Master key file [default: <database file>.key].
    #[arg(long, env = "TOKENSMITH_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

impl DatabaseArgs {
    pub(crate) fn settings(&self) -> Settings {
        Settings {
            database: self.database.clone(),
            key_file: self.key_file.clone(),
            master_key: std::env::var("TOKENSMITH_MASTER_KEY").ok().map(Into::into),
            ..Settings::default()
        }
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Client(cmd) => client::run(cmd).await,
        Command::Keys(cmd) => keys::run(cmd).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Openapi => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", crate::http::openapi::json())?;
            Ok(())
        }
    }
}

/// A duration: a whole number followed by `s`, `m`, `h` or `d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a duration; use e.g. 90s, 15m, 2h or 7d");
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).filter(|v| *v <= 10 * 365 * 86_400).ok_or_else(bad)
}

/// A point in time: RFC 3339, or a duration before `now` (Unix seconds).
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    parse_duration(s)
        .map(|d| now - d)
        .map_err(|_| format!("{s:?} is neither an RFC 3339 time (2026-11-29T12:00:00Z) nor a duration ago (24h)"))
}

/// Installs the log subscriber on stderr (`RUST_LOG` filters; default `info`).
/// Admin commands default to warnings only: their output is the result, not a log.
pub fn init_tracing(format: LogFormat, serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if serving { "info,sqlx=warn" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_parse_or_say_what_is_expected() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        for bad in ["", "m", "1.5h", "-3s", "3w", "99999999999999d"] {
            assert!(parse_duration(bad).unwrap_err().contains("is not a duration"), "{bad}");
        }
        assert_eq!(parse_time("2026-11-29T12:00:00Z", 0), Ok(1_795_953_600));
        assert_eq!(parse_time("1h", 10_000), Ok(6400));
        assert!(parse_time("yesterday", 0).unwrap_err().contains("RFC 3339"));
    }
}
