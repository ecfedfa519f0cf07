//! Federation: the trusted external issuers and the rules binding clients to their tokens'
//! claims; list, add, remove, as the command line does.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::model::{
    FederationRuleView, IssuerView, NewIssuerRequest, NewRuleRequest, RemovedIssuerView, RemovedRuleView,
};
use super::{Reader, Segment, Writer, admin_error, client_id};
use crate::domain::Scopes;
use crate::domain::federation::IssuerKeys;
use crate::domain::federation::admin::{self as federation, NewRule};
use crate::http::ApiContext;
use crate::http::error::{ApiError, ErrorResponse};
use crate::http::extract::RawBody;
use crate::http::params::Params;

fn store_error(e: crate::store::StoreError) -> ApiError {
    admin_error(e.into())
}

/// The one source of keys a request names.
fn keys_of(req: &NewIssuerRequest) -> Result<IssuerKeys, ApiError> {
    match (&req.jwks_uri, req.discovery, &req.jwks) {
        (Some(uri), false, None) => Ok(IssuerKeys::JwksUri(uri.clone())),
        (None, true, None) => Ok(IssuerKeys::Discovery),
        (None, false, Some(set)) => Ok(IssuerKeys::Jwks(set.to_string())),
        _ => Err(ApiError::invalid_request("name exactly one source of keys: jwks_uri, discovery: true, or jwks")),
    }
}

#[utoipa::path(post, path = "/admin/v1/issuers", operation_id = "addIssuer", tag = super::openapi::TAG,
    summary = "Trust an external issuer: the exact iss of its tokens and one source of keys",
    request_body(content = NewIssuerRequest),
    responses((status = 201, body = IssuerView), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
pub async fn add_issuer(
    State(ctx): State<ApiContext>,
    writer: Writer,
    body: RawBody,
) -> Result<(StatusCode, Json<IssuerView>), ApiError> {
    let req: NewIssuerRequest = body.object()?;
    let own = ctx.service.config().issuer.trim_end_matches('/');
    if req.issuer.trim_end_matches('/') == own {
        return Err(ApiError::invalid_request(
            "issuer is this tokensmith's own issuer: its tokens are never external identities",
        ));
    }
    let keys = keys_of(&req)?;
    let (store, _, now) = ctx.service.operator_context();
    let added =
        writer.run(federation::add_issuer(store, now, &req.name, &req.issuer, keys)).await.map_err(admin_error)?;
    Ok((StatusCode::CREATED, Json(IssuerView::from(&added))))
}

#[utoipa::path(post, path = "/admin/v1/federation-rules", operation_id = "addFederationRule", tag = super::openapi::TAG,
    summary = "Let a trusted issuer's tokens with the audience and every condition stand for a client",
    request_body(content = NewRuleRequest),
    responses((status = 201, body = FederationRuleView), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn add_rule(
    State(ctx): State<ApiContext>,
    writer: Writer,
    body: RawBody,
) -> Result<(StatusCode, Json<FederationRuleView>), ApiError> {
    let req: NewRuleRequest = body.object()?;
    let scopes = match &req.scopes {
        None => None,
        Some(s) => Some(Scopes::from_list(s).map_err(|e| ApiError::invalid_request(format!("scopes: {e}")))?),
    };
    let spec = NewRule {
        client: client_id(&req.client_id)?,
        issuer: req.issuer,
        audience: req.audience,
        matches: req.matches,
        max_ttl_days: req.max_ttl_days,
        scopes,
    };
    let (store, _, now) = ctx.service.operator_context();
    let rule = writer.run(federation::add_rule(store, now, spec)).await.map_err(admin_error)?;
    Ok((StatusCode::CREATED, Json(FederationRuleView::from(&rule))))
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
    Segment(name): Segment,
    body: RawBody,
) -> Result<Json<RemovedIssuerView>, ApiError> {
    body.none()?;
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
    Segment(id): Segment,
    body: RawBody,
) -> Result<Json<RemovedRuleView>, ApiError> {
    body.none()?;
    let (store, _, now) = ctx.service.operator_context();
    let rule = writer.run(federation::remove_rule(store, now, &id)).await.map_err(admin_error)?;
    Ok(Json(RemovedRuleView::from(&rule)))
}
