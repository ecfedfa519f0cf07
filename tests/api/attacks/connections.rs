//! Slow and hostile connections: a connection that does not complete a request header in
//! time is closed, a body gets a bounded time to arrive, and past the cap new connections wait
//! while the open ones keep being served. A few hundred slow connections do not stop a normal
//! client (BENCHMARKS.md measures its latency meanwhile).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app_with};

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://")).await.expect("the server accepts")
}

/// Reads until the server closes the connection or `patience` passes; `None` on timeout.
async fn read_until_closed(stream: &mut TcpStream, patience: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(patience, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| String::from_utf8_lossy(&out).into_owned())
}

/// Sends one complete request and reads its answer's status line.
async fn request(stream: &mut TcpStream) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("sent");
    let mut buf = [0u8; 1024];
    let n =
        tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.expect("answered").expect("read");
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_connection_that_sends_half_a_header_is_closed_within_the_header_timeout() {
    let app = spawn_app_with(|s| s.header_timeout_secs = 1).await;
    let mut half = connect(&app).await;
    half.write_all(b"POST /v1/auth/tokens/long HTTP/1.1\r\nHost: t\r\nContent-Type: appl").await.unwrap();
    let mut silent = connect(&app).await;
    let started = Instant::now();

    let half_answer = read_until_closed(&mut half, Duration::from_secs(10)).await;
    let silent_answer = read_until_closed(&mut silent, Duration::from_secs(10)).await;

    assert!(half_answer.is_some() && silent_answer.is_some(), "both are closed");
    assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());
    // A connection that keeps sending requests is not closed.
    let mut busy = connect(&app).await;
    for _ in 0..3 {
        assert!(request(&mut busy).await.contains("200"));
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
}

#[tokio::test]
async fn a_body_that_never_completes_is_answered_within_the_body_timeout() {
    let app = spawn_app_with(|s| s.body_timeout_secs = 1).await;
    let mut slow = connect(&app).await;
    slow.write_all(
        b"POST /v1/auth/tokens/long HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"grant",
    )
    .await
    .unwrap();

    let answer = read_until_closed(&mut slow, Duration::from_secs(10)).await.expect("answered and closed in time");

    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("did not arrive within 1 seconds"), "{answer}");
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_and_open_ones_are_served() {
    let app = spawn_app_with(|s| {
        s.max_connections = 2;
        s.header_timeout_secs = 30;
    })
    .await;
    let mut first = connect(&app).await;
    let mut second = connect(&app).await;
    assert!(request(&mut first).await.contains("200"));
    assert!(request(&mut second).await.contains("200"));

    let mut third = connect(&app).await;
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 256];
    let waiting = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(waiting.is_err(), "the third connection waits while two are open");
    assert!(request(&mut first).await.contains("200"), "an open connection is still served");

    drop(second);
    let n = tokio::time::timeout(Duration::from_secs(10), third.read(&mut buf)).await.expect("served").unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn hundreds_of_slow_connections_do_not_stop_a_normal_client() {
    let app = spawn_app_with(|s| s.header_timeout_secs = 30).await;
    let client = app.create_client("normal", "deploy").await;
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = connect(&app).await;
        s.write_all(b"POST /v1/auth/tokens/short HTTP/1.1\r\nHost: t\r\nAuthoriz").await.unwrap();
        slow.push(s);
    }

    for _ in 0..5 {
        let long = app.issue_long(&client).await;
        app.issue_short(&long.access_token).await;
    }
    drop(slow);
}

#[tokio::test]
async fn a_request_head_past_64_kib_is_refused() {
    let app = spawn_app_with(|_| {}).await;
    let huge = "a".repeat(100 * 1024);

    let reply = app.send_unchecked(app.http.get(app.url("/healthz")).header("X-Padding", huge)).await;

    assert_eq!(reply.status.as_u16(), 431, "{}", reply.text);
    app.get("/healthz").await.assert_status(200);
}
