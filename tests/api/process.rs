//! The real `tokensmith serve` binary as a child process, for what only a process shows: its
//! flags, its log output on stderr, TLS from files, and what it does on SIGTERM.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;

use crate::helpers::TestDatabase;

/// How long a test waits for the process to start or stop before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT` or `https://…`, from the line the server prints when it listens.
    pub address: String,
    pub port: u16,
    stderr: Arc<Mutex<Vec<u8>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl ServerProcess {
    /// Runs `tokensmith serve --listen 127.0.0.1:0 --database <db> ARGS` and waits until it
    /// says where it listens. `RUST_LOG` is removed, so the default filter (info) applies.
    pub async fn start(db: &TestDatabase, args: &[&str]) -> ServerProcess {
        let mut child = db
            .command()
            .args(["serve", "--listen", "127.0.0.1:0", "--database", &db.url])
            .args(args)
            .env_remove("TOKENSMITH_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err_pipe = child.stderr.take().expect("stderr is piped");
        let sink = stderr.clone();
        let err_reader = tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let mut out = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut first = String::new();
        tokio::time::timeout(PATIENCE, out.read_line(&mut first))
            .await
            .expect("the server says where it listens in time")
            .expect("stdout is readable");
        let address = first
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| {
                let err = String::from_utf8_lossy(&stderr.lock().unwrap()).into_owned();
                panic!("the server prints `listening on URL`, got {first:?}; stderr: {err}")
            })
            .to_owned();
        let port = address.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port in the address");
        let stdout = Arc::new(Mutex::new(first.into_bytes()));
        let sink = stdout.clone();
        let out_reader = tokio::spawn(async move {
            let mut rest = Vec::new();
            let _ = out.read_to_end(&mut rest).await;
            sink.lock().unwrap().extend_from_slice(&rest);
        });
        ServerProcess { child, address, port, stderr, stdout, readers: vec![err_reader, out_reader] }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends `signal` (`libc::SIGTERM`, `libc::SIGINT`).
    pub fn signal(&self, signal: libc::c_int) {
        let pid = self.child.id().expect("the process is running") as libc::pid_t;
        // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "the signal is delivered");
    }

    /// Waits (at most `patience`) for the process to exit, then for its output to be read.
    pub async fn wait_exit(&mut self, patience: Duration) -> ExitStatus {
        let status = tokio::time::timeout(patience, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the server exits within {patience:?}; stderr: {}", self.stderr()))
            .expect("the exit status is readable");
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(PATIENCE, r).await;
        }
        status
    }

    /// SIGTERM, then the exit status (which must come within [`PATIENCE`]).
    pub async fn stop(&mut self) -> ExitStatus {
        self.terminate();
        self.wait_exit(PATIENCE).await
    }

    /// Everything the process wrote on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Everything the process wrote on stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }
}
