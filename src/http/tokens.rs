//! The seed's three operations and introspection: wire types and handlers.
//!
//! Wire types are parsed here into domain values ("parse, don't validate"): a request that
//! reaches `TokenService` names exactly one mechanism and well-formed ids and scopes.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::ApiContext;
use super::error::ApiError;
use super::extract::{Bearer, ClientKeyHeader, RawBody};
use crate::clock::rfc3339;
use crate::domain::{
    Caller, ClientId, Credential, DomainError, IssuedLong, IssuedShort, LongTokenParams, Scopes, ShortTokenParams,
    TokenKind,
};

/// `LongTokenRequest` (contract §1). Unknown fields are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongTokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub otp_code: Option<SecretString>,
    pub assertion: Option<SecretString>,
    pub scopes: Option<Vec<String>>,
    pub ttl_days: Option<i64>,
    pub name: Option<String>,
    pub rotate_token_id: Option<String>,
    pub grace_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct LongTokenResponse {
    pub token_id: String,
    pub access_token: String,
    pub token_type: &'static str,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub issued_at: String,
    pub expires_at: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_token_id: Option<String>,
}

/// `ShortTokenRequest` (contract §1). Unknown fields are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShortTokenRequest {
    pub scopes: Option<Vec<String>>,
    pub audience: Option<String>,
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct ShortTokenResponse {
    pub token_id: String,
    pub access_token: String,
    pub token_type: &'static str,
    pub scopes: Vec<String>,
    pub issued_at: String,
    pub expires_at: String,
    pub expires_in: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectRequest {
    pub token: String,
}

#[derive(Debug, Serialize)]
pub struct IntrospectResponse {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

fn no_store(mut res: Response) -> Response {
    // RFC 6749 §5.1: responses carrying tokens must not be cached.
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

fn parse_scopes(scopes: Option<Vec<String>>) -> Result<Option<Scopes>, ApiError> {
    scopes.map(|s| Scopes::from_list(&s)).transpose().map_err(|e| ApiError::from(DomainError::InvalidScope(e)))
}

fn parse_client_id(s: &str, what: &str) -> Result<ClientId, ApiError> {
    ClientId::parse(s).ok_or_else(|| ApiError::invalid_request(format!("{what} is not a valid client id")))
}

/// Turns the wire request into exactly one credential, or a 400 that says what is wrong.
fn credential(req: &mut LongTokenRequest, bearer: Bearer, client_key: Option<String>) -> Result<Credential, ApiError> {
    let bearer = match bearer {
        Bearer::Absent => None,
        Bearer::Malformed => {
            return Err(DomainError::InvalidToken("Authorization must be Bearer <token>".into()).into());
        }
        Bearer::Token(t) => Some(t),
    };
    let reject = |field: &str, grant: &str| {
        Err(ApiError::invalid_request(format!("{field} does not belong to the {grant} grant (one mechanism per call)")))
    };
    let grant = match req.grant_type.as_deref() {
        Some(g) => g,
        None if bearer.is_some() => "short_token",
        None => {
            return Err(ApiError::invalid_request(
                "grant_type is required: client_credentials, assertion or short_token",
            ));
        }
    };
    match grant {
        "client_credentials" => {
            if bearer.is_some() {
                return reject("an Authorization bearer token", grant);
            }
            if req.assertion.is_some() {
                return reject("assertion", grant);
            }
            let client_id = match (req.client_id.take(), client_key) {
                (Some(body), Some(header)) if body != header => {
                    return Err(ApiError::invalid_request("client_id and X-Client-Key name different clients"));
                }
                (Some(id), _) | (None, Some(id)) => parse_client_id(&id, "client_id")?,
                (None, None) => {
                    return Err(ApiError::invalid_request("client_id (or the X-Client-Key header) is required"));
                }
            };
            match (req.client_secret.take(), req.otp_code.take()) {
                (Some(secret), None) => Ok(Credential::ClientSecret { client_id, secret }),
                (None, Some(code)) => Ok(Credential::Otp { client_id, code }),
                (Some(_), Some(_)) => {
                    Err(ApiError::invalid_request("send exactly one of client_secret and otp_code, not both"))
                }
                (None, None) => Err(ApiError::invalid_request("client_credentials needs client_secret or otp_code")),
            }
        }
        "assertion" | JWT_BEARER => {
            if bearer.is_some() {
                return reject("an Authorization bearer token", "assertion");
            }
            for (present, field) in [
                (req.client_id.is_some(), "client_id"),
                (req.client_secret.is_some(), "client_secret"),
                (req.otp_code.is_some(), "otp_code"),
            ] {
                if present {
                    return reject(field, "assertion");
                }
            }
            let assertion = req.assertion.take().ok_or_else(|| ApiError::invalid_request("assertion is required"))?;
            let client_key = client_key.map(|k| parse_client_id(&k, "X-Client-Key")).transpose()?;
            Ok(Credential::Assertion { assertion, client_key })
        }
        "short_token" => {
            for (present, field) in [
                (req.client_id.is_some(), "client_id"),
                (req.client_secret.is_some(), "client_secret"),
                (req.otp_code.is_some(), "otp_code"),
                (req.assertion.is_some(), "assertion"),
            ] {
                if present {
                    return reject(field, grant);
                }
            }
            let token = bearer.ok_or(DomainError::MissingToken)?;
            let client_key = client_key.map(|k| parse_client_id(&k, "X-Client-Key")).transpose()?;
            Ok(Credential::ShortToken { token, client_key })
        }
        other => Err(DomainError::UnsupportedGrantType(format!(
            "unsupported grant_type {:?}; use client_credentials, assertion or short_token",
            other.chars().take(64).collect::<String>()
        ))
        .into()),
    }
}

/// `POST /v1/auth/tokens/long` (issueLongTermToken).
pub async fn issue_long(
    State(ctx): State<ApiContext>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    bearer: Bearer,
    ClientKeyHeader(client_key): ClientKeyHeader,
    body: RawBody,
) -> Result<Response, ApiError> {
    let mut req: LongTokenRequest = body.json()?;
    let credential = credential(&mut req, bearer, client_key)?;
    let params = LongTokenParams {
        scopes: parse_scopes(req.scopes)?,
        ttl_days: req.ttl_days,
        name: req.name,
        rotate_token_id: req.rotate_token_id,
        grace_seconds: req.grace_seconds,
    };
    let issued: IssuedLong = ctx.service.issue_long(credential, params, peer.ip()).await?;
    let token_id = issued.id.to_string();
    let body = LongTokenResponse {
        token_id: token_id.clone(),
        access_token: issued.token.expose().to_owned(),
        token_type: "Bearer",
        client_id: issued.client_id.to_string(),
        scopes: issued.scopes.to_vec(),
        issued_at: rfc3339(issued.issued_at),
        expires_at: rfc3339(issued.expires_at),
        expires_in: issued.expires_at - issued.issued_at,
        rotated_token_id: issued.rotated.map(|r| r.to_string()),
    };
    let mut res = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&token_id) {
        res.headers_mut().insert(HeaderName::from_static("x-token-id"), v);
    }
    Ok(no_store(res))
}

fn require_bearer(bearer: Bearer) -> Result<SecretString, ApiError> {
    match bearer {
        Bearer::Absent => Err(DomainError::MissingToken.into()),
        Bearer::Malformed => Err(DomainError::InvalidToken("Authorization must be Bearer <token>".into()).into()),
        Bearer::Token(t) => Ok(t),
    }
}

/// `POST /v1/auth/tokens/short` (issueShortTermToken).
pub async fn issue_short(
    State(ctx): State<ApiContext>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    bearer: Bearer,
    body: RawBody,
) -> Result<Response, ApiError> {
    use secrecy::ExposeSecret;
    let token = require_bearer(bearer)?;
    let req: ShortTokenRequest = body.optional_json()?.unwrap_or_default();
    let params =
        ShortTokenParams { scopes: parse_scopes(req.scopes)?, audience: req.audience, ttl_seconds: req.ttl_seconds };
    let issued: IssuedShort = ctx.service.issue_short(token.expose_secret(), params, peer.ip()).await?;
    let body = ShortTokenResponse {
        token_id: issued.id.to_string(),
        access_token: issued.jwt,
        token_type: "Bearer",
        scopes: issued.scopes.to_vec(),
        issued_at: rfc3339(issued.issued_at),
        expires_at: rfc3339(issued.expires_at),
        expires_in: issued.expires_at - issued.issued_at,
    };
    Ok(no_store((StatusCode::CREATED, Json(body)).into_response()))
}

async fn caller(ctx: &ApiContext, bearer: Bearer) -> Result<Caller, ApiError> {
    use secrecy::ExposeSecret;
    let token = require_bearer(bearer)?;
    Ok(ctx.service.authenticate(token.expose_secret()).await?)
}

/// `POST /v1/auth/tokens/{tokenId}/revoke` (revokeToken).
pub async fn revoke(
    State(ctx): State<ApiContext>,
    bearer: Bearer,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&ctx, bearer).await?;
    // A path that does not even decode names no token: 404, like any unknown id.
    let Ok(Path(token_id)) = path else {
        return Err(ApiError::from(DomainError::NotFound));
    };
    ctx.service.revoke(&caller, &token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/auth/tokens/introspect` (RFC 7662 style).
pub async fn introspect(State(ctx): State<ApiContext>, bearer: Bearer, body: RawBody) -> Result<Response, ApiError> {
    let caller = caller(&ctx, bearer).await?;
    let req: IntrospectRequest = body.json()?;
    let info = ctx.service.introspect(&caller, &req.token).await?;
    let body = match info {
        Some(i) => IntrospectResponse {
            active: true,
            token_id: Some(i.token_id),
            token_type: Some(match i.kind {
                TokenKind::Long => "long",
                TokenKind::Short => "short",
            }),
            client_id: Some(i.client_id.to_string()),
            scopes: Some(i.scopes.to_vec()),
            exp: Some(i.expires_at),
            iat: Some(i.issued_at),
        },
        None => IntrospectResponse {
            active: false,
            token_id: None,
            token_type: None,
            client_id: None,
            scopes: None,
            exp: None,
            iat: None,
        },
    };
    Ok(no_store(Json(body).into_response()))
}
