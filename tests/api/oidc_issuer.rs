//! A small OIDC issuer on loopback, for the federation tests: a discovery document, a JWK Set
//! (with `Cache-Control`), keys that rotate, an outage on demand, and tokens shaped like
//! GitHub Actions' and Kubernetes' projected service-account tokens.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::Header;
use serde_json::{Value, json};

use crate::keys::ClientKey;

struct Inner {
    url: String,
    keys: Vec<(String, Arc<ClientKey>)>,
    down: bool,
    jwks_requests: usize,
    /// Seconds the issuer's clock is ahead of the real one (kept with the app's test clock).
    ahead: i64,
}

#[derive(Clone)]
pub struct OidcIssuer(Arc<Mutex<Inner>>);

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

impl OidcIssuer {
    /// Starts an issuer on 127.0.0.1 with one Ed25519 key, `k1`.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let issuer = OidcIssuer(Arc::new(Mutex::new(Inner {
            url,
            keys: vec![("k1".into(), Arc::new(ClientKey::ed25519()))],
            down: false,
            jwks_requests: 0,
            ahead: 0,
        })));
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(issuer.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        issuer
    }

    pub fn url(&self) -> String {
        self.0.lock().unwrap().url.clone()
    }

    /// Publishes `key` under `kid` next to the others.
    pub fn add_key(&self, kid: &str, key: ClientKey) {
        self.0.lock().unwrap().keys.push((kid.into(), Arc::new(key)));
    }

    /// Answers 503 to everything while `down`.
    pub fn set_down(&self, down: bool) {
        self.0.lock().unwrap().down = down;
    }

    /// Moves the issuer's clock forward, as the test moves the app's.
    pub fn advance_secs(&self, secs: i64) {
        self.0.lock().unwrap().ahead += secs;
    }

    fn now(&self) -> i64 {
        now() + self.0.lock().unwrap().ahead
    }

    pub fn jwks_requests(&self) -> usize {
        self.0.lock().unwrap().jwks_requests
    }

    fn key(&self, kid: &str) -> Arc<ClientKey> {
        let inner = self.0.lock().unwrap();
        inner.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key.clone()).expect("a key of the issuer")
    }

    /// A token over `claims` signed with the key `kid` (named in the header).
    pub fn mint(&self, kid: &str, claims: &Value) -> String {
        let key = self.key(kid);
        let mut header = Header::new(key.alg());
        header.kid = Some(kid.into());
        header.typ = Some("JWT".into());
        key.sign_with_header(&header, claims)
    }

    /// A token over `claims` signed with the key `kid`, whose header names no key.
    pub fn mint_without_kid(&self, kid: &str, claims: &Value) -> String {
        let key = self.key(kid);
        key.sign_with_header(&Header::new(key.alg()), claims)
    }

    /// Claims shaped like a GitHub Actions OIDC token for `repo` at `git_ref`.
    pub fn github(&self, audience: &str, repo: &str, git_ref: &str) -> Value {
        let now = self.now();
        json!({
            "iss": self.url(), "aud": audience, "sub": format!("repo:{repo}:ref:{git_ref}"),
            "repository": repo, "repository_owner": repo.split('/').next().unwrap(), "ref": git_ref,
            "workflow": "deploy", "job_workflow_ref": format!("{repo}/.github/workflows/deploy.yml@{git_ref}"),
            "jti": uuid::Uuid::now_v7().to_string(), "iat": now, "nbf": now, "exp": now + 300,
        })
    }

    /// Claims shaped like a Kubernetes projected service-account token.
    pub fn kubernetes(&self, audience: &str, namespace: &str, account: &str) -> Value {
        let now = self.now();
        json!({
            "iss": self.url(), "aud": [audience], "sub": format!("system:serviceaccount:{namespace}:{account}"),
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": account, "uid": "0d7c1b3e"},
                              "pod": {"name": format!("{account}-6b9f"), "uid": "9a1e"}},
            "iat": now, "nbf": now, "exp": now + 600,
        })
    }

    /// The issuer's JWK Set, as a file for `issuer add --jwks-file` would hold it.
    pub fn jwks(&self) -> Value {
        let inner = self.0.lock().unwrap();
        let keys: Vec<Value> = inner
            .keys
            .iter()
            .map(|(kid, key)| {
                let mut jwk = key.public_jwk();
                jwk["kid"] = json!(kid);
                jwk["use"] = json!("sig");
                jwk
            })
            .collect();
        json!({ "keys": keys })
    }
}

async fn discovery(State(issuer): State<OidcIssuer>) -> Response {
    if issuer.0.lock().unwrap().down {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let url = issuer.url();
    axum::Json(json!({"issuer": url, "jwks_uri": format!("{url}/jwks"), "id_token_signing_alg_values_supported": ["EdDSA", "ES256", "RS256"]}))
        .into_response()
}

async fn jwks(State(issuer): State<OidcIssuer>) -> Response {
    {
        let mut inner = issuer.0.lock().unwrap();
        inner.jwks_requests += 1;
        if inner.down {
            return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    let mut response = axum::Json(issuer.jwks()).into_response();
    response.headers_mut().insert("cache-control", "public, max-age=3600".parse().unwrap());
    response
}
