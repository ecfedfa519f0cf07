//! Server settings: defaults (`Settings::default`, the one place they are written), then a TOML file, then `TOKENSMITH_*`
//! environment variables and flags (clap merges those two), each layer overriding the last.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::ServiceConfig;
use crate::domain::webhook::RetrySchedule;
use crate::signer::SigningAlg;

/// Everything `serve` needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The admin API and console's own listener (`None`: no admin listener).
    pub admin_listen: Option<SocketAddr>,
    /// The admin API's URL, the audience of admin tokens. `None`: `http(s)://<admin listen>`.
    pub admin_url: Option<String>,
    pub database: String,
    /// `None`: `http://<listen address>`.
    pub issuer: Option<String>,
    /// `None`: `<database file>.key` beside a SQLite database.
    pub key_file: Option<PathBuf>,
    /// The master key itself (base64), from `TOKENSMITH_MASTER_KEY`; wins over `key_file`.
    pub master_key: Option<SecretString>,
    pub signing_alg: SigningAlg,
    /// `None`: the issuer.
    pub default_audience: Option<String>,
    pub long_ttl_default_days: u32,
    pub long_ttl_max_days: u32,
    pub short_ttl_max_secs: u32,
    pub failures_per_client: u32,
    pub failures_per_address: u32,
    pub failure_window_secs: u32,
    pub otp_failures_per_day: u32,
    /// Milliseconds after its check began that a failed secret, OTP code or assertion is
    /// answered, whatever the client (so timing tells nothing about it).
    pub failure_delay_ms: u32,
    /// Failed authentications recorded one by one per failure window in all; the rest are
    /// counted in summary events.
    pub audit_failures_per_window: u32,
    pub issuance_per_client_per_minute: u32,
    /// Proxies whose `X-Forwarded-For`/`Forwarded` name the client (empty: headers ignored).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub body_limit_bytes: usize,
    /// Seconds a connection may take to send a complete request header (from its opening, or
    /// from the end of its previous request); then it is closed.
    pub header_timeout_secs: u64,
    /// Seconds a request body may take to arrive.
    pub body_timeout_secs: u64,
    /// Open connections at most; past it new ones wait to be accepted.
    pub max_connections: usize,
    pub cleanup_interval_secs: u64,
    pub expired_retention_days: u32,
    /// Milliseconds a long-term token record may be served from memory (0: no cache); the
    /// bound on how long a revocation made by another process can go unseen here.
    pub token_cache_ttl_ms: u32,
    /// Record each short-term issuance in the audit trail, not only a count per client.
    pub audit_short_tokens: bool,
    pub audit_retention_days: u32,
    /// The longest-lived external identity token accepted (federation), in seconds.
    pub federation_max_token_lifetime_secs: u32,
    /// Lead times, in days, at which a long-term token about to expire is announced (a
    /// `token.expiring` event, once per token and lead time) and counted (a gauge).
    pub expiry_warning_days: Vec<u32>,
    /// Seconds one webhook delivery attempt may take, connecting included.
    pub webhook_timeout_secs: u64,
    /// Delays before each retry of a failed webhook delivery; then it is marked failed.
    pub webhook_retry_schedule: RetrySchedule,
    /// PEM certificate chain and private key: with both, the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Seconds that requests in flight get to finish after SIGTERM or Ctrl-C.
    pub shutdown_timeout_secs: u64,
    pub log_format: LogFormat,
}

/// How `serve` writes its log lines on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE: &str = "sqlite://tokensmith.db";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: None,
            admin_url: None,
            database: DEFAULT_DATABASE.to_owned(),
            issuer: None,
            key_file: None,
            master_key: None,
            signing_alg: SigningAlg::EdDSA,
            default_audience: None,
            long_ttl_default_days: 30,
            long_ttl_max_days: 90,
            short_ttl_max_secs: 900,
            failures_per_client: 10,
            failures_per_address: 100,
            failure_window_secs: 60,
            otp_failures_per_day: 30,
            failure_delay_ms: 20,
            audit_failures_per_window: 1000,
            issuance_per_client_per_minute: 0,
            trusted_proxies: Vec::new(),
            body_limit_bytes: 64 * 1024,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            max_connections: 1000,
            cleanup_interval_secs: 60,
            expired_retention_days: 7,
            token_cache_ttl_ms: 1000,
            audit_short_tokens: false,
            audit_retention_days: 365,
            federation_max_token_lifetime_secs: 3600,
            expiry_warning_days: vec![7, 1],
            webhook_timeout_secs: 10,
            webhook_retry_schedule: RetrySchedule::default(),
            tls_cert: None,
            tls_key: None,
            shutdown_timeout_secs: 10,
            log_format: LogFormat::Text,
        }
    }
}

/// Every setting, optional: the TOML file's keys (unknown keys refused, with their name) and,
/// with the same names, `serve`'s flags and their `TOKENSMITH_*` environment variables. One
/// definition for both, so the file and the command line cannot drift apart.
#[derive(Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TOKENSMITH_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Database URL [default: sqlite://tokensmith.db].
    #[arg(long, env = "TOKENSMITH_DATABASE", value_name = "URL")]
    pub database: Option<String>,
    /// Admin API and web console listener, e.g. 127.0.0.1:8081; never the public one
    /// [default: none, no admin API].
    #[arg(long, env = "TOKENSMITH_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// The admin API's URL, the audience admin tokens must name [default: http(s)://<admin-listen>].
    #[arg(long, env = "TOKENSMITH_ADMIN_URL", value_name = "URL")]
    pub admin_url: Option<String>,
    /// Issuer URL, the `iss` of tokens [default: http://<listen>].
    #[arg(long, env = "TOKENSMITH_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// Master key file [default: <database file>.key, created with mode 0600].
    #[arg(long, env = "TOKENSMITH_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Algorithm of short-term tokens: EdDSA or ES256 [default: EdDSA].
    #[arg(long, env = "TOKENSMITH_SIGNING_ALG", value_name = "ALG")]
    pub signing_alg: Option<String>,
    /// `aud` of short-term tokens when the request names none [default: the issuer].
    #[arg(long, env = "TOKENSMITH_DEFAULT_AUDIENCE")]
    pub default_audience: Option<String>,
    /// Default lifetime of long-term tokens in days [default: 30].
    #[arg(long, env = "TOKENSMITH_LONG_TTL_DEFAULT_DAYS")]
    pub long_ttl_default_days: Option<u32>,
    /// Maximum lifetime of long-term tokens in days, 1-90 [default: 90].
    #[arg(long, env = "TOKENSMITH_LONG_TTL_MAX_DAYS")]
    pub long_ttl_max_days: Option<u32>,
    /// Maximum (and default) lifetime of short-term tokens in seconds, 60-900 [default: 900].
    #[arg(long, env = "TOKENSMITH_SHORT_TTL_MAX_SECS")]
    pub short_ttl_max_secs: Option<u32>,
    /// Failed authentications allowed per client id per window; 0 = no limit [default: 10].
    #[arg(long, env = "TOKENSMITH_FAILURES_PER_CLIENT")]
    pub failures_per_client: Option<u32>,
    /// Failed authentications allowed per source address per window; 0 = no limit [default: 100].
    #[arg(long, env = "TOKENSMITH_FAILURES_PER_ADDRESS")]
    pub failures_per_address: Option<u32>,
    /// Length of the failed-authentication window in seconds [default: 60].
    #[arg(long, env = "TOKENSMITH_FAILURE_WINDOW_SECS")]
    pub failure_window_secs: Option<u32>,
    /// Failed OTP codes allowed per client per day; past it the client's OTP is locked until
    /// the day frees or `tokensmith client unlock`; 0 = no limit [default: 30].
    #[arg(long, env = "TOKENSMITH_OTP_FAILURES_PER_DAY")]
    pub otp_failures_per_day: Option<u32>,
    /// Milliseconds after its check began that a failed secret, OTP code or assertion is
    /// answered, whatever the client, so that timing tells nothing about it; 0-1000 [default: 20].
    #[arg(long, env = "TOKENSMITH_FAILURE_DELAY_MS")]
    pub failure_delay_ms: Option<u32>,
    /// Failed authentications recorded one by one per failure window, in all; the rest are
    /// counted in summary events (at most a tenth as many, and one more) [default: 1000].
    #[arg(long, env = "TOKENSMITH_AUDIT_FAILURES_PER_WINDOW")]
    pub audit_failures_per_window: Option<u32>,
    /// Token issuances allowed per client per minute; 0 = no limit [default: 0].
    #[arg(long, env = "TOKENSMITH_ISSUANCE_PER_CLIENT_PER_MINUTE")]
    pub issuance_per_client_per_minute: Option<u32>,
    /// Proxies (addresses or CIDR ranges, comma-separated) whose X-Forwarded-For or Forwarded
    /// header names the client; without any, those headers are ignored [default: none].
    #[arg(long, env = "TOKENSMITH_TRUSTED_PROXIES", value_delimiter = ',', value_name = "CIDR,...")]
    pub trusted_proxies: Option<Vec<String>>,
    /// Largest request body in bytes [default: 65536].
    #[arg(long, env = "TOKENSMITH_BODY_LIMIT_BYTES")]
    pub body_limit_bytes: Option<usize>,
    /// Seconds a connection may take to send a complete request header, 1-3600 [default: 10].
    #[arg(long, env = "TOKENSMITH_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a request body may take to arrive, 1-3600 [default: 30].
    #[arg(long, env = "TOKENSMITH_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<u64>,
    /// Open connections at most; past it new ones wait in the listen backlog [default: 1000].
    #[arg(long, env = "TOKENSMITH_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds between passes that delete expired rows [default: 60].
    #[arg(long, env = "TOKENSMITH_CLEANUP_INTERVAL_SECS")]
    pub cleanup_interval_secs: Option<u64>,
    /// Days an expired long-term token is kept before deletion [default: 7].
    #[arg(long, env = "TOKENSMITH_EXPIRED_RETENTION_DAYS")]
    pub expired_retention_days: Option<u32>,
    /// Milliseconds a long-term token may be served from memory, 0-1000; bounds how long a
    /// revocation made by another process goes unseen [default: 1000].
    #[arg(long, env = "TOKENSMITH_TOKEN_CACHE_TTL_MS")]
    pub token_cache_ttl_ms: Option<u32>,
    /// Record every short-term issuance in the audit trail (by default they are counted per
    /// client and recorded as one event per client per cleanup pass) [default: false].
    #[arg(long, env = "TOKENSMITH_AUDIT_SHORT_TOKENS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub audit_short_tokens: Option<bool>,
    /// Days audit events are kept [default: 365].
    #[arg(long, env = "TOKENSMITH_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u32>,
    /// The longest-lived external identity token accepted for federation, in seconds,
    /// 60-86400 [default: 3600].
    #[arg(long, env = "TOKENSMITH_FEDERATION_MAX_TOKEN_LIFETIME_SECS")]
    pub federation_max_token_lifetime_secs: Option<u32>,
    /// Days before a long-term token's expiry at which it is announced (a `token.expiring`
    /// event) and counted (the gauge `tokensmith_long_tokens_expiring`), comma-separated, each
    /// 1-90, at most 8; empty: none [default: 7,1].
    #[arg(long, env = "TOKENSMITH_EXPIRY_WARNING_DAYS", value_parser = LeadDays::parse, value_name = "DAYS")]
    pub expiry_warning_days: Option<LeadDays>,
    /// Seconds one webhook delivery attempt may take, connecting included, 1-60 [default: 10].
    #[arg(long, env = "TOKENSMITH_WEBHOOK_TIMEOUT_SECS")]
    pub webhook_timeout_secs: Option<u64>,
    /// Delays before each retry of a failed webhook delivery, comma-separated with units, 1 to
    /// 20 of them, each 1s to 1d; after the last retry the delivery is marked failed
    /// [default: 5s,5m,30m,2h,5h,10h,10h, about 27 hours].
    #[arg(long, env = "TOKENSMITH_WEBHOOK_RETRY_SCHEDULE", value_name = "DELAYS")]
    pub webhook_retry_schedule: Option<String>,
    /// PEM file with the certificate chain; with --tls-key, serve HTTPS [default: plain HTTP].
    #[arg(long, env = "TOKENSMITH_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "TOKENSMITH_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Seconds that requests in flight get to finish after SIGTERM or Ctrl-C, 0-3600 [default: 10].
    #[arg(long, env = "TOKENSMITH_SHUTDOWN_TIMEOUT_SECS")]
    pub shutdown_timeout_secs: Option<u64>,
    /// Log format, text or json (the command line's global --log-format and
    /// TOKENSMITH_LOG_FORMAT override it) [default: text].
    #[arg(skip)]
    pub log_format: Option<LogFormat>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = crate::files::read_small_text(path, crate::files::MAX_CONFIG_BYTES)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            // Name the line (and so the key) the error is on, not only serde's message.
            let at = e.span().map(|span| {
                let line = text[..span.start.min(text.len())].matches('\n').count();
                let key = text.lines().nth(line).and_then(|l| l.split('=').next()).map(str::trim).unwrap_or("");
                format!(", line {}{}", line + 1, if key.is_empty() { String::new() } else { format!(" ({key})") })
            });
            format!("config file {}{}: {}", path.display(), at.unwrap_or_default(), e.message())
        })
    }

    /// Overlays `self` (the file) on `s` (the defaults).
    pub fn apply(self, s: &mut Settings) -> Result<(), String> {
        // Each field is named once, and the destructuring has no `..`: a setting added to
        // `FileConfig` and not applied here does not compile.
        macro_rules! overlay {
            (parsed { $($p:ident => $parse:expr),* } plain { $($f:ident),* } optional { $($o:ident),* }) => {{
                let FileConfig { $($p,)* $($f,)* $($o,)* } = self;
                $( if let Some(v) = $p { s.$p = ($parse)(v)?; } )*
                $( if let Some(v) = $f { s.$f = v; } )*
                $( if $o.is_some() { s.$o = $o; } )*
            }};
        }
        overlay!(
            parsed {
                listen => |v: String| parse_listen(&v),
                admin_listen => |v: String| parse_listen(&v).map(Some),
                signing_alg => |v: String| parse_alg(&v),
                trusted_proxies => |v: Vec<String>| crate::http::forwarded::parse_trusted(&v),
                expiry_warning_days => |v: LeadDays| Ok::<_, String>(v.0),
                webhook_retry_schedule => |v: String| RetrySchedule::parse(&v)
            }
            plain {
                database, long_ttl_default_days, long_ttl_max_days, short_ttl_max_secs, failures_per_client,
                failures_per_address, failure_window_secs, otp_failures_per_day, failure_delay_ms,
                audit_failures_per_window, issuance_per_client_per_minute, body_limit_bytes, header_timeout_secs,
                body_timeout_secs, max_connections, cleanup_interval_secs, expired_retention_days,
                token_cache_ttl_ms, audit_short_tokens, audit_retention_days, federation_max_token_lifetime_secs,
                shutdown_timeout_secs, log_format, webhook_timeout_secs
            }
            optional { issuer, admin_url, key_file, default_audience, tls_cert, tls_key }
        );
        Ok(())
    }
}

/// Lead times in days: a TOML list, or on the command line `7,1` (empty: none).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct LeadDays(pub Vec<u32>);

impl LeadDays {
    pub fn parse(s: &str) -> Result<LeadDays, String> {
        if s.trim().is_empty() {
            return Ok(LeadDays(Vec::new()));
        }
        s.split(',')
            .map(str::trim)
            .map(|d| d.parse().map_err(|_| format!("{d:?} is not a number of days (e.g. 7,1; empty for none)")))
            .collect::<Result<_, _>>()
            .map(LeadDays)
    }
}

pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| format!("listen address {s:?} is not HOST:PORT with an IP host (e.g. 127.0.0.1:8080)"))
}

/// Checks a base URL setting (`issuer`, `admin_url`): http(s), a host, no query or fragment
/// (RFC 8414 §2), no `.` or `..` path segment (verifiers compare it byte for byte, so a path
/// that another spelling also names would be a URL nobody types).
fn check_base_url(name: &str, url: &str) -> Result<(), String> {
    let host = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) || url.contains(['?', '#']) {
        return Err(format!("{name} {url:?} must be an http:// or https:// URL with a host and no query or fragment"));
    }
    if host.is_some_and(|h| h.split('/').skip(1).any(|seg| seg == "." || seg == "..")) {
        return Err(format!("{name} {url:?} must not have . or .. path segments"));
    }
    Ok(())
}

pub fn parse_alg(s: &str) -> Result<SigningAlg, String> {
    SigningAlg::parse(s).ok_or_else(|| format!("signing algorithm {s:?} is not supported; use EdDSA or ES256"))
}

impl Settings {
    /// Checks every setting's range.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=90).contains(&self.long_ttl_max_days) {
            return Err("long_ttl_max_days must be between 1 and 90".into());
        }
        if !(1..=self.long_ttl_max_days).contains(&self.long_ttl_default_days) {
            return Err("long_ttl_default_days must be between 1 and long_ttl_max_days".into());
        }
        if !(60..=900).contains(&self.short_ttl_max_secs) {
            return Err("short_ttl_max_secs must be between 60 and 900".into());
        }
        if self.failure_window_secs == 0 {
            return Err("failure_window_secs must be at least 1".into());
        }
        if !(1024..=1024 * 1024).contains(&self.body_limit_bytes) {
            return Err("body_limit_bytes must be between 1024 and 1048576".into());
        }
        if self.failure_delay_ms > 1000 {
            return Err("failure_delay_ms must be between 0 and 1000".into());
        }
        if !(1..=3600).contains(&self.header_timeout_secs) {
            return Err("header_timeout_secs must be between 1 and 3600".into());
        }
        if !(1..=3600).contains(&self.body_timeout_secs) {
            return Err("body_timeout_secs must be between 1 and 3600".into());
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err("max_connections must be between 1 and 1000000".into());
        }
        if self.token_cache_ttl_ms > 1000 {
            return Err("token_cache_ttl_ms must be at most 1000 (the staleness bound)".into());
        }
        if !(60..=86_400).contains(&self.federation_max_token_lifetime_secs) {
            return Err("federation_max_token_lifetime_secs must be between 60 and 86400".into());
        }
        if self.expiry_warning_days.len() > 8 || self.expiry_warning_days.iter().any(|d| !(1..=90).contains(d)) {
            return Err("expiry_warning_days must be at most 8 lead times, each 1 to 90 days".into());
        }
        let mut leads = self.expiry_warning_days.clone();
        leads.sort_unstable();
        if leads.windows(2).any(|w| w[0] == w[1]) {
            return Err("expiry_warning_days must not name a lead time twice".into());
        }
        if !(1..=60).contains(&self.webhook_timeout_secs) {
            return Err("webhook_timeout_secs must be between 1 and 60".into());
        }
        if self.audit_retention_days == 0 {
            return Err("audit_retention_days must be at least 1".into());
        }
        if self.cleanup_interval_secs == 0 {
            return Err("cleanup_interval_secs must be at least 1".into());
        }
        if let Some(i) = &self.issuer {
            check_base_url("issuer", i)?;
        }
        if let Some(u) = &self.admin_url {
            check_base_url("admin_url", u)?;
        }
        if let Some(admin) = self.admin_listen
            && admin.port() != 0
            && admin.port() == self.listen.port()
            && (admin.ip() == self.listen.ip() || admin.ip().is_unspecified() || self.listen.ip().is_unspecified())
        {
            return Err(format!(
                "admin_listen {admin} is the public listener: give the admin API its own port (e.g. 127.0.0.1:8081)"
            ));
        }
        if let Some(a) = &self.default_audience
            && (a.is_empty() || a.len() > 256 || !a.chars().all(crate::domain::types::is_plain_text))
        {
            return Err("default_audience must be 1 to 256 printable characters".into());
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => return Err("tls_cert is set without tls_key; give both or neither".into()),
            (None, Some(_)) => return Err("tls_key is set without tls_cert; give both or neither".into()),
            _ => {}
        }
        if self.shutdown_timeout_secs > 3600 {
            return Err("shutdown_timeout_secs must be between 0 and 3600".into());
        }
        Ok(())
    }

    /// Settings that are valid but probably not what was meant, each as a sentence.
    pub fn warnings(&self) -> Vec<String> {
        self.trusted_proxies
            .iter()
            .filter(|net| net.prefix_len() == 0)
            .map(|net| {
                format!(
                    "trusted_proxies includes {net}: every peer is a trusted proxy, so any client can choose \
                     the address it is counted against (name the proxies' own addresses instead)"
                )
            })
            .collect()
    }

    /// Whether the server speaks HTTPS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// The admin API's URL for an admin listener bound to `local`: the configured one, or
    /// `http(s)://<local>`; admin tokens must name it as their audience.
    pub fn admin_url_for(&self, local: SocketAddr) -> String {
        let scheme = if self.tls() { "https" } else { "http" };
        self.admin_url.clone().unwrap_or_else(|| format!("{scheme}://{local}")).trim_end_matches('/').to_owned()
    }

    /// The issuer for a server bound to `local`: the configured one, or `http(s)://<local>`.
    pub fn issuer_for(&self, local: SocketAddr) -> String {
        let scheme = if self.tls() { "https" } else { "http" };
        self.issuer.clone().unwrap_or_else(|| format!("{scheme}://{local}")).trim_end_matches('/').to_owned()
    }

    /// The domain's view of these settings (a struct literal: a field the domain gains must
    /// be set here).
    pub fn service_config(&self, issuer: String, admin_audience: Option<String>) -> ServiceConfig {
        ServiceConfig {
            admin_audience,
            default_audience: self.default_audience.clone().unwrap_or_else(|| issuer.clone()),
            issuer,
            long_ttl_default_days: self.long_ttl_default_days,
            long_ttl_max_days: self.long_ttl_max_days,
            short_ttl_default_secs: self.short_ttl_max_secs,
            short_ttl_max_secs: self.short_ttl_max_secs,
            failures_per_client: self.failures_per_client,
            failures_per_address: self.failures_per_address,
            failure_window_secs: self.failure_window_secs,
            otp_failures_per_day: self.otp_failures_per_day,
            failure_delay_ms: self.failure_delay_ms,
            audit_failures_per_window: self.audit_failures_per_window,
            issuance_per_client_per_minute: self.issuance_per_client_per_minute,
            expired_retention_secs: i64::from(self.expired_retention_days) * SECS_PER_DAY,
            signing_alg: self.signing_alg,
            token_cache_ttl_ms: i64::from(self.token_cache_ttl_ms),
            audit_short_tokens: self.audit_short_tokens,
            audit_retention_secs: i64::from(self.audit_retention_days) * SECS_PER_DAY,
            federation_max_token_lifetime_secs: i64::from(self.federation_max_token_lifetime_secs),
            expiry_warnings_secs: {
                let mut leads: Vec<i64> =
                    self.expiry_warning_days.iter().map(|d| i64::from(*d) * SECS_PER_DAY).collect();
                leads.sort_unstable();
                leads.dedup();
                leads
            },
        }
    }
}

const SECS_PER_DAY: i64 = 86_400;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_days_parse_from_a_list_and_empty_means_none() {
        assert_eq!(LeadDays::parse("7,1"), Ok(LeadDays(vec![7, 1])));
        assert_eq!(LeadDays::parse(" 30 , 7 "), Ok(LeadDays(vec![30, 7])));
        assert_eq!(LeadDays::parse(""), Ok(LeadDays(vec![])));
        assert!(LeadDays::parse("7,x").is_err());
        assert!(LeadDays::parse("7,,1").is_err(), "an empty item is a typo, not nothing");
        assert!(LeadDays::parse("7,").is_err());
    }

    #[test]
    fn unknown_file_keys_are_refused_by_name() {
        let err = toml::from_str::<FileConfig>("listen = \"127.0.0.1:1\"\nlisten_addr = 1\n").unwrap_err();
        assert!(err.message().contains("listen_addr"), "{}", err.message());
    }

    #[test]
    fn a_bad_value_in_the_file_is_named_by_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1\"\nshort_ttl_max_secs = \"abc\"\n").unwrap();
        let err = FileConfig::load(&file).unwrap_err();
        assert!(err.contains("line 2 (short_ttl_max_secs)"), "{err}");
    }

    #[test]
    fn file_values_override_defaults_and_are_validated() {
        let f: FileConfig = toml::from_str("listen = \"0.0.0.0:9000\"\nshort_ttl_max_secs = 300\n").unwrap();
        let mut s = Settings::default();
        f.apply(&mut s).unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.short_ttl_max_secs, 300);
        assert!(s.validate().is_ok());
        s.short_ttl_max_secs = 10;
        assert!(s.validate().is_err());
        let bad: FileConfig = toml::from_str("signing_alg = \"HS256\"").unwrap();
        assert!(bad.apply(&mut Settings::default()).is_err());
    }

    #[test]
    fn default_issuer_follows_the_bound_address() {
        let s = Settings::default();
        assert_eq!(s.issuer_for("127.0.0.1:4000".parse().unwrap()), "http://127.0.0.1:4000");
        let tls = Settings { tls_cert: Some("c.pem".into()), tls_key: Some("k.pem".into()), ..Settings::default() };
        assert_eq!(tls.issuer_for("127.0.0.1:4000".parse().unwrap()), "https://127.0.0.1:4000");
    }

    #[test]
    fn tls_needs_both_files_and_shutdown_timeout_is_bounded() {
        let only_cert = Settings { tls_cert: Some("c.pem".into()), ..Settings::default() };
        assert!(only_cert.validate().unwrap_err().contains("tls_key"));
        let only_key = Settings { tls_key: Some("k.pem".into()), ..Settings::default() };
        assert!(only_key.validate().unwrap_err().contains("tls_cert"));
        let long = Settings { shutdown_timeout_secs: 3601, ..Settings::default() };
        assert!(long.validate().unwrap_err().contains("shutdown_timeout_secs"));
    }
}
