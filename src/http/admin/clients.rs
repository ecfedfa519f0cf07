//! Clients: register, list, show, disable and enable, rotate the secret, lift the locks,
//! reset the OTP, register the public key.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::model::{
    ClientDetailView, ClientStateView, ClientView, CreatedClientView, EnableRequest, NewClientRequest, OtpView,
    PublicKeyRequest, PublicKeyView, ResetOtpRequest, RotateSecretRequest, RotatedSecretView, UnlockedView,
};
use super::{Reader, Segment, Writer, admin_error, client_id};
use crate::clock::rfc3339;
use crate::domain::Scopes;
use crate::domain::admin::{self, NewClient, reads};
use crate::domain::client_key::ClientPublicKey;
use crate::http::ApiContext;
use crate::http::error::{ApiError, ErrorResponse};
use crate::http::extract::RawBody;

/// The QR code of an `otpauth://` URI, for the console to show once.
fn qr_svg(uri: &str) -> Option<String> {
    crate::qr::svg(uri).ok()
}

#[utoipa::path(get, path = "/admin/v1/clients", operation_id = "listClients", tag = super::openapi::TAG,
    summary = "List clients (never their secrets)",
    responses((status = 200, body = Vec<ClientView>), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
pub async fn list(State(ctx): State<ApiContext>, _: Reader) -> Result<Json<Vec<ClientView>>, ApiError> {
    let (store, _, _) = ctx.service.operator_context();
    let clients = store.list_clients().await.map_err(|e| admin_error(e.into()))?;
    Ok(Json(clients.iter().map(ClientView::from).collect()))
}

#[utoipa::path(post, path = "/admin/v1/clients", operation_id = "createClient", tag = super::openapi::TAG,
    summary = "Register a client; its secrets are in this answer only",
    request_body(content = NewClientRequest),
    responses((status = 201, body = CreatedClientView), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
pub async fn create(
    State(ctx): State<ApiContext>,
    writer: Writer,
    body: RawBody,
) -> Result<(StatusCode, Json<CreatedClientView>), ApiError> {
    let req: NewClientRequest = body.object()?;
    let scopes = Scopes::from_list(&req.scopes).map_err(|e| ApiError::invalid_request(format!("scopes: {e}")))?;
    if scopes.is_empty() {
        return Err(ApiError::invalid_request("scopes is empty: name at least one scope the client may grant"));
    }
    let thumbprint = match &req.public_key {
        Some(k) => {
            ClientPublicKey::parse(k).map_err(|e| ApiError::invalid_request(format!("public_key: {e}")))?.thumbprint()
        }
        None => None,
    };
    let (store, keyring, now) = ctx.service.operator_context();
    let spec = NewClient { name: req.name, scopes, otp: req.otp, public_key: req.public_key };
    let c = writer.run(admin::create_client(store, keyring, now, spec)).await.map_err(admin_error)?;
    let mut view = CreatedClientView::of(&c, thumbprint);
    view.otp_qr_svg = view.otp_uri.as_deref().and_then(qr_svg);
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/admin/v1/clients/{client_id}", operation_id = "showClient", tag = super::openapi::TAG,
    summary = "Show a client: everything but its secrets, and its long-term tokens' counts",
    params(("client_id" = String, Path)),
    responses((status = 200, body = ClientDetailView), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn show(
    State(ctx): State<ApiContext>,
    _: Reader,
    Segment(id): Segment,
) -> Result<Json<ClientDetailView>, ApiError> {
    let id = client_id(&id)?;
    let (store, _, now) = ctx.service.operator_context();
    let detail = reads::client_detail(store, &id, now).await.map_err(admin_error)?;
    Ok(Json(ClientDetailView::from(&detail)))
}

#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/disable", operation_id = "disableClient",
    tag = super::openapi::TAG, summary = "Disable a client: its credentials and tokens stop working",
    params(("client_id" = String, Path)),
    responses((status = 200, body = ClientStateView), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn disable(
    State(ctx): State<ApiContext>,
    writer: Writer,
    Segment(id): Segment,
    body: RawBody,
) -> Result<Json<ClientStateView>, ApiError> {
    body.none()?;
    let id = client_id(&id)?;
    let (store, _, now) = ctx.service.operator_context();
    writer.run(admin::disable_client(store, now, &id)).await.map_err(admin_error)?;
    Ok(Json(ClientStateView { client_id: id.to_string(), disabled: true, revoked_tokens: None }))
}

#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/enable", operation_id = "enableClient",
    tag = super::openapi::TAG,
    summary = "Enable a client; the long-term tokens it held stay revoked unless revive_tokens",
    params(("client_id" = String, Path)), request_body(content = Option<EnableRequest>),
    responses((status = 200, body = ClientStateView), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn enable(
    State(ctx): State<ApiContext>,
    writer: Writer,
    Segment(id): Segment,
    body: RawBody,
) -> Result<Json<ClientStateView>, ApiError> {
    let req: EnableRequest = body.optional_object()?.unwrap_or_default();
    let id = client_id(&id)?;
    let (store, _, now) = ctx.service.operator_context();
    let revoked = writer.run(admin::enable_client(store, now, &id, req.revive_tokens)).await.map_err(admin_error)?;
    Ok(Json(ClientStateView { client_id: id.to_string(), disabled: false, revoked_tokens: Some(revoked as u64) }))
}

#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/rotate-secret", operation_id = "rotateClientSecret",
    tag = super::openapi::TAG,
    summary = "Give a client a new secret (in this answer only); the old one works for overlap_secs",
    params(("client_id" = String, Path)), request_body(content = Option<RotateSecretRequest>),
    responses((status = 200, body = RotatedSecretView), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn rotate_secret(
    State(ctx): State<ApiContext>,
    writer: Writer,
    Segment(id): Segment,
    body: RawBody,
) -> Result<Json<RotatedSecretView>, ApiError> {
    let req: RotateSecretRequest = body.optional_object()?.unwrap_or_default();
    let id = client_id(&id)?;
    let (store, keyring, now) = ctx.service.operator_context();
    let overlap = req.overlap_secs;
    let secret =
        writer.run(admin::rotate_client_secret(store, keyring, now, &id, overlap)).await.map_err(admin_error)?;
    Ok(Json(RotatedSecretView {
        client_id: id.to_string(),
        client_secret: secret.expose().to_owned(),
        previous_secret_valid_until: (overlap > 0).then(|| rfc3339(now + overlap)),
    }))
}

#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/unlock", operation_id = "unlockClient",
    tag = super::openapi::TAG, summary = "Lift a client's failed-authentication locks",
    params(("client_id" = String, Path)),
    responses((status = 200, body = UnlockedView), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn unlock(
    State(ctx): State<ApiContext>,
    writer: Writer,
    Segment(id): Segment,
    body: RawBody,
) -> Result<Json<UnlockedView>, ApiError> {
    body.none()?;
    let id = client_id(&id)?;
    let (store, _, now) = ctx.service.operator_context();
    writer.run(admin::unlock_client(store, crate::clock::millis(now), &id)).await.map_err(admin_error)?;
    Ok(Json(UnlockedView { client_id: id.to_string(), unlocked: true }))
}

#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/reset-otp", operation_id = "resetClientOtp",
    tag = super::openapi::TAG,
    summary = "Give a client a new TOTP seed (in this answer only), or remove its OTP",
    params(("client_id" = String, Path)), request_body(content = Option<ResetOtpRequest>),
    responses((status = 200, body = OtpView), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn reset_otp(
    State(ctx): State<ApiContext>,
    writer: Writer,
    Segment(id): Segment,
    body: RawBody,
) -> Result<Json<OtpView>, ApiError> {
    let req: ResetOtpRequest = body.optional_object()?.unwrap_or_default();
    let id = client_id(&id)?;
    let (store, keyring, now) = ctx.service.operator_context();
    let enrolment = writer.run(admin::reset_otp(store, keyring, now, &id, req.remove)).await.map_err(admin_error)?;
    let mut view = OtpView::of(&id, enrolment.as_ref());
    view.otp_qr_svg = view.otp_uri.as_deref().and_then(qr_svg);
    Ok(Json(view))
}

#[utoipa::path(put, path = "/admin/v1/clients/{client_id}/public-key", operation_id = "setClientPublicKey",
    tag = super::openapi::TAG, summary = "Register the public key a client signs its assertions with",
    params(("client_id" = String, Path)), request_body(content = PublicKeyRequest),
    responses((status = 200, body = PublicKeyView), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, description = "The client has a key and replace was not asked for", body = ErrorResponse)))]
pub async fn set_public_key(
    State(ctx): State<ApiContext>,
    writer: Writer,
    Segment(id): Segment,
    body: RawBody,
) -> Result<Json<PublicKeyView>, ApiError> {
    let req: PublicKeyRequest = body.object()?;
    let id = client_id(&id)?;
    let key =
        ClientPublicKey::parse(&req.public_key).map_err(|e| ApiError::invalid_request(format!("public_key: {e}")))?;
    let (store, _, now) = ctx.service.operator_context();
    let replaced = store.get_client(&id).await.map_err(|e| admin_error(e.into()))?.and_then(|c| c.public_key_alg);
    let change = admin::set_public_key(store, now, &id, &req.public_key, req.replace);
    let alg = writer.run(change).await.map_err(admin_error)?;
    Ok(Json(PublicKeyView {
        client_id: id.to_string(),
        public_key_alg: alg.to_string(),
        public_key_thumbprint: key.thumbprint(),
        replaced: replaced.is_some(),
    }))
}
