//! The web console: three files built into the binary (no build step, no other host), served
//! under the admin listener's strict Content-Security-Policy.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

fn file(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response()
}

pub async fn index() -> Response {
    file(INDEX, "text/html; charset=utf-8")
}

pub async fn script() -> Response {
    file(SCRIPT, "text/javascript; charset=utf-8")
}

pub async fn style() -> Response {
    file(STYLE, "text/css; charset=utf-8")
}
