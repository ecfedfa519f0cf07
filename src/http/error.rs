//! The one place where errors become HTTP responses.
//!
//! Architecture invariant: every error response has the one JSON error body
//! `{"error", "error_description"}`; 5xx bodies never carry internals (the cause is logged).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::DomainError;
use crate::store::StoreError;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
    /// `WWW-Authenticate` value, for 401s and 403s of bearer-authenticated operations.
    pub www_authenticate: Option<String>,
    pub retry_after: Option<u64>,
}

/// Every error code a response may carry (the `error` field's enum in the OpenAPI document).
pub const ERROR_CODES: &[&str] = &[
    "invalid_request",
    "unsupported_grant_type",
    "invalid_client",
    "invalid_grant",
    "invalid_token",
    "insufficient_scope",
    "invalid_scope",
    "not_found",
    "rate_limited",
    "temporarily_unavailable",
    "server_error",
];

/// The body of every error response.
#[derive(Serialize, ToSchema)]
#[schema(
    description = "The body of every error response (RFC 6749 §5.2 style). A 401 of a bearer-authenticated \
operation also carries `WWW-Authenticate: Bearer`, and a 429 carries `Retry-After` (seconds).",
    examples(json!({"error": "invalid_request", "error_description": "grant_type is required"}))
)]
pub struct ErrorResponse<'a> {
    /// A stable, machine-readable code.
    #[schema(schema_with = super::openapi::error_code_schema)]
    pub error: &'a str,
    /// What went wrong, for people: lowercase, without internals.
    pub error_description: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        ApiError { status, code, description: description.into(), www_authenticate: None, retry_after: None }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
}

/// Quotes a value for a `WWW-Authenticate` auth-param (RFC 9110 §11.2 quoted-string).
fn quoted(s: &str) -> String {
    s.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect()
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        use DomainError as D;
        let description = e.to_string();
        match e {
            D::InvalidRequest(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_request", description),
            D::UnsupportedGrantType(_) => Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", description),
            D::InvalidScope(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description),
            D::InvalidClient => Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description),
            D::InvalidGrant(_) => Self::new(StatusCode::UNAUTHORIZED, "invalid_grant", description),
            // RFC 6750 §3.1: no error code when no token was presented.
            D::MissingToken => ApiError {
                www_authenticate: Some(r#"Bearer realm="tokensmith""#.into()),
                ..Self::new(StatusCode::UNAUTHORIZED, "invalid_token", description)
            },
            D::InvalidToken(_) => ApiError {
                www_authenticate: Some(format!(
                    r#"Bearer realm="tokensmith", error="invalid_token", error_description="{}""#,
                    quoted(&description)
                )),
                ..Self::new(StatusCode::UNAUTHORIZED, "invalid_token", description)
            },
            D::InsufficientScope(_) => ApiError {
                www_authenticate: Some(r#"Bearer realm="tokensmith", error="insufficient_scope""#.into()),
                ..Self::new(StatusCode::FORBIDDEN, "insufficient_scope", description)
            },
            D::NotFound => Self::new(StatusCode::NOT_FOUND, "not_found", description),
            D::RateLimited { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", description)
            },
            D::Store(e @ StoreError::Unavailable(_)) => {
                crate::telemetry::metrics::database_error(&e);
                tracing::warn!(cause = %e, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the database is unavailable; retry shortly",
                )
            }
            D::Store(e @ StoreError::Backend(_)) => {
                crate::telemetry::metrics::database_error(&e);
                tracing::error!(cause = %e, "database error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error")
            }
            D::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorResponse { error: self.code, error_description: &self.description })
            .unwrap_or_else(|_| br#"{"error":"server_error","error_description":"internal error"}"#.to_vec());
        let mut res =
            (self.status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response();
        let headers = res.headers_mut();
        if let Some(v) = self.www_authenticate.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(e: DomainError) -> (u16, &'static str) {
        let a = ApiError::from(e);
        (a.status.as_u16(), a.code)
    }

    /// The whole mapping, variant by variant: a new variant fails to compile in `From` and
    /// must be added here.
    #[test]
    fn every_domain_error_maps_to_its_documented_status_and_code() {
        use DomainError as D;
        assert_eq!(map(D::InvalidRequest("x".into())), (400, "invalid_request"));
        assert_eq!(map(D::UnsupportedGrantType("x".into())), (400, "unsupported_grant_type"));
        assert_eq!(map(D::InvalidScope("x".into())), (400, "invalid_scope"));
        assert_eq!(map(D::InvalidClient), (401, "invalid_client"));
        assert_eq!(map(D::InvalidGrant("x".into())), (401, "invalid_grant"));
        assert_eq!(map(D::MissingToken), (401, "invalid_token"));
        assert_eq!(map(D::InvalidToken("x".into())), (401, "invalid_token"));
        assert_eq!(map(D::InsufficientScope("x".into())), (403, "insufficient_scope"));
        assert_eq!(map(D::NotFound), (404, "not_found"));
        assert_eq!(map(D::RateLimited { retry_after_secs: 3 }), (429, "rate_limited"));
        assert_eq!(map(D::Store(StoreError::Unavailable("x".into()))), (503, "temporarily_unavailable"));
        assert_eq!(map(D::Store(StoreError::Backend("x".into()))), (500, "server_error"));
        assert_eq!(map(D::Internal("x".into())), (500, "server_error"));
    }

    #[test]
    fn bearer_errors_carry_www_authenticate_and_429_carries_retry_after() {
        let r = ApiError::from(DomainError::InvalidToken("bad \"quote\"".into())).into_response();
        let h = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().to_owned();
        assert!(h.starts_with("Bearer ") && h.contains(r#"error="invalid_token""#), "{h}");
        let r = ApiError::from(DomainError::MissingToken).into_response();
        assert!(!r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().contains("error="));
        let r = ApiError::from(DomainError::RateLimited { retry_after_secs: 7 }).into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn internal_causes_are_not_shown() {
        let a = ApiError::from(DomainError::Store(StoreError::Backend("secret table name".into())));
        assert!(!a.description.contains("secret"));
    }
}
