//! Federation (trusted issuers and their rules) and webhooks (receivers and deliveries), as
//! the console and the command line read them; removing an issuer or a rule.

use axum::Json;
use axum::extract::{Path, State};

use super::model::{DeliveryView, FederationRuleView, IssuerView, RemovedIssuerView, RemovedRuleView, WebhookView};
use super::{Reader, Writer, admin_error, client_id};
use crate::domain::federation::admin as federation;
use crate::domain::webhook::{DeliveryQuery, DeliveryStatus, admin as webhooks};
use crate::http::ApiContext;
use crate::http::error::{ApiError, ErrorResponse};
use crate::http::params::Params;

fn store_error(e: crate::store::StoreError) -> ApiError {
    admin_error(e.into())
}

#[utoipa::path(get, path = "/admin/v1/issuers", operation_id = "listIssuers", tag = super::openapi::TAG,
    summary = "List the trusted external issuers",
    responses((status = 200, body = Vec<IssuerView>), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
pub async fn issuers(State(ctx): State<ApiContext>, _: Reader) -> Result<Json<Vec<IssuerView>>, ApiError> {
    let (store, _, _) = ctx.service.operator_context();
    Ok(Json(store.list_issuers().await.map_err(store_error)?.iter().map(IssuerView::from).collect()))
}

#[utoipa::path(delete, path = "/admin/v1/issuers/{name}", operation_id = "removeIssuer", tag = super::openapi::TAG,
    summary = "Stop trusting an issuer; its federation rules are removed with it",
    params(("name" = String, Path)),
    responses((status = 200, body = RemovedIssuerView), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn remove_issuer(
    State(ctx): State<ApiContext>,
    writer: Writer,
    Path(name): Path<String>,
) -> Result<Json<RemovedIssuerView>, ApiError> {
    let (store, _, now) = ctx.service.operator_context();
    let rules_removed = writer.run(federation::remove_issuer(store, now, &name)).await.map_err(admin_error)?;
    Ok(Json(RemovedIssuerView { name, removed: true, rules_removed }))
}

#[utoipa::path(get, path = "/admin/v1/federation-rules", operation_id = "listFederationRules",
    tag = super::openapi::TAG, summary = "List the federation rules, of one client or of all",
    params(("client_id" = Option<String>, Query)),
    responses((status = 200, body = Vec<FederationRuleView>), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn rules(
    State(ctx): State<ApiContext>,
    _: Reader,
    params: Params,
) -> Result<Json<Vec<FederationRuleView>>, ApiError> {
    params.only(&["client_id"])?;
    let client = params.get("client_id").map(client_id).transpose()?;
    let (store, _, _) = ctx.service.operator_context();
    let rules = store.list_federation_rules(client.as_ref()).await.map_err(store_error)?;
    Ok(Json(rules.iter().map(FederationRuleView::from).collect()))
}

#[utoipa::path(delete, path = "/admin/v1/federation-rules/{rule_id}", operation_id = "removeFederationRule",
    tag = super::openapi::TAG, summary = "Remove a federation rule",
    params(("rule_id" = String, Path)),
    responses((status = 200, body = RemovedRuleView), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn remove_rule(
    State(ctx): State<ApiContext>,
    writer: Writer,
    Path(id): Path<String>,
) -> Result<Json<RemovedRuleView>, ApiError> {
    let (store, _, now) = ctx.service.operator_context();
    let rule = writer.run(federation::remove_rule(store, now, &id)).await.map_err(admin_error)?;
    Ok(Json(RemovedRuleView::from(&rule)))
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
