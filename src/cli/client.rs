//! `tokensmith client …`: register, list, show, disable and enable clients, and register
//! their public keys.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::federation::{self, AddFederation};
use super::output::{self, Table, fields, json_time, time, yes_no};
use super::{DatabaseArgs, parse_client_id};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::domain::admin::{self, AdminError, NewClient};
use crate::domain::client_key::ClientPublicKey;
use crate::domain::token::TokenStatus;
use crate::qr;
use crate::store::Client;

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client and print its secrets, once (with --otp, also a QR code to scan).
    Create {
        /// A label for people (1-100 characters).
        #[arg(long)]
        name: String,
        /// Space-separated scopes the client may grant, e.g. "tokens:write orders:read".
        #[arg(long)]
        scopes: String,
        /// Also enrol a TOTP authenticator (prints otp_secret, otp_uri and its QR code).
        #[arg(long)]
        otp: bool,
        /// Public key for assertions: PEM SubjectPublicKeyInfo (Ed25519, P-256, RSA) or JWK.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Print one JSON object (no QR code).
        #[arg(long)]
        json: bool,
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
    /// Show one client: everything but its secrets, and how many long-term tokens it holds.
    Show {
        /// The client's id.
        client_id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Disable a client: its credentials and all its tokens stop working.
    ///
    /// Running servers refuse them within the token cache TTL (at most one second).
    Disable {
        /// The client's id.
        client_id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Give a client a new secret (printed once); the old one keeps working for --overlap.
    ///
    /// With an overlap, deployments can switch to the new secret without an outage.
    RotateSecret {
        /// The client's id.
        client_id: String,
        /// How long the old secret stays valid, e.g. 0s, 30m, 24h, 7d (at most 30d).
        #[arg(long, default_value = "0s", value_parser = super::parse_duration_with_unit, value_name = "DURATION")]
        overlap: i64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Enable a disabled client again; the long-term tokens it held stay dead (they are revoked)
    /// unless --revive-tokens.
    Enable {
        /// The client's id.
        client_id: String,
        /// Let the long-term tokens issued before it was disabled work again.
        #[arg(long)]
        revive_tokens: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Lift a client's failed-authentication locks (secret, OTP, assertion; OTP codes of the day).
    ///
    /// Running servers see it within one second.
    Unlock {
        /// The client's id.
        client_id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Give a client a new TOTP seed (printed once, with its QR code), or remove its OTP.
    ///
    /// Codes of the old seed stop working at once.
    ResetOtp {
        /// The client's id.
        client_id: String,
        /// Remove the client's OTP instead of enrolling a new seed.
        #[arg(long)]
        remove: bool,
        /// Print one JSON object (no QR code).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Register the public key a client signs its assertions with.
    ///
    /// A client has one key: this sets it when there is none; --replace swaps an existing one.
    AddKey {
        /// The client's id.
        client_id: String,
        /// PEM SubjectPublicKeyInfo (Ed25519, P-256, RSA) or JWK.
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        /// Replace the client's current key (assertions signed with the old one stop working).
        #[arg(long)]
        replace: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Let a trusted issuer's tokens stand for a client: those with the audience whose
    /// claims meet every --match condition (see tokensmith issuer add).
    AddFederation(Box<AddFederation>),
    /// List the federation rules, of one client or of all.
    ListFederation {
        /// The client's id (default: every client).
        client_id: Option<String>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Remove a federation rule by its id.
    RemoveFederation {
        /// The rule's id (see tokensmith client list-federation).
        rule_id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub(super) async fn run(cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Create { name, scopes, otp, public_key, json, db } => {
            create(name, &scopes, otp, public_key.as_deref(), json, &db).await
        }
        ClientCommand::List { json, db } => list(json, &db).await,
        ClientCommand::Show { client_id, json, db } => show(&client_id, json, &db).await,
        ClientCommand::Disable { client_id, json, db } => disable(&client_id, &db, json).await,
        ClientCommand::RotateSecret { client_id, overlap, json, db } => {
            rotate_secret(&client_id, overlap, json, &db).await
        }
        ClientCommand::Enable { client_id, revive_tokens, json, db } => {
            enable(&client_id, revive_tokens, &db, json).await
        }
        ClientCommand::Unlock { client_id, json, db } => unlock(&client_id, &db, json).await,
        ClientCommand::ResetOtp { client_id, remove, json, db } => reset_otp(&client_id, remove, json, &db).await,
        ClientCommand::AddKey { client_id, public_key, replace, json, db } => {
            add_key(&client_id, &public_key, replace, json, &db).await
        }
        ClientCommand::AddFederation(args) => federation::add_rule(*args).await,
        ClientCommand::ListFederation { client_id, json, db } => {
            federation::list_rules(client_id.as_deref(), json, &db).await
        }
        ClientCommand::RemoveFederation { rule_id, json, db } => federation::remove_rule(&rule_id, json, &db).await,
    }
}

/// Reads and checks a public key file before anything is opened or written.
fn read_public_key(path: &Path) -> anyhow::Result<(String, ClientPublicKey)> {
    let text = crate::files::read_small_text(path, crate::files::MAX_KEY_BYTES).map_err(|e| {
        anyhow::anyhow!(
            "cannot read --public-key file {}: {e} (give the path of a PEM or JWK public key file)",
            path.display()
        )
    })?;
    let key = ClientPublicKey::parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "--public-key {}: {e} (expected a PEM SubjectPublicKeyInfo or a JWK of an Ed25519, P-256 or RSA key)",
            path.display()
        )
    })?;
    Ok((text, key))
}

/// An admin error as one line that says what to do.
fn explain(e: AdminError, db: &DatabaseArgs) -> anyhow::Error {
    match e {
        AdminError::UnknownClient(id) => {
            anyhow::anyhow!("no client {id} in {} (see tokensmith client list)", db.name())
        }
        AdminError::KeyExists { client, alg } => anyhow::anyhow!(
            "client {client} already has a public key ({alg}); pass --replace to replace it \
             (assertions signed with the old key then stop working)"
        ),
        other => anyhow::anyhow!("{other}"),
    }
}

pub(super) async fn create(
    name: String,
    scopes: &str,
    otp: bool,
    public_key: Option<&Path>,
    json: bool,
    db: &DatabaseArgs,
) -> anyhow::Result<()> {
    let scopes = super::parse_scopes_flag(scopes)?;
    if scopes.is_empty() {
        anyhow::bail!("--scopes is empty: name at least one scope the client may grant, e.g. --scopes \"deploy\"");
    }
    // Check the key before touching the database, so a bad file changes nothing.
    let public_key = public_key.map(read_public_key).transpose()?;
    let thumbprint = public_key.as_ref().and_then(|(_, key)| key.thumbprint());
    let public_key = public_key.map(|(text, _)| text);
    let (store, keyring) = db.open_or_create().await?;
    let now = SystemClock.now();
    let created = admin::create_client(store.as_ref(), &keyring, now, NewClient { name, scopes, otp, public_key })
        .await
        .map_err(|e| explain(e, db))?;
    if json {
        let mut v = json!({
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
            v["public_key_thumbprint"] = thumbprint.into();
        }
        return output::json(&v);
    }
    let mut pairs = vec![
        ("client_id", created.client_id.to_string()),
        ("name", created.name.clone()),
        ("scopes", created.scopes.to_space_separated()),
        ("client_secret", created.client_secret.expose().to_owned()),
    ];
    if let (Some(s), Some(u)) = (&created.otp_secret, &created.otp_uri) {
        pairs.push(("otp_secret", s.expose_secret().to_owned()));
        pairs.push(("otp_uri", u.expose_secret().to_owned()));
    }
    if let Some(alg) = created.public_key_alg {
        pairs.push(("public key", thumbprint.map_or_else(|| alg.to_owned(), |t| format!("{alg}, thumbprint {t}"))));
    }
    let mut text = format!("client created\n{}", fields(&pairs));
    if let Some(uri) = &created.otp_uri {
        text.push_str("\nScan this with an authenticator app (it holds the OTP secret):\n\n");
        text.push_str(&qr::render(uri.expose_secret(), qr::ansi_for_stdout())?);
        text.push('\n');
    }
    text.push_str("The secrets above are shown this once; store them now.\n");
    output::print(&text)
}

fn client_json(c: &Client) -> Value {
    json!({
        "client_id": c.id.as_str(),
        "name": c.name,
        "scopes": c.scopes.to_vec(),
        "otp": c.otp_seed_sealed.is_some(),
        "public_key_alg": c.public_key_alg,
        "disabled": c.disabled,
        "created_at": rfc3339(c.created_at),
        "last_used_at": json_time(c.last_used_at),
    })
}

async fn list(json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let (store, _) = db.open_existing().await?;
    let clients = store.list_clients().await?;
    if json {
        return output::json(&clients.iter().map(client_json).collect());
    }
    if clients.is_empty() {
        return output::print("no clients (register one with tokensmith client create)\n");
    }
    let mut t = Table::new(&["CLIENT_ID", "NAME", "OTP", "KEY", "DISABLED", "CREATED", "SCOPES"]).max_width(1, 24);
    for c in &clients {
        t.row([
            c.id.to_string(),
            c.name.clone(),
            yes_no(c.otp_seed_sealed.is_some()).to_owned(),
            c.public_key_alg.clone().unwrap_or_else(|| "-".into()),
            yes_no(c.disabled).to_owned(),
            time(c.created_at),
            c.scopes.to_space_separated(),
        ]);
    }
    output::print(&t.render())
}

async fn show(client_id: &str, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let (store, _) = db.open_existing().await?;
    let client = store.get_client(&id).await?.ok_or_else(|| explain(AdminError::UnknownClient(id.clone()), db))?;
    let now = SystemClock.now();
    let tokens = store.list_current_long_tokens(Some(&id), now).await?;
    let count = |s: TokenStatus| tokens.iter().filter(|t| t.status(now) == s).count();
    let (live, rotating, suspended) =
        (count(TokenStatus::Live), count(TokenStatus::Rotating), count(TokenStatus::Disabled));
    // The stored key was checked when it was registered; a key that no longer parses is shown without a thumbprint.
    let thumbprint =
        client.public_key.as_deref().and_then(|k| ClientPublicKey::parse(k).ok()).and_then(|k| k.thumbprint());
    if json {
        let mut v = client_json(&client);
        v["public_key"] = client.public_key.clone().into();
        v["public_key_thumbprint"] = thumbprint.into();
        v["long_tokens"] = json!({"live": live, "rotating": rotating, "suspended": suspended});
        return output::json(&v);
    }
    let key = match (&client.public_key_alg, &thumbprint) {
        (Some(alg), Some(t)) => format!("{alg}, thumbprint {t}"),
        (Some(alg), None) => alg.clone(),
        (None, _) => "none (register one with tokensmith client add-key)".into(),
    };
    let tokens = if client.disabled {
        format!("{suspended} suspended (revoked when it is enabled, unless --revive-tokens)")
    } else {
        format!("{live} live, {rotating} rotating (see tokensmith token list --client {id})")
    };
    let pairs = [
        ("client_id", id.to_string()),
        ("name", client.name.clone()),
        ("scopes", client.scopes.to_space_separated()),
        ("otp", yes_no(client.otp_seed_sealed.is_some()).to_owned()),
        ("public key", key),
        ("disabled", yes_no(client.disabled).to_owned()),
        ("created", time(client.created_at)),
        ("last used", client.last_used_at.map_or_else(|| "never (recorded to the minute)".into(), time)),
        ("long-term tokens", tokens),
    ];
    output::print(&format!("client {id}\n{}", fields(&pairs)))
}

async fn disable(client_id: &str, db: &DatabaseArgs, json: bool) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let (store, _) = db.open_existing().await?;
    admin::disable_client(store.as_ref(), SystemClock.now(), &id).await.map_err(|e| explain(e, db))?;
    if json {
        return output::json(&json!({"client_id": id.as_str(), "disabled": true}));
    }
    output::print(&format!(
        "client {id} disabled; its credentials and tokens stop working (running servers: within one second)\n"
    ))
}

async fn enable(client_id: &str, revive_tokens: bool, db: &DatabaseArgs, json: bool) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let (store, _) = db.open_existing().await?;
    let revoked = admin::enable_client(store.as_ref(), SystemClock.now(), &id, revive_tokens)
        .await
        .map_err(|e| explain(e, db))?;
    if json {
        return output::json(&json!({"client_id": id.as_str(), "disabled": false, "revoked_tokens": revoked}));
    }
    let tokens = if revive_tokens {
        "its long-term tokens work again".to_owned()
    } else {
        format!("its earlier long-term tokens stay dead ({revoked} revoked; --revive-tokens keeps them)")
    };
    output::print(&format!("client {id} enabled; {tokens}\n"))
}

async fn unlock(client_id: &str, db: &DatabaseArgs, json: bool) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let (store, _) = db.open_existing().await?;
    admin::unlock_client(store.as_ref(), SystemClock.now_millis(), &id).await.map_err(|e| explain(e, db))?;
    if json {
        return output::json(&json!({"client_id": id.as_str(), "unlocked": true}));
    }
    output::print(&format!(
        "client {id} unlocked: its failed authentications are forgotten (running servers: within one second)\n"
    ))
}

async fn reset_otp(client_id: &str, remove: bool, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let (store, keyring) = db.open_existing().await?;
    let enrolment =
        admin::reset_otp(store.as_ref(), &keyring, SystemClock.now(), &id, remove).await.map_err(|e| explain(e, db))?;
    let Some(e) = enrolment else {
        if json {
            return output::json(&json!({"client_id": id.as_str(), "otp": false}));
        }
        return output::print(&format!("client {id}: OTP removed; its codes stop working at once\n"));
    };
    if json {
        return output::json(&json!({
            "client_id": id.as_str(),
            "otp": true,
            "otp_secret": e.otp_secret.expose_secret(),
            "otp_uri": e.otp_uri.expose_secret(),
        }));
    }
    let pairs = [
        ("client_id", id.to_string()),
        ("otp_secret", e.otp_secret.expose_secret().to_owned()),
        ("otp_uri", e.otp_uri.expose_secret().to_owned()),
    ];
    let mut text = format!("new OTP seed; codes of the old one stop working\n{}", fields(&pairs));
    text.push_str("\nScan this with an authenticator app (it holds the OTP secret):\n\n");
    text.push_str(&qr::render(e.otp_uri.expose_secret(), qr::ansi_for_stdout())?);
    text.push_str("\nThe secret above is shown this once; store it now.\n");
    output::print(&text)
}

async fn rotate_secret(client_id: &str, overlap: i64, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let (store, keyring) = db.open_existing().await?;
    let now = SystemClock.now();
    let secret =
        admin::rotate_client_secret(store.as_ref(), &keyring, now, &id, overlap).await.map_err(|e| explain(e, db))?;
    let old_until = (overlap > 0).then(|| rfc3339(now + overlap));
    if json {
        return output::json(&json!({
            "client_id": id.as_str(),
            "client_secret": secret.expose(),
            "previous_secret_valid_until": old_until,
        }));
    }
    let previous = match &old_until {
        Some(t) => format!("valid until {t}"),
        None => "no longer valid".to_owned(),
    };
    let pairs =
        [("client_id", id.to_string()), ("client_secret", secret.expose().to_owned()), ("previous secret", previous)];
    output::print(&format!(
        "client secret rotated\n{}The secret above is shown this once; store it now.\n",
        fields(&pairs)
    ))
}

async fn add_key(client_id: &str, path: &Path, replace: bool, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let (text, key) = read_public_key(path)?;
    let (store, _) = db.open_existing().await?;
    let replaced = store.get_client(&id).await?.and_then(|c| c.public_key_alg);
    let alg = admin::set_public_key(store.as_ref(), SystemClock.now(), &id, &text, replace)
        .await
        .map_err(|e| explain(e, db))?;
    let thumbprint = key.thumbprint();
    if json {
        return output::json(&json!({
            "client_id": id.as_str(),
            "public_key_alg": alg,
            "public_key_thumbprint": thumbprint,
            "replaced": replaced.is_some(),
        }));
    }
    let verb = if replaced.is_some() { "replaced the" } else { "registered a" };
    let thumb = thumbprint.map(|t| format!(", thumbprint {t}")).unwrap_or_default();
    output::print(&format!("{verb} public key of client {id}: {alg}{thumb}\n"))
}
