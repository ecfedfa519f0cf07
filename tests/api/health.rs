//! Operational endpoints and the answers to requests that match no operation.

use crate::helpers::{LONG, spawn_app};

#[tokio::test]
async fn healthz_answers_200() {
    let app = spawn_app().await;

    app.get("/healthz").await.assert_status(200);
}

#[tokio::test]
async fn readyz_answers_200_when_the_database_answers() {
    let app = spawn_app().await;

    let reply = app.get("/readyz").await;

    reply.assert_status(200);
    assert_eq!(reply.json(), serde_json::json!({"status": "ready", "database": "ok"}));
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text_format() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    app.post_short(None, None).await;

    let reply = app.get("/metrics").await;

    reply.assert_status(200);
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "Prometheus text format, got {content_type:?}");
}

#[tokio::test]
async fn an_unknown_path_is_404_with_a_json_error() {
    let app = spawn_app().await;

    for path in ["/nope", "/v1/auth/tokens", "/v1/auth/tokens/long/extra", "/v2/auth/tokens/long"] {
        let reply = app.send(app.post(path).json(&serde_json::json!({}))).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text);
        reply.assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn a_wrong_method_is_405() {
    let app = spawn_app().await;

    let reply = app.get(LONG).await;
    reply.assert_status(405);
    reply.assert_json_content_type();
    let body = reply.json();
    assert!(body["error"].is_string() && body["error_description"].is_string(), "every error has the body: {body}");
    assert!(reply.header("allow").unwrap_or_default().contains("POST"), "RFC 9110: 405 names the allowed methods");
    app.get("/v1/auth/tokens/short").await.assert_status(405);
    app.send(app.http.delete(app.url("/v1/auth/tokens/abc/revoke"))).await.assert_status(405);
    app.send(app.post("/healthz")).await.assert_status(405);
}
