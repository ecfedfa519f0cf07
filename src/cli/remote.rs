//! The admin API as the other way of the admin commands: with `--server URL` a command sends
//! its request there with an admin token (`Authorization: Bearer`) and never opens a
//! database. Timeouts bound every request, no redirect is followed, the answer's size is
//! bounded, and a refusal becomes one line that says what to do. The token is never printed.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::output::clean;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read (a page of the audit trail, a thousand deliveries).
const MAX_ANSWER_BYTES: usize = 32 << 20;
const MAX_TOKEN_FILE_BYTES: u64 = 64 << 10;

/// Where the admin token comes from when no `--token-file` is given.
pub const TOKEN_VAR: &str = "TOKENSMITH_ADMIN_TOKEN";

/// How to get an admin token, for the messages that need one.
const GET_ONE: &str = "get one with POST <admin URL>/admin/v1/session, or from the public API: \
POST /v1/auth/tokens/long, then POST /v1/auth/tokens/short with {\"audience\": \"<admin URL>\", \
\"scopes\": [\"admin:read\", \"admin:write\"]}";

/// An answer of the admin API other than a success, as one line that says what to do.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refused {}

/// The status of a refusal from the admin API, if `e` is one.
pub fn refused_status(e: &anyhow::Error) -> Option<u16> {
    e.downcast_ref::<Refused>().map(|r| r.status)
}

/// The admin API of one server, and the token to call it with.
pub struct Remote {
    client: reqwest::Client,
    base: url::Url,
    token: SecretString,
}

impl Remote {
    /// Checks `server` and reads the token (from `token_file`, else `TOKENSMITH_ADMIN_TOKEN`).
    pub fn new(server: &str, token_file: Option<&Path>) -> anyhow::Result<Remote> {
        let base = server_url(server)?;
        let token = read_token(token_file)?;
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tokensmith/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client for --server: {e}"))?;
        Ok(Remote { client, base, token })
    }

    /// The server's URL, for messages.
    pub fn name(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// `GET /admin/v1/<path>?<query>`.
    pub async fn get<T: DeserializeOwned>(&self, path: &[&str], query: &[(&str, String)]) -> anyhow::Result<T> {
        self.call(Method::GET, path, query, None).await
    }

    /// A change: `method /admin/v1/<path>` with a JSON body.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<T> {
        self.call(method, path, &[], body).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<T> {
        let url = self.url(path, query)?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token.expose_secret()))
            .map_err(|_| anyhow::anyhow!("the admin token holds characters no token has ({GET_ONE})"))?;
        auth.set_sensitive(true);
        let mut request =
            self.client.request(method.clone(), url).header(AUTHORIZATION, auth).header(ACCEPT, "application/json");
        if let Some(b) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(serde_json::to_vec(&b)?);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(clean);
        let answer = self.read(response).await?;
        if status.is_success() {
            let answer = if answer.is_empty() { b"null".to_vec() } else { answer };
            return serde_json::from_slice(&answer).map_err(|e| {
                anyhow::anyhow!(
                    "the answer of {} is not what this tokensmith expects ({e}); is --server the admin URL \
                     (--admin-listen) of a tokensmith of the same version?",
                    self.name()
                )
            });
        }
        if status.is_redirection() {
            anyhow::bail!(
                "{} answered with a redirect (status {}{}); no redirect is followed: pass the admin URL itself \
                 as --server",
                self.name(),
                status.as_u16(),
                location.map(|l| format!(" to {l}")).unwrap_or_default()
            );
        }
        Err(anyhow::Error::new(self.refused(&method, status, &answer)))
    }

    fn url(&self, path: &[&str], query: &[(&str, String)]) -> anyhow::Result<url::Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("--server {} cannot hold a path", self.name()))?
            .pop_if_empty()
            .extend(["admin", "v1"])
            .extend(path);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// The answer's body, at most [`MAX_ANSWER_BYTES`].
    async fn read(&self, mut response: reqwest::Response) -> anyhow::Result<Vec<u8>> {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.unreachable(&e))? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                anyhow::bail!("the answer of {} is larger than {MAX_ANSWER_BYTES} bytes", self.name());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn unreachable(&self, e: &reqwest::Error) -> anyhow::Error {
        let server = self.name();
        if e.is_timeout() {
            return anyhow::anyhow!(
                "{server} did not answer within {} s; is it the admin URL?",
                TOTAL_TIMEOUT.as_secs()
            );
        }
        let refused = std::iter::successors(std::error::Error::source(e), |s| s.source())
            .filter_map(|s| s.downcast_ref::<std::io::Error>())
            .any(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
        if refused {
            return anyhow::anyhow!(
                "cannot connect to {server}: connection refused (is tokensmith serve running there with \
                 --admin-listen on that address?)"
            );
        }
        let what = if e.is_connect() { "cannot connect" } else { "the request failed" };
        anyhow::anyhow!("{what} to {server} (check the URL, the network and, for https, the certificate)")
    }

    fn refused(&self, method: &Method, status: StatusCode, answer: &[u8]) -> Refused {
        let error: serde_json::Value = serde_json::from_slice(answer).unwrap_or_default();
        let described = error["error_description"].as_str().map(clean).unwrap_or_default();
        let server = self.name();
        let message = match status.as_u16() {
            401 => {
                format!("the admin token is missing, expired or not for this server's admin URL ({server}) ({GET_ONE})")
            }
            403 => {
                let scope = if method == Method::GET { "admin:read" } else { "admin:write" };
                format!(
                    "the admin token does not hold {scope}, which this command needs (get one whose scopes include {scope})"
                )
            }
            404 if described.is_empty() => format!("{server} has no such admin API path; is it the admin URL?"),
            404 => format!("{described} on {server}"),
            429 => format!("{server} refused too many attempts: {described} (try again later)"),
            400..=499 => described,
            s => format!("{server} failed with status {s} {described} (see the server's log)"),
        };
        Refused { status: status.as_u16(), message }
    }
}

/// The admin URL: http(s), no credentials, query or fragment; plain http only to a loopback
/// address, so the token does not cross a network in the clear.
fn server_url(text: &str) -> anyhow::Result<url::Url> {
    let hint = "give the admin URL, e.g. http://127.0.0.1:8081 (serve's --admin-listen) or https://admin.example";
    let url = url::Url::parse(text.trim()).map_err(|e| anyhow::anyhow!("--server {:?}: {e} ({hint})", clean(text)))?;
    let bad = |why: &str| anyhow::anyhow!("--server {:?}: {why} ({hint})", clean(text));
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("not an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not echoed: the refused part is a credential.
        return Err(anyhow::anyhow!(
            "--server: the URL holds credentials; give them nowhere but the admin token ({hint})"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("the URL holds a query or a fragment"));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        return Err(bad(
            "http:// is allowed only to a loopback address (the admin token would travel in clear); use https://",
        ));
    }
    Ok(url)
}

/// The admin token: the trimmed content of `file`, or `TOKENSMITH_ADMIN_TOKEN`.
fn read_token(file: Option<&Path>) -> anyhow::Result<SecretString> {
    let token = match file {
        Some(path) => crate::files::read_small_text(path, MAX_TOKEN_FILE_BYTES)
            .map_err(|e| anyhow::anyhow!("cannot read --token-file {}: {e}", path.display()))?
            .trim()
            .to_owned(),
        None => std::env::var(TOKEN_VAR).unwrap_or_default().trim().to_owned(),
    };
    if token.is_empty() {
        let from = file.map_or_else(|| format!("{TOKEN_VAR} is not set"), |p| format!("{} is empty", p.display()));
        anyhow::bail!("no admin token for --server: {from}; set {TOKEN_VAR} or pass --token-file FILE ({GET_ONE})");
    }
    Ok(SecretString::from(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_http_on_loopback_or_https() {
        for good in ["http://127.0.0.1:8081", "http://localhost:8081/", "http://[::1]:1", "https://admin.example"] {
            assert!(server_url(good).is_ok(), "{good}");
        }
        for bad in ["127.0.0.1:8081", "ftp://x", "http://admin.example", "https://u:p@x", "https://x/?a=b", ""] {
            assert!(server_url(bad).is_err(), "{bad}");
        }
    }
}
