//! Failed-authentication limits: per client for guessable credentials, per address for all,
//! OTP codes per day; a window that frees itself.

use secrecy::SecretString;

use super::{Harness, addr};
use crate::domain::{Bearer, BearerUse, Credential, DomainError, LongTokenParams};

fn wrong_secret(client: &crate::domain::ClientId) -> Credential {
    Credential::ClientSecret { client_id: client.clone(), secret: SecretString::from("tsc_wrong".to_owned()) }
}

#[tokio::test]
async fn a_client_is_locked_after_its_failures_until_the_window_frees() {
    let h = Harness::new(|c| {
        c.failures_per_client = 3;
        c.failures_per_address = 0;
        c.failure_delay_ms = 0;
    })
    .await;
    let c = h.client_with("c", "deploy").await;
    for _ in 0..3 {
        assert!(matches!(h.issue(wrong_secret(&c.client_id)).await, Err(DomainError::InvalidClient)));
    }
    let locked = h.long(&c, LongTokenParams::default()).await;
    assert!(matches!(locked, Err(DomainError::RateLimited { retry_after_secs }) if retry_after_secs > 0), "{locked:?}");
    h.clock.advance_secs(61);
    assert!(h.long(&c, LongTokenParams::default()).await.is_ok(), "the window has passed");
}

#[tokio::test]
async fn bad_bearer_tokens_never_lock_a_client_out() {
    let h = Harness::new(|c| {
        c.failures_per_client = 2;
        c.failures_per_address = 0;
        c.failure_delay_ms = 0;
    })
    .await;
    let c = h.client_with("c", "deploy").await;
    let long = h.long(&c, LongTokenParams::default()).await.unwrap();
    h.service
        .revoke(
            &h.service
                .authenticate(super::bearer(long.token.expose()), addr(), BearerUse::Introspection)
                .await
                .unwrap(),
            &long.id.to_string(),
            addr(),
        )
        .await
        .unwrap();
    for _ in 0..10 {
        assert!(!h.authenticates(long.token.expose()).await);
        assert!(h.service.issue_short(Bearer::Absent, Default::default(), addr()).await.is_err());
    }
    assert!(h.long(&c, LongTokenParams::default()).await.is_ok(), "the client's own secret still works");
}

#[tokio::test]
async fn an_address_is_locked_after_its_failures_whatever_the_credential() {
    let h = Harness::new(|c| {
        c.failures_per_client = 0;
        c.failures_per_address = 4;
        c.failure_delay_ms = 0;
    })
    .await;
    let c = h.client_with("c", "deploy").await;
    for _ in 0..4 {
        assert!(!h.authenticates("tsl_not_a_token").await);
    }
    let locked = h.service.issue_short(super::bearer("tsl_x"), Default::default(), addr()).await;
    assert!(matches!(locked, Err(DomainError::RateLimited { .. })), "{locked:?}");
    let locked = h.long(&c, LongTokenParams::default()).await;
    assert!(matches!(locked, Err(DomainError::RateLimited { .. })), "{locked:?}");
}

#[tokio::test]
async fn otp_codes_are_limited_per_day() {
    let h = Harness::new(|c| {
        c.failures_per_client = 0;
        c.failures_per_address = 0;
        c.otp_failures_per_day = 3;
        c.failure_delay_ms = 0;
    })
    .await;
    let c = h.client("otp", true, None).await;
    let code = |s: &str| Credential::Otp { client_id: c.client_id.clone(), code: SecretString::from(s.to_owned()) };
    // Not six digits: wrong at every step, whatever the seed.
    let wrong = "12345x";
    for _ in 0..3 {
        assert!(matches!(h.issue(code(wrong)).await, Err(DomainError::InvalidGrant(_))));
    }
    assert!(matches!(h.issue(code(wrong)).await, Err(DomainError::RateLimited { .. })));
    h.clock.advance_secs(3600);
    assert!(matches!(h.issue(code(wrong)).await, Err(DomainError::RateLimited { .. })), "still the same day");
    h.clock.advance_secs(86_400);
    assert!(matches!(h.issue(code(wrong)).await, Err(DomainError::InvalidGrant(_))), "a day later");
}

#[tokio::test]
async fn a_registered_clients_lock_is_recorded_and_a_made_up_ones_is_not() {
    let h = Harness::new(|c| {
        c.failures_per_client = 2;
        c.failures_per_address = 0;
        c.failure_delay_ms = 0;
    })
    .await;
    let c = h.client_with("c", "deploy").await;
    let ghost = crate::domain::ClientId::parse("cli_GhostGhostGhostGhost").unwrap();
    for _ in 0..2 {
        let _ = h.issue(wrong_secret(&c.client_id)).await;
        let _ = h.issue(wrong_secret(&ghost)).await;
    }
    assert!(matches!(h.issue(wrong_secret(&ghost)).await, Err(DomainError::RateLimited { .. })), "locked all the same");
    let locks = h.events(crate::domain::audit::event::CLIENT_LOCKED).await;
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert_eq!(locks[0].event.client_id.as_deref(), Some(c.client_id.as_str()));
}
