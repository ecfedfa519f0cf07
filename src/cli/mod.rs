//! The command line: clap definitions, turned into validated settings, then dispatched.
//!
//! One file per command group: `serve` (the server), `client` (client administration).
//! Every flag of `serve` has a `TOKENSMITH_<FLAG>` environment variable (clap reads it when
//! the flag is absent); a `--config` TOML file sits beneath both.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, Settings};

mod client;
mod serve;

pub use client::ClientCommand;
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
        Command::Openapi => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", crate::http::openapi::json())?;
            Ok(())
        }
    }
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
