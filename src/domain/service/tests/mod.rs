//! The service's rules, tested beside it: a `TokenService` over a real SQLite store in a
//! temporary directory, with a clock that stands still until a test moves it.

mod fixed_values;
mod issue_long;
mod issue_short;
mod limits;
mod lineage;
mod revoke;

use std::net::IpAddr;
use std::sync::Arc;

use secrecy::SecretString;

use super::{Bearer, BearerUse, Credential, LongTokenParams, ServiceConfig, ShortTokenParams, TokenService};
use crate::clock::FixedClock;
use crate::crypto::Keyring;
use crate::domain::admin::{self, CreatedClient, NewClient};
use crate::domain::token::LongToken;
use crate::domain::{ClientId, DomainResult, IssuedLong, IssuedShort, LongTokenId, Scopes};
use crate::store::{AuditQuery, Store};

/// 2027-01-15T08:00:00Z: well inside a TOTP step, far from any boundary a test cares about.
pub(super) const T0: i64 = 1_800_000_000;

pub(super) struct Harness {
    pub service: TokenService,
    pub store: Arc<dyn Store>,
    pub keyring: Keyring,
    pub clock: FixedClock,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// A service with the default settings changed by `configure`.
    pub async fn new(configure: impl FnOnce(&mut ServiceConfig)) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = crate::store::connect(&url).await.expect("the store opens");
        let keyring = Keyring::random();
        let clock = FixedClock::at(T0);
        let mut config = crate::config::Settings::default()
            .service_config("https://tokens.test".into(), Some("https://admin.tokens.test".into()));
        configure(&mut config);
        let service = TokenService::new(Arc::clone(&store), keyring.clone(), Arc::new(clock.clone()), config)
            .await
            .expect("the service starts");
        Harness { service, store, keyring, clock, _dir: dir }
    }

    /// A service without failure limits, for tests that fail on purpose many times.
    pub async fn without_limits() -> Self {
        Self::new(|c| {
            c.failures_per_client = 0;
            c.failures_per_address = 0;
            c.otp_failures_per_day = 0;
            c.failure_delay_ms = 0;
        })
        .await
    }

    pub async fn client(&self, name: &str, otp: bool, public_key: Option<String>) -> CreatedClient {
        let spec = NewClient { name: name.into(), scopes: scopes("deploy tokens:write"), otp, public_key };
        admin::create_client(self.store.as_ref(), &self.keyring, self.clock_secs(), spec).await.expect("a client")
    }

    /// A client without OTP or key, allowed `allowed` (space-separated).
    pub async fn client_with(&self, name: &str, allowed: &str) -> CreatedClient {
        let spec = NewClient { name: name.into(), scopes: scopes(allowed), otp: false, public_key: None };
        admin::create_client(self.store.as_ref(), &self.keyring, self.clock_secs(), spec).await.expect("a client")
    }

    /// A long-term token of `client`, by its secret.
    pub async fn long(&self, client: &CreatedClient, params: LongTokenParams) -> DomainResult<IssuedLong> {
        let secret = SecretString::from(client.client_secret.expose().to_owned());
        let credential = Credential::ClientSecret { client_id: client.client_id.clone(), secret };
        self.service.issue_long(credential, params, addr()).await
    }

    /// A long-term token of `client` with `scopes` (a subset of the client's).
    pub async fn long_with(&self, client: &CreatedClient, scopes_: &str) -> IssuedLong {
        let params = LongTokenParams { scopes: Some(scopes(scopes_)), ..LongTokenParams::default() };
        self.long(client, params).await.expect("a long-term token")
    }

    /// A short-term token minted from the long-term token `long`.
    pub async fn short(&self, long: &IssuedLong, params: ShortTokenParams) -> DomainResult<IssuedShort> {
        self.service.issue_short(bearer(long.token.expose()), params, addr()).await
    }

    /// A long-term token minted with the short-term token `jwt` (the `short_token` grant).
    pub async fn minted_by(&self, jwt: &str, params: LongTokenParams) -> DomainResult<IssuedLong> {
        let credential = Credential::ShortToken { token: bearer(jwt), client_key: None };
        self.service.issue_long(credential, params, addr()).await
    }

    /// `by` (a token of either kind) revokes `target`.
    pub async fn revoke(&self, by: &str, target: &str) -> DomainResult<()> {
        let caller = self.service.authenticate(bearer(by), addr(), BearerUse::Revocation { target }).await?;
        self.service.revoke(&caller, target, addr()).await
    }

    /// Whether `token` (either kind) authenticates now.
    pub async fn authenticates(&self, token: &str) -> bool {
        self.service.authenticate(bearer(token), addr(), BearerUse::Introspection).await.is_ok()
    }

    pub async fn stored(&self, id: LongTokenId) -> LongToken {
        self.store.get_long_token(&id).await.expect("the store answers").expect("the token is stored")
    }

    /// The audit events named `name`, oldest first.
    pub async fn events(&self, name: &str) -> Vec<crate::store::AuditRecord> {
        let all = self.store.list_audit(&AuditQuery { limit: 1000, ..AuditQuery::default() }).await.expect("audit");
        all.into_iter().filter(|r| r.event.event == name).collect()
    }

    pub fn clock_secs(&self) -> i64 {
        use crate::clock::Clock;
        self.clock.now()
    }

    pub async fn issue(&self, credential: Credential) -> DomainResult<IssuedLong> {
        self.service.issue_long(credential, LongTokenParams::default(), addr()).await
    }

    pub async fn with_secret(&self, client: &ClientId, secret: &str) -> DomainResult<IssuedLong> {
        let secret = SecretString::from(secret.to_owned());
        self.issue(Credential::ClientSecret { client_id: client.clone(), secret }).await
    }
}

pub(super) fn addr() -> IpAddr {
    IpAddr::from([192, 0, 2, 1])
}

pub(super) fn bearer(token: &str) -> Bearer {
    Bearer::Token(SecretString::from(token.to_owned()))
}

pub(super) fn scopes(s: &str) -> Scopes {
    Scopes::from_space_separated(s).expect("scopes")
}
