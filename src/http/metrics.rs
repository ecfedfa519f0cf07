//! Prometheus metrics: a request counter and latency histogram per operation, served at
//! `GET /metrics` in the text exposition format. The domain counts issuances, failed
//! authentications and revocations through the same `metrics` facade.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets, in seconds: fine below 10 ms, where the token operations live.
const BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// The process-wide recorder, installed on first use. The `metrics` facade is global, so
/// every application in the process (tests start several) renders from the same one.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// `GET /metrics`.
pub async fn render() -> Response {
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    let mut res = body.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    res
}

/// The operation a path belongs to: a fixed set of labels, whatever the client sends.
fn operation(path: &str) -> &'static str {
    match path {
        "/v1/auth/tokens/long" => "issueLongTermToken",
        "/v1/auth/tokens/short" => "issueShortTermToken",
        "/v1/auth/tokens/introspect" => "introspect",
        "/.well-known/jwks.json" => "jwks",
        "/.well-known/oauth-authorization-server" => "metadata",
        "/openapi.json" => "openapi",
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        p if p.starts_with("/v1/auth/tokens/") && p.ends_with("/revoke") => "revokeToken",
        _ => "unknown",
    }
}

/// Middleware: counts every request by operation and status, and times it.
pub async fn track(req: Request, next: Next) -> Response {
    let op = operation(req.uri().path());
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status();
    metrics::counter!("tokensmith_http_requests_total", "operation" => op, "status" => status.as_str().to_owned())
        .increment(1);
    metrics::histogram!("tokensmith_http_request_duration_seconds", "operation" => op)
        .record(start.elapsed().as_secs_f64());
    if status.as_u16() == 429 {
        metrics::counter!("tokensmith_rate_limited_total", "operation" => op).increment(1);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_a_fixed_set_of_operations() {
        assert_eq!(operation("/v1/auth/tokens/long"), "issueLongTermToken");
        assert_eq!(operation("/v1/auth/tokens/abc/revoke"), "revokeToken");
        assert_eq!(operation("/v1/auth/tokens/abc"), "unknown");
        assert_eq!(operation("/anything/else"), "unknown");
    }
}
