//! Discovery and health: JWKS (RFC 7517), server metadata (RFC 8414), liveness, readiness.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiContext, openapi};

/// The JWK Set (RFC 7517 §5) as the signer publishes it. The handler serves the signer's JSON
/// as is; this type documents its shape, and a unit test holds the two together.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JwkSet {
    /// Every key that may have signed a live token: the signing key and retired keys until
    /// every token they signed has expired.
    pub keys: Vec<Jwk>,
}

/// A public signing key (RFC 7517 §4): Ed25519 (`OKP`) or P-256 (`EC`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    /// Key type: `OKP` for Ed25519 (RFC 8037), `EC` for P-256.
    #[schema(schema_with = openapi::kty_schema)]
    pub kty: String,
    /// Curve: `Ed25519` or `P-256`.
    #[schema(schema_with = openapi::crv_schema)]
    pub crv: String,
    /// Public key (Ed25519) or x coordinate (P-256), base64url without padding.
    pub x: String,
    /// y coordinate (P-256 only), base64url without padding.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub y: Option<String>,
    /// Key id: the `kid` in the header of the JWTs this key signed.
    pub kid: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    #[schema(schema_with = openapi::sig_schema)]
    pub use_: String,
    /// The one algorithm this key verifies: `EdDSA` or `ES256`.
    #[schema(schema_with = openapi::jws_alg_schema)]
    pub alg: String,
}

/// `GET /.well-known/jwks.json`.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    operation_id = "getJwks",
    tag = openapi::TAG_DISCOVERY,
    summary = "The public keys that verify short-term tokens",
    description = "The JWK Set (RFC 7517) of the keys that sign short-term tokens, retired keys included until \
every token they signed has expired. Verify a JWT with the key whose `kid` is in its header, and only with \
that key's `alg`.",
    responses((status = 200, description = "The JWK Set", body = JwkSet,
        headers(("Cache-Control" = String, description = "`public, max-age=300`"))))
)]
pub async fn jwks(State(ctx): State<ApiContext>) -> Response {
    let mut res = Json(ctx.service.jwks()).into_response();
    // Short enough that a new key is picked up well within a token's lifetime.
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

/// Authorization server metadata (RFC 8414 §2), with the endpoints of this service.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerMetadata {
    /// The `iss` of every short-term token, and an accepted `aud` of client assertions.
    pub issuer: String,
    /// Where the JWK Set is.
    pub jwks_uri: String,
    /// issueLongTermToken.
    pub token_endpoint: String,
    /// issueShortTermToken.
    pub short_token_endpoint: String,
    /// revokeToken, with `{tokenId}` to fill in.
    pub revocation_endpoint_template: String,
    /// Introspection (RFC 7662 style).
    pub introspection_endpoint: String,
    /// Token exchange (RFC 8693): an external identity token for a short-term token.
    pub token_exchange_endpoint: String,
    /// Grants of issueLongTermToken, and token exchange (at `token_exchange_endpoint`).
    pub grant_types_supported: Vec<&'static str>,
    /// How a client authenticates to issueLongTermToken: a secret in the body, or a signed assertion.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Algorithms accepted for client assertions.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// How a caller authenticates to introspection.
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// The algorithm of new short-term tokens.
    pub access_token_signing_alg_values_supported: Vec<&'static str>,
    /// Empty: this service has no authorization endpoint.
    pub response_types_supported: Vec<&'static str>,
}

/// `GET /.well-known/oauth-authorization-server`.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    operation_id = "getServerMetadata",
    tag = openapi::TAG_DISCOVERY,
    summary = "Authorization server metadata",
    description = "RFC 8414 metadata: the issuer, the JWKS URL, the endpoints, and the supported grants and \
algorithms.",
    responses((status = 200, description = "The metadata", body = ServerMetadata))
)]
pub async fn metadata(State(ctx): State<ApiContext>) -> Json<ServerMetadata> {
    let c = ctx.service.config();
    let base = c.issuer.trim_end_matches('/');
    Json(ServerMetadata {
        issuer: c.issuer.clone(),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        token_endpoint: format!("{base}/v1/auth/tokens/long"),
        short_token_endpoint: format!("{base}/v1/auth/tokens/short"),
        revocation_endpoint_template: format!("{base}/v1/auth/tokens/{{tokenId}}/revoke"),
        introspection_endpoint: format!("{base}/v1/auth/tokens/introspect"),
        token_exchange_endpoint: format!("{base}/v1/auth/tokens/exchange"),
        grant_types_supported: vec![
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "short_token",
            super::exchange::TOKEN_EXCHANGE,
        ],
        token_endpoint_auth_methods_supported: vec!["client_secret_post", "private_key_jwt"],
        token_endpoint_auth_signing_alg_values_supported: vec!["EdDSA", "ES256", "RS256"],
        introspection_endpoint_auth_methods_supported: vec!["bearer"],
        access_token_signing_alg_values_supported: vec![c.signing_alg.as_str()],
        response_types_supported: vec![],
    })
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(schema_with = openapi::ok_schema)]
    pub status: &'static str,
}

/// `GET /healthz`: the process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "getHealth",
    tag = openapi::TAG_HEALTH,
    summary = "Liveness",
    description = "Answers 200 while the process serves requests; it does not touch the database.",
    responses((status = 200, description = "The process is up", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: whether the database answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, or `unavailable` with a 503.
    #[schema(schema_with = openapi::readiness_status_schema)]
    pub status: &'static str,
    /// `ok`, or `unreachable` with a 503.
    #[schema(schema_with = openapi::database_status_schema)]
    pub database: &'static str,
}

/// `GET /readyz`: the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "getReadiness",
    tag = openapi::TAG_HEALTH,
    summary = "Readiness",
    description = "Answers 200 when the database answers, 503 when it does not.",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "The database is unreachable", body = Readiness),
    )
)]
pub async fn readyz(State(ctx): State<ApiContext>) -> (StatusCode, Json<Readiness>) {
    match ctx.service.ping().await {
        Ok(()) => (StatusCode::OK, Json(Readiness { status: "ready", database: "ok" })),
        Err(e) => {
            crate::telemetry::metrics::database_error(&e);
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Readiness { status: "unavailable", database: "unreachable" }))
        }
    }
}

/// `GET /metrics`: every metric in the Prometheus text format (see `telemetry::metrics`).
pub async fn metrics() -> Response {
    let mut res = crate::telemetry::metrics::render().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::{KeySet, SigningAlg, generate};

    /// The documented JWK Set is the signer's, field for field: nothing is lost by reading the
    /// signer's JSON into `JwkSet` and writing it back.
    #[test]
    fn the_signers_jwks_has_the_documented_shape() {
        let a = generate(SigningAlg::EdDSA).unwrap();
        let b = generate(SigningAlg::ES256).unwrap();
        let kid = a.kid.clone();
        let set = KeySet::new(&[a, b], &kid).unwrap();
        let published = set.jwks().clone();
        let typed: JwkSet = serde_json::from_value(published.clone()).unwrap();
        assert_eq!(typed.keys.len(), 2);
        assert_eq!(serde_json::to_value(&typed).unwrap(), published);
    }
}
