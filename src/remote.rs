//! Fetching what trusted issuers publish (their OIDC discovery document, their JWK Set) over
//! HTTPS — HTTP only to a loopback address — with bounds an attacker who controls the other
//! end cannot stretch: a connect and a total timeout, a body size limit, no redirect out of
//! its origin (scheme, host and port), nothing but the status and size logged.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::federation::issuer::{MAX_JWKS_BYTES, check_remote_url};
use crate::domain::federation::keys::{Fetched, KeyFetcher};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REDIRECTS: usize = 3;

/// The HTTP client tokensmith fetches issuers' keys with.
pub struct HttpFetcher {
    client: reqwest::Client,
}

impl HttpFetcher {
    pub fn new() -> anyhow::Result<Self> {
        Self::with_timeout(TOTAL_TIMEOUT)
    }

    /// A fetcher that gives up on a request after `total` (tests shorten it).
    pub fn with_timeout(total: Duration) -> anyhow::Result<Self> {
        // Within the origin only (scheme, host and port): another port is another service.
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let origin =
                |u: &url::Url| (u.scheme().to_owned(), u.host_str().map(str::to_owned), u.port_or_known_default());
            let same_origin = attempt.previous().first().map(origin) == Some(origin(attempt.url()));
            if attempt.previous().len() > MAX_REDIRECTS || !same_origin { attempt.stop() } else { attempt.follow() }
        });
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(total)
            .redirect(redirects)
            .user_agent(concat!("tokensmith/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client for issuers' keys: {e}"))?;
        Ok(HttpFetcher { client })
    }
}

#[async_trait]
impl KeyFetcher for HttpFetcher {
    async fn get(&self, url: &url::Url) -> Result<Fetched, String> {
        check_remote_url("url", url.as_str())?;
        let mut response = self
            .client
            .get(url.as_str())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", kind(&e)))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: status {}", response.status().as_u16()));
        }
        let max_age_secs = response.headers().get("cache-control").and_then(|v| v.to_str().ok()).and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("GET {url}: {}", kind(&e)))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("GET {url}: the body is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let body = String::from_utf8(body).map_err(|_| format!("GET {url}: the body is not UTF-8"))?;
        Ok(Fetched { body, max_age_secs })
    }
}

/// What went wrong, in a few words (reqwest's own message may quote the URL's query).
fn kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_redirect() {
        "too many redirects"
    } else {
        "request failed"
    }
}

/// The `max-age` of a `Cache-Control` value; `no-store` and `no-cache` count as 0.
fn max_age(value: &str) -> Option<i64> {
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            age = n.trim_matches('"').parse::<i64>().ok();
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use serde_json::json;

    use super::*;
    use crate::domain::federation::keys::{IssuerKeyCache, KeyPolicy, KeysUnavailable};
    use crate::domain::federation::{IssuerKeys, IssuerName, TrustedIssuer};

    const ED: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    /// What the loopback issuer answers, and how many requests it saw.
    struct Issuer {
        url: String,
        kids: Vec<&'static str>,
        max_age: Option<u32>,
        status: u16,
        hang: bool,
        redirect: Option<String>,
        discovery_issuer: Option<String>,
        hits: usize,
        /// Where `/hop` redirects to.
        hop_to: Option<String>,
        /// The JWKS waits (at most 10 s) until this is notified.
        gate: Option<Arc<tokio::sync::Notify>>,
        /// Notified when the JWKS is served.
        opens: Option<Arc<tokio::sync::Notify>>,
    }

    type Shared = Arc<Mutex<Issuer>>;

    async fn discovery(State(s): State<Shared>) -> Response {
        let s = s.lock().unwrap();
        let issuer = s.discovery_issuer.clone().unwrap_or_else(|| s.url.clone());
        axum::Json(json!({"issuer": issuer, "jwks_uri": format!("{}/jwks", s.url)})).into_response()
    }

    async fn jwks(State(s): State<Shared>) -> Response {
        let (hang, status, redirect, max_age, kids) = {
            let mut s = s.lock().unwrap();
            s.hits += 1;
            (s.hang, s.status, s.redirect.clone(), s.max_age, s.kids.clone())
        };
        if hang {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        let (gate, opens) = {
            let s = s.lock().unwrap();
            (s.gate.clone(), s.opens.clone())
        };
        if let Some(gate) = gate {
            let _ = tokio::time::timeout(Duration::from_secs(10), gate.notified()).await;
        }
        if let Some(opens) = opens {
            opens.notify_one();
        }
        if let Some(to) = redirect {
            return (axum::http::StatusCode::FOUND, [("location", to)]).into_response();
        }
        let keys: Vec<_> = kids.iter().map(|k| json!({"kty": "OKP", "crv": "Ed25519", "x": ED, "kid": k})).collect();
        let mut response = axum::Json(json!({"keys": keys})).into_response();
        *response.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
        if let Some(age) = max_age {
            response.headers_mut().insert("cache-control", format!("public, max-age={age}").parse().unwrap());
        }
        response
    }

    async fn hop(State(s): State<Shared>) -> Response {
        let to = s.lock().unwrap().hop_to.clone().unwrap_or_default();
        (axum::http::StatusCode::FOUND, [("location", to)]).into_response()
    }

    async fn issuer() -> Shared {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(Issuer {
            url,
            kids: vec!["k1"],
            max_age: Some(120),
            status: 200,
            hang: false,
            redirect: None,
            discovery_issuer: None,
            hits: 0,
            hop_to: None,
            gate: None,
            opens: None,
        }));
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/big", get(|| async { "x".repeat(MAX_JWKS_BYTES + 1) }))
            .route("/hop", get(hop))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        state
    }

    fn trusted(s: &Shared, keys: IssuerKeys) -> TrustedIssuer {
        let iss = s.lock().unwrap().url.clone();
        TrustedIssuer { name: IssuerName::parse("test").unwrap(), issuer: iss, keys, created_at: 0 }
    }

    fn cache() -> IssuerKeyCache {
        let fetcher = Arc::new(HttpFetcher::with_timeout(Duration::from_millis(500)).unwrap());
        IssuerKeyCache::new(fetcher, KeyPolicy::default())
    }

    fn kids(keys: &[crate::domain::federation::ExternalKey]) -> Vec<String> {
        keys.iter().filter_map(|k| k.kid.clone()).collect()
    }

    #[tokio::test]
    async fn keys_found_through_discovery_are_kept_for_their_max_age() {
        let s = issuer().await;
        let (cache, issuer) = (cache(), trusted(&s, IssuerKeys::Discovery));
        assert_eq!(kids(&cache.keys(&issuer, Some("k1"), 1000).await.unwrap()), ["k1"]);
        s.lock().unwrap().kids = vec!["k2"];
        assert_eq!(kids(&cache.keys(&issuer, None, 1119).await.unwrap()), ["k1"], "fresh for 120 s");
        assert_eq!(kids(&cache.keys(&issuer, None, 1120).await.unwrap()), ["k2"], "then fetched again");
        assert_eq!(s.lock().unwrap().hits, 2);
    }

    #[tokio::test]
    async fn a_flood_of_unknown_kids_fetches_at_most_once_per_interval() {
        let s = issuer().await;
        let issuer = trusted(&s, IssuerKeys::JwksUri(format!("{}/jwks", s.lock().unwrap().url)));
        let cache = cache();
        cache.keys(&issuer, Some("k1"), 1000).await.unwrap();
        s.lock().unwrap().kids = vec!["k1", "k2"];
        let flood = |at: i64| {
            let (cache, issuer) = (&cache, &issuer);
            async move {
                for n in 0..100 {
                    let keys = cache.keys(issuer, Some(&format!("forged-{n}")), at).await.unwrap();
                    assert!(kids(&keys).contains(&"k1".to_owned()), "the keys held still answer");
                }
            }
        };
        flood(1001).await;
        assert_eq!(s.lock().unwrap().hits, 1, "within the interval of the last fetch: none");
        flood(1005).await;
        assert_eq!(s.lock().unwrap().hits, 2, "one for the first unknown kid after it, none for the rest");
        assert_eq!(kids(&cache.keys(&issuer, Some("k2"), 1006).await.unwrap()), ["k1", "k2"], "a real new kid");
        flood(1009).await;
        assert_eq!(s.lock().unwrap().hits, 2);
        flood(1010).await;
        assert_eq!(s.lock().unwrap().hits, 3);
    }

    #[tokio::test]
    async fn keys_held_stay_in_use_while_the_issuer_is_down_and_none_are_made_up() {
        let s = issuer().await;
        let issuer = trusted(&s, IssuerKeys::Discovery);
        let held = cache();
        held.keys(&issuer, None, 1000).await.unwrap();
        for (status, hang) in [(503, false), (200, true)] {
            {
                let mut s = s.lock().unwrap();
                (s.status, s.hang) = (status, hang);
            }
            let at = if hang { 2000 } else { 1200 };
            assert_eq!(kids(&held.keys(&issuer, None, at).await.unwrap()), ["k1"], "status {status}, hang {hang}");
        }
        let never = cache();
        assert_eq!(never.keys(&issuer, None, 3000).await.unwrap_err(), KeysUnavailable);
    }

    #[tokio::test]
    async fn redirects_elsewhere_large_bodies_and_a_lying_discovery_document_give_no_keys() {
        let s = issuer().await;
        let base = s.lock().unwrap().url.clone();
        s.lock().unwrap().redirect = Some("http://localhost:1/jwks".into());
        let redirected = trusted(&s, IssuerKeys::JwksUri(format!("{base}/jwks")));
        assert_eq!(cache().keys(&redirected, None, 1000).await.unwrap_err(), KeysUnavailable);
        let big = trusted(&s, IssuerKeys::JwksUri(format!("{base}/big")));
        assert_eq!(cache().keys(&big, None, 1000).await.unwrap_err(), KeysUnavailable);
        {
            let mut s = s.lock().unwrap();
            s.redirect = None;
            s.discovery_issuer = Some("https://evil.example".into());
        }
        assert_eq!(cache().keys(&trusted(&s, IssuerKeys::Discovery), None, 1000).await.unwrap_err(), KeysUnavailable);
        let fetcher = HttpFetcher::new().unwrap();
        let plain = url::Url::parse("http://192.0.2.1/jwks").unwrap();
        assert!(fetcher.get(&plain).await.unwrap_err().contains("https:// is required"), "refused before any request");
    }

    #[test]
    fn cache_control_says_how_long_and_no_store_means_at_once() {
        assert_eq!(max_age("public, max-age=3600"), Some(3600));
        assert_eq!(max_age("max-age=\"60\", must-revalidate"), Some(60));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("private"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }

    #[tokio::test]
    async fn a_redirect_is_followed_within_its_origin_only() {
        let (s, other) = (issuer().await, issuer().await);
        let (base, elsewhere) = (s.lock().unwrap().url.clone(), other.lock().unwrap().url.clone());
        let hop = trusted(&s, IssuerKeys::JwksUri(format!("{base}/hop")));
        s.lock().unwrap().hop_to = Some(format!("{elsewhere}/jwks"));
        assert_eq!(cache().keys(&hop, None, 1000).await.unwrap_err(), KeysUnavailable, "another port");
        assert_eq!(other.lock().unwrap().hits, 0, "never asked");
        s.lock().unwrap().hop_to = Some(format!("{base}/jwks"));
        assert_eq!(kids(&cache().keys(&hop, None, 1000).await.unwrap()), ["k1"], "the same origin");
    }

    #[tokio::test]
    async fn a_slow_issuer_holds_up_no_other_issuers_fetch() {
        let (slow, quick) = (issuer().await, issuer().await);
        let gate = Arc::new(tokio::sync::Notify::new());
        slow.lock().unwrap().gate = Some(gate.clone());
        quick.lock().unwrap().opens = Some(gate);
        let fetcher = Arc::new(HttpFetcher::with_timeout(Duration::from_secs(3)).unwrap());
        let cache = IssuerKeyCache::new(fetcher, KeyPolicy::default());
        let mut slow_issuer = trusted(&slow, IssuerKeys::Discovery);
        slow_issuer.name = IssuerName::parse("slow").unwrap();
        let quick_issuer = trusted(&quick, IssuerKeys::Discovery);
        // The slow issuer answers only once the quick one has been asked: with one fetch at a
        // time for all issuers, the slow one would time out first.
        let (a, b) = tokio::join!(cache.keys(&slow_issuer, None, 1000), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cache.keys(&quick_issuer, None, 1000).await
        });
        assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    }
}
