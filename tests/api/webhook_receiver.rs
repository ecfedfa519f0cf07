//! A webhook receiver on loopback, for the webhook tests: it records every request (its
//! `webhook-id`, `webhook-timestamp`, `webhook-signature`, content type and body, and what it
//! answered), verifies signatures itself (Standard Webhooks: HMAC-SHA256 over
//! `{id}.{timestamp}.{body}` keyed with the bytes of the `whsec_` secret), and answers as told:
//! accept, a status, a redirect, hang, or fail each message's first attempts. Every answer's
//! body holds a marker that must never reach the server's log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200 (with a body holding the marker).
    Accept,
    /// This status, always.
    Status(u16),
    /// 302 to this location, always.
    Redirect(String),
    /// Never answers (within any webhook timeout).
    Hang,
    /// This status to the first `n` attempts of each message, then 200.
    FailFirst(usize, u16),
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub content_type: String,
    pub path: String,
    /// The body exactly as received (what the signature covers).
    pub raw: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// What the receiver answered; `None` while it hangs.
    pub answered: Option<u16>,
}

impl Received {
    /// The message's `type`.
    pub fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn accepted(&self) -> bool {
        self.answered.is_some_and(|s| (200..300).contains(&s))
    }
}

struct Inner {
    behaviour: Behaviour,
    received: Vec<Received>,
    /// Attempts seen per message id (for `FailFirst`).
    seen: BTreeMap<String, usize>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    marker: String,
}

pub struct Receiver {
    shared: Shared,
    port: u16,
    /// The receiver's URL (`http://127.0.0.1:PORT/hook`).
    pub url: String,
    /// The raw key of the secret `webhook add` printed for this receiver.
    secret: Mutex<Option<Vec<u8>>>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Receiver {
    /// A receiver listening on a free loopback port.
    pub async fn start(behaviour: Behaviour) -> Receiver {
        let receiver = Receiver::reserve(behaviour);
        receiver.listen().await;
        receiver
    }

    /// A receiver with a loopback port of its own where nothing listens yet (connections are
    /// refused) until [`Receiver::listen`].
    pub fn reserve(behaviour: Behaviour) -> Receiver {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = probe.local_addr().expect("a local address").port();
        drop(probe);
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner { behaviour, received: Vec::new(), seen: BTreeMap::new() })),
            marker: format!("RECEIVER-BODY-MARKER-{}", uuid::Uuid::now_v7().simple()),
        };
        Receiver {
            shared,
            port,
            url: format!("http://127.0.0.1:{port}/hook"),
            secret: Mutex::new(None),
            server: Mutex::new(None),
        }
    }

    /// Starts listening on the receiver's port.
    pub async fn listen(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap_or_else(|e| panic!("the receiver listens on port {}: {e}", self.port));
        let app = axum::Router::new().fallback(handle).with_state(self.shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *self.server.lock().unwrap() = Some(server);
    }

    /// The string every answer's body holds.
    pub fn marker(&self) -> &str {
        &self.shared.marker
    }

    /// Keeps the receiver's key, from the `whsec_<base64>` secret `webhook add` printed.
    pub fn set_secret(&self, whsec: &str) {
        let encoded = whsec.strip_prefix("whsec_").unwrap_or_else(|| panic!("a secret starts with whsec_: {whsec}"));
        let key = STANDARD.decode(encoded).unwrap_or_else(|e| panic!("the secret is base64 after whsec_ ({e})"));
        assert_eq!(key.len(), 32, "the secret is 32 bytes");
        *self.secret.lock().unwrap() = Some(key);
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.shared.inner.lock().unwrap().behaviour = behaviour;
    }

    /// Every request so far, in order of arrival.
    pub fn received(&self) -> Vec<Received> {
        self.shared.inner.lock().unwrap().received.clone()
    }

    /// Requests per message id.
    pub fn count_by_id(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in self.received() {
            *counts.entry(r.id).or_insert(0) += 1;
        }
        counts
    }

    /// The message ids that were answered with a 2xx.
    pub fn accepted_ids(&self) -> BTreeSet<String> {
        self.received().into_iter().filter(Received::accepted).map(|r| r.id).collect()
    }

    /// Whether `r` carries a valid Standard Webhooks signature with this receiver's secret.
    pub fn signature_ok(&self, r: &Received) -> bool {
        let key = self.secret.lock().unwrap().clone().expect("the receiver's secret is set");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("HMAC takes any key");
        mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.raw).as_bytes());
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        // The header may hold several space-separated signatures (key rotation): one must match.
        r.signature.split(' ').any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
    }

    /// Asserts what every request must carry: a `msg_` id, a numeric timestamp, a valid
    /// signature, JSON with its content type, and the documented body shape.
    #[track_caller]
    pub fn assert_all_well_formed(&self) {
        for r in self.received() {
            assert!(r.id.starts_with("msg_"), "webhook-id is msg_…: {r:?}");
            assert!(r.timestamp.parse::<i64>().is_ok(), "webhook-timestamp is Unix seconds: {r:?}");
            assert!(self.signature_ok(&r), "the signature verifies with the receiver's secret: {r:?}");
            assert!(r.content_type.starts_with("application/json"), "content-type: {r:?}");
            assert!(r.body["type"].is_string(), "a type: {r:?}");
            assert!(r.body["data"].is_object(), "a data object: {r:?}");
            crate::helpers::rfc3339(&r.body["timestamp"]);
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(server) = self.server.lock().unwrap().take() {
            server.abort();
        }
    }
}

async fn handle(State(shared): State<Shared>, uri: axum::http::Uri, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let raw = String::from_utf8_lossy(&body).into_owned();
    let id = header("webhook-id");
    let answer = {
        let mut inner = shared.inner.lock().unwrap();
        let seen = {
            let n = inner.seen.entry(id.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let answer = match &inner.behaviour {
            Behaviour::Accept => Some((200, None)),
            Behaviour::Status(s) => Some((*s, None)),
            Behaviour::Redirect(to) => Some((302, Some(to.clone()))),
            Behaviour::Hang => None,
            Behaviour::FailFirst(n, s) => Some(if seen <= *n { (*s, None) } else { (200, None) }),
        };
        inner.received.push(Received {
            id,
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            content_type: header("content-type"),
            path: uri.path().to_owned(),
            body: serde_json::from_str(&raw).unwrap_or(Value::Null),
            raw,
            answered: answer.as_ref().map(|(s, _)| *s),
        });
        answer
    };
    let Some((status, location)) = answer else {
        tokio::time::sleep(Duration::from_secs(300)).await;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let status = StatusCode::from_u16(status).expect("a valid status");
    let text = format!("{} (this body must never be read by the sender)", shared.marker);
    let mut response = (status, text).into_response();
    if let Some(location) = location {
        response.headers_mut().insert("location", location.parse().expect("a header value"));
    }
    response
}

/// A receiver that answers 200 with a body that never ends (chunk after chunk of its marker),
/// on plain TCP: a sender that read answers would never finish reading this one.
pub struct EndlessReceiver {
    pub url: String,
    requests: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl EndlessReceiver {
    pub async fn start(marker: &str) -> EndlessReceiver {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let chunk = marker.repeat(4096 / marker.len().max(1) + 1);
        let server = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let seen = seen.clone();
                let chunk = chunk.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    seen.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                    let start = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
                    if stream.write_all(start.as_bytes()).await.is_err() {
                        return;
                    }
                    let piece = format!("{:x}\r\n{chunk}\r\n", chunk.len());
                    // Until the sender goes away.
                    while stream.write_all(piece.as_bytes()).await.is_ok() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                });
            }
        });
        EndlessReceiver { url, requests, server }
    }

    /// The request heads received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for EndlessReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}
