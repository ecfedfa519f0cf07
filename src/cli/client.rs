//! `tokensmith client …`: register, list, show, disable and enable clients, and register
//! their public keys.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::federation::{self, AddFederation};
use super::output::{self, Table, fields, view_time, yes_no};
use super::remote::{Remote, refused_status};
use super::{Backend, DatabaseArgs, parse_client_id};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::domain::ClientId;
use crate::domain::admin::{self, AdminError, NewClient, reads};
use crate::domain::client_key::ClientPublicKey;
use crate::http::admin::model::{
    ClientDetailView, ClientStateView, ClientView, CreatedClientView, OtpView, PublicKeyView, RotatedSecretView,
    UnlockedView,
};
use crate::qr;

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
        AdminError::KeyExists { client, alg } => key_exists(&client, &alg),
        other => anyhow::anyhow!("{other}"),
    }
}

fn key_exists(client: &ClientId, alg: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "client {client} already has a public key ({alg}); pass --replace to replace it \
         (assertions signed with the old key then stop working)"
    )
}

/// `/admin/v1/clients/<id>/<action>`.
fn client_path<'a>(id: &'a ClientId, action: &'a str) -> Vec<&'a str> {
    let mut path = vec!["clients", id.as_str()];
    if !action.is_empty() {
        path.push(action);
    }
    path
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
    let created: CreatedClientView = match db.remote()? {
        Some(r) => {
            let body = json!({"name": name, "scopes": scopes.to_vec(), "otp": otp, "public_key": public_key});
            r.send(Method::POST, &["clients"], Some(body)).await?
        }
        None => {
            let (store, keyring) = db.open_or_create().await?;
            let spec = NewClient { name, scopes, otp, public_key };
            let c = admin::create_client(store.as_ref(), &keyring, SystemClock.now(), spec)
                .await
                .map_err(|e| explain(e, db))?;
            CreatedClientView::of(&c, thumbprint)
        }
    };
    print_created(CreatedClientView { otp_qr_svg: None, ..created }, json)
}

fn print_created(created: CreatedClientView, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json_of(&created);
    }
    let mut pairs = vec![
        ("client_id", created.client_id.clone()),
        ("name", created.name.clone()),
        ("scopes", created.scopes.join(" ")),
        ("client_secret", created.client_secret.clone()),
    ];
    if let (Some(s), Some(u)) = (&created.otp_secret, &created.otp_uri) {
        pairs.push(("otp_secret", s.clone()));
        pairs.push(("otp_uri", u.clone()));
    }
    if let Some(alg) = &created.public_key_alg {
        let key =
            created.public_key_thumbprint.as_ref().map_or_else(|| alg.clone(), |t| format!("{alg}, thumbprint {t}"));
        pairs.push(("public key", key));
    }
    let mut text = format!("client created\n{}", fields(&pairs));
    if let Some(uri) = &created.otp_uri {
        text.push_str("\nScan this with an authenticator app (it holds the OTP secret):\n\n");
        text.push_str(&qr::render(uri, qr::ansi_for_stdout())?);
        text.push('\n');
    }
    text.push_str("The secrets above are shown this once; store them now.\n");
    output::print(&text)
}

async fn list(json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let clients: Vec<ClientView> = match db.backend().await? {
        Backend::Remote(r) => r.get(&["clients"], &[]).await?,
        Backend::Local(store, _) => store.list_clients().await?.iter().map(ClientView::from).collect(),
    };
    print_clients(&clients, json)
}

fn print_clients(clients: &[ClientView], json: bool) -> anyhow::Result<()> {
    if json {
        return output::json_of(&clients);
    }
    if clients.is_empty() {
        return output::print("no clients (register one with tokensmith client create)\n");
    }
    let mut t = Table::new(&["CLIENT_ID", "NAME", "OTP", "KEY", "DISABLED", "CREATED", "SCOPES"]).max_width(1, 24);
    for c in clients {
        t.row([
            c.client_id.clone(),
            c.name.clone(),
            yes_no(c.otp).to_owned(),
            c.public_key_alg.clone().unwrap_or_else(|| "-".into()),
            yes_no(c.disabled).to_owned(),
            view_time(&c.created_at),
            c.scopes.join(" "),
        ]);
    }
    output::print(&t.render())
}

async fn show(client_id: &str, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let detail: ClientDetailView = match db.backend().await? {
        Backend::Remote(r) => r.get(&client_path(&id, ""), &[]).await?,
        Backend::Local(store, _) => {
            let detail =
                reads::client_detail(store.as_ref(), &id, SystemClock.now()).await.map_err(|e| explain(e, db))?;
            ClientDetailView::from(&detail)
        }
    };
    print_detail(&detail, json)
}

fn print_detail(d: &ClientDetailView, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json_of(d);
    }
    let c = &d.client;
    let key = match (&c.public_key_alg, &d.public_key_thumbprint) {
        (Some(alg), Some(t)) => format!("{alg}, thumbprint {t}"),
        (Some(alg), None) => alg.clone(),
        (None, _) => "none (register one with tokensmith client add-key)".into(),
    };
    let n = &d.long_tokens;
    let tokens = if c.disabled {
        format!("{} suspended (revoked when it is enabled, unless --revive-tokens)", n.suspended)
    } else {
        format!("{} live, {} rotating (see tokensmith token list --client {})", n.live, n.rotating, c.client_id)
    };
    let pairs = [
        ("client_id", c.client_id.clone()),
        ("name", c.name.clone()),
        ("scopes", c.scopes.join(" ")),
        ("otp", yes_no(c.otp).to_owned()),
        ("public key", key),
        ("disabled", yes_no(c.disabled).to_owned()),
        ("created", view_time(&c.created_at)),
        ("last used", c.last_used_at.as_deref().map_or_else(|| "never (recorded to the minute)".into(), view_time)),
        ("long-term tokens", tokens),
    ];
    output::print(&format!("client {}\n{}", output::clean(&c.client_id), fields(&pairs)))
}

async fn disable(client_id: &str, db: &DatabaseArgs, json: bool) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let state: ClientStateView = match db.backend().await? {
        Backend::Remote(r) => r.send(Method::POST, &client_path(&id, "disable"), None).await?,
        Backend::Local(store, _) => {
            admin::disable_client(store.as_ref(), SystemClock.now(), &id).await.map_err(|e| explain(e, db))?;
            ClientStateView { client_id: id.to_string(), disabled: true, revoked_tokens: None }
        }
    };
    if json {
        return output::json_of(&state);
    }
    output::print(&format!(
        "client {} disabled; its credentials and tokens stop working (running servers: within one second)\n",
        output::clean(&state.client_id)
    ))
}

async fn enable(client_id: &str, revive_tokens: bool, db: &DatabaseArgs, json: bool) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let state: ClientStateView = match db.backend().await? {
        Backend::Remote(r) => {
            let body = json!({"revive_tokens": revive_tokens});
            r.send(Method::POST, &client_path(&id, "enable"), Some(body)).await?
        }
        Backend::Local(store, _) => {
            let revoked = admin::enable_client(store.as_ref(), SystemClock.now(), &id, revive_tokens)
                .await
                .map_err(|e| explain(e, db))?;
            ClientStateView { client_id: id.to_string(), disabled: false, revoked_tokens: Some(revoked as u64) }
        }
    };
    if json {
        return output::json_of(&state);
    }
    let tokens = if revive_tokens {
        "its long-term tokens work again".to_owned()
    } else {
        let revoked = state.revoked_tokens.unwrap_or(0);
        format!("its earlier long-term tokens stay dead ({revoked} revoked; --revive-tokens keeps them)")
    };
    output::print(&format!("client {} enabled; {tokens}\n", output::clean(&state.client_id)))
}

async fn unlock(client_id: &str, db: &DatabaseArgs, json: bool) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let unlocked: UnlockedView = match db.backend().await? {
        Backend::Remote(r) => r.send(Method::POST, &client_path(&id, "unlock"), None).await?,
        Backend::Local(store, _) => {
            admin::unlock_client(store.as_ref(), SystemClock.now_millis(), &id).await.map_err(|e| explain(e, db))?;
            UnlockedView { client_id: id.to_string(), unlocked: true }
        }
    };
    if json {
        return output::json_of(&unlocked);
    }
    output::print(&format!(
        "client {} unlocked: its failed authentications are forgotten (running servers: within one second)\n",
        output::clean(&unlocked.client_id)
    ))
}

async fn reset_otp(client_id: &str, remove: bool, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let otp: OtpView = match db.backend().await? {
        Backend::Remote(r) => {
            r.send(Method::POST, &client_path(&id, "reset-otp"), Some(json!({"remove": remove}))).await?
        }
        Backend::Local(store, keyring) => {
            let enrolment = admin::reset_otp(store.as_ref(), &keyring, SystemClock.now(), &id, remove)
                .await
                .map_err(|e| explain(e, db))?;
            OtpView::of(&id, enrolment.as_ref())
        }
    };
    print_otp(OtpView { otp_qr_svg: None, ..otp }, json)
}

fn print_otp(otp: OtpView, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json_of(&otp);
    }
    let id = output::clean(&otp.client_id);
    let (Some(secret), Some(uri)) = (&otp.otp_secret, &otp.otp_uri) else {
        return output::print(&format!("client {id}: OTP removed; its codes stop working at once\n"));
    };
    let pairs = [("client_id", id), ("otp_secret", secret.clone()), ("otp_uri", uri.clone())];
    let mut text = format!("new OTP seed; codes of the old one stop working\n{}", fields(&pairs));
    text.push_str("\nScan this with an authenticator app (it holds the OTP secret):\n\n");
    text.push_str(&qr::render(uri, qr::ansi_for_stdout())?);
    text.push_str("\nThe secret above is shown this once; store it now.\n");
    output::print(&text)
}

async fn rotate_secret(client_id: &str, overlap: i64, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let rotated: RotatedSecretView = match db.backend().await? {
        Backend::Remote(r) => {
            let body = json!({"overlap_secs": overlap});
            r.send(Method::POST, &client_path(&id, "rotate-secret"), Some(body)).await?
        }
        Backend::Local(store, keyring) => {
            let now = SystemClock.now();
            let secret = admin::rotate_client_secret(store.as_ref(), &keyring, now, &id, overlap)
                .await
                .map_err(|e| explain(e, db))?;
            RotatedSecretView {
                client_id: id.to_string(),
                client_secret: secret.expose().to_owned(),
                previous_secret_valid_until: (overlap > 0).then(|| rfc3339(now + overlap)),
            }
        }
    };
    if json {
        return output::json_of(&rotated);
    }
    let previous = match &rotated.previous_secret_valid_until {
        Some(t) => format!("valid until {t}"),
        None => "no longer valid".to_owned(),
    };
    let pairs = [
        ("client_id", rotated.client_id.clone()),
        ("client_secret", rotated.client_secret.clone()),
        ("previous secret", previous),
    ];
    output::print(&format!(
        "client secret rotated\n{}The secret above is shown this once; store it now.\n",
        fields(&pairs)
    ))
}

async fn add_key(client_id: &str, path: &Path, replace: bool, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let id = parse_client_id(client_id)?;
    let (text, key) = read_public_key(path)?;
    let view = match db.backend().await? {
        Backend::Remote(r) => add_key_remote(&r, &id, &text, replace).await?,
        Backend::Local(store, _) => {
            let replaced = store.get_client(&id).await?.and_then(|c| c.public_key_alg);
            let alg = admin::set_public_key(store.as_ref(), SystemClock.now(), &id, &text, replace)
                .await
                .map_err(|e| explain(e, db))?;
            PublicKeyView {
                client_id: id.to_string(),
                public_key_alg: alg.to_owned(),
                public_key_thumbprint: key.thumbprint(),
                replaced: replaced.is_some(),
            }
        }
    };
    if json {
        return output::json_of(&view);
    }
    let verb = if view.replaced { "replaced the" } else { "registered a" };
    let thumb = view.public_key_thumbprint.as_ref().map(|t| format!(", thumbprint {t}")).unwrap_or_default();
    output::print(&format!(
        "{verb} public key of client {}: {}{thumb}\n",
        output::clean(&view.client_id),
        view.public_key_alg
    ))
}

async fn add_key_remote(r: &Remote, id: &ClientId, text: &str, replace: bool) -> anyhow::Result<PublicKeyView> {
    let body = json!({"public_key": text, "replace": replace});
    match r.send(Method::PUT, &client_path(id, "public-key"), Some(body)).await {
        Err(e) if refused_status(&e) == Some(409) => {
            let shown: ClientDetailView = r.get(&client_path(id, ""), &[]).await?;
            Err(key_exists(id, shown.client.public_key_alg.as_deref().unwrap_or("a key")))
        }
        other => other,
    }
}
