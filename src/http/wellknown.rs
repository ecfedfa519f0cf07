//! Discovery and health: JWKS (RFC 7517), server metadata (RFC 8414), liveness, readiness.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiContext;

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(ctx): State<ApiContext>) -> Response {
    let mut res = Json(ctx.service.jwks()).into_response();
    // Short enough that a new key is picked up well within a token's lifetime.
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

/// `GET /.well-known/oauth-authorization-server`.
pub async fn metadata(State(ctx): State<ApiContext>) -> Json<serde_json::Value> {
    let c = ctx.service.config();
    let base = c.issuer.trim_end_matches('/');
    Json(serde_json::json!({
        "issuer": c.issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/v1/auth/tokens/long"),
        "short_token_endpoint": format!("{base}/v1/auth/tokens/short"),
        "revocation_endpoint_template": format!("{base}/v1/auth/tokens/{{tokenId}}/revoke"),
        "introspection_endpoint": format!("{base}/v1/auth/tokens/introspect"),
        "grant_types_supported": ["client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer", "short_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA", "ES256", "RS256"],
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "access_token_signing_alg_values_supported": [c.signing_alg.as_str()],
        "response_types_supported": [],
    }))
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: the database answers.
pub async fn readyz(State(ctx): State<ApiContext>) -> (StatusCode, Json<serde_json::Value>) {
    match ctx.service.store().ping().await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({ "status": "ready", "database": "ok" }))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "unavailable", "database": "unreachable" })),
            )
        }
    }
}
