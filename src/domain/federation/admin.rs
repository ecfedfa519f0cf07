//! The operator's changes to federation, each audited: trusting an issuer and no longer
//! trusting it (its rules go with it), binding a client to an issuer's claims and unbinding it.

use super::issuer::{IssuerKeys, IssuerName, TrustedIssuer, check_jwks, check_remote_url};
use super::matching::{ClaimMatch, FederationRule, MAX_MATCHES};
use crate::clock;
use crate::crypto;
use crate::domain::admin::AdminError;
use crate::domain::audit::{self, AuditEventExt, ByOperator, event};
use crate::domain::types::{Audience, ClientId, Scopes};
use crate::store::Store;

/// The longest lifetime a rule may allow, and what it allows unless told.
pub const MAX_RULE_TTL_DAYS: i64 = 90;
pub const DEFAULT_RULE_TTL_DAYS: i64 = 1;

/// Trusts an issuer: `issuer` is the exact `iss` of its tokens (an HTTPS URL without query or
/// fragment, HTTP only on a loopback address); its keys come from `keys` alone.
pub async fn add_issuer(
    store: &dyn Store,
    now: i64,
    name: &str,
    issuer: &str,
    keys: IssuerKeys,
) -> Result<TrustedIssuer, AdminError> {
    let name = IssuerName::parse(name).map_err(AdminError::Invalid)?;
    let url = check_remote_url("--issuer", issuer).map_err(AdminError::Invalid)?;
    if url.query().is_some() {
        return Err(AdminError::Invalid(format!("--issuer {issuer:?}: an issuer has no query")));
    }
    let keys = match keys {
        IssuerKeys::JwksUri(uri) => {
            IssuerKeys::JwksUri(check_remote_url("--jwks-uri", &uri).map_err(AdminError::Invalid)?.into())
        }
        IssuerKeys::Jwks(text) => {
            IssuerKeys::Jwks(check_jwks(&text).map_err(|e| AdminError::Invalid(format!("--jwks-file: {e}")))?)
        }
        IssuerKeys::Discovery => IssuerKeys::Discovery,
    };
    let trusted = TrustedIssuer { name, issuer: issuer.to_owned(), keys, created_at: now };
    if !store.insert_issuer(&trusted, issuer_added_event(now, &trusted)).await? {
        return Err(AdminError::Invalid(format!(
            "an issuer named {} or with the issuer {issuer:?} is already trusted (see tokensmith issuer list)",
            trusted.name.as_str()
        )));
    }
    Ok(trusted)
}

fn issuer_added_event(now: i64, trusted: &TrustedIssuer) -> audit::AuditEvent {
    let source = match &trusted.keys {
        IssuerKeys::JwksUri(uri) => serde_json::json!({ "jwks_uri": uri }),
        IssuerKeys::Discovery => serde_json::json!({ "discovery": true }),
        IssuerKeys::Jwks(_) => serde_json::json!({ "jwks": "file" }),
    };
    let detail = serde_json::json!({ "issuer": trusted.name.as_str(), "iss": trusted.issuer, "keys": source });
    audit::new(clock::millis(now), event::ISSUER_ADDED, audit::SUCCESS).by_operator().detail(detail)
}

/// Stops trusting an issuer; its rules are removed with it. Answers how many rules went.
pub async fn remove_issuer(store: &dyn Store, now: i64, name: &str) -> Result<usize, AdminError> {
    let parsed = IssuerName::parse(name).map_err(|_| AdminError::UnknownIssuer(name.to_owned()))?;
    let rules = store.list_federation_rules(None).await?.into_iter().filter(|r| r.issuer == name).count();
    let detail = serde_json::json!({ "issuer": name, "rules_removed": rules });
    let ev = audit::new(clock::millis(now), event::ISSUER_REMOVED, audit::SUCCESS).by_operator().detail(detail);
    if !store.remove_issuer(&parsed, ev).await? {
        return Err(AdminError::UnknownIssuer(name.to_owned()));
    }
    Ok(rules)
}

/// What `client add-federation` asks for.
#[derive(Debug, Clone)]
pub struct NewRule {
    pub client: ClientId,
    pub issuer: String,
    pub audience: String,
    /// `CLAIM=VALUE`, as written after each `--match`.
    pub matches: Vec<String>,
    pub max_ttl_days: Option<i64>,
    pub scopes: Option<Scopes>,
}

/// Binds a client to an issuer's tokens that carry `audience` and satisfy every condition.
/// The registered claims a condition may not be on: `iss` and `aud` are what the rule's issuer
/// and audience already pin (a condition on them holds for every token that gets that far), the
/// times and `jti` differ in every token.
const NOT_AN_IDENTITY: &[&str] = &["iss", "aud", "exp", "nbf", "iat", "jti"];

/// At least one condition: the audience alone would admit every token the issuer mints for
/// anyone (every repository on GitHub) that names it.
pub async fn add_rule(store: &dyn Store, now: i64, spec: NewRule) -> Result<FederationRule, AdminError> {
    let client = store.get_client(&spec.client).await?.ok_or_else(|| AdminError::UnknownClient(spec.client.clone()))?;
    if !store.list_issuers().await?.iter().any(|i| i.name.as_str() == spec.issuer) {
        return Err(AdminError::UnknownIssuer(spec.issuer));
    }
    let rule = FederationRule {
        id: format!("fed_{}", crypto::random_base62(16)),
        client_id: client.id.clone(),
        issuer: spec.issuer,
        audience: Audience::parse(spec.audience)
            .map_err(|e| AdminError::Invalid(format!("--audience: {e}")))?
            .as_str()
            .to_owned(),
        matches: conditions(&spec.matches)?,
        max_ttl_days: checked_ttl(spec.max_ttl_days)?,
        scopes: spec.scopes,
    };
    if let Some(scopes) = &rule.scopes
        && !scopes.is_subset(&client.scopes)
    {
        return Err(AdminError::Invalid(format!(
            "--scopes must be a subset of the client's scopes ({})",
            client.scopes.to_space_separated()
        )));
    }
    store.insert_federation_rule(&rule, now, rule_event(now, event::FEDERATION_ADDED, &rule)).await?;
    Ok(rule)
}

fn conditions(written: &[String]) -> Result<Vec<ClaimMatch>, AdminError> {
    if written.is_empty() || written.len() > MAX_MATCHES {
        return Err(AdminError::Invalid(format!(
            "give 1 to {MAX_MATCHES} --match CLAIM=VALUE conditions (for GitHub, at least sub or repository)"
        )));
    }
    let matches: Vec<ClaimMatch> =
        written.iter().map(|m| ClaimMatch::parse(m).map_err(AdminError::Invalid)).collect::<Result<_, _>>()?;
    if let Some(m) = matches.iter().find(|m| NOT_AN_IDENTITY.contains(&m.path.as_str())) {
        return Err(AdminError::Invalid(format!(
            "--match {}: that claim is checked by the rule itself or differs in every token, so it names no \
             workload; match the claims that do (for GitHub sub or repository, for Kubernetes sub)",
            m.path
        )));
    }
    Ok(matches)
}

fn checked_ttl(days: Option<i64>) -> Result<i64, AdminError> {
    let days = days.unwrap_or(DEFAULT_RULE_TTL_DAYS);
    if !(1..=MAX_RULE_TTL_DAYS).contains(&days) {
        return Err(AdminError::Invalid(format!("--max-ttl-days must be 1 to {MAX_RULE_TTL_DAYS}")));
    }
    Ok(days)
}

/// Removes a rule by id; tokens already issued through it stay until they expire or are
/// revoked.
pub async fn remove_rule(store: &dyn Store, now: i64, id: &str) -> Result<FederationRule, AdminError> {
    let rule = store
        .list_federation_rules(None)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| AdminError::UnknownRule(id.to_owned()))?;
    if !store.remove_federation_rule(id, rule_event(now, event::FEDERATION_REMOVED, &rule)).await? {
        return Err(AdminError::UnknownRule(id.to_owned()));
    }
    Ok(rule)
}

fn rule_event(now: i64, name: &str, rule: &FederationRule) -> audit::AuditEvent {
    let matches: Vec<String> = rule.matches.iter().map(|m| format!("{}={}", m.path, m.pattern.as_str())).collect();
    audit::new(clock::millis(now), name, audit::SUCCESS).client(&rule.client_id).by_operator().detail(
        serde_json::json!({
            "rule": rule.id, "issuer": rule.issuer, "audience": rule.audience, "matches": matches,
            "max_ttl_days": rule.max_ttl_days, "scopes": rule.scopes.as_ref().map(Scopes::to_space_separated),
        }),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::{AuditQuery, Client};

    const NOW: i64 = 1_800_000_000;
    const ED25519: &str =
        r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}"#;

    async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("fed.db").display());
        let store: Arc<dyn Store> = Arc::new(crate::store::sqlite::SqliteStore::connect(&url).await.unwrap());
        let client = Client::example("cli_a", "deploy read", NOW);
        store.insert_client(&client).await.unwrap();
        add_issuer(store.as_ref(), NOW, "github", "https://token.actions.githubusercontent.com", IssuerKeys::Discovery)
            .await
            .unwrap();
        (store, dir)
    }

    fn spec(matches: &[&str]) -> NewRule {
        NewRule {
            client: ClientId::parse("cli_a").unwrap(),
            issuer: "github".into(),
            audience: "https://tokensmith.example".into(),
            matches: matches.iter().map(|m| (*m).to_owned()).collect(),
            max_ttl_days: None,
            scopes: None,
        }
    }

    async fn events(store: &dyn Store) -> Vec<String> {
        store
            .list_audit(&AuditQuery { limit: 100, ..AuditQuery::default() })
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.event.event)
            .collect()
    }

    #[tokio::test]
    async fn an_issuer_is_trusted_once_with_one_checked_source_of_keys() {
        let (store, _dir) = store().await;
        let s = store.as_ref();
        let set = format!(r#"{{"keys":[{ED25519}]}}"#);
        assert!(add_issuer(s, NOW, "k8s", "https://k8s.example", IssuerKeys::Jwks(set)).await.is_ok());
        let again = add_issuer(s, NOW, "other", "https://k8s.example", IssuerKeys::Discovery).await.unwrap_err();
        assert!(again.to_string().contains("already trusted"), "{again}");
        for (iss, keys) in [
            ("http://issuer.example", IssuerKeys::Discovery),
            ("https://issuer.example?x=1", IssuerKeys::Discovery),
            ("https://issuer.example", IssuerKeys::JwksUri("http://issuer.example/jwks".into())),
            ("https://issuer.example", IssuerKeys::Jwks(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#.into())),
        ] {
            assert!(add_issuer(s, NOW, "bad", iss, keys.clone()).await.is_err(), "{iss} {keys:?}");
        }
        assert_eq!(store.list_issuers().await.unwrap().len(), 2, "nothing written for the refused ones");
        assert_eq!(events(s).await, ["issuer.added", "issuer.added"]);
    }

    #[tokio::test]
    async fn a_rule_needs_a_client_an_issuer_a_condition_and_bounded_caps() {
        let (store, _dir) = store().await;
        let s = store.as_ref();
        let rule = add_rule(s, NOW, spec(&["sub=repo:acme/deploy:ref:refs/heads/main"])).await.unwrap();
        assert!(rule.id.starts_with("fed_") && rule.max_ttl_days == DEFAULT_RULE_TTL_DAYS && rule.scopes.is_none());

        let mut unknown_client = spec(&["sub=x"]);
        unknown_client.client = ClientId::parse("cli_nobody").unwrap();
        assert!(matches!(add_rule(s, NOW, unknown_client).await, Err(AdminError::UnknownClient(_))));
        let mut unknown_issuer = spec(&["sub=x"]);
        unknown_issuer.issuer = "gitlab".into();
        assert!(matches!(add_rule(s, NOW, unknown_issuer).await, Err(AdminError::UnknownIssuer(_))));
        assert!(add_rule(s, NOW, spec(&[])).await.unwrap_err().to_string().contains("--match"));
        assert!(add_rule(s, NOW, spec(&["sub=*"])).await.is_err(), "a condition that holds for anyone");
        for days in [0, 91] {
            let mut long = spec(&["sub=x"]);
            long.max_ttl_days = Some(days);
            assert!(add_rule(s, NOW, long).await.unwrap_err().to_string().contains("--max-ttl-days"));
        }
        let mut wider = spec(&["sub=x"]);
        wider.scopes = Some(Scopes::from_space_separated("deploy admin").unwrap());
        assert!(add_rule(s, NOW, wider).await.unwrap_err().to_string().contains("subset"));
        let mut blank = spec(&["sub=x"]);
        blank.audience = "api\u{3164}".into();
        assert!(add_rule(s, NOW, blank).await.is_err(), "an audience of visible text");
        assert_eq!(store.list_federation_rules(None).await.unwrap(), vec![rule]);
    }

    #[tokio::test]
    async fn removing_an_issuer_removes_its_rules_and_says_how_many() {
        let (store, _dir) = store().await;
        let s = store.as_ref();
        let first = add_rule(s, NOW, spec(&["sub=a"])).await.unwrap();
        add_rule(s, NOW, spec(&["sub=b"])).await.unwrap();
        assert_eq!(remove_rule(s, NOW, &first.id).await.unwrap(), first);
        assert!(matches!(remove_rule(s, NOW, &first.id).await, Err(AdminError::UnknownRule(_))));
        assert_eq!(remove_issuer(s, NOW, "github").await.unwrap(), 1);
        assert!(matches!(remove_issuer(s, NOW, "github").await, Err(AdminError::UnknownIssuer(_))));
        assert!(store.list_federation_rules(None).await.unwrap().is_empty());
        let trail = events(s).await;
        for name in ["client.federation_added", "client.federation_removed", "issuer.removed"] {
            assert!(trail.iter().any(|e| e == name), "{name} in {trail:?}");
        }
    }
}
