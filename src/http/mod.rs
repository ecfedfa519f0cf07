//! HTTP: routes, extractors, wire types and the error mapping.
//!
//! Architecture invariant: only this module knows status codes, headers and JSON wire
//! shapes; it calls `TokenService` and never the store directly (health checks excepted).

pub mod admin;
pub mod error;
pub mod exchange;
pub mod extract;
pub mod forwarded;
pub mod observe;
pub mod openapi;
pub mod params;
pub mod tokens;
pub mod wellknown;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::domain::TokenService;
use error::ApiError;

/// What every handler gets: the service, and the limits of the wire.
#[derive(Clone)]
pub struct ApiContext {
    pub service: Arc<TokenService>,
    /// Largest request body accepted, in bytes; larger ones are refused unread.
    pub body_limit: usize,
    /// How long a request body may take to arrive.
    pub body_timeout: std::time::Duration,
    /// Proxies whose forwarding headers name the client (see `http::forwarded`).
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
}

/// The whole HTTP surface.
pub fn router(ctx: ApiContext) -> Router {
    Router::new()
        .route("/v1/auth/tokens/long", post(tokens::issue_long))
        .route("/v1/auth/tokens/short", post(tokens::issue_short))
        .route("/v1/auth/tokens/introspect", post(tokens::introspect))
        .route("/v1/auth/tokens/exchange", post(exchange::exchange))
        .route("/v1/auth/tokens/{token_id}/revoke", post(tokens::revoke))
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route("/.well-known/oauth-authorization-server", get(wellknown::metadata))
        .route("/healthz", get(wellknown::healthz))
        .route("/readyz", get(wellknown::readyz))
        .route("/openapi.json", get(openapi::serve))
        .route("/metrics", get(wellknown::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(ctx)
        // Request id, metrics and the access-log line (which logs no header, body or path).
        .layer(axum::middleware::from_fn(observe::observe))
        // Keep credentials out of any header logging.
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::HeaderName::from_static("x-client-key"),
        ]))
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "method not allowed on this path")
}
