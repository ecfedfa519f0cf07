//! The service's rules that operators may tune. The defaults live in one place,
//! `config::Settings::default`, from which `Settings::service_config` builds this.

use crate::signer::SigningAlg;

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The `iss` of every JWT and the `issuer` of the metadata.
    pub issuer: String,
    /// The admin API's URL: the audience an admin token must name (`None`: no admin API).
    pub admin_audience: Option<String>,
    /// `aud` of short-term tokens when the request names none.
    pub default_audience: String,
    pub long_ttl_default_days: u32,
    pub long_ttl_max_days: u32,
    pub short_ttl_default_secs: u32,
    pub short_ttl_max_secs: u32,
    /// Failed authentications allowed per client id per window (0: no limit).
    pub failures_per_client: u32,
    /// Failed authentications allowed per source address per window (0: no limit).
    pub failures_per_address: u32,
    pub failure_window_secs: u32,
    /// Failed OTP codes allowed per client per day (0: no limit).
    pub otp_failures_per_day: u32,
    /// How long after its check began a failed secret, OTP code or assertion is answered.
    pub failure_delay_ms: u32,
    /// Failed authentications recorded one by one per failure window, in all (the rest are
    /// counted in summaries).
    pub audit_failures_per_window: u32,
    /// Issuances (long or short) per client per minute; 0 turns the limit off.
    pub issuance_per_client_per_minute: u32,
    /// How long expired long-term tokens are kept (so revoking one still answers 204).
    pub expired_retention_secs: i64,
    pub signing_alg: SigningAlg,
    /// How long a long-term token record may be served from memory; the staleness bound
    /// for changes made by other processes. 0 disables the cache.
    pub token_cache_ttl_ms: i64,
    /// Record every short-term issuance in the audit trail (default: counted per client).
    pub audit_short_tokens: bool,
    /// How long audit events are kept.
    pub audit_retention_secs: i64,
    /// The longest-lived external identity token accepted (federation).
    pub federation_max_token_lifetime_secs: i64,
    /// Lead times before a long-term token's expiry at which it is announced, in seconds,
    /// ascending, each once.
    pub expiry_warnings_secs: Vec<i64>,
}

impl ServiceConfig {
    pub fn long_token_endpoint(&self) -> String {
        format!("{}/v1/auth/tokens/long", self.issuer.trim_end_matches('/'))
    }

    /// The issuer without a trailing slash, as audiences and assertions are compared with it.
    pub(super) fn bare_issuer(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }
}
