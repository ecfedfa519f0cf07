//! Webhooks: the receivers (list, register with the secret shown once, remove) and their
//! deliveries (list, schedule a failed one again), as the command line does.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::model::{
    AddedWebhookView, DeliveryView, NewWebhookRequest, RedeliverRequest, RedeliveredView, RemovedWebhookView,
    WebhookView,
};
use super::{Reader, Segment, Writer, admin_error};
use crate::domain::webhook::{DeliveryQuery, DeliveryStatus, admin as webhooks};
use crate::http::ApiContext;
use crate::http::error::{ApiError, ErrorResponse};
use crate::http::extract::RawBody;
use crate::http::params::Params;

fn store_error(e: crate::store::StoreError) -> ApiError {
    admin_error(e.into())
}

#[utoipa::path(get, path = "/admin/v1/webhooks", operation_id = "listWebhooks", tag = super::openapi::TAG,
    summary = "List the webhook receivers (never their secrets)",
    responses((status = 200, body = Vec<WebhookView>), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
pub async fn webhooks(State(ctx): State<ApiContext>, _: Reader) -> Result<Json<Vec<WebhookView>>, ApiError> {
    let (store, _, _) = ctx.service.operator_context();
    Ok(Json(store.list_webhooks().await.map_err(store_error)?.iter().map(WebhookView::from).collect()))
}

#[utoipa::path(get, path = "/admin/v1/webhooks/deliveries", operation_id = "listWebhookDeliveries",
    tag = super::openapi::TAG, summary = "The latest webhook deliveries",
    params(
        ("webhook_id" = Option<String>, Query, description = "Only this receiver's"),
        ("status" = Option<String>, Query, description = "pending, delivered or failed"),
        ("limit" = Option<i64>, Query, description = "1-1000 (default 50)"),
    ),
    responses((status = 200, body = Vec<DeliveryView>), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn deliveries(
    State(ctx): State<ApiContext>,
    _: Reader,
    params: Params,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    params.only(&["webhook_id", "status", "limit"])?;
    let status = match params.get("status") {
        None => None,
        Some(s) => Some(
            DeliveryStatus::parse(s)
                .ok_or_else(|| ApiError::invalid_request("status must be pending, delivered or failed"))?,
        ),
    };
    let (store, _, _) = ctx.service.operator_context();
    let webhook = match params.get("webhook_id") {
        None => None,
        Some(w) => Some(webhooks::find(store, w).await.map_err(admin_error)?.id),
    };
    let limit = params.number("limit", 1, 1000)?.unwrap_or(50) as u32;
    let all = webhooks::deliveries(store, &DeliveryQuery { webhook, status, limit }).await.map_err(admin_error)?;
    Ok(Json(all.iter().map(DeliveryView::from).collect()))
}

#[utoipa::path(post, path = "/admin/v1/webhooks", operation_id = "addWebhook", tag = super::openapi::TAG,
    summary = "Register a webhook receiver; its signing secret is in this answer only",
    request_body(content = NewWebhookRequest),
    responses((status = 201, body = AddedWebhookView), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
pub async fn add(
    State(ctx): State<ApiContext>,
    writer: Writer,
    body: RawBody,
) -> Result<(StatusCode, Json<AddedWebhookView>), ApiError> {
    let req: NewWebhookRequest = body.object()?;
    if req.events.iter().any(|e| e.contains(',')) {
        return Err(ApiError::invalid_request("events is a list of event types: one per item, no commas"));
    }
    let (store, keyring, now) = ctx.service.operator_context();
    let events = req.events.join(",");
    let change = webhooks::add(store, keyring, now, &req.url, &events);
    let added = writer.run(change).await.map_err(admin_error)?;
    let view =
        AddedWebhookView { webhook: WebhookView::from(&added.webhook), secret: added.secret.reveal().to_string() };
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(delete, path = "/admin/v1/webhooks/{webhook_id}", operation_id = "removeWebhook", tag = super::openapi::TAG,
    summary = "Remove a webhook receiver (its pending deliveries go with it)",
    params(("webhook_id" = String, Path)),
    responses((status = 200, body = RemovedWebhookView), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn remove(
    State(ctx): State<ApiContext>,
    writer: Writer,
    Segment(id): Segment,
    body: RawBody,
) -> Result<Json<RemovedWebhookView>, ApiError> {
    body.none()?;
    let (store, _, now) = ctx.service.operator_context();
    let removed = writer.run(webhooks::remove(store, now, &id)).await.map_err(admin_error)?;
    Ok(Json(RemovedWebhookView { webhook_id: removed.as_str().to_owned(), removed: true }))
}

#[utoipa::path(post, path = "/admin/v1/webhooks/deliveries/{message_id}/redeliver", operation_id = "redeliverWebhookMessage",
    tag = super::openapi::TAG, summary = "Schedule a message's failed deliveries again, from the first attempt",
    params(("message_id" = String, Path)), request_body(content = Option<RedeliverRequest>),
    responses((status = 200, body = RedeliveredView), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn redeliver(
    State(ctx): State<ApiContext>,
    writer: Writer,
    Segment(message): Segment,
    body: RawBody,
) -> Result<Json<RedeliveredView>, ApiError> {
    let req: RedeliverRequest = body.optional_object()?.unwrap_or_default();
    let (store, _, now) = ctx.service.operator_context();
    let n =
        writer.run(webhooks::redeliver(store, now, &message, req.webhook_id.as_deref())).await.map_err(admin_error)?;
    Ok(Json(RedeliveredView { message_id: message, deliveries: n }))
}
