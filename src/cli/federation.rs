//! `tokensmith issuer …` (the external issuers tokensmith trusts) and the federation rules of
//! `tokensmith client add-federation | list-federation | remove-federation`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqwest::Method;

use super::output::{self, Table, fields, view_time};
use super::{Backend, DatabaseArgs, parse_client_id};
use crate::clock::{Clock, SystemClock};
use crate::domain::federation::IssuerKeys;
use crate::domain::federation::admin::{self as federation, NewRule};
use crate::http::admin::model::{FederationRuleView, IssuerView, RemovedIssuerView, RemovedRuleView};

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
    db.local_only("issuer add")?;
    let keys = keys.keys()?;
    let (store, _) = db.open_existing().await?;
    let added = federation::add_issuer(store.as_ref(), SystemClock.now(), name, issuer, keys).await?;
    let added = IssuerView::from(&added);
    if json {
        return output::json_of(&added);
    }
    output::print(&format!("issuer {} trusted: tokens with iss {} ({})\n", added.name, added.issuer, source(&added)))
}

fn source(i: &IssuerView) -> String {
    match (&i.jwks_uri, &i.jwks) {
        (Some(uri), _) => format!("keys from {uri}"),
        (None, Some(set)) => format!("{} keys from a file", set["keys"].as_array().map_or(0, Vec::len)),
        (None, None) if i.discovery => "keys through OIDC discovery".into(),
        (None, None) => i.keys.clone(),
    }
}

async fn list_issuers(json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let issuers: Vec<IssuerView> = match db.backend().await? {
        Backend::Remote(r) => r.get(&["issuers"], &[]).await?,
        Backend::Local(store, _) => store.list_issuers().await?.iter().map(IssuerView::from).collect(),
    };
    if json {
        return output::json_of(&issuers);
    }
    if issuers.is_empty() {
        return output::print("no trusted issuers (add one with tokensmith issuer add)\n");
    }
    let mut t = Table::new(&["NAME", "ISSUER", "KEYS", "CREATED"]);
    for i in &issuers {
        t.row([i.name.clone(), i.issuer.clone(), source(i), view_time(&i.created_at)]);
    }
    output::print(&t.render())
}

async fn show_issuer(name: &str, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    db.local_only("issuer show")?;
    let (store, _) = db.open_existing().await?;
    let issuer = store.list_issuers().await?.into_iter().find(|i| i.name.as_str() == name);
    let issuer = issuer
        .ok_or_else(|| anyhow::anyhow!("no trusted issuer {:?} (see tokensmith issuer list)", output::clean(name)))?;
    let issuer = IssuerView::from(&issuer);
    let rules: Vec<FederationRuleView> = store
        .list_federation_rules(None)
        .await?
        .iter()
        .filter(|r| r.issuer == name)
        .map(FederationRuleView::from)
        .collect();
    if json {
        let mut v = serde_json::to_value(&issuer)?;
        v["rules"] = serde_json::to_value(&rules)?;
        return output::json(&v);
    }
    let pairs = [
        ("issuer", issuer.issuer.clone()),
        ("keys", source(&issuer)),
        ("created", view_time(&issuer.created_at)),
        ("rules", rules.len().to_string()),
    ];
    output::print(&format!("issuer {}\n{}{}", issuer.name, fields(&pairs), rules_table(&rules)))
}

async fn remove_issuer(name: &str, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let removed: RemovedIssuerView = match db.backend().await? {
        Backend::Remote(r) => r.send(Method::DELETE, &["issuers", name], None).await?,
        Backend::Local(store, _) => {
            let rules_removed = federation::remove_issuer(store.as_ref(), SystemClock.now(), name).await?;
            RemovedIssuerView { name: name.to_owned(), removed: true, rules_removed }
        }
    };
    if json {
        return output::json_of(&removed);
    }
    output::print(&format!(
        "issuer {} no longer trusted; {} federation rules removed with it\n",
        output::clean(&removed.name),
        removed.rules_removed
    ))
}

pub(super) async fn add_rule(args: AddFederation) -> anyhow::Result<()> {
    args.db.local_only("client add-federation")?;
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
    let rule = FederationRuleView::from(&federation::add_rule(store.as_ref(), SystemClock.now(), spec).await?);
    if args.json {
        return output::json_of(&rule);
    }
    output::print(&format!("federation rule {} added\n{}", rule.rule_id, rules_table(std::slice::from_ref(&rule))))
}

pub(super) async fn list_rules(client_id: Option<&str>, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let client = client_id.map(parse_client_id).transpose()?;
    let rules: Vec<FederationRuleView> = match db.backend().await? {
        Backend::Remote(r) => {
            let query: Vec<(&str, String)> = client.iter().map(|c| ("client_id", c.to_string())).collect();
            r.get(&["federation-rules"], &query).await?
        }
        Backend::Local(store, _) => {
            store.list_federation_rules(client.as_ref()).await?.iter().map(FederationRuleView::from).collect()
        }
    };
    if json {
        return output::json_of(&rules);
    }
    if rules.is_empty() {
        return output::print("no federation rules (add one with tokensmith client add-federation)\n");
    }
    output::print(&rules_table(&rules))
}

pub(super) async fn remove_rule(rule_id: &str, json: bool, db: &DatabaseArgs) -> anyhow::Result<()> {
    let removed: RemovedRuleView = match db.backend().await? {
        Backend::Remote(r) => r.send(Method::DELETE, &["federation-rules", rule_id], None).await?,
        Backend::Local(store, _) => {
            RemovedRuleView::from(&federation::remove_rule(store.as_ref(), SystemClock.now(), rule_id).await?)
        }
    };
    if json {
        return output::json_of(&removed);
    }
    output::print(&format!(
        "federation rule {} of client {} removed\n",
        output::clean(&removed.rule_id),
        output::clean(&removed.client_id)
    ))
}

fn rules_table(rules: &[FederationRuleView]) -> String {
    if rules.is_empty() {
        return String::new();
    }
    let mut t = Table::new(&["RULE_ID", "CLIENT_ID", "ISSUER", "AUDIENCE", "MAX_TTL", "SCOPES", "MATCHES"]);
    for r in rules {
        t.row([
            r.rule_id.clone(),
            r.client_id.clone(),
            r.issuer.clone(),
            r.audience.clone(),
            format!("{}d", r.max_ttl_days),
            r.scopes.as_ref().map_or_else(|| "(client's)".into(), |s| s.join(" ")),
            r.matches.join(" "),
        ]);
    }
    t.render()
}
