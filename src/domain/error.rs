//! Domain errors: what went wrong, in the service's terms. They carry no HTTP; `http::error`
//! maps each variant to a status and an OAuth error code in one place.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The request is malformed or breaks a rule of the API.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    /// Client authentication failed: unknown client, wrong secret, or disabled client. One
    /// variant and one message for all of them, so that responses do not reveal which.
    #[error("client authentication failed")]
    InvalidClient,
    /// A grant (OTP code or assertion) was presented and is not acceptable.
    #[error("{0}")]
    InvalidGrant(String),
    /// No bearer token was presented where one is required.
    #[error("a bearer token is required")]
    MissingToken,
    /// A bearer token was presented and is not acceptable.
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    InsufficientScope(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("token not found")]
    NotFound,
    #[error("too many requests; retry after {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// Whether this error is a failed authentication, which counts against the limits.
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            DomainError::InvalidClient
                | DomainError::InvalidGrant(_)
                | DomainError::MissingToken
                | DomainError::InvalidToken(_)
        )
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
