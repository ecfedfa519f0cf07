//! The three token operations (issueLongTermToken, issueShortTermToken, revokeToken) and
//! introspection: wire types and handlers.
//!
//! Wire types are parsed here into domain values ("parse, don't validate"): a request that
//! reaches `TokenService` names exactly one mechanism and well-formed ids and scopes.

use std::net::IpAddr;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorResponse};
use super::extract::{ClientAddr, ClientKeyHeader, RawBody};
use super::observe::RequestLog;
use super::{ApiContext, openapi};
use crate::clock::rfc3339;
use crate::domain::{
    Audience, Bearer, BearerUse, Caller, ClientId, Credential, DomainError, IssuedLong, IssuedShort, LongTokenId,
    LongTokenParams, Mechanism, Scopes, ShortTokenParams, TokenKind, TokenName,
};

/// `LongTokenRequest`. Unknown fields are refused.
///
/// The doc comments and `schema` attributes below are the OpenAPI document (see
/// `http::openapi`): what a field means, its range and format, and which fields are required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    description = "Names exactly one mechanism: `client_credentials` with `client_secret` or `otp_code`, \
`assertion` with a signed JWT, or `short_token` with a short-term token holding `tokens:write` \
in the `Authorization` header. A field that belongs to another grant is a 400.",
    examples(json!({"grant_type": "client_credentials", "client_id": "cli_3vQk0ZcO0mB1m4v8Xq2L",
        "client_secret": "tsc_…", "ttl_days": 30, "name": "ci"}))
)]
pub struct LongTokenRequest {
    /// The grant (its documented values and meaning: `openapi::grant_type_schema`).
    #[schema(schema_with = openapi::grant_type_schema)]
    pub grant_type: Option<String>,
    /// The client, for `client_credentials`; may come instead from the `X-Client-Key` header
    /// (both present and different: 400).
    #[schema(pattern = r"^[A-Za-z0-9_.-]{1,64}$", max_length = 64, min_length = 1)]
    pub client_id: Option<String>,
    /// The client's secret (`client_credentials`), as printed once by `tokensmith client create`.
    #[schema(value_type = Option<String>, format = Password)]
    pub client_secret: Option<SecretString>,
    /// A one-time TOTP code (`client_credentials`): RFC 6238, 6 digits, 30 s step; each code is
    /// accepted once per client.
    #[schema(value_type = Option<String>, pattern = r"^[0-9]{6}$", format = Password)]
    pub otp_code: Option<SecretString>,
    /// A JWT signed by the client's registered private key (`assertion`, RFC 7523): `iss` = `sub` =
    /// client id, `aud` = the issuer or this endpoint's URL, `exp` at most 300 s ahead, single-use
    /// `jti`; EdDSA, ES256 or RS256 as the registered key's type.
    #[schema(value_type = Option<String>)]
    pub assertion: Option<SecretString>,
    /// Requested scopes (RFC 6749 scope tokens); default: all that the caller may grant. More than
    /// the caller may grant: 403 `insufficient_scope`.
    #[schema(schema_with = openapi::long_scopes_schema)]
    pub scopes: Option<Vec<String>>,
    /// Lifetime in days; the server's maximum is configurable (90 at most).
    #[schema(minimum = 1, maximum = 90, default = 30, format = Int32)]
    pub ttl_days: Option<i64>,
    /// A label kept for audit and listing: at most 100 characters, no control characters.
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub name: Option<String>,
    /// A live long-term token id of the same client that the new token replaces: it is revoked
    /// when the new one is issued, or `grace_seconds` later.
    pub rotate_token_id: Option<String>,
    /// Seconds the replaced token stays valid; only with `rotate_token_id`.
    #[schema(minimum = 0, maximum = 86400, default = 0, format = Int32)]
    pub grace_seconds: Option<i64>,
}

/// `LongTokenResponse`, with `201 Created`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(description = "A new long-term token. `access_token` is shown this once and never again.")]
pub struct LongTokenResponse {
    /// The token's id, for revocation and audit (the same value as the `X-Token-Id` header).
    pub token_id: String,
    /// The long-term token: opaque, `tsl_` followed by random base62 characters and a checksum.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(schema_with = openapi::bearer_schema)]
    pub token_type: &'static str,
    /// The client the token belongs to.
    pub client_id: String,
    /// The scopes the token holds, sorted.
    pub scopes: Vec<String>,
    /// When the token was issued (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// When the token expires (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Seconds from `issued_at` to `expires_at`.
    #[schema(minimum = 1)]
    pub expires_in: i64,
    /// The id of the token this one replaced, when the request named `rotate_token_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub rotated_token_id: Option<String>,
}

/// `ShortTokenRequest`. Unknown fields are refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    description = "Optional body of issueShortTermToken; every field has a default.",
    examples(json!({"scopes": ["deploy"], "audience": "https://deploy.example", "ttl_seconds": 300}))
)]
pub struct ShortTokenRequest {
    /// Scopes of the JWT, a subset of the long-term token's (otherwise 400 `invalid_scope`);
    /// default: all of them.
    #[schema(schema_with = openapi::short_scopes_schema)]
    pub scopes: Option<Vec<String>>,
    /// The JWT's `aud`: 1 to 256 bytes of UTF-8, no control characters; default: configured,
    /// the issuer unless set.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$")]
    pub audience: Option<String>,
    /// Lifetime in seconds; the server's maximum (and default) is configurable, 900 at most.
    #[schema(minimum = 60, maximum = 900, default = 900, format = Int32)]
    pub ttl_seconds: Option<i64>,
}

/// `ShortTokenResponse`, with `201 Created`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(description = "A short-term access token: a JWT (RFC 9068 profile, `typ: at+jwt`) that anyone can verify \
with the keys at `/.well-known/jwks.json`. It is not stored; revoking its long-term token revokes it.")]
pub struct ShortTokenResponse {
    /// The JWT's `jti`, usable with revokeToken.
    pub token_id: String,
    /// The JWT. Claims: `iss`, `sub` (= client id), `client_id`, `aud`, `iat`, `exp`, `jti`,
    /// `scope` (space-separated).
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(schema_with = openapi::bearer_schema)]
    pub token_type: &'static str,
    /// The scopes the JWT holds, sorted.
    pub scopes: Vec<String>,
    /// When the JWT was issued (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// When the JWT expires (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Seconds from `issued_at` to `expires_at`.
    #[schema(minimum = 1)]
    pub expires_in: i64,
}

impl From<IssuedShort> for ShortTokenResponse {
    fn from(issued: IssuedShort) -> Self {
        ShortTokenResponse {
            token_id: issued.id.to_string(),
            access_token: issued.jwt,
            token_type: "Bearer",
            scopes: issued.scopes,
            issued_at: rfc3339(issued.issued_at),
            expires_at: rfc3339(issued.expires_at),
            expires_in: issued.expires_at - issued.issued_at,
        }
    }
}

impl ShortTokenResponse {
    /// The JSON body, byte for byte what `serde_json` writes for this struct (tested), written
    /// directly: on the hot path, serde's escaping scan of the JWT cost more than the rest.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.access_token.len() + self.token_id.len() + 192);
        out.extend_from_slice(b"{\"token_id\":");
        json_str(&mut out, &self.token_id);
        out.extend_from_slice(b",\"access_token\":");
        json_str(&mut out, &self.access_token);
        out.extend_from_slice(b",\"token_type\":");
        json_str(&mut out, self.token_type);
        out.extend_from_slice(b",\"scopes\":[");
        for (i, s) in self.scopes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_str(&mut out, s);
        }
        out.extend_from_slice(b"],\"issued_at\":");
        json_str(&mut out, &self.issued_at);
        out.extend_from_slice(b",\"expires_at\":");
        json_str(&mut out, &self.expires_at);
        out.extend_from_slice(b",\"expires_in\":");
        out.extend_from_slice(self.expires_in.to_string().as_bytes());
        out.push(b'}');
        out
    }
}

/// Appends `s` as a JSON string: as is when nothing in it needs escaping (the common case,
/// checked without branching per byte), otherwise through `serde_json`.
fn json_str(out: &mut Vec<u8>, s: &str) {
    let needs_escape = s.bytes().fold(false, |acc, b| acc | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if needs_escape {
        // Writing a `str` into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Body of introspection (RFC 7662 §2.1). Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectRequest {
    /// The token to inspect: a long-term token or a short-term JWT.
    pub token: String,
}

/// What introspection found (RFC 7662 §2.2): `{"active": false}` alone for a token that is
/// unknown, malformed, expired or revoked.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntrospectResponse {
    /// Whether the token is valid now.
    pub active: bool,
    /// The token's id (active tokens only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub token_id: Option<String>,
    /// `long` or `short` (active tokens only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = openapi::token_kind_schema)]
    pub token_type: Option<&'static str>,
    /// The client the token belongs to (active tokens only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub client_id: Option<String>,
    /// The scopes the token holds (active tokens only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub scopes: Option<Vec<String>>,
    /// Expiry, in seconds since the Unix epoch (active tokens only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub exp: Option<i64>,
    /// Issuance, in seconds since the Unix epoch (active tokens only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub iat: Option<i64>,
    /// The audience a short-term token was minted for (active short-term tokens only): a
    /// resource server accepts a token only if this names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub aud: Option<String>,
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

pub(super) fn no_store(mut res: Response) -> Response {
    // RFC 6749 §5.1: responses carrying tokens must not be cached.
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

fn parse_scopes(scopes: Option<Vec<String>>) -> Result<Option<Scopes>, ApiError> {
    scopes.map(|s| Scopes::from_list(&s)).transpose().map_err(|e| ApiError::from(DomainError::InvalidScope(e)))
}

/// The options of a long-term token request, parsed (their bounds are the service's).
fn long_params(req: LongTokenRequest) -> Result<LongTokenParams, ApiError> {
    let rotate_token_id = match req.rotate_token_id {
        Some(raw) => Some(LongTokenId::parse(&raw).ok_or_else(|| {
            ApiError::invalid_request("rotate_token_id is not a live long-term token of this client")
        })?),
        None => None,
    };
    Ok(LongTokenParams {
        scopes: parse_scopes(req.scopes)?,
        ttl_days: req.ttl_days,
        name: req.name.map(TokenName::parse).transpose().map_err(ApiError::invalid_request)?,
        rotate_token_id,
        grace_seconds: req.grace_seconds,
    })
}

fn parse_client_id(s: &str, what: &str) -> Result<ClientId, ApiError> {
    ClientId::parse(s).ok_or_else(|| ApiError::invalid_request(format!("{what} is not a valid client id")))
}

/// Turns the wire request into exactly one credential, or a 400 that says what is wrong.
fn credential(req: &mut LongTokenRequest, bearer: Bearer, client_key: Option<String>) -> Result<Credential, ApiError> {
    let bearer = match bearer {
        Bearer::Absent => None,
        other => Some(other),
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
        "client_credentials" => client_credentials(req, bearer.is_some(), client_key),
        "assertion" | JWT_BEARER => assertion_grant(req, bearer.is_some(), client_key),
        "short_token" => {
            only_fields(req, &[], "short_token")?;
            let client_key = client_key.map(|k| parse_client_id(&k, "X-Client-Key")).transpose()?;
            Ok(Credential::ShortToken { token: bearer.unwrap_or(Bearer::Absent), client_key })
        }
        other => Err(DomainError::UnsupportedGrantType(format!(
            "unsupported grant_type {:?}; use client_credentials, assertion or short_token",
            other.chars().take(64).collect::<String>()
        ))
        .into()),
    }
}

/// A 400 for a field the grant does not use.
fn foreign_field(field: &str, grant: &str) -> ApiError {
    ApiError::invalid_request(format!("{field} does not belong to the {grant} grant (one mechanism per call)"))
}

/// Refuses every credential field of the request but `allowed`.
fn only_fields(req: &LongTokenRequest, allowed: &[&str], grant: &str) -> Result<(), ApiError> {
    for (present, field) in [
        (req.client_id.is_some(), "client_id"),
        (req.client_secret.is_some(), "client_secret"),
        (req.otp_code.is_some(), "otp_code"),
        (req.assertion.is_some(), "assertion"),
    ] {
        if present && !allowed.contains(&field) {
            return Err(foreign_field(field, grant));
        }
    }
    Ok(())
}

/// `client_credentials`: the client (in the body or `X-Client-Key`, the same if both) and
/// exactly one of its secret and a one-time code.
fn client_credentials(
    req: &mut LongTokenRequest,
    has_bearer: bool,
    client_key: Option<String>,
) -> Result<Credential, ApiError> {
    let grant = "client_credentials";
    if has_bearer {
        return Err(foreign_field("an Authorization bearer token", grant));
    }
    only_fields(req, &["client_id", "client_secret", "otp_code"], grant)?;
    let client_id = match (req.client_id.take(), client_key) {
        (Some(body), Some(header)) if body != header => {
            return Err(ApiError::invalid_request("client_id and X-Client-Key name different clients"));
        }
        (Some(id), _) | (None, Some(id)) => parse_client_id(&id, "client_id")?,
        (None, None) => return Err(ApiError::invalid_request("client_id (or the X-Client-Key header) is required")),
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

/// `assertion` (or RFC 7523's `urn:…:jwt-bearer`): the signed JWT alone.
fn assertion_grant(
    req: &mut LongTokenRequest,
    has_bearer: bool,
    client_key: Option<String>,
) -> Result<Credential, ApiError> {
    if has_bearer {
        return Err(foreign_field("an Authorization bearer token", "assertion"));
    }
    only_fields(req, &["assertion"], "assertion")?;
    let assertion = req.assertion.take().ok_or_else(|| ApiError::invalid_request("assertion is required"))?;
    let client_key = client_key.map(|k| parse_client_id(&k, "X-Client-Key")).transpose()?;
    Ok(Credential::Assertion { assertion, client_key })
}

/// `POST /v1/auth/tokens/long` (issueLongTermToken).
///
/// The summary and description are the API reference's (`docs/api/AuthApi.md`), word for
/// word: tests/conformance checks the generated client's documentation against it.
#[utoipa::path(
    post,
    path = "/v1/auth/tokens/long",
    operation_id = "issueLongTermToken",
    tag = openapi::TAG_AUTH,
    summary = "Issue or rotate a long-term token",
    description = "Issues a long-term token (e.g., 30-90 days) for automation or server-to-server use.
Requires step-up authentication. Choose one of the supported grant types:

- `client_credentials` + `client_secret`
- `client_credentials` + one-time `otp_code`
- `assertion` (e.g., signed JWT by your private key)
- Or an existing short-term token with the `tokens:write` scope

Only one mechanism is required per call.
",
    request_body(content = LongTokenRequest),
    responses(
        (status = 201, description = "Long-term token issued", body = LongTokenResponse,
            headers(("X-Token-Id" = String, description = "Server-generated identifier for revocation and audit")),
            links(("RevokeToken" = (operation_id = "revokeToken", parameters(("tokenId" = "$response.body#/token_id")),
                description = "Revoke the new token by its id")))),
        (status = 400, description = "Bad request", body = ErrorResponse),
        (status = 401, description = "Unauthorized", body = ErrorResponse),
        (status = 403, description = "Forbidden", body = ErrorResponse),
        (status = 429, description = "Too Many Requests", body = ErrorResponse),
    ),
    security(("ShortTokenAuth" = []), ("ClientKey" = []))
)]
pub async fn issue_long(
    State(ctx): State<ApiContext>,
    ClientAddr(addr): ClientAddr,
    bearer: Bearer,
    ClientKeyHeader(client_key): ClientKeyHeader,
    log: RequestLog,
    body: RawBody,
) -> Result<Response, ApiError> {
    let mut req: LongTokenRequest = body.json()?;
    let credential = credential(&mut req, bearer, client_key)?;
    log.grant(credential.mechanism().as_str());
    let params = long_params(req)?;
    let issued: IssuedLong = ctx.service.issue_long(credential, params, addr).await?;
    let token_id = issued.id.to_string();
    log.client(&issued.client_id);
    log.token(&token_id);
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

/// `POST /v1/auth/tokens/short` (issueShortTermToken).
#[utoipa::path(
    post,
    path = "/v1/auth/tokens/short",
    operation_id = "issueShortTermToken",
    tag = openapi::TAG_AUTH,
    summary = "Issue a short-term access token",
    description = "Exchange a valid long-term token for a short-lived JWT (e.g., 15 minutes).
The long-term token must be sent in the Authorization header as `Bearer <long_token>`.
",
    // Optional: named by reference, because `Option<ShortTokenRequest>` would also document a
    // JSON `null` body, which the server refuses.
    request_body(content = ref("#/components/schemas/ShortTokenRequest"), content_type = "application/json"),
    responses(
        (status = 201, description = "Short-term token issued", body = ShortTokenResponse,
            links(("RevokeToken" = (operation_id = "revokeToken", parameters(("tokenId" = "$response.body#/token_id")),
                description = "Revoke the new token by its id")))),
        (status = 400, description = "Bad request", body = ErrorResponse),
        (status = 401, description = "Unauthorized", body = ErrorResponse),
        (status = 429, description = "Too Many Requests", body = ErrorResponse),
    ),
    security(("LongTokenAuth" = []))
)]
pub async fn issue_short(
    State(ctx): State<ApiContext>,
    ClientAddr(addr): ClientAddr,
    bearer: Bearer,
    log: RequestLog,
    body: RawBody,
) -> Result<Response, ApiError> {
    log.grant(Mechanism::LongToken.as_str());
    let req: ShortTokenRequest = body.optional_json()?.unwrap_or_default();
    let audience = req.audience.map(Audience::parse).transpose().map_err(ApiError::invalid_request)?;
    let params = ShortTokenParams { scopes: parse_scopes(req.scopes)?, audience, ttl_seconds: req.ttl_seconds };
    let issued: IssuedShort = ctx.service.issue_short(bearer, params, addr).await?;
    log.client(&issued.client_id);
    log.token(&issued.id);
    let body = ShortTokenResponse::from(issued);
    let json = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    Ok(no_store((StatusCode::CREATED, json, body.to_json()).into_response()))
}

/// Authenticates the bearer and records who it is for the access log.
async fn caller(
    ctx: &ApiContext,
    bearer: Bearer,
    addr: IpAddr,
    log: &RequestLog,
    purpose: BearerUse<'_>,
) -> Result<Caller, ApiError> {
    let caller = ctx.service.authenticate(bearer, addr, purpose).await?;
    log.client(caller.client_id());
    match &caller {
        Caller::Long(t) => log.caller_token(t.id),
        Caller::Short { id, .. } => log.caller_token(id),
    }
    Ok(caller)
}

/// `POST /v1/auth/tokens/{tokenId}/revoke` (revokeToken).
#[utoipa::path(
    post,
    path = "/v1/auth/tokens/{tokenId}/revoke",
    operation_id = "revokeToken",
    tag = openapi::TAG_AUTH,
    summary = "Revoke a token",
    description = "Revokes a short- or long-term token by its `tokenId`. Idempotent.",
    params(("tokenId" = String, Path, description = "The token ID to revoke")),
    responses(
        (status = 204, description = "Revoked (idempotent)"),
        (status = 401, description = "Unauthorized", body = ErrorResponse),
        (status = 404, description = "Not found", body = ErrorResponse),
    ),
    security(("LongTokenAuth" = []), ("ShortTokenAuth" = []))
)]
pub async fn revoke(
    State(ctx): State<ApiContext>,
    ClientAddr(addr): ClientAddr,
    bearer: Bearer,
    log: RequestLog,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<StatusCode, ApiError> {
    // A path that does not even decode names no token: 404, like any unknown id (once the
    // caller is authenticated).
    let token_id = path.map(|Path(id)| id).ok();
    let target = BearerUse::Revocation { target: token_id.as_deref().unwrap_or_default() };
    let caller = caller(&ctx, bearer, addr, &log, target).await?;
    let Some(token_id) = token_id else {
        return Err(ApiError::from(DomainError::NotFound));
    };
    ctx.service.revoke(&caller, &token_id, addr).await?;
    // Only now is the path known to be a token id (a token pasted there by mistake is never logged).
    log.token(&token_id);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/auth/tokens/introspect` (RFC 7662 style).
#[utoipa::path(
    post,
    path = "/v1/auth/tokens/introspect",
    operation_id = "introspectToken",
    tag = openapi::TAG_INTROSPECTION,
    summary = "Introspect a token",
    description = "Tells whether a long-term or short-term token is active, and if so its id, kind, client, scopes \
and lifetime (RFC 7662 style). The caller is a bearer token holding `tokens:introspect`. A token that is \
unknown, malformed, expired or revoked is answered `{\"active\": false}`.",
    request_body(content = IntrospectRequest),
    responses(
        (status = 200, description = "What the token is", body = IntrospectResponse),
        (status = 400, description = "Bad request", body = ErrorResponse),
        (status = 401, description = "Unauthorized: no valid bearer token", body = ErrorResponse,
            headers(("WWW-Authenticate" = String, description = "`Bearer`, with `error=\"invalid_token\"` when a token was presented"))),
        (status = 403, description = "Forbidden: the caller lacks `tokens:introspect`", body = ErrorResponse),
    ),
    security(("LongTokenAuth" = []), ("ShortTokenAuth" = []))
)]
pub async fn introspect(
    State(ctx): State<ApiContext>,
    ClientAddr(addr): ClientAddr,
    bearer: Bearer,
    log: RequestLog,
    body: RawBody,
) -> Result<Response, ApiError> {
    let caller = caller(&ctx, bearer, addr, &log, BearerUse::Introspection).await?;
    let req: IntrospectRequest = body.json()?;
    let info = ctx.service.introspect(&caller, &req.token).await?;
    if let Some(i) = &info {
        log.token(&i.token_id);
    }
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
            aud: i.audience,
        },
        None => IntrospectResponse {
            active: false,
            token_id: None,
            token_type: None,
            client_id: None,
            scopes: None,
            exp: None,
            iat: None,
            aud: None,
        },
    };
    Ok(no_store(Json(body).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(body: &str, bearer: Option<&str>, key: Option<&str>) -> Result<Credential, ApiError> {
        let mut req: LongTokenRequest =
            serde_json::from_str(body).map_err(|e| ApiError::invalid_request(e.to_string()))?;
        let bearer = bearer.map_or(Bearer::Absent, |b| Bearer::Token(SecretString::from(b.to_owned())));
        credential(&mut req, bearer, key.map(str::to_owned))
    }

    proptest! {
        /// The hand-written body is exactly what serde would write, whatever the strings hold.
        #[test]
        fn short_token_response_json_matches_serde(
            token_id in ".{0,40}",
            access_token in "[A-Za-z0-9_.-]{0,700}|.{0,60}",
            scopes in prop::collection::vec(".{0,12}", 0..4),
            issued_at in ".{0,30}",
            expires_in in any::<i64>(),
        ) {
            let r = ShortTokenResponse {
                token_id,
                access_token,
                token_type: "Bearer",
                scopes,
                issued_at: issued_at.clone(),
                expires_at: issued_at,
                expires_in,
            };
            prop_assert_eq!(String::from_utf8(r.to_json()).unwrap(), serde_json::to_string(&r).unwrap());
        }
    }

    #[test]
    fn short_token_response_json_escapes_like_serde() {
        let r = ShortTokenResponse {
            token_id: "st_\"x\\y\u{1}".into(),
            access_token: "a.b.c".into(),
            token_type: "Bearer",
            scopes: vec!["read".into(), "we\"ird\n".into(), "é".into()],
            issued_at: "2026-01-01T00:00:00Z".into(),
            expires_at: "2026-01-01T00:15:00Z".into(),
            expires_in: 900,
        };
        assert_eq!(String::from_utf8(r.to_json()).unwrap(), serde_json::to_string(&r).unwrap());
    }

    #[test]
    fn exactly_one_mechanism_is_accepted() {
        let cc = r#"{"grant_type":"client_credentials","client_id":"cli_a","client_secret":"s"}"#;
        assert!(matches!(parse(cc, None, None), Ok(Credential::ClientSecret { .. })));
        assert!(matches!(parse(cc, None, Some("cli_a")), Ok(Credential::ClientSecret { .. })));
        assert_eq!(parse(cc, None, Some("cli_b")).err().map(|e| e.status.as_u16()), Some(400));
        assert_eq!(parse(cc, Some("jwt"), None).err().map(|e| e.status.as_u16()), Some(400));
        let both = r#"{"grant_type":"client_credentials","client_id":"c","client_secret":"s","otp_code":"123456"}"#;
        assert_eq!(parse(both, None, None).err().map(|e| e.status.as_u16()), Some(400));
        let otp = r#"{"grant_type":"client_credentials","otp_code":"123456"}"#;
        assert!(matches!(parse(otp, None, Some("cli_a")), Ok(Credential::Otp { .. })));
        let assertion = r#"{"grant_type":"urn:ietf:params:oauth:grant-type:jwt-bearer","assertion":"a.b.c"}"#;
        assert!(matches!(parse(assertion, None, None), Ok(Credential::Assertion { .. })));
        let mixed = r#"{"grant_type":"assertion","assertion":"a.b.c","client_secret":"s"}"#;
        assert_eq!(parse(mixed, None, None).err().map(|e| e.status.as_u16()), Some(400));
        assert!(matches!(parse("{}", Some("jwt"), None), Ok(Credential::ShortToken { .. })));
        assert_eq!(parse("{}", None, None).err().map(|e| e.status.as_u16()), Some(400));
        let unknown = r#"{"grant_type":"password"}"#;
        assert_eq!(parse(unknown, None, None).err().map(|e| e.code), Some("unsupported_grant_type"));
    }

    fn field() -> impl Strategy<Value = (String, serde_json::Value)> {
        let names = prop::sample::select(vec![
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
        let values = prop_oneof![
            Just(serde_json::Value::Null),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
            "\\PC{0,20}".prop_map(serde_json::Value::from),
            prop::sample::select(vec!["client_credentials", "assertion", "short_token", "cli_x"])
                .prop_map(serde_json::Value::from),
            prop::collection::vec("[a-z:]{0,8}", 0..3).prop_map(serde_json::Value::from),
        ];
        (names.prop_map(str::to_owned), values)
    }

    proptest! {
        /// Any JSON object, with any header combination, becomes one credential or a client
        /// error (400/401): never a panic, never a server error.
        #[test]
        fn any_long_token_request_parses_to_one_credential_or_a_client_error(
            fields in prop::collection::vec(field(), 0..6),
            bearer in prop::option::of("[a-z.]{1,10}"),
            key in prop::option::of("[a-z_]{0,10}"),
        ) {
            let body = serde_json::Value::Object(fields.into_iter().collect()).to_string();
            if let Err(e) = parse(&body, bearer.as_deref(), key.as_deref()) {
                prop_assert!(matches!(e.status.as_u16(), 400 | 401), "{} for {body}", e.status);
            }
        }
    }
}
