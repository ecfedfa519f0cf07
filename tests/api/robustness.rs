//! Generated input: whatever a client sends, the answer is one of the operation's documented
//! statuses with the JSON error body, never a 5xx (which `TestApp::send` already refuses).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value};

use crate::helpers::{LONG, SHORT, TestApp, spawn_app_with};

const CASES: usize = 96;

/// `n` values drawn from `strategy`.
fn samples<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::default();
    (0..n).map(|_| strategy.new_tree(&mut runner).expect("a generated value").current()).collect()
}

/// An app whose failure limits are out of the way, so each answer judges the input alone.
async fn unlimited_app() -> TestApp {
    spawn_app_with(|s| {
        s.failures_per_client = 1_000_000;
        s.failures_per_address = 1_000_000;
    })
    .await
}

fn json_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-100i64..200_000).prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        prop::sample::select(vec![
            "client_credentials",
            "assertion",
            "short_token",
            crate::helpers::JWT_BEARER,
            "read",
            "tokens:write",
        ])
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_scalar().prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Requests built from the real field names with values of any type.
fn long_request() -> impl Strategy<Value = Value> {
    let fields = prop::sample::select(vec![
        "grant_type",
        "client_id",
        "client_secret",
        "otp_code",
        "assertion",
        "scopes",
        "ttl_days",
        "name",
        "rotate_token_id",
        "grace_seconds",
        "unknown",
    ]);
    prop::collection::btree_map(fields, json_value(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

#[tokio::test]
async fn generated_long_term_requests_get_a_documented_error() {
    let app = unlimited_app().await;
    let client = app.create_client("ci", "read").await;

    for mut body in samples(long_request(), CASES) {
        // A string client id names the real client, to get past the lookup.
        if body.get("client_id").is_some_and(Value::is_string) {
            body["client_id"] = Value::from(client.client_id.clone());
        }
        let reply = app.post_long(&body).await;
        assert!([400, 401, 403].contains(&reply.status.as_u16()), "{body} got {}: {}", reply.status, reply.text);
        let code = reply.json()["error"].as_str().unwrap_or_default().to_owned();
        reply.assert_error(reply.status.as_u16(), &code);
    }
}

#[tokio::test]
async fn generated_bytes_as_a_long_term_request_are_a_bad_request() {
    let app = unlimited_app().await;

    for bytes in samples(prop::collection::vec(any::<u8>(), 0..300), CASES) {
        let reply = app.send(app.post(LONG).header("content-type", "application/json").body(bytes.clone())).await;
        assert_eq!(reply.status, 400, "{bytes:?}: {}", reply.text);
        reply.assert_invalid_request();
    }
}

#[tokio::test]
async fn generated_bearer_tokens_are_invalid_token() {
    let app = unlimited_app().await;

    let tokens = samples(
        prop_oneof![
            "[!-~]{1,120}",
            "tsl_[0-9A-Za-z]{40,55}",
            "[A-Za-z0-9_-]{5,40}\\.[A-Za-z0-9_-]{5,80}\\.[A-Za-z0-9_-]{0,90}"
        ],
        CASES,
    );
    for token in tokens {
        let reply = app.send(app.post(SHORT).bearer_auth(&token)).await;
        assert_eq!(reply.status, 401, "bearer {token:?}: {}", reply.text);
        reply.assert_invalid_token();
        let reply = app.revoke(Some(&token), "some-id").await;
        assert_eq!(reply.status, 401, "bearer {token:?}: {}", reply.text);
    }
}

#[tokio::test]
async fn generated_token_ids_are_not_found() {
    let app = unlimited_app().await;
    let client = app.create_client("ci", "read tokens:write").await;
    let admin = app.issue_long(&client).await;

    for id in samples(prop_oneof!["[A-Za-z0-9_.~-]{1,100}", "st_[A-Za-z0-9_-]{54}"], CASES) {
        let reply = app.revoke(Some(&admin.access_token), &id).await;
        assert_eq!(reply.status, 404, "id {id:?}: {}", reply.text);
        reply.assert_error(404, "not_found");
    }
    app.issue_short(&admin.access_token).await;
}

#[tokio::test]
async fn generated_short_term_requests_get_201_or_a_documented_error() {
    let app = unlimited_app().await;
    let client = app.create_client("ci", "read").await;
    let long = app.issue_long(&client).await;
    let fields = prop::sample::select(vec!["scopes", "audience", "ttl_seconds", "unknown"]);
    let request = prop::collection::btree_map(fields, json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));

    for body in samples(request, CASES) {
        let reply = app.post_short(Some(&long.access_token), Some(&body)).await;
        match reply.status.as_u16() {
            201 => {}
            400 => {
                let code = reply.json()["error"].as_str().unwrap_or_default().to_owned();
                assert!(code == "invalid_request" || code == "invalid_scope", "{body}: {}", reply.text);
                reply.assert_error(400, &code);
            }
            other => panic!("{body} got {other}: {}", reply.text),
        }
    }
}
