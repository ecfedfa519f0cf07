//! Graceful shutdown of the real binary: on SIGTERM it stops accepting connections, finishes
//! the request in flight, and exits 0; a request that never completes does not keep it alive
//! past `--shutdown-timeout-secs`. The request "in flight" is made certain, not hoped for: it is
//! sent with `Expect: 100-continue`, and the server's `100 Continue` shows that the handler is
//! reading its body when the signal is sent.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestDatabase;
use crate::process::{PATIENCE, ServerProcess};

/// Reads from `conn` until `buf` holds a whole response head (and `body_len` more bytes when
/// the head announces them); returns the status, the head and the body.
async fn read_response(conn: &mut TcpStream) -> (u16, String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .map_or(0, |v| v.parse::<usize>().expect("a length"));
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                return (status, head, body);
            }
        }
        let n = tokio::time::timeout(PATIENCE, conn.read(&mut chunk))
            .await
            .expect("the server answers in time")
            .expect("the connection is readable");
        assert!(n > 0, "the connection closed before a whole response: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends the head of an issuance request whose body is `body_len` bytes, with
/// `Expect: 100-continue`, and waits for the `100 Continue`: from then on, the request is in
/// the handler, waiting for its body.
async fn start_request(port: u16, body_len: usize) -> TcpStream {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).await.expect("the server accepts a connection");
    let head = format!(
        "POST /v1/auth/tokens/long HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {body_len}\r\nExpect: 100-continue\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.expect("the head is sent");
    let (status, _, _) = read_response(&mut conn).await;
    assert_eq!(status, 100, "the handler reads the body");
    conn
}

/// Waits until a new connection to `port` is refused: the listener is closed. A connection
/// that the kernel had completed in the listen backlog when the listener closed is reset
/// instead of refused; that, too, means it was never accepted.
async fn wait_until_refused(port: u16) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                assert!(Instant::now() < deadline, "connections are reset, never refused, after SIGTERM");
            }
            Err(e) => panic!("connecting fails with {e}, not a refusal"),
            Ok(_) => {
                assert!(Instant::now() < deadline, "new connections are still accepted after SIGTERM");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test]
async fn sigterm_refuses_new_connections_finishes_the_request_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = TestDatabase::fresh(&dir).await;
    let mut server = ServerProcess::start(&db, &["--shutdown-timeout-secs", "60"]).await;
    let bot = db.create_client("bot", "deploy", &[]).await;
    let body = json!({"grant_type": "client_credentials", "client_id": bot.client_id,
        "client_secret": bot.client_secret})
    .to_string();
    let (first, rest) = body.split_at(body.len() / 2);

    let mut conn = start_request(server.port, body.len()).await;
    conn.write_all(first.as_bytes()).await.expect("half the body is sent");
    server.terminate();
    wait_until_refused(server.port).await;

    conn.write_all(rest.as_bytes()).await.expect("the rest of the body is sent");
    let (status, head, answer) = read_response(&mut conn).await;
    assert_eq!(status, 201, "{head}\n{answer}");
    let answer: Value = serde_json::from_str(&answer).expect("a JSON body");
    assert_eq!(answer["client_id"], bot.client_id.as_str());
    // The connection is closed after its last response.
    let mut rest = Vec::new();
    let n = tokio::time::timeout(PATIENCE, conn.read_to_end(&mut rest)).await.expect("the server closes it");
    assert_eq!(n.map(|_| rest.len()).unwrap_or(0), 0, "nothing follows the response");

    let status = server.wait_exit(PATIENCE).await;
    assert!(status.success(), "exit status {status:?}; stderr: {}", server.stderr());
    let stderr = server.stderr();
    assert!(stderr.contains("requests in flight finished"), "{stderr}");
    // The default text format: the access line of the request that finished during shutdown.
    assert!(
        stderr.lines().any(|l| l.contains("operation=\"issueLongTermToken\"") && l.contains("status=201")),
        "{stderr}"
    );

    // What it issued while stopping is stored: a restarted server accepts the token.
    let mut again = ServerProcess::start(&db, &[]).await;
    let token = answer["access_token"].as_str().expect("a token");
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client")
        .post(again.url("/v1/auth/tokens/short"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the restarted server answers");
    assert_eq!(response.status(), 201);
    assert!(again.stop().await.success());
}

#[tokio::test]
async fn a_request_that_never_finishes_does_not_keep_the_process_alive_past_the_timeout() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = TestDatabase::fresh(&dir).await;
    let mut server = ServerProcess::start(&db, &["--shutdown-timeout-secs", "1"]).await;
    // The body is announced and never sent.
    let _conn = start_request(server.port, 100).await;
    server.terminate();
    let status = server.wait_exit(PATIENCE).await;
    assert!(status.success(), "exit status {status:?}; stderr: {}", server.stderr());
    let stderr = server.stderr();
    assert!(stderr.contains("shutdown timeout reached"), "{stderr}");
}

#[tokio::test]
async fn ctrl_c_stops_an_idle_server_with_exit_0() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = TestDatabase::fresh(&dir).await;
    let mut server = ServerProcess::start(&db, &[]).await;
    // An idle keep-alive connection does not hold the shutdown up.
    let mut conn = TcpStream::connect(("127.0.0.1", server.port)).await.expect("a connection");
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.expect("a request");
    assert_eq!(read_response(&mut conn).await.0, 200);
    server.signal(libc::SIGINT);
    let status = server.wait_exit(PATIENCE).await;
    assert!(status.success(), "exit status {status:?}; stderr: {}", server.stderr());
    assert!(server.stderr().contains("requests in flight finished"), "{}", server.stderr());
}
