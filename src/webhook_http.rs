//! Posting webhook deliveries: HTTPS (HTTP only to a loopback address, checked again at every
//! attempt), a connect and a total timeout, no redirect followed (a 3xx is a failed attempt),
//! and the receiver's answer never read beyond its status, so neither its size nor its
//! content reaches memory or the log.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::federation::check_remote_url;
use crate::domain::webhook::deliver::Sender;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

pub struct HttpSender {
    client: reqwest::Client,
}

impl HttpSender {
    /// A sender whose attempts give up after `total`.
    pub fn new(total: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(total))
            .timeout(total)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tokensmith-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client for webhooks: {e}"))?;
        Ok(HttpSender { client })
    }
}

#[async_trait]
impl Sender for HttpSender {
    async fn post(&self, url: &str, headers: Vec<(&'static str, String)>, body: String) -> Result<u16, String> {
        check_remote_url("url", url).map_err(|_| "the URL is not allowed (https://, or http:// on loopback)")?;
        let mut request = self.client.post(url).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        // The response is dropped unread: its body is the receiver's business.
        let response = request.send().await.map_err(|e| kind(&e).to_owned())?;
        Ok(response.status().as_u16())
    }
}

/// What went wrong, in a few words (reqwest's own message would quote the URL, whose path or
/// query may hold the receiver's credential).
fn kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    }
}
