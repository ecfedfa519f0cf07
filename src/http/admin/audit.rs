//! The audit trail, a page at a time, and the dashboard's counts.

use axum::Json;
use axum::extract::State;

use super::model::{AuditEventView, AuditPageView, BucketView, StatsView, TokenView};
use super::{Reader, admin_error, client_id};
use crate::domain::admin::reads::{self, StatusFilter, TokenFilter};
use crate::http::ApiContext;
use crate::http::error::{ApiError, ErrorResponse};
use crate::http::params::Params;
use crate::store::AuditPage;

const WEEK: i64 = 7 * 86_400;

/// Events per page unless the request says.
const DEFAULT_PAGE: i64 = 50;

#[utoipa::path(get, path = "/admin/v1/audit", operation_id = "listAuditEvents", tag = super::openapi::TAG,
    summary = "A page of the audit trail, newest first",
    params(
        ("client_id" = Option<String>, Query, description = "Only events about this client"),
        ("event" = Option<String>, Query, description = "Only this kind of event, e.g. token.revoked"),
        ("outcome" = Option<String>, Query, description = "success or failure"),
        ("since" = Option<String>, Query, description = "Only events at or after this RFC 3339 time"),
        ("limit" = Option<i64>, Query, description = "Events per page, 1-500 (default 50)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the previous page"),
    ),
    responses((status = 200, body = AuditPageView), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
pub async fn page(State(ctx): State<ApiContext>, _: Reader, params: Params) -> Result<Json<AuditPageView>, ApiError> {
    params.only(&["client_id", "event", "outcome", "since", "limit", "cursor"])?;
    let outcome = match params.get("outcome") {
        None => None,
        Some(o @ ("success" | "failure")) => Some(o.to_owned()),
        Some(_) => return Err(ApiError::invalid_request("outcome must be success or failure")),
    };
    let event = params.get("event").map(str::to_owned);
    if event.as_ref().is_some_and(|e| e.len() > 64 || !e.bytes().all(|b| b.is_ascii_graphic())) {
        return Err(ApiError::invalid_request("event must be an event name, e.g. token.revoked"));
    }
    let since = match params.get("since") {
        None => None,
        Some(t) => Some(
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|_| ApiError::invalid_request("since must be an RFC 3339 time, e.g. 2026-11-29T12:00:00Z"))?
                .unix_timestamp()
                .saturating_mul(1000),
        ),
    };
    let before_id = match params.get("cursor") {
        None => None,
        Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::invalid_request("cursor is not a cursor of this trail (pass a page's next_cursor)")
        })?),
    };
    let page = AuditPage {
        before_id,
        client_id: params.get("client_id").map(|c| client_id(c).map(|c| c.to_string())).transpose()?,
        event,
        outcome,
        since,
        limit: params.number("limit", 1, i64::from(reads::MAX_AUDIT_PAGE))?.unwrap_or(DEFAULT_PAGE) as u32,
    };
    let (store, _, _) = ctx.service.operator_context();
    let (events, next) = reads::audit_page(store, page).await.map_err(admin_error)?;
    Ok(Json(AuditPageView {
        events: events.iter().map(AuditEventView::from).collect(),
        next_cursor: next.map(|n| n.to_string()),
    }))
}

#[utoipa::path(get, path = "/admin/v1/stats", operation_id = "dashboardStats", tag = super::openapi::TAG,
    summary = "Issuance and failed authentications per hour, and the tokens issued for longer than a week that end within one",
    params(("hours" = Option<i64>, Query, description = "Hours to cover, 1-168 (default 24)")),
    responses((status = 200, body = StatsView), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)))]
pub async fn stats(State(ctx): State<ApiContext>, _: Reader, params: Params) -> Result<Json<StatsView>, ApiError> {
    params.only(&["hours"])?;
    let hours = params.number("hours", 1, 168)?.unwrap_or(24) as u32;
    let (store, _, now) = ctx.service.operator_context();
    let buckets = reads::activity(store, now, hours).await.map_err(admin_error)?;
    let week = TokenFilter { status: StatusFilter::Current, expiring_within: Some(WEEK), ..TokenFilter::default() };
    let mut expiring = reads::tokens(store, &week, now).await.map_err(admin_error)?;
    // A token issued for less than the week (a console session's) ending within it is no news.
    expiring.retain(|t| t.expires_at - t.issued_at > WEEK);
    expiring.sort_by_key(|t| t.valid_until());
    Ok(Json(StatsView {
        bucket_secs: 3600,
        buckets: buckets.iter().map(BucketView::from).collect(),
        expiring_soon: expiring.iter().map(|t| TokenView::of(t, now)).collect(),
    }))
}
