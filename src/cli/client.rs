//! `tokensmith client …`: register, list, disable and enable clients.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use secrecy::ExposeSecret;

use super::DatabaseArgs;
use crate::app;
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::domain::Scopes;
use crate::domain::admin::{self, NewClient};
use crate::store::redact_url;

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
    /// Give a client a new secret (printed once). The old secret keeps working for --overlap,
    /// so deployments can switch over without an outage.
    RotateSecret {
        /// The client's id.
        client_id: String,
        /// How long the old secret stays valid, e.g. 0s, 30m, 24h, 7d (at most 30d).
        #[arg(long, default_value = "0s", value_parser = super::parse_duration, value_name = "DURATION")]
        overlap: i64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
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

pub(super) async fn run(cmd: ClientCommand) -> anyhow::Result<()> {
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
        ClientCommand::RotateSecret { client_id, overlap, json, db } => {
            let id = parse_client_id(&client_id)?;
            let (store, keyring) = app::open(&db.settings()).await?;
            let now = SystemClock.now();
            let secret = admin::rotate_client_secret(store.as_ref(), &keyring, now, &id, overlap)
                .await
                .map_err(|e| admin_error(e, &db))?;
            let old_until = (overlap > 0).then(|| rfc3339(now + overlap));
            let mut out = std::io::stdout().lock();
            if json {
                let v = serde_json::json!({
                    "client_id": id.as_str(),
                    "client_secret": secret.expose(),
                    "previous_secret_valid_until": old_until,
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "client secret rotated")?;
                writeln!(out, "  client_id:     {id}")?;
                writeln!(out, "  client_secret: {}", secret.expose())?;
                match old_until {
                    Some(t) => writeln!(out, "  the previous secret keeps working until {t}")?,
                    None => writeln!(out, "  the previous secret no longer works")?,
                }
                writeln!(out, "The secret above is shown this once; store it now.")?;
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

fn parse_client_id(raw: &str) -> anyhow::Result<crate::domain::ClientId> {
    crate::domain::ClientId::parse(raw)
        .ok_or_else(|| anyhow::anyhow!("{raw:?} is not a client id (see tokensmith client list)"))
}

/// An administrative failure as a message that says what to do.
fn admin_error(e: admin::AdminError, db: &DatabaseArgs) -> anyhow::Error {
    match e {
        admin::AdminError::NoSuchClient(id) => {
            anyhow::anyhow!("no client {id} in {} (see tokensmith client list)", redact_url(&db.database))
        }
        e => anyhow::anyhow!("{e}"),
    }
}

async fn set_disabled(client_id: &str, db: &DatabaseArgs, disabled: bool) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let (store, _) = app::open(&db.settings()).await?;
    admin::set_client_disabled(store.as_ref(), SystemClock.now(), &id, disabled)
        .await
        .map_err(|e| admin_error(e, db))?;
    println!("client {id} {}", if disabled { "disabled" } else { "enabled" });
    Ok(())
}
