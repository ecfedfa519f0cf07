//! The command line: clap definitions, turned into validated settings, then dispatched.
//!
//! Every flag of `serve` has a `TOKENSMITH_<FLAG>` environment variable (clap reads it when
//! the flag is absent); a `--config` TOML file sits beneath both.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::ExposeSecret;

use crate::app::{self, Application};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::config::{self, FileConfig, Settings};
use crate::domain::Scopes;
use crate::domain::admin::{self, NewClient};
use crate::store::redact_url;

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

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags and environment override it).
    #[arg(long, env = "TOKENSMITH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: FileConfig,
}

impl ServeArgs {
    /// Defaults, then the file, then environment and flags.
    pub fn settings(self) -> Result<Settings, String> {
        let mut s = Settings::default();
        if let Some(path) = &self.config {
            FileConfig::load(path)?.apply(&mut s)?;
        }
        self.overrides.apply(&mut s)?;
        s.master_key = std::env::var("TOKENSMITH_MASTER_KEY").ok().map(Into::into);
        s.validate()?;
        Ok(s)
    }
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
    fn settings(&self) -> Settings {
        Settings {
            database: self.database.clone(),
            key_file: self.key_file.clone(),
            master_key: std::env::var("TOKENSMITH_MASTER_KEY").ok().map(Into::into),
            ..Settings::default()
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client and print its secrets, once.
    Create {
        /// A label for people (1-100 characters).
        #[arg(long)]
        name: String,
        /// Space-separated scopes the client may grant, e.g. "tokens:write orders:read".
        #[arg(long)]
        scopes: String,
        /// Also enrol a TOTP authenticator (prints otp_secret and otp_uri).
        #[arg(long)]
        otp: bool,
        /// Public key for assertions: PEM SubjectPublicKeyInfo (Ed25519, P-256, RSA) or JWK.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Disable a client: its credentials and all its tokens stop working (within the token
    /// cache TTL, at most one second, on running servers).
    Disable {
        /// The client's id.
        client_id: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Enable a disabled client again.
    Enable {
        /// The client's id.
        client_id: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List clients (never their secrets).
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args.settings().map_err(anyhow::Error::msg)?).await,
        Command::Client(cmd) => client(cmd).await,
        Command::Openapi => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", crate::http::openapi::json())?;
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let database = settings.database.clone();
    let app = Application::build(settings).await?;
    let clients = app.service().store().list_clients().await?.len();
    let mut out = std::io::stdout().lock();
    writeln!(out, "tokensmith listening on http://{} (issuer {})", app.local_addr(), app.issuer())?;
    writeln!(out, "database {}", redact_url(&database))?;
    if clients == 0 {
        writeln!(out, "no clients yet; create one with:")?;
        writeln!(
            out,
            "  tokensmith client create --database {} --name my-service --scopes \"tokens:write\"",
            redact_url(&database)
        )?;
    }
    out.flush()?;
    drop(out);
    app.run_until_stopped(shutdown_signal()).await
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down");
}

async fn client(cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Create { name, scopes, otp, public_key, json, db } => {
            let scopes = Scopes::from_space_separated(&scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
            let public_key = match public_key {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read --public-key file {}", path.display()))?,
                ),
                None => None,
            };
            // Check the key before touching the database, so a bad file changes nothing.
            if let Some(k) = &public_key {
                crate::domain::client_key::ClientPublicKey::parse(k)
                    .map_err(|e| anyhow::anyhow!("--public-key: {e}"))?;
            }
            let (store, keyring) = app::open(&db.settings()).await?;
            let now = SystemClock.now();
            let created =
                admin::create_client(store.as_ref(), &keyring, now, NewClient { name, scopes, otp, public_key })
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut out = std::io::stdout().lock();
            if json {
                let mut v = serde_json::json!({
                    "client_id": created.client_id.as_str(),
                    "client_secret": created.client_secret.expose(),
                    "name": created.name,
                    "scopes": created.scopes.to_vec(),
                });
                if let (Some(s), Some(u)) = (&created.otp_secret, &created.otp_uri) {
                    v["otp_secret"] = s.expose_secret().into();
                    v["otp_uri"] = u.expose_secret().into();
                }
                if let Some(alg) = created.public_key_alg {
                    v["public_key_alg"] = alg.into();
                }
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "client created")?;
                writeln!(out, "  client_id:     {}", created.client_id)?;
                writeln!(out, "  name:          {}", created.name)?;
                writeln!(out, "  scopes:        {}", created.scopes.to_space_separated())?;
                writeln!(out, "  client_secret: {}", created.client_secret.expose())?;
                if let (Some(s), Some(u)) = (&created.otp_secret, &created.otp_uri) {
                    writeln!(out, "  otp_secret:    {}", s.expose_secret())?;
                    writeln!(out, "  otp_uri:       {}", u.expose_secret())?;
                }
                if let Some(alg) = created.public_key_alg {
                    writeln!(out, "  public key:    {alg}")?;
                }
                writeln!(out, "The secrets above are shown this once; store them now.")?;
            }
            Ok(())
        }
        ClientCommand::Disable { client_id, db } => set_disabled(&client_id, &db, true).await,
        ClientCommand::Enable { client_id, db } => set_disabled(&client_id, &db, false).await,
        ClientCommand::List { json, db } => {
            let (store, _) = app::open(&db.settings()).await?;
            let clients = store.list_clients().await?;
            let mut out = std::io::stdout().lock();
            if json {
                let list: Vec<_> = clients
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "client_id": c.id.as_str(),
                            "name": c.name,
                            "scopes": c.scopes.to_vec(),
                            "otp": c.otp_seed_sealed.is_some(),
                            "public_key_alg": c.public_key_alg,
                            "disabled": c.disabled,
                            "created_at": rfc3339(c.created_at),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::Value::from(list))?;
            } else if clients.is_empty() {
                writeln!(out, "no clients")?;
            } else {
                writeln!(
                    out,
                    "{:<26} {:<24} {:<4} {:<6} {:<9} {:<21} SCOPES",
                    "CLIENT_ID", "NAME", "OTP", "KEY", "DISABLED", "CREATED"
                )?;
                for c in &clients {
                    writeln!(
                        out,
                        "{:<26} {:<24} {:<4} {:<6} {:<9} {:<21} {}",
                        c.id,
                        c.name.chars().take(24).collect::<String>(),
                        if c.otp_seed_sealed.is_some() { "yes" } else { "no" },
                        c.public_key_alg.as_deref().unwrap_or("-"),
                        if c.disabled { "yes" } else { "no" },
                        rfc3339(c.created_at),
                        c.scopes.to_space_separated()
                    )?;
                }
            }
            Ok(())
        }
    }
}

async fn set_disabled(client_id: &str, db: &DatabaseArgs, disabled: bool) -> anyhow::Result<()> {
    let id = crate::domain::ClientId::parse(client_id)
        .ok_or_else(|| anyhow::anyhow!("{client_id:?} is not a client id (see tokensmith client list)"))?;
    let (store, _) = app::open(&db.settings()).await?;
    if !store.set_client_disabled(&id, disabled).await? {
        anyhow::bail!("no client {id} in {} (see tokensmith client list)", redact_url(&db.database));
    }
    println!("client {id} {}", if disabled { "disabled" } else { "enabled" });
    Ok(())
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
    fn flags_override_the_config_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9001\"\nshort_ttl_max_secs = 300\n").unwrap();
        let cli = Cli::try_parse_from([
            "tokensmith",
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9002",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else { panic!("serve") };
        let s = args.settings().unwrap();
        assert_eq!(s.listen.port(), 9002);
        assert_eq!(s.short_ttl_max_secs, 300);
        assert_eq!(s.long_ttl_max_days, 90);
    }
}
