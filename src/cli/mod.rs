//! The command line: clap definitions, turned into validated settings, then dispatched.
//!
//! One file per command group: `serve` (the server), `client` (client administration),
//! `config` (`config check`: the effective settings, validated, secrets redacted).
//! Every flag of `serve` has a `TOKENSMITH_<FLAG>` environment variable (clap reads it when
//! the flag is absent); a `--config` TOML file sits beneath both.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::config::LogFormat;
use crate::config::{self, Settings};

mod client;
mod config_cmd;
mod serve;

pub use client::ClientCommand;
pub use config_cmd::ConfigCommand;
pub use serve::ServeArgs;

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
    /// Check a configuration and print the effective settings.
    #[command(subcommand)]
    Config(Box<ConfigCommand>),
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

/// Installs logging (for `serve`, in the format its settings resolve to) and runs the parsed
/// command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let log_format = cli.log_format;
    if !matches!(cli.command, Command::Serve(_)) {
        init_tracing(log_format.unwrap_or_default(), false);
    }
    match cli.command {
        Command::Serve(args) => serve::run(*args, log_format).await,
        Command::Client(cmd) => client::run(cmd).await,
        Command::Config(cmd) => config_cmd::run(*cmd, log_format).await,
        Command::Openapi => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", crate::http::openapi::json())?;
            Ok(())
        }
    }
}

/// Installs the log subscriber on stderr (`RUST_LOG` filters; default `info`).
/// Admin commands default to warnings only: their output is the result, not a log.
/// With `json`, each line is one object whose event fields sit at the top level
/// (`request_id`, `operation`, `status`, …) beside `timestamp`, `level` and `target`.
pub fn init_tracing(format: LogFormat, serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if serving { "info,sqlx=warn" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: a log file or a journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
