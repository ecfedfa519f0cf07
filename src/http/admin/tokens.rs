//! Long-term tokens: list through filters, see what a revocation would take with it, revoke.

use axum::Json;
use axum::extract::State;

use super::model::{CascadeView, RevocationView, TokenView};
use super::{Reader, Segment, Writer, admin_error, client_id};
use crate::domain::LongTokenId;
use crate::domain::admin;
use crate::domain::admin::reads::{self, StatusFilter, TokenFilter};
use crate::http::ApiContext;
use crate::http::error::{ApiError, ErrorResponse};
use crate::http::extract::RawBody;
use crate::http::params::Params;

const DAY: i64 = 86_400;

/// The filters of a token listing, from the query.
fn filter(params: &Params) -> Result<TokenFilter, ApiError> {
    params.only(&["client_id", "status", "expiring_within_days", "unused_for_days"])?;
    let status = match params.get("status") {
        None => StatusFilter::Current,
        Some(s) => StatusFilter::parse(s)
            .ok_or_else(|| ApiError::invalid_request(format!("status must be {}", StatusFilter::NAMES)))?,
    };
    let days = |name: &str| params.number(name, 1, 3650).map(|d| d.map(|d| d * DAY));
    Ok(TokenFilter {
        client: params.get("client_id").map(client_id).transpose()?,
        status,
        expiring_within: days("expiring_within_days")?,
        unused_for: days("unused_for_days")?,
    })
}

#[utoipa::path(get, path = "/admin/v1/tokens", operation_id = "listTokens", tag = super::openapi::TAG,
    summary = "List long-term tokens (never the tokens themselves)",
    params(
        ("client_id" = Option<String>, Query, description = "Only this client's tokens"),
        ("status" = Option<String>, Query, description = "current (default: neither revoked nor expired), all, live, rotating, disabled, revoked or expired"),
        ("expiring_within_days" = Option<i64>, Query, description = "Only valid tokens ending within this many days (1-3650)"),
        ("unused_for_days" = Option<i64>, Query, description = "Only tokens unused for this many days (1-3650)"),
    ),
    responses((status = 200, body = Vec<TokenView>), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn list(State(ctx): State<ApiContext>, _: Reader, params: Params) -> Result<Json<Vec<TokenView>>, ApiError> {
    let filter = filter(&params)?;
    let (store, _, now) = ctx.service.operator_context();
    let tokens = reads::tokens(store, &filter, now).await.map_err(admin_error)?;
    Ok(Json(tokens.iter().map(|t| TokenView::of(t, now)).collect()))
}

fn long_token_id(text: &str) -> Result<LongTokenId, ApiError> {
    LongTokenId::parse(text).ok_or_else(|| {
        ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "no such long-term token (ids are UUIDs)")
    })
}

#[utoipa::path(get, path = "/admin/v1/tokens/{token_id}/cascade", operation_id = "tokenCascade",
    tag = super::openapi::TAG,
    summary = "What revoking a long-term token would also revoke: its valid descendants",
    params(("token_id" = String, Path)),
    responses((status = 200, body = CascadeView), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn cascade(
    State(ctx): State<ApiContext>,
    _: Reader,
    Segment(id): Segment,
) -> Result<Json<CascadeView>, ApiError> {
    let id = long_token_id(&id)?;
    let (store, _, now) = ctx.service.operator_context();
    let c = reads::cascade(store, &id, now).await.map_err(admin_error)?;
    Ok(Json(CascadeView::of(&c, now)))
}

#[utoipa::path(post, path = "/admin/v1/tokens/{token_id}/revoke", operation_id = "revokeAnyToken",
    tag = super::openapi::TAG,
    summary = "Revoke a long-term token (with its descendants and every short-term token minted from them) or a short-term one",
    description = "Idempotent. Running servers refuse the token within one second.",
    params(("token_id" = String, Path, description = "A long-term token id (UUID) or a short-term token id (st_…)")),
    responses((status = 200, body = RevocationView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn revoke(
    State(ctx): State<ApiContext>,
    writer: Writer,
    Segment(id): Segment,
    body: RawBody,
) -> Result<Json<RevocationView>, ApiError> {
    body.none()?;
    let (store, keyring, now) = ctx.service.operator_context();
    let r = writer.run(admin::revoke_token(store, keyring, now, &id)).await.map_err(admin_error)?;
    Ok(Json(RevocationView::from(&r)))
}
