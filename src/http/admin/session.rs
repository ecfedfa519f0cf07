//! The console's sign-in and sign-out.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use super::Reader;
use super::model::{SessionRequest, SessionView};
use crate::clock::rfc3339;
use crate::http::ApiContext;
use crate::http::error::{ApiError, ErrorResponse};
use crate::http::extract::{ClientAddr, RawBody};

/// Signs in to the console.
#[utoipa::path(
    post,
    path = "/admin/v1/session",
    operation_id = "signIn",
    tag = super::openapi::TAG,
    summary = "Sign in with a client secret and a one-time code",
    description = "Checks the client's secret and a TOTP code (both; each failure counts against the \
failed-authentication limits like any other), then answers an admin token for this admin API \
holding the client's admin scopes, valid for the short-term lifetime. Keep it in memory.",
    request_body(content = SessionRequest),
    security(()),
    responses(
        (status = 200, description = "Signed in", body = SessionView),
        (status = 400, description = "Malformed request", body = ErrorResponse),
        (status = 401, description = "Wrong secret or one-time code", body = ErrorResponse),
        (status = 403, description = "The client holds no admin scope", body = ErrorResponse),
        (status = 429, description = "Too many failed attempts", body = ErrorResponse),
    )
)]
pub async fn sign_in(
    State(ctx): State<ApiContext>,
    ClientAddr(addr): ClientAddr,
    body: RawBody,
) -> Result<Json<SessionView>, ApiError> {
    let req: SessionRequest = body.object()?;
    let client_id = crate::domain::ClientId::parse(req.client_id.trim()).ok_or_else(|| {
        ApiError::invalid_request("client_id is not a client id (they look like cli_3vQk0ZcO0mB1m4v8Xq2L)")
    })?;
    if req.otp.trim().is_empty() {
        return Err(ApiError::invalid_request("otp is required: the 6-digit code of the client's authenticator"));
    }
    let (secret, code) = (SecretString::from(req.client_secret), SecretString::from(req.otp.trim().to_owned()));
    let s = ctx.service.admin_session(client_id, secret, code, addr).await?;
    Ok(Json(SessionView {
        access_token: s.access_token.expose_secret().to_owned(),
        token_type: "Bearer".into(),
        expires_in: s.expires_in,
        expires_at: rfc3339(s.expires_at),
        client_id: s.client_id.to_string(),
        scopes: s.scopes.to_vec(),
    }))
}

/// Signs out: the presented admin token is revoked.
#[utoipa::path(
    delete,
    path = "/admin/v1/session",
    operation_id = "signOut",
    tag = super::openapi::TAG,
    summary = "Sign out (revoke the presented admin token)",
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "No valid admin token", body = ErrorResponse),
    )
)]
pub async fn sign_out(
    State(ctx): State<ApiContext>,
    Reader(caller): Reader,
    body: RawBody,
) -> Result<StatusCode, ApiError> {
    body.none()?;
    ctx.service.end_admin_session(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}
