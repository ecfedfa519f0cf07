//! The command line: clap definitions, turned into validated settings, then dispatched.
//!
//! One file per command group: `serve` (the server), `client` (client administration),
//! `token` (long-term tokens, revocation), `keys`, `audit`, `federation` (`issuer …` and the
//! clients' federation rules), `webhook` (receivers and deliveries); `output` prints tables
//! and JSON for all of them,
//! `config` checks a configuration (`config check`: the
//! effective settings, validated, secrets redacted). Every flag of `serve` has a `TOKENSMITH_<FLAG>`
//! environment variable (clap reads it when the flag is absent); a `--config` TOML file sits
//! beneath both.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::app;
pub use crate::config::LogFormat;
use crate::config::{self, Settings};
use crate::crypto::Keyring;
use crate::domain::ClientId;
use crate::store::{self, Store};

mod admin_cmd;
mod audit;
mod client;
mod config_cmd;
mod federation;
mod keys;
pub mod output;
mod remote;
mod serve;
mod token;
mod webhook;

pub use admin_cmd::AdminCommand;
pub use audit::AuditArgs;
pub use client::ClientCommand;
pub use config_cmd::ConfigCommand;
pub use federation::IssuerCommand;
pub use keys::KeysCommand;
pub use serve::ServeArgs;
pub use token::TokenCommand;
pub use webhook::WebhookCommand;

#[derive(Debug, Parser)]
#[command(name = "tokensmith", version, about = "Long-term tokens for automation, short-term JWTs, instant revocation")]
pub struct Cli {
    /// Log format on stderr, text or json (overrides the config file's `log_format`) [default: text].
    #[arg(long, global = true, env = "TOKENSMITH_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
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
    /// Manage the external issuers whose tokens may stand for clients (federation).
    #[command(subcommand)]
    Issuer(IssuerCommand),
    /// Read the audit trail: issuance, rotation, revocation, failed authentication, administration.
    Audit(AuditArgs),
    /// List and revoke tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage webhook receivers (signed messages about tokens, clients and keys) and read
    /// their deliveries.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Administration over HTTP: create the first admin client (`admin bootstrap`).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Check a configuration and print the effective settings.
    #[command(subcommand)]
    Config(Box<ConfigCommand>),
    /// Print the OpenAPI document (the one served at /openapi.json) as JSON.
    Openapi,
    /// Print a shell completion script.
    ///
    /// E.g. `tokensmith completions bash > /etc/bash_completion.d/tokensmith`, or
    /// `source <(tokensmith completions bash)`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    ///
    /// E.g. `tokensmith man | man -l -`; `tokensmith man client create` for one command's page.
    Man {
        /// A command, for its own page (e.g. `client create`); none for tokensmith(1).
        command: Vec<String>,
    },
}

/// Where an admin command finds the database and its keys.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Database URL.
    #[arg(long, env = "TOKENSMITH_DATABASE", value_name = "URL", default_value = config::DEFAULT_DATABASE)]
    pub database: String,
    /// Master key file [default: <database file>.key].
    #[arg(long, env = "TOKENSMITH_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Work through the admin API at this URL (the server's --admin-listen address) instead of
    /// opening the database.
    #[arg(long, env = "TOKENSMITH_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// A file holding the admin token for --server [default: the token in TOKENSMITH_ADMIN_TOKEN].
    #[arg(long, value_name = "FILE", requires = "server")]
    pub token_file: Option<PathBuf>,
}

/// Where an admin command that runs either way reads and changes: the database, or a server's
/// admin API.
pub(crate) enum Backend {
    Local(Arc<dyn Store>, Keyring),
    Remote(remote::Remote),
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

    /// The admin API of `--server`, if given (nothing is opened yet).
    pub(crate) fn remote(&self) -> anyhow::Result<Option<remote::Remote>> {
        self.server.as_deref().map(|s| remote::Remote::new(s, self.token_file.as_deref())).transpose()
    }

    /// The admin API of `--server`, or else the existing database.
    pub(crate) async fn backend(&self) -> anyhow::Result<Backend> {
        Ok(match self.remote()? {
            Some(r) => Backend::Remote(r),
            None => {
                let (store, keyring) = self.open_existing().await?;
                Backend::Local(store, keyring)
            }
        })
    }

    /// Refuses `--server` for a command that works on the database only.
    pub(crate) fn local_only(&self, command: &str) -> anyhow::Result<()> {
        if self.server.is_some() {
            anyhow::bail!(
                "tokensmith {command} works on the database only, not through --server: run it where the database \
                 is, without --server (and without TOKENSMITH_SERVER)"
            );
        }
        Ok(())
    }

    /// The database, for messages (a password redacted).
    pub(crate) fn name(&self) -> String {
        store::redact_url(&self.database)
    }

    /// Opens the database of an admin command that reads or changes what is there. A SQLite
    /// file that does not exist is an error, not a new empty database (a mistyped path would
    /// otherwise answer "no clients" and leave a stray file and key behind).
    pub(crate) async fn open_existing(&self) -> anyhow::Result<(Arc<dyn Store>, Keyring)> {
        if let Some(path) = store::sqlite_path(&self.database)
            && !path.exists()
        {
            anyhow::bail!(
                "no database at {} (start the server once to create it, or pass --database URL or set TOKENSMITH_DATABASE)",
                path.display()
            );
        }
        // Nor a new master key beside an existing database: `app::open` refuses that.
        app::open(&self.settings()).await.map_err(|e| self.explain_open(e))
    }

    /// Adds what to check to a database that could not be opened.
    fn explain_open(&self, e: anyhow::Error) -> anyhow::Error {
        match e.downcast_ref::<store::ConnectError>() {
            Some(store::ConnectError::Open(_) | store::ConnectError::Migrate(_)) => anyhow::anyhow!(
                "{e:#} (check that --database {} names a tokensmith database that this user can read and write)",
                self.name()
            ),
            _ => e,
        }
    }

    /// Opens the database, creating a SQLite file (and its key file) when there is none, for
    /// `client create`, which may come before the first start of the server; says so on stderr.
    /// An existing database is opened as by [`DatabaseArgs::open_existing`].
    pub(crate) async fn open_or_create(&self) -> anyhow::Result<(Arc<dyn Store>, Keyring)> {
        let Some(path) = store::sqlite_path(&self.database).filter(|p| !p.exists()) else {
            return self.open_existing().await;
        };
        let opened = app::open(&self.settings()).await.map_err(|e| self.explain_open(e))?;
        eprintln!(
            "note: created a new database at {}; start the server with --database {}",
            path.display(),
            self.name()
        );
        Ok(opened)
    }
}

/// Parses `--scopes`: space-separated. A comma is refused, not taken as part of a scope name
/// (`"tokens:write,deploy"` would otherwise be one scope that nothing asks for).
pub(crate) fn parse_scopes_flag(text: &str) -> anyhow::Result<crate::domain::Scopes> {
    let hint = "give space-separated scopes, e.g. \"tokens:write deploy\"";
    if text.contains(',') {
        anyhow::bail!("--scopes {:?}: scopes are separated by spaces, not commas ({hint})", output::clean(text));
    }
    crate::domain::Scopes::from_space_separated(text).map_err(|e| anyhow::anyhow!("--scopes: {e} ({hint})"))
}

/// Parses a client id given on the command line.
pub(crate) fn parse_client_id(text: &str) -> anyhow::Result<ClientId> {
    ClientId::parse(text).ok_or_else(|| {
        anyhow::anyhow!(
            "{:?} is not a client id: ids look like cli_3vQk0ZcO0mB1m4v8Xq2L (see tokensmith client list)",
            output::clean(text)
        )
    })
}

/// Installs logging (for `serve`, in the format its settings resolve to) and runs the parsed
/// command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let log_format = cli.log_format;
    if !matches!(cli.command, Command::Serve(_)) {
        crate::telemetry::logging::init(log_format.unwrap_or_default(), false);
    }
    match cli.command {
        Command::Serve(args) => serve::run(*args, log_format).await,
        Command::Client(cmd) => client::run(cmd).await,
        Command::Keys(cmd) => keys::run(cmd).await,
        Command::Issuer(cmd) => federation::run(cmd).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Token(cmd) => token::run(cmd).await,
        Command::Webhook(cmd) => webhook::run(cmd).await,
        Command::Admin(cmd) => admin_cmd::run(cmd).await,
        Command::Config(cmd) => config_cmd::run(*cmd, log_format).await,
        Command::Openapi => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", crate::http::openapi::json())?;
            Ok(())
        }
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tokensmith", &mut buf);
            output::print(&String::from_utf8_lossy(&buf))
        }
        Command::Man { command } => output::print(&man_page(&command)?),
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
    let mult = crate::clock::unit_secs(unit).ok_or_else(bad)?;
    n.checked_mul(mult).filter(|v| *v <= 10 * 365 * 86_400).ok_or_else(bad)
}

/// A duration that must name its unit (`30d`, never `30`): for filters where reading a bare
/// number as seconds would select almost everything.
pub fn parse_duration_with_unit(s: &str) -> Result<i64, String> {
    if s.trim().bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} has no unit; use e.g. 12h or 30d"));
    }
    parse_duration(s)
}

/// A point in time: RFC 3339, or a duration before `now` (Unix seconds) with its unit.
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    parse_duration_with_unit(s)
        .map(|d| now - d)
        .map_err(|_| format!("{s:?} is neither an RFC 3339 time (2026-11-29T12:00:00Z) nor a duration ago (24h)"))
}

/// The man page of `tokensmith` or of one of its commands (`["client", "create"]`), in roff.
pub fn man_page(path: &[String]) -> anyhow::Result<String> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut title = "tokensmith".to_owned();
    for part in path {
        let sub = cmd.find_subcommand(part).cloned().ok_or_else(|| {
            let known: Vec<&str> =
                cmd.get_subcommands().map(clap::Command::get_name).filter(|n| *n != "help").collect();
            anyhow::anyhow!(
                "no command {:?} in {}; known: {} (see tokensmith --help)",
                output::clean(part),
                title.replace('-', " "),
                known.join(", ")
            )
        })?;
        title = format!("{title}-{part}");
        cmd = sub;
    }
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .title(title)
        .source(format!("tokensmith {}", env!("CARGO_PKG_VERSION")))
        .render(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
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
        assert!(parse_time("1", 10_000).is_err(), "a bare number is not read as seconds");
    }
}
