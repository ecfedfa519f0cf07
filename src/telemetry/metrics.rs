//! Prometheus metrics, rendered for `GET /metrics` in the text exposition format: requests by
//! operation and status, latency histograms, issuances by token kind, grant and outcome,
//! rate-limited requests and database errors (recorded by the request middleware,
//! `http::observe`, and wherever a database error is met); the domain records long-term and
//! short-term issuances, failed authentications, revocations and signing keys through the named
//! functions at the end of this file, never a metric name of its own.

use std::sync::OnceLock;

use std::time::Duration;

use axum::http::StatusCode;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::{Mechanism, TokenKind};

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

/// Describes every metric (the `# HELP` lines) and creates the series that exist from the
/// start at zero, so that a dashboard or alert sees a 0 rather than nothing.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("tokensmith_http_requests_total", "HTTP requests, by operation and status");
    describe_histogram!(
        "tokensmith_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from request to response head, by operation"
    );
    describe_counter!(
        "tokensmith_token_issuance_total",
        "Issuance requests by token kind (long, short), grant and outcome (issued, invalid_request, \
         unauthenticated, forbidden, rate_limited, unavailable, error)"
    );
    describe_counter!("tokensmith_long_tokens_issued_total", "Long-term tokens issued, by grant");
    describe_counter!("tokensmith_short_tokens_issued_total", "Short-term tokens issued");
    describe_counter!("tokensmith_auth_failures_total", "Failed authentications, by mechanism");
    describe_counter!("tokensmith_revocations_total", "Tokens revoked, by kind (long, short)");
    describe_counter!("tokensmith_rate_limited_total", "Requests answered 429, by operation");
    describe_counter!("tokensmith_database_errors_total", "Database errors, by kind (unavailable, backend)");
    describe_gauge!("tokensmith_signing_keys", "Signing keys loaded (published in the JWKS)");
    describe_counter!("tokensmith_issuer_key_fetches_total", "Fetches of a trusted issuer's keys, by issuer");
    describe_counter!(
        "tokensmith_issuer_key_fetch_failures_total",
        "Failed fetches of a trusted issuer's keys, by issuer"
    );
    describe_gauge!("tokensmith_issuer_keys", "Verification keys held for a trusted issuer, by issuer");
    describe_gauge!(
        "tokensmith_long_tokens_expiring",
        "Valid long-term tokens that end within a lead time (expiry_warning_days), by client and lead time"
    );
    describe_counter!(
        "tokensmith_webhook_attempts_total",
        "Webhook delivery attempts, by outcome (delivered, retry, failed)"
    );
    for outcome in ["delivered", "retry", "failed"] {
        metrics::counter!("tokensmith_webhook_attempts_total", "outcome" => outcome).increment(0);
    }
    for kind in ["unavailable", "backend"] {
        metrics::counter!("tokensmith_database_errors_total", "kind" => kind).increment(0);
    }
    for kind in ["long", "short"] {
        metrics::counter!("tokensmith_revocations_total", "kind" => kind).increment(0);
    }
    for op in ["issueLongTermToken", "issueShortTermToken"] {
        metrics::counter!("tokensmith_rate_limited_total", "operation" => op).increment(0);
    }
}

/// Counts a database error: on the request path where `http::error` maps it, in the
/// readiness check, and in the cleanup task.
pub fn database_error(e: &crate::store::StoreError) {
    let kind = match e {
        crate::store::StoreError::Unavailable(_) => "unavailable",
        crate::store::StoreError::Backend(_) => "backend",
    };
    metrics::counter!("tokensmith_database_errors_total", "kind" => kind).increment(1);
}

/// The text exposition of every metric (empty before the recorder is installed).
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// The outcome label of an issuance, from its status.
fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "issued",
        400 => "invalid_request",
        401 => "unauthenticated",
        403 => "forbidden",
        429 => "rate_limited",
        503 => "unavailable",
        _ => "error",
    }
}

/// Counts one answered request: by operation and status, its latency, a 429, and for the two
/// issuance operations the issuance by grant and outcome (`grant` is `none` when the request
/// named no usable grant).
pub fn record_request(op: &'static str, status: StatusCode, elapsed: Duration, grant: Option<&'static str>) {
    // Only the recorder's own handles are worth keeping: before it is installed they are no-ops.
    if !installed() {
        return RequestMetrics::new(op, status, grant).record(elapsed);
    }
    HOT.with_borrow_mut(|hot| {
        let key = (op.as_ptr() as usize, status.as_u16(), grant.map_or(0, |g| g.as_ptr() as usize));
        hot.entry(key).or_insert_with(|| RequestMetrics::new(op, status, grant)).record(elapsed);
    });
}

/// The series one answered request counts in, for one (operation, status, grant). The
/// recorder finds a series by hashing its name and labels, which costs more than the rest of
/// a short-term issuance's bookkeeping together; each worker thread keeps the handles it has
/// used instead (`HOT`). The labels are bounded (operations and grants are fixed sets,
/// statuses are the service's own), so that map stays small.
struct RequestMetrics {
    requests: metrics::Counter,
    duration: metrics::Histogram,
    rate_limited: Option<metrics::Counter>,
    issuance: Option<metrics::Counter>,
}

impl RequestMetrics {
    fn new(op: &'static str, status: StatusCode, grant: Option<&'static str>) -> Self {
        let kind = match op {
            "issueLongTermToken" => Some("long"),
            "issueShortTermToken" => Some("short"),
            _ => None,
        };
        RequestMetrics {
            requests: metrics::counter!(
                "tokensmith_http_requests_total",
                "operation" => op,
                "status" => status.as_str().to_owned()
            ),
            duration: metrics::histogram!("tokensmith_http_request_duration_seconds", "operation" => op),
            rate_limited: (status == StatusCode::TOO_MANY_REQUESTS)
                .then(|| metrics::counter!("tokensmith_rate_limited_total", "operation" => op)),
            issuance: kind.map(|kind| {
                metrics::counter!(
                    "tokensmith_token_issuance_total",
                    "token" => kind,
                    "grant" => grant.unwrap_or("none"),
                    "outcome" => outcome(status)
                )
            }),
        }
    }

    fn record(&self, elapsed: Duration) {
        self.requests.increment(1);
        self.duration.record(elapsed.as_secs_f64());
        for c in self.rate_limited.iter().chain(&self.issuance) {
            c.increment(1);
        }
    }
}

thread_local! {
    static HOT: std::cell::RefCell<std::collections::HashMap<(usize, u16, usize), RequestMetrics>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Drains the recorder's histogram samples into their buckets. `install_recorder` leaves this
/// to the caller: without it, every latency sample recorded between two scrapes is kept in
/// memory (hundreds of kilobytes a second under load, without bound when nobody scrapes).
pub fn run_upkeep() {
    if let Some(h) = handle() {
        h.run_upkeep();
    }
}

// ----- what the domain records ---------------------------------------------------------------

/// Whether the recorder is installed: handles taken before it are no-ops, not worth keeping.
fn installed() -> bool {
    matches!(HANDLE.get(), Some(Some(_)))
}

/// A long-term token was issued with `grant`.
pub fn long_token_issued(grant: Mechanism) {
    metrics::counter!("tokensmith_long_tokens_issued_total", "grant" => grant.as_str()).increment(1);
}

/// A short-term token was issued: on the hot path, so the counter's handle is kept (finding a
/// series by name costs more than counting in it).
pub fn short_token_issued() {
    static COUNTER: OnceLock<metrics::Counter> = OnceLock::new();
    if installed() {
        COUNTER.get_or_init(|| metrics::counter!("tokensmith_short_tokens_issued_total")).increment(1);
    }
}

/// A token of `kind` was revoked.
pub fn token_revoked(kind: TokenKind) {
    let kind = match kind {
        TokenKind::Long => "long",
        TokenKind::Short => "short",
    };
    metrics::counter!("tokensmith_revocations_total", "kind" => kind).increment(1);
}

/// An authentication with `mechanism` failed.
pub fn auth_failed(mechanism: Mechanism) {
    metrics::counter!("tokensmith_auth_failures_total", "mechanism" => mechanism.as_str()).increment(1);
}

/// The signing keys this instance publishes and verifies with.
pub fn signing_keys(published: usize) {
    metrics::gauge!("tokensmith_signing_keys").set(published as f64);
}

/// A trusted issuer's keys are being fetched. Issuer names are the operator's, so the
/// series are bounded by the issuers configured.
pub fn issuer_keys_fetched(issuer: &str) {
    metrics::counter!("tokensmith_issuer_key_fetches_total", "issuer" => issuer.to_owned()).increment(1);
}

/// A fetch of a trusted issuer's keys failed (the keys held stay in use).
pub fn issuer_keys_fetch_failed(issuer: &str) {
    metrics::counter!("tokensmith_issuer_key_fetch_failures_total", "issuer" => issuer.to_owned()).increment(1);
}

/// The verification keys now held for a trusted issuer.
pub fn issuer_keys_held(issuer: &str, keys: usize) {
    metrics::gauge!("tokensmith_issuer_keys", "issuer" => issuer.to_owned()).set(keys as f64);
}

/// How many of a client's valid long-term tokens end within `within_days`. Series are bounded
/// by the clients and the configured lead times.
pub fn long_tokens_expiring(client_id: &str, within_days: i64, count: usize) {
    let labels = [("client_id", client_id.to_owned()), ("within_days", within_days.to_string())];
    metrics::gauge!("tokensmith_long_tokens_expiring", &labels).set(count as f64);
}

/// A webhook delivery attempt ended: `delivered`, `retry` (to be tried again) or `failed`
/// (the retry schedule is spent).
pub fn webhook_attempt(outcome: &'static str) {
    metrics::counter!("tokensmith_webhook_attempts_total", "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuance_outcomes_are_a_fixed_set() {
        assert_eq!(outcome(StatusCode::CREATED), "issued");
        assert_eq!(outcome(StatusCode::UNAUTHORIZED), "unauthenticated");
        assert_eq!(outcome(StatusCode::TOO_MANY_REQUESTS), "rate_limited");
        assert_eq!(outcome(StatusCode::INTERNAL_SERVER_ERROR), "error");
    }
}
