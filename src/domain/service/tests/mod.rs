//! The service's rules, tested beside it: a `TokenService` over a real SQLite store in a
//! temporary directory, with a clock that stands still until a test moves it.

mod fixed_values;

use std::net::IpAddr;
use std::sync::Arc;

use secrecy::SecretString;

use super::{Credential, LongTokenParams, ServiceConfig, TokenService};
use crate::clock::FixedClock;
use crate::crypto::Keyring;
use crate::domain::admin::{self, CreatedClient, NewClient};
use crate::domain::{ClientId, DomainResult, IssuedLong, Scopes};
use crate::store::Store;

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
    /// A service with the contract's defaults changed by `configure`.
    pub async fn new(configure: impl FnOnce(&mut ServiceConfig)) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = crate::store::connect(&url).await.expect("the store opens");
        let keyring = Keyring::random();
        let clock = FixedClock::at(T0);
        let mut config = crate::config::Settings::default().service_config("https://tokens.test".into());
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

pub(super) fn scopes(s: &str) -> Scopes {
    Scopes::from_space_separated(s).expect("scopes")
}
