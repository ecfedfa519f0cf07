//! Request bodies and headers, through the real router (`tokensmith::http::router`) and
//! service on a SQLite database: exactly the path a request takes after the socket — the
//! content-type check, `RawBody` JSON parsing into `LongTokenRequest`, `ShortTokenRequest`
//! or the introspection body, the token exchange's JSON or form body, their validation into domain values (one credential, scopes,
//! lifetimes, name, rotation, audience), and the answer.
//!
//! Never a panic, and every answer is one the API allows for that operation (never a 5xx),
//! with the JSON error body.
//!
//! Input: `[operation, bearer, X-Client-Key, Content-Type, body…]`. In the body, `$CLIENT`,
//! `$SECRET`, `$LONG_TOKEN`, `$SHORT_TOKEN` and `$SHORT_ID` become a registered client's id
//! and secret, a live long-term token, a short-term token holding `tokens:write` and its id,
//! so the fuzzer reaches the paths behind a valid credential; the bearer selector offers the
//! same two tokens. No input can revoke or rotate them (the long-term token's id is not
//! offered and revocation is not among the operations), so runs stay independent.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use tokensmith::clock::{Clock, SystemClock};
use tokensmith::crypto::Keyring;
use tokensmith::domain::admin::{self, NewClient};
use tokensmith::domain::{Scopes, TokenService};
use tokensmith::http::{ApiContext, router};
use tower::ServiceExt;

struct World {
    rt: tokio::runtime::Runtime,
    router: Router,
    client_id: String,
    secret: String,
    long: String,
    short: String,
    short_id: String,
}

static WORLD: LazyLock<World> = LazyLock::new(world);

const OPS: [&str; 4] =
    ["/v1/auth/tokens/long", "/v1/auth/tokens/short", "/v1/auth/tokens/introspect", "/v1/auth/tokens/exchange"];

fn world() -> World {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    // A database of this process's own; run.sh points TMPDIR at a directory it removes.
    let dir = std::env::temp_dir().join(format!("tokensmith-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let url = format!("sqlite://{}", dir.join("fuzz.db").display());
    let (router, client_id, secret) = rt.block_on(async {
        let store = tokensmith::store::connect(&url).await.expect("the store opens");
        let keyring = Keyring::from_master(&[9u8; 32]);
        let scopes = Scopes::from_space_separated("tokens:write tokens:introspect read").expect("scopes");
        let spec = NewClient { name: "fuzz".into(), scopes, otp: false, public_key: None };
        let created = admin::create_client(store.as_ref(), &keyring, SystemClock.now(), spec).await.expect("a client");
        let mut config = tokensmith::config::Settings::default().service_config("http://fuzz.test".into(), None);
        // No limits: a fuzzer fails authentication all the time, and 429s would hide the rest.
        config.failures_per_client = 0;
        config.failures_per_address = 0;
        config.otp_failures_per_day = 0;
        config.failure_delay_ms = 0;
        let service = TokenService::new(store, keyring, Arc::new(SystemClock), config).await.expect("the service");
        let router = router(ApiContext {
            service: Arc::new(service),
            body_limit: 64 * 1024,
            body_timeout: std::time::Duration::from_secs(30),
            trusted_proxies: Arc::from(Vec::new()),
        });
        (router, created.client_id.to_string(), created.client_secret.expose().to_owned())
    });
    let body = format!(r#"{{"grant_type":"client_credentials","client_id":"{client_id}","client_secret":"{secret}"}}"#);
    let (status, long) = rt.block_on(call(&router, post(OPS[0], None, body)));
    assert_eq!(status, StatusCode::CREATED, "{long}");
    let long = long["access_token"].as_str().expect("a long-term token").to_owned();
    let (status, short) = rt.block_on(call(&router, post(OPS[1], Some(&long), String::new())));
    assert_eq!(status, StatusCode::CREATED, "{short}");
    let short_id = short["token_id"].as_str().expect("a short-term id").to_owned();
    let short = short["access_token"].as_str().expect("a short-term token").to_owned();
    // The runtime stays: the store's writer task runs on it.
    World { rt, router, client_id, secret, long, short, short_id }
}

fn post(path: &str, bearer: Option<&str>, body: String) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    with_peer(b.body(Body::from(body)).expect("a request"))
}

fn with_peer(mut req: Request<Body>) -> Request<Body> {
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    req
}

async fn call(router: &Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let res = router.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.expect("a body");
    let json = if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).expect("JSON") };
    (status, json)
}

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<4>() else { return };
    let [op, bearer, key, ct] = *head;
    let w = &*WORLD;
    let op = usize::from(op) % OPS.len();
    let path = OPS[op];
    let mut b = Request::post(path);
    let bearer_value = match bearer % 7 {
        0 => None,
        1 => Some(format!("Bearer {}", w.long)),
        2 => Some(format!("Bearer {}", w.short)),
        3 => Some(format!("bearer {}x", w.long)),
        4 => Some("Basic Zm9vOmJhcg==".to_owned()),
        5 => Some("Bearer ".to_owned()),
        _ => Some(format!("Bearer {}", w.short.replacen('.', ".x", 1))),
    };
    if let Some(v) = bearer_value {
        b = b.header("authorization", v);
    }
    match key % 4 {
        1 => b = b.header("x-client-key", w.client_id.as_str()),
        2 => b = b.header("x-client-key", "cli_unknown"),
        3 => b = b.header("x-client-key", "not a client id!"),
        _ => {}
    }
    match ct % 5 {
        1 => b = b.header("content-type", "application/json"),
        2 => b = b.header("content-type", "text/plain"),
        3 => b = b.header("content-type", "application/jwt+json; charset=utf-8"),
        4 => b = b.header("content-type", "application/x-www-form-urlencoded"),
        _ => {}
    }
    let body = String::from_utf8_lossy(body)
        .replace("$CLIENT", &w.client_id)
        .replace("$SECRET", &w.secret)
        .replace("$SHORT_ID", &w.short_id)
        .replace("$LONG_TOKEN", &w.long)
        .replace("$SHORT_TOKEN", &w.short);
    let req = with_peer(b.body(Body::from(body)).expect("a request"));
    let (status, json) = w.rt.block_on(call(&w.router, req));

    let allowed: &[u16] = match op {
        0 => &[201, 400, 401, 403, 429],
        1 => &[201, 400, 401, 429],
        2 => &[200, 400, 401, 403],
        _ => &[200, 400, 401, 429],
    };
    assert!(allowed.contains(&status.as_u16()), "{path} answered {status}: {json}");
    if status.is_client_error() {
        assert!(json["error"].is_string() && json["error_description"].is_string(), "error body: {json}");
    } else if op == 2 {
        assert!(json["active"].is_boolean(), "introspection body: {json}");
    } else {
        assert!(json["access_token"].is_string() && json["token_id"].is_string(), "token body: {json}");
    }
});
