//! Signing keys: list them with their state, rotate one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::model::{KeyView, RotateKeyRequest};
use super::{Reader, Writer};
use crate::domain::keys;
use crate::http::ApiContext;
use crate::http::error::{ApiError, ErrorResponse};
use crate::http::extract::RawBody;
use crate::signer::SigningAlg;

/// How long verifiers get to fetch a new key before it signs, unless the request says.
const DEFAULT_PUBLISH_DELAY_SECS: i64 = 600;

fn internal(e: anyhow::Error) -> ApiError {
    ApiError::from(crate::domain::DomainError::Internal(format!("{e:#}")))
}

#[utoipa::path(get, path = "/admin/v1/keys", operation_id = "listSigningKeys", tag = super::openapi::TAG,
    summary = "List the signing keys and where each is in its life (never key material)",
    responses((status = 200, body = Vec<KeyView>), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
pub async fn list(State(ctx): State<ApiContext>, _: Reader) -> Result<Json<Vec<KeyView>>, ApiError> {
    let (store, _, now) = ctx.service.operator_context();
    let ttl = i64::from(ctx.service.config().short_ttl_max_secs);
    let all = keys::list(store).await.map_err(internal)?;
    Ok(Json(all.iter().map(|k| KeyView::of(k, now, ttl)).collect()))
}

#[utoipa::path(post, path = "/admin/v1/keys/rotate", operation_id = "rotateSigningKey", tag = super::openapi::TAG,
    summary = "Create a new signing key: published at once, signing after publish_delay_secs",
    request_body(content = Option<RotateKeyRequest>),
    responses((status = 201, body = KeyView), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
pub async fn rotate(
    State(ctx): State<ApiContext>,
    writer: Writer,
    body: RawBody,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    let req: RotateKeyRequest = body.optional_object()?.unwrap_or_default();
    let alg = match req.alg.as_deref() {
        None => None,
        Some(a) => Some(SigningAlg::parse(a).ok_or_else(|| ApiError::invalid_request("alg must be EdDSA or ES256"))?),
    };
    let delay = req.publish_delay_secs.unwrap_or(DEFAULT_PUBLISH_DELAY_SECS);
    if !(0..=86_400).contains(&delay) {
        return Err(ApiError::invalid_request("publish_delay_secs must be between 0 and 86400"));
    }
    let (store, keyring, now) = ctx.service.operator_context();
    let rotated = writer.run(keys::rotate_by_operator(store, keyring, now, alg, delay)).await.map_err(internal)?;
    let ttl = i64::from(ctx.service.config().short_ttl_max_secs);
    Ok((StatusCode::CREATED, Json(KeyView::of(&rotated.key, now, ttl))))
}
