//! Assembling and running the server: `Application::build` binds the listener (port 0 in
//! tests), reads the TLS files, opens the store and the keys; `run_until_stopped` serves
//! (HTTP/1.1 and HTTP/2, over TLS when configured) until `shutdown`, then stops accepting and
//! gives the requests in flight `shutdown_timeout_secs` to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::crypto::Keyring;
use crate::domain::TokenService;
use crate::domain::webhook::deliver::{DeliveryConfig, Dispatcher};
use crate::http::{ApiContext, router};
use crate::store::{self, Store};

pub struct Application {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    /// The admin API and console's listener, when `admin_listen` is set.
    admin: Option<(tokio::net::TcpListener, SocketAddr)>,
    service: Arc<TokenService>,
    settings: Settings,
    tls: Option<TlsAcceptor>,
    /// Whether the database held any client when the server started (`serve` says how to
    /// create the first one otherwise).
    has_clients: bool,
    /// Delivers the outbox's webhook messages.
    webhooks: Arc<Dispatcher>,
}

/// The largest request head (request line and headers) a connection may send.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How often each instance re-reads the failed-authentication locks decided elsewhere: the
/// staleness bound of a lock set by another instance or lifted by an operator.
const LIMITS_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// How often the last uses of tokens and clients are written (one batch each time).
const LAST_USE_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// How often the metrics recorder drains latency samples into their histogram buckets.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// How often the outbox is looked at for webhook deliveries due: the added latency of a
/// delivery at most, and one indexed read per tick when nothing is due.
const WEBHOOK_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Open connections at most on the admin listener (operators and their automation).
const ADMIN_MAX_CONNECTIONS: usize = 64;
/// Webhook delivery attempts in flight at most, per receiver and process.
const WEBHOOK_SLOTS_PER_RECEIVER: usize = 4;

/// Where the master key lives for `database` when no key file is configured.
pub fn default_key_file(database: &str) -> Option<PathBuf> {
    store::sqlite_path(database).map(|p| {
        let mut s = p.into_os_string();
        s.push(".key");
        PathBuf::from(s)
    })
}

/// Opens the store and the keyring that belongs to it (shared by `serve` and the CLI).
///
/// With SQLite the master key file is created beside the database on first use. A server
/// database is shared by several instances that must all hold the same master key, so for it
/// a key is never created implicitly: it comes from `TOKENSMITH_MASTER_KEY` or an existing
/// `--key-file`.
pub async fn open(settings: &Settings) -> anyhow::Result<(Arc<dyn Store>, Keyring)> {
    store::check_url(&settings.database)?;
    let master = settings.master_key.as_ref().map(|k| k.expose_secret().to_owned());
    let embedded = store::sqlite_path(&settings.database).is_some();
    let key_file = settings.key_file.clone().or_else(|| default_key_file(&settings.database));
    let database_exists = store::sqlite_path(&settings.database).is_some_and(|p| p.exists());
    let keyring = match (&master, &key_file) {
        (Some(m), _) => Keyring::load_or_create(std::path::Path::new(""), Some(m))?,
        // A new key beside an existing database could open none of its secrets: say so before
        // anything is written.
        (None, Some(path)) if database_exists && !path.exists() => anyhow::bail!(
            "no master key file at {} for database {} (restore it beside the database, or pass --key-file FILE \
             or set TOKENSMITH_MASTER_KEY)",
            path.display(),
            store::redact_url(&settings.database)
        ),
        (None, Some(path)) if embedded || path.exists() => Keyring::load_or_create(path, None)?,
        (None, Some(path)) => anyhow::bail!(
            "key file {} does not exist; every instance sharing database {} must use the same master key: \
             create it once (head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE) and give it to each",
            path.display(),
            store::redact_url(&settings.database)
        ),
        (None, None) => anyhow::bail!(
            "no master key for database {}: set TOKENSMITH_MASTER_KEY or --key-file; every instance \
             sharing this database must use the same master key",
            store::redact_url(&settings.database)
        ),
    };
    let store = store::connect(&settings.database).await?;
    check_master_key(store.as_ref(), &keyring).await?;
    Ok((store, keyring))
}

/// Refuses an admin API URL that is also the audience of public-API tokens: tokens minted for
/// the one would then be credentials for the other.
fn check_admin_audience(config: &crate::domain::ServiceConfig) -> anyhow::Result<()> {
    let bare = |s: &str| s.trim_end_matches('/').to_owned();
    if let Some(admin) = &config.admin_audience
        && (bare(admin) == bare(&config.issuer) || bare(admin) == bare(&config.default_audience))
    {
        anyhow::bail!(
            "admin_url {admin} is also the issuer or the default audience: give the admin API a URL of its own \
             (e.g. its own port or host), so that tokens for the public API are never admin tokens"
        );
    }
    Ok(())
}

/// Refuses a master key that cannot open what the database holds (a wrong key file would
/// otherwise register clients whose secrets no server could check).
async fn check_master_key(store: &dyn Store, keyring: &Keyring) -> anyhow::Result<()> {
    if let Some(k) = store.list_signing_keys().await?.first()
        && keyring.open(k.kid.as_bytes(), &k.key_sealed).is_none()
    {
        anyhow::bail!("the master key does not match this database (it cannot decrypt the signing keys)");
    }
    Ok(())
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        settings.validate().map_err(anyhow::Error::msg)?;
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            _ => None,
        };
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let local_addr = listener.local_addr()?;
        let admin = match settings.admin_listen {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (admin_listen)"))?;
                let local = l.local_addr()?;
                Some((l, local))
            }
            None => None,
        };
        let (store, keyring) = open(&settings).await?;
        let has_clients = !store.list_clients().await?.is_empty();
        let admin_url = admin.as_ref().map(|(_, a)| settings.admin_url_for(*a));
        let config = settings.service_config(settings.issuer_for(local_addr), admin_url);
        check_admin_audience(&config)?;
        let fetcher = Arc::new(crate::remote::HttpFetcher::new()?);
        let webhooks = dispatcher(&settings, &store, &keyring, &clock)?;
        let service = Arc::new(TokenService::new(store, keyring, clock, config).await?.with_key_fetcher(fetcher));
        Ok(Application { listener, local_addr, admin, service, settings, tls, has_clients, webhooks })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The admin listener's address, when there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(_, a)| *a)
    }

    /// The admin API's URL (the audience of admin tokens), when there is an admin listener.
    pub fn admin_url(&self) -> Option<&str> {
        self.service.config().admin_audience.as_deref()
    }

    /// Whether the server speaks HTTPS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn issuer(&self) -> &str {
        &self.service.config().issuer
    }

    pub fn has_clients(&self) -> bool {
        self.has_clients
    }

    pub fn service(&self) -> &Arc<TokenService> {
        &self.service
    }

    /// Serves until `shutdown` completes; then closes the listener (new connections are
    /// refused), lets the requests in flight finish, closing each connection after its
    /// response, and returns once all are done or `shutdown_timeout_secs` have passed,
    /// abandoning what is still open then.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let ctx = ApiContext {
            service: self.service.clone(),
            body_limit: self.settings.body_limit_bytes,
            body_timeout: Duration::from_secs(self.settings.body_timeout_secs),
            trusted_proxies: self.settings.trusted_proxies.clone().into(),
        };
        // Install the metrics recorder before the first request is counted.
        crate::telemetry::metrics::handle();
        crate::telemetry::metrics::describe();
        self.service.record_key_gauge();
        let background = self.spawn_background();
        let graceful = GracefulShutdown::new();
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let public = Listening { listener: &self.listener, max_connections: self.settings.max_connections };
        match &self.admin {
            Some((listener, addr)) => {
                let admin = Listening { listener, max_connections: ADMIN_MAX_CONNECTIONS };
                let hosts = crate::http::admin::AdminHosts::new(self.admin_url().unwrap_or_default(), addr.port());
                let admin_app = crate::http::admin::router(ctx.clone(), hosts);
                tokio::join!(
                    self.accept_until(stop.clone(), public, router(ctx), &graceful),
                    self.accept_until(stop, admin, admin_app, &graceful)
                );
            }
            None => self.accept_until(stop, public, router(ctx), &graceful).await,
        }
        let timeout = Duration::from_secs(self.settings.shutdown_timeout_secs);
        // New connections are refused from here on.
        drop(self.listener);
        drop(self.admin);
        tracing::info!(
            open_connections = graceful.count(),
            timeout_secs = timeout.as_secs(),
            "stopped accepting connections; finishing requests in flight"
        );
        match tokio::time::timeout(timeout, graceful.shutdown()).await {
            Ok(()) => tracing::info!("requests in flight finished"),
            Err(_) => tracing::warn!(
                timeout_secs = timeout.as_secs(),
                "shutdown timeout reached; abandoning the connections still open"
            ),
        }
        for task in background {
            task.abort();
        }
        // What the requests just served queued.
        if let Err(e) = self.service.flush_last_use().await {
            tracing::warn!(error = %e, "writing the last uses of tokens failed at shutdown");
        }
        Ok(())
    }

    /// The tasks that run beside the server: cleanup, the limits' refresh, the last uses'
    /// writes, metrics upkeep.
    fn spawn_background(&self) -> [tokio::task::JoinHandle<()>; 5] {
        let cleanup = tokio::spawn(cleanup_loop(self.service.clone(), self.settings.cleanup_interval_secs));
        let limits = tokio::spawn(limits_loop(self.service.clone()));
        let last_use = tokio::spawn(last_use_loop(self.service.clone()));
        let upkeep = tokio::spawn(async {
            let mut tick = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
            loop {
                tick.tick().await;
                crate::telemetry::metrics::run_upkeep();
            }
        });
        let webhooks = tokio::spawn(webhook_loop(self.webhooks.clone()));
        [cleanup, limits, last_use, upkeep, webhooks]
    }

    /// Accepts and serves connections on one listener, at most `max_connections` at a time,
    /// until `stop` turns true.
    async fn accept_until(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
        on: Listening<'_>,
        app: axum::Router,
        graceful: &GracefulShutdown,
    ) {
        let builder = http_builder();
        let header_timeout = Duration::from_secs(self.settings.header_timeout_secs);
        // One permit per open connection: past the cap, the next connection waits in the
        // listen backlog until one closes, while the open ones keep being served.
        let permits = Arc::new(tokio::sync::Semaphore::new(on.max_connections));
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = on.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let service = app.clone().map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
            let connection = Connection { tls: self.tls.clone(), header_timeout, watcher: graceful.watcher() };
            let served = serve_connection(stream, connection, builder.clone(), service);
            tokio::spawn(async move {
                served.await;
                drop(permit);
            });
        }
    }
}

/// A listener and how many connections it may hold open.
struct Listening<'a> {
    listener: &'a tokio::net::TcpListener,
    max_connections: usize,
}

/// HTTP/1.1 and HTTP/2 on one connection. A request head past 64 KiB is answered 431 and its
/// connection closed: nothing here needs more, and a few hundred connections holding
/// megabytes of headers would add up.
fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(MAX_HEADER_BYTES);
    builder.http2().max_header_list_size(MAX_HEADER_BYTES as u32);
    builder
}

/// What serving one connection needs besides its stream.
struct Connection {
    tls: Option<TlsAcceptor>,
    /// How long the connection may go without a complete request header.
    header_timeout: Duration,
    watcher: hyper_util::server::graceful::Watcher,
}

/// Serves one connection (after its TLS handshake, if any) until it closes, until it has
/// sent no complete request header for `header_timeout` (slow or idle clients), or, once
/// shutdown starts, until its request in flight is answered.
async fn serve_connection<S>(
    stream: TcpStream,
    connection: Connection,
    builder: auto::Builder<TokioExecutor>,
    service: S,
) where
    S: tower::Service<hyper::Request<hyper::body::Incoming>, Response = axum::response::Response>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let Connection { tls, header_timeout, watcher } = connection;
    let activity = Arc::new(Activity::new());
    let service = TowerToHyperService::new(tracked(Arc::clone(&activity), service));
    let served = async {
        match tls {
            None => {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let _ = watcher.watch(conn.into_owned()).await;
            }
            Some(acceptor) => {
                let stream = match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake timed out");
                        return;
                    }
                };
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let _ = watcher.watch(conn.into_owned()).await;
            }
        }
    };
    tokio::select! {
        () = served => {}
        () = activity.idle_for(header_timeout) => tracing::debug!("closed a connection without a complete request header in time"),
    }
}

/// Whether a connection has a request in flight, and since when it has had none (the clock
/// of the header timeout: it runs from the connection's opening and from each response).
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    /// Milliseconds from `opened` to the end of the last request.
    idle_since_ms: std::sync::atomic::AtomicU64,
    opened: tokio::time::Instant,
}

impl Activity {
    fn new() -> Self {
        Activity {
            in_flight: Default::default(),
            idle_since_ms: Default::default(),
            opened: tokio::time::Instant::now(),
        }
    }

    /// Completes once the connection has had no request in flight for `limit`.
    async fn idle_for(&self, limit: Duration) {
        use std::sync::atomic::Ordering;
        loop {
            let since = self.opened + Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
            if self.in_flight.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(limit).await;
            } else if since + limit <= tokio::time::Instant::now() {
                return;
            } else {
                tokio::time::sleep_until(since + limit).await;
            }
        }
    }
}

/// `service`, counting its requests in flight on `activity` (a request starts once its
/// header is complete and ends when its response is ready).
fn tracked<S, R>(
    activity: Arc<Activity>,
    service: S,
) -> tower::util::MapFuture<S, impl FnMut(S::Future) -> TrackedFuture<S::Future> + Clone>
where
    S: tower::Service<R>,
{
    tower::util::MapFuture::new(service, move |future| TrackedFuture {
        future,
        _guard: InFlight::start(Arc::clone(&activity)),
    })
}

pin_project_lite::pin_project! {
    /// A request's future, with its place among the connection's requests in flight.
    struct TrackedFuture<F> {
        #[pin]
        future: F,
        _guard: InFlight,
    }
}

impl<F: Future> Future for TrackedFuture<F> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        self.project().future.poll(cx)
    }
}

/// One request in flight on a connection, until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        let elapsed = u64::try_from(self.0.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.idle_since_ms.store(elapsed, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Re-reads the failed-authentication locks decided elsewhere, and records the audit
/// summaries of the windows that ended.
async fn limits_loop(service: Arc<TokenService>) {
    let mut tick = tokio::time::interval(LIMITS_REFRESH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = service.refresh_limits().await {
            crate::telemetry::metrics::database_error(&e);
            tracing::warn!(error = %e, "reading the failed-authentication locks failed; will retry");
        }
    }
}

/// The webhook delivery worker of this process.
fn dispatcher(
    settings: &Settings,
    store: &Arc<dyn Store>,
    keyring: &Keyring,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Arc<Dispatcher>> {
    let timeout = Duration::from_secs(settings.webhook_timeout_secs);
    let sender = Arc::new(crate::webhook_http::HttpSender::new(timeout)?);
    let config = DeliveryConfig {
        timeout,
        schedule: settings.webhook_retry_schedule.clone(),
        per_receiver: WEBHOOK_SLOTS_PER_RECEIVER,
    };
    Ok(Dispatcher::new(store.clone(), keyring.clone(), sender, clock.clone(), config))
}

/// Claims and attempts the webhook deliveries due, every tick and whenever an attempt ends (a
/// slot is free again: a backlog drains as fast as its receivers answer).
async fn webhook_loop(dispatcher: Arc<Dispatcher>) {
    let mut tick = tokio::time::interval(WEBHOOK_POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = dispatcher.attempt_ended() => {}
        }
        if let Err(e) = dispatcher.run_once().await {
            crate::telemetry::metrics::database_error(&e);
            tracing::warn!(error = %e, "claiming webhook deliveries failed; will retry");
        }
    }
}

/// Writes the last uses of tokens and clients, off the request path, in one batch per tick.
async fn last_use_loop(service: Arc<TokenService>) {
    let mut tick = tokio::time::interval(LAST_USE_FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = service.flush_last_use().await {
            crate::telemetry::metrics::database_error(&e);
            tracing::warn!(error = %e, "writing the last uses of tokens failed; will retry");
        }
    }
}

/// Deletes expired rows periodically (each pass works in small batches) and picks up signing
/// keys added elsewhere.
async fn cleanup_loop(service: Arc<TokenService>, every_secs: u64) {
    let mut tick = tokio::time::interval(Duration::from_secs(every_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match service.purge_expired().await {
            Ok(p) if p != Default::default() => tracing::info!(?p, "purged expired rows"),
            Ok(_) => {}
            Err(e) => {
                crate::telemetry::metrics::database_error(&e);
                tracing::warn!(error = %e, "cleanup failed; will retry");
            }
        }
        if let Err(e) = service.reload_keys().await {
            tracing::warn!(error = %e, "reloading signing keys failed; will retry");
        }
    }
}
