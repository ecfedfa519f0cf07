//! The keys of trusted issuers, cached: fetched from the issuer's JWKS URL (or the one its OIDC
//! discovery document names), kept for the response's `Cache-Control: max-age` bounded between
//! a minimum and a maximum, refetched at most once per interval when an unknown `kid` arrives
//! (a flood of forged kids cannot make tokensmith hammer the issuer), and kept when a refresh
//! fails (tokens signed by known keys still verify while the issuer is briefly down).
//!
//! The fetching itself (HTTP) is behind [`KeyFetcher`]; `crate::remote` implements it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use super::issuer::{IssuerKeys, TrustedIssuer, check_remote_url};
use super::verify::ExternalKey;
use crate::domain::client_key::ClientPublicKey;
use crate::telemetry::metrics;

/// A fetched document and how long its server said it may be cached.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: String,
    pub max_age_secs: Option<i64>,
}

/// GETs a URL already checked by [`check_remote_url`]: bounded in time and size, no redirect out
/// of its origin. The error is a short text for logs (never the body).
#[async_trait]
pub trait KeyFetcher: Send + Sync {
    async fn get(&self, url: &url::Url) -> Result<Fetched, String>;
}

/// How long keys are kept, and how often they may be refetched.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    pub min_ttl_secs: i64,
    pub max_ttl_secs: i64,
    /// When the issuer says nothing.
    pub default_ttl_secs: i64,
    /// The least time between two fetches for one issuer, whatever arrives.
    pub refetch_interval_secs: i64,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy { min_ttl_secs: 60, max_ttl_secs: 86_400, default_ttl_secs: 3600, refetch_interval_secs: 5 }
    }
}

struct Cached {
    keys: Arc<Vec<ExternalKey>>,
    fresh_until: i64,
}

/// Why no keys could be had for an issuer: never fetched successfully, and the last attempt
/// failed (or is too recent to try again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysUnavailable;

/// The key sets of every trusted issuer, by issuer name and source.
pub struct IssuerKeyCache {
    fetcher: Arc<dyn KeyFetcher>,
    policy: KeyPolicy,
    cached: Mutex<HashMap<String, Cached>>,
    /// When each issuer was last fetched (or tried), Unix seconds.
    attempts: Mutex<HashMap<String, i64>>,
    /// One fetch at a time per issuer: requests that arrive during a fetch find its result,
    /// and a slow issuer holds up no other.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl IssuerKeyCache {
    pub fn new(fetcher: Arc<dyn KeyFetcher>, policy: KeyPolicy) -> Self {
        IssuerKeyCache {
            fetcher,
            policy,
            cached: Mutex::default(),
            attempts: Mutex::default(),
            fetching: Mutex::default(),
        }
    }

    /// The keys to verify a token of `issuer` whose header names `kid`, at `now` (seconds).
    pub async fn keys(
        &self,
        issuer: &TrustedIssuer,
        kid: Option<&str>,
        now: i64,
    ) -> Result<Arc<Vec<ExternalKey>>, KeysUnavailable> {
        let cache_key = match &issuer.keys {
            IssuerKeys::Jwks(set) => return Ok(Arc::new(parse_key_set(set).0)),
            IssuerKeys::JwksUri(uri) => format!("{}\n{}", issuer.name.as_str(), uri),
            IssuerKeys::Discovery => format!("{}\n{}\ndiscovery", issuer.name.as_str(), issuer.issuer),
        };
        if let Some(keys) = self.usable(&cache_key, kid, now) {
            return Ok(keys);
        }
        let lock =
            self.fetching.lock().unwrap_or_else(|e| e.into_inner()).entry(cache_key.clone()).or_default().clone();
        let _one_at_a_time = lock.lock().await;
        if let Some(keys) = self.usable(&cache_key, kid, now) {
            return Ok(keys);
        }
        if self.may_fetch(&cache_key, now) {
            self.fetch(issuer, &cache_key, now).await;
        }
        self.held(&cache_key).ok_or(KeysUnavailable)
    }

    /// The cached keys if they are fresh and hold `kid` (or no kid is named).
    fn usable(&self, cache_key: &str, kid: Option<&str>, now: i64) -> Option<Arc<Vec<ExternalKey>>> {
        let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let entry = cached.get(cache_key)?;
        let knows_kid = kid.is_none_or(|kid| entry.keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
        (now < entry.fresh_until && knows_kid).then(|| entry.keys.clone())
    }

    /// The cached keys, fresh or not.
    fn held(&self, cache_key: &str) -> Option<Arc<Vec<ExternalKey>>> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner()).get(cache_key).map(|e| e.keys.clone())
    }

    /// Whether the last fetch is at least the refetch interval old; if so, records this one.
    fn may_fetch(&self, cache_key: &str, now: i64) -> bool {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let last = attempts.get(cache_key).copied();
        if last.is_some_and(|t| now - t < self.policy.refetch_interval_secs) {
            return false;
        }
        attempts.insert(cache_key.to_owned(), now);
        true
    }

    async fn fetch(&self, issuer: &TrustedIssuer, cache_key: &str, now: i64) {
        let name = issuer.name.as_str();
        metrics::issuer_keys_fetched(name);
        match self.fetch_set(issuer).await {
            Ok(fetched) => {
                let (keys, skipped) = parse_key_set(&fetched.body);
                let ttl = fetched
                    .max_age_secs
                    .unwrap_or(self.policy.default_ttl_secs)
                    .clamp(self.policy.min_ttl_secs, self.policy.max_ttl_secs);
                metrics::issuer_keys_held(name, keys.len());
                if skipped > 0 {
                    tracing::warn!(issuer = name, skipped, "keys of a kind tokensmith does not verify were left out");
                }
                let entry = Cached { keys: Arc::new(keys), fresh_until: now + ttl };
                self.cached.lock().unwrap_or_else(|e| e.into_inner()).insert(cache_key.to_owned(), entry);
            }
            Err(e) => {
                metrics::issuer_keys_fetch_failed(name);
                tracing::warn!(issuer = name, error = %e, "cannot fetch the issuer's keys; the keys held stay in use");
            }
        }
    }

    /// The issuer's JWK Set: from its URL, or from the `jwks_uri` of its discovery document
    /// (whose `issuer` must be the issuer's exact `iss`).
    async fn fetch_set(&self, issuer: &TrustedIssuer) -> Result<Fetched, String> {
        let jwks_uri = match &issuer.keys {
            IssuerKeys::JwksUri(uri) => uri.clone(),
            IssuerKeys::Discovery => self.discover(&issuer.issuer).await?,
            IssuerKeys::Jwks(_) => return Err("a static key set is not fetched".into()),
        };
        let url = check_remote_url("jwks_uri", &jwks_uri)?;
        self.fetcher.get(&url).await
    }

    async fn discover(&self, iss: &str) -> Result<String, String> {
        let url =
            check_remote_url("issuer", &format!("{}/.well-known/openid-configuration", iss.trim_end_matches('/')))?;
        let doc: Value = serde_json::from_str(&self.fetcher.get(&url).await?.body)
            .map_err(|_| "the discovery document is not JSON".to_owned())?;
        if doc.get("issuer").and_then(Value::as_str) != Some(iss) {
            return Err("the discovery document names another issuer".into());
        }
        let jwks_uri = doc.get("jwks_uri").and_then(Value::as_str).ok_or("no jwks_uri in the discovery document")?;
        // An issuer reached over HTTPS names keys reached over HTTPS: its document cannot send
        // tokensmith to a plain-HTTP service on its own machine.
        if url.scheme() == "https" && !jwks_uri.starts_with("https://") {
            return Err("the discovery document of an HTTPS issuer names a jwks_uri that is not HTTPS".into());
        }
        Ok(jwks_uri.to_owned())
    }
}

/// The signing keys of a JWK Set that tokensmith verifies (Ed25519, P-256, RSA 2048-8192, each
/// strength-checked), and how many others were left out (encryption keys, other kinds, weak
/// ones). At most 64 keys are read.
pub fn parse_key_set(text: &str) -> (Vec<ExternalKey>, usize) {
    let Ok(set) = serde_json::from_str::<Value>(text) else { return (Vec::new(), 0) };
    let Some(list) = set.get("keys").and_then(Value::as_array) else { return (Vec::new(), 0) };
    let mut keys = Vec::new();
    let mut skipped = 0;
    for jwk in list.iter().take(64) {
        let signing = jwk.get("use").is_none_or(|u| u == "sig");
        match ClientPublicKey::parse(&jwk.to_string()) {
            Ok(key) if signing => {
                keys.push(ExternalKey { kid: jwk.get("kid").and_then(Value::as_str).map(str::to_owned), key })
            }
            _ => skipped += 1,
        }
    }
    (keys, skipped + list.len().saturating_sub(64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::federation::IssuerName;

    /// Answers from a table of URL → body, and remembers what was asked (the HTTP fetcher is
    /// tested over loopback in `crate::remote`; HTTPS issuers cannot be run in a test).
    struct Table(Vec<(&'static str, String)>, Mutex<Vec<String>>);

    #[async_trait]
    impl KeyFetcher for Table {
        async fn get(&self, url: &url::Url) -> Result<Fetched, String> {
            self.1.lock().unwrap().push(url.to_string());
            let body = self.0.iter().find(|(u, _)| *u == url.as_str()).map(|(_, b)| b.clone());
            body.map(|body| Fetched { body, max_age_secs: None }).ok_or_else(|| "404".into())
        }
    }

    #[tokio::test]
    async fn an_https_issuer_cannot_send_the_fetch_to_plain_http() {
        let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let doc =
            |jwks_uri: &str| serde_json::json!({"issuer": "https://issuer.example", "jwks_uri": jwks_uri}).to_string();
        let issuer = TrustedIssuer {
            name: IssuerName::parse("ex").unwrap(),
            issuer: "https://issuer.example".into(),
            keys: IssuerKeys::Discovery,
            created_at: 0,
        };
        for (jwks_uri, usable) in [("http://127.0.0.1:8080/jwks", false), ("https://keys.issuer.example/jwks", true)] {
            let table = Arc::new(Table(
                vec![
                    ("https://issuer.example/.well-known/openid-configuration", doc(jwks_uri)),
                    ("http://127.0.0.1:8080/jwks", jwks.into()),
                    ("https://keys.issuer.example/jwks", jwks.into()),
                ],
                Mutex::default(),
            ));
            let cache = IssuerKeyCache::new(table.clone(), KeyPolicy::default());
            assert_eq!(cache.keys(&issuer, None, 1000).await.is_ok(), usable, "{jwks_uri}");
            assert!(!table.1.lock().unwrap().iter().any(|u| u.starts_with("http://")), "never fetched");
        }
    }
}
