//! The ceiling: the least an axum server can do for `POST /v1/auth/tokens/short`.
//!
//! It answers with a fixed JSON body of the same size as tokensmith's response, and the same
//! headers (a fixed request id in place of a fresh one), on the same stack (tokio, hyper,
//! axum), so `bench/run` can report tokensmith's rate as a fraction of what this machine can
//! serve at all.
//!
//! Usage: `ceiling ADDR BODY_BYTES`

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18090".into());
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(890);
    // A JSON object padded to `size` bytes: `{"token_id":"` and `"}` are 15 of them.
    let pad = size.saturating_sub(15).max(1);
    let body: &'static str = Box::leak(format!("{{\"token_id\":\"{}\"}}", "x".repeat(pad)).into_boxed_str());
    let app = Router::new().route(
        "/v1/auth/tokens/short",
        post(move || async move {
            (
                StatusCode::CREATED,
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                    (header::PRAGMA, HeaderValue::from_static("no-cache")),
                    (
                        header::HeaderName::from_static("x-request-id"),
                        HeaderValue::from_static("01a22931-6b22-74ed-bd3c-36af539b2322"),
                    ),
                ],
                body,
            )
                .into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("ceiling listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
