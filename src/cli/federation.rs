//! `tokensmith issuer …` (the external issuers tokensmith trusts) and the federation rules of
//! `tokensmith client add-federation | list-federation | remove-federation`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::output::{self, Table, fields, time};
use super::{DatabaseArgs, parse_client_id};
use crate::clock::{Clock, SystemClock};
use crate::domain::Scopes;
use crate::domain::federation::admin::{self as federation, NewRule};
use crate::domain::federation::{FederationRule, IssuerKeys, TrustedIssuer};

#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    /// Trust an external issuer (an OIDC provider, GitHub Actions, a Kubernetes cluster).
    ///
    /// Its keys come only from the source given here, never from a token's header.
    Add {
        /// The name rules refer to it by (a-z, 0-9, -, _, .), e.g. github.
        #[arg(long)]
        name: String,
        /// The exact `iss` of its tokens, e.g. https://token.actions.githubusercontent.com.
        #[arg(long, value_name = "URL")]
        issuer: String,
        #[command(flatten)]
        keys: KeySource,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List the trusted issuers.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Show one trusted issuer and the rules that name it.
    Show {
        name: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Stop trusting an issuer; the federation rules that name it are removed with it.
    Remove {
        name: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// Where the issuer's keys come from: exactly one.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct KeySource {
    /// Fetch its JWK Set from this URL (HTTPS; HTTP only on a loopback address).
    #[arg(long, value_name = "URL")]
    jwks_uri: Option<String>,
    /// Its JWK Set, read from this file now (for issuers that cannot be reached, e.g. a
    /// Kubernetes cluster's service-account issuer).
    #[arg(long, value_name = "FILE")]
    jwks_file: Option<PathBuf>,
    /// Find its JWK Set through `<issuer>/.well-known/openid-configuration`.
    #[arg(long)]
    discovery: bool,
}

impl KeySource {
    fn keys(self) -> anyhow::Result<IssuerKeys> {
        Ok(match (self.jwks_uri, self.jwks_file, self.discovery) {
            (Some(uri), _, _) => IssuerKeys::JwksUri(uri),
            (_, Some(path), _) => IssuerKeys::Jwks(
                crate::files::read_small_text(&path, crate::files::MAX_CONFIG_BYTES)
                    .map_err(|e| anyhow::anyhow!("cannot read --jwks-file {}: {e}", path.display()))?,
            ),
            _ => IssuerKeys::Discovery,
        })
    }
}

/// The options of `client add-federation`.
#[derive(Debug, Args)]
pub struct AddFederation {
    /// The client the external tokens stand for.
    client_id: String,
    /// The trusted issuer's name (see tokensmith issuer list).
    #[arg(long)]
    issuer: String,
    /// The `aud` the external token must carry, e.g. this server's URL.
    #[arg(long)]
    audience: String,
    /// A condition on a claim, CLAIM=VALUE (`*` in VALUE matches any run of characters;
    /// nested claims as a/b). Repeat it: all must hold. E.g.
    /// sub=repo:acme/deploy:ref:refs/heads/main.
    #[arg(long = "match", value_name = "CLAIM=VALUE", required = true)]
    matches: Vec<String>,
    /// The longest long-term token the rule gives, in days (1-90) [default: 1].
    #[arg(long)]
    max_ttl_days: Option<i64>,
    /// Space-separated scopes the rule gives, a subset of the client's [default: the client's].
    #[arg(long)]
    scopes: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub(super) async fn run(cmd: IssuerCommand) -> anyhow::Result<()> {
    match cmd {
        IssuerCommand::Add { name, issuer, keys, json, db } => add_issuer(&name, &issuer, keys, json, &db).await,
        IssuerCommand::List { json, db } => list_issuers(json, &db).await,
        IssuerCommand::Show { name, json, db } => show_issuer(&name, json, &db).await,
        IssuerCommand::Remove { name, json, db } => remove_issuer(&name, json, &db).await,
    }
}

async fn add_issuer(name: &str, issuer: &str, keys: KeySource, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let keys = keys.keys()?;
    let (store, _) = db.open_existing().await?;
    let added = federation::add_issuer(store.as_ref(), SystemClock.now(), name, issuer, keys).await?;
    if json {
        return output::json(&issuer_json(&added));
    }
    output::print(&format!(
        "issuer {} trusted: tokens with iss {} ({})\n",
        added.name.as_str(),
        added.issuer,
        source(&added.keys)
    ))
}

fn source(keys: &IssuerKeys) -> String {
    match keys {
        IssuerKeys::JwksUri(uri) => format!("keys from {uri}"),
        IssuerKeys::Discovery => "keys through OIDC discovery".into(),
        IssuerKeys::Jwks(set) => {
            let n =
                serde_json::from_str::<Value>(set).ok().and_then(|v| v["keys"].as_array().map(Vec::len)).unwrap_or(0);
            format!("{n} keys from a file")
        }
    }
}

fn issuer_json(i: &TrustedIssuer) -> Value {
    let (jwks_uri, discovery, jwks) = match &i.keys {
        IssuerKeys::JwksUri(uri) => (Some(uri.clone()), false, None),
        IssuerKeys::Discovery => (None, true, None),
        IssuerKeys::Jwks(set) => (None, false, serde_json::from_str::<Value>(set).ok()),
    };
    json!({"name": i.name.as_str(), "issuer": i.issuer, "jwks_uri": jwks_uri, "discovery": discovery,
           "jwks": jwks, "created_at": output::json_time(Some(i.created_at))})
}

async fn list_issuers(json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let (store, _) = db.open_existing().await?;
    let issuers = store.list_issuers().await?;
    if json {
        return output::json(&issuers.iter().map(issuer_json).collect());
    }
    if issuers.is_empty() {
        return output::print("no trusted issuers (add one with tokensmith issuer add)\n");
    }
    let mut t = Table::new(&["NAME", "ISSUER", "KEYS", "CREATED"]);
    for i in &issuers {
        t.row([i.name.as_str().to_owned(), i.issuer.clone(), source(&i.keys), time(i.created_at)]);
    }
    output::print(&t.render())
}

async fn show_issuer(name: &str, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let (store, _) = db.open_existing().await?;
    let issuer = store.list_issuers().await?.into_iter().find(|i| i.name.as_str() == name);
    let issuer = issuer
        .ok_or_else(|| anyhow::anyhow!("no trusted issuer {:?} (see tokensmith issuer list)", output::clean(name)))?;
    let rules: Vec<FederationRule> =
        store.list_federation_rules(None).await?.into_iter().filter(|r| r.issuer == name).collect();
    if json {
        let mut v = issuer_json(&issuer);
        v["rules"] = rules.iter().map(rule_json).collect();
        return output::json(&v);
    }
    let pairs = [
        ("issuer", issuer.issuer.clone()),
        ("keys", source(&issuer.keys)),
        ("created", time(issuer.created_at)),
        ("rules", rules.len().to_string()),
    ];
    output::print(&format!("issuer {}\n{}{}", issuer.name.as_str(), fields(&pairs), rules_table(&rules)))
}

async fn remove_issuer(name: &str, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let (store, _) = db.open_existing().await?;
    let rules = federation::remove_issuer(store.as_ref(), SystemClock.now(), name).await?;
    if json {
        return output::json(&json!({"name": name, "removed": true, "rules_removed": rules}));
    }
    output::print(&format!("issuer {name} no longer trusted; {rules} federation rules removed with it\n"))
}

pub(super) async fn add_rule(args: AddFederation) -> anyhow::Result<()> {
    let client = parse_client_id(&args.client_id)?;
    let scopes = args.scopes.as_deref().map(super::parse_scopes_flag).transpose()?;
    let (store, _) = args.db.open_existing().await?;
    let spec = NewRule {
        client,
        issuer: args.issuer,
        audience: args.audience,
        matches: args.matches,
        max_ttl_days: args.max_ttl_days,
        scopes,
    };
    let rule = federation::add_rule(store.as_ref(), SystemClock.now(), spec).await?;
    if args.json {
        return output::json(&rule_json(&rule));
    }
    output::print(&format!("federation rule {} added\n{}", rule.id, rules_table(std::slice::from_ref(&rule))))
}

pub(super) async fn list_rules(client_id: Option<&str>, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let client = client_id.map(parse_client_id).transpose()?;
    let (store, _) = db.open_existing().await?;
    let rules = store.list_federation_rules(client.as_ref()).await?;
    if json {
        return output::json(&rules.iter().map(rule_json).collect());
    }
    if rules.is_empty() {
        return output::print("no federation rules (add one with tokensmith client add-federation)\n");
    }
    output::print(&rules_table(&rules))
}

pub(super) async fn remove_rule(rule_id: &str, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let (store, _) = db.open_existing().await?;
    let rule = federation::remove_rule(store.as_ref(), SystemClock.now(), rule_id).await?;
    if json {
        return output::json(&json!({"id": rule.id, "client_id": rule.client_id.as_str(), "removed": true}));
    }
    output::print(&format!("federation rule {} of client {} removed\n", rule.id, rule.client_id))
}

fn conditions(rule: &FederationRule) -> Vec<String> {
    rule.matches.iter().map(|m| format!("{}={}", m.path, m.pattern.as_str())).collect()
}

fn rule_json(rule: &FederationRule) -> Value {
    json!({"id": rule.id, "client_id": rule.client_id.as_str(), "issuer": rule.issuer, "audience": rule.audience,
           "matches": conditions(rule), "max_ttl_days": rule.max_ttl_days,
           "scopes": rule.scopes.as_ref().map(Scopes::to_space_separated)})
}

fn rules_table(rules: &[FederationRule]) -> String {
    if rules.is_empty() {
        return String::new();
    }
    let mut t = Table::new(&["RULE_ID", "CLIENT_ID", "ISSUER", "AUDIENCE", "MAX_TTL", "SCOPES", "MATCHES"]);
    for r in rules {
        t.row([
            r.id.clone(),
            r.client_id.to_string(),
            r.issuer.clone(),
            r.audience.clone(),
            format!("{}d", r.max_ttl_days),
            r.scopes.as_ref().map_or_else(|| "(client's)".into(), Scopes::to_space_separated),
            conditions(r).join(" "),
        ]);
    }
    t.render()
}
