//! What callers give the service and get from it: the credential and options of a request,
//! the tokens issued, the authenticated caller, what introspection reports.

use std::sync::Arc;

use secrecy::SecretString;

use crate::domain::token::LongToken;
use crate::domain::types::{Audience, ClientId, LongTokenId, Mechanism, OpaqueSecret, Scopes, ShortTokenId, TokenName};
use crate::signer::ShortClaims;

/// How a caller asks for a long-term token: exactly one mechanism.
pub enum Credential {
    ClientSecret {
        client_id: ClientId,
        secret: SecretString,
    },
    Otp {
        client_id: ClientId,
        code: SecretString,
    },
    /// `client_key` is the `X-Client-Key` header, which must name the assertion's client.
    Assertion {
        assertion: SecretString,
        client_key: Option<ClientId>,
    },
    ShortToken {
        token: Bearer,
        client_key: Option<ClientId>,
    },
    /// An external identity token from a trusted issuer, for a token exchange (RFC 8693);
    /// `client_key` (`X-Client-Key`), when given, must name the client its rule binds.
    External {
        token: SecretString,
        client_key: Option<ClientId>,
    },
}

impl Credential {
    pub fn mechanism(&self) -> Mechanism {
        match self {
            Credential::ClientSecret { .. } => Mechanism::ClientSecret,
            Credential::Otp { .. } => Mechanism::Otp,
            Credential::Assertion { .. } => Mechanism::Assertion,
            Credential::ShortToken { .. } => Mechanism::ShortToken,
            Credential::External { .. } => Mechanism::TokenExchange,
        }
    }
}

/// The `Authorization` header as presented: every kind is an authentication, and a missing or
/// malformed one is a failed authentication like a bad token.
pub enum Bearer {
    Absent,
    /// Present, but not `Bearer <token>` (or too long, or twice).
    Malformed,
    Token(SecretString),
}

/// The options of a long-term token request, parsed; lifetimes are checked against the
/// configured bounds by the service.
#[derive(Debug, Default, Clone)]
pub struct LongTokenParams {
    pub scopes: Option<Scopes>,
    pub ttl_days: Option<i64>,
    pub name: Option<TokenName>,
    /// The token this one replaces, and how long it keeps working (`grace_seconds`).
    pub rotate_token_id: Option<LongTokenId>,
    pub grace_seconds: Option<i64>,
}

/// The options of a short-term token request, parsed.
#[derive(Debug, Default, Clone)]
pub struct ShortTokenParams {
    pub scopes: Option<Scopes>,
    pub audience: Option<Audience>,
    pub ttl_seconds: Option<i64>,
}

/// A token exchange (RFC 8693): the external identity token, and the short-term token's options.
pub struct ExchangeParams {
    pub subject_token: SecretString,
    pub client_key: Option<ClientId>,
    pub scopes: Option<Scopes>,
    pub audience: Option<Audience>,
}

#[derive(Debug)]
pub struct IssuedLong {
    pub id: LongTokenId,
    pub token: OpaqueSecret,
    pub client_id: ClientId,
    pub scopes: Scopes,
    pub issued_at: i64,
    pub expires_at: i64,
    pub rotated: Option<LongTokenId>,
}

#[derive(Debug)]
pub struct IssuedShort {
    pub id: ShortTokenId,
    pub jwt: String,
    pub client_id: ClientId,
    /// The scopes the token holds, sorted.
    pub scopes: Vec<String>,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// An authenticated bearer.
#[derive(Debug, Clone)]
pub enum Caller {
    Long(Arc<LongToken>),
    Short { id: ShortTokenId, client_id: ClientId, scopes: Scopes, claims: Arc<ShortClaims> },
}

impl Caller {
    pub fn client_id(&self) -> &ClientId {
        match self {
            Caller::Long(t) => &t.client_id,
            Caller::Short { client_id, .. } => client_id,
        }
    }

    pub fn scopes(&self) -> &Scopes {
        match self {
            Caller::Long(t) => &t.scopes,
            Caller::Short { scopes, .. } => scopes,
        }
    }

    /// The id of the caller's own token.
    pub fn token_id(&self) -> String {
        match self {
            Caller::Long(t) => t.id.to_string(),
            Caller::Short { id, .. } => id.to_string(),
        }
    }

    /// The mechanism the caller authenticated with.
    pub fn mechanism(&self) -> Mechanism {
        match self {
            Caller::Long(_) => Mechanism::LongToken,
            Caller::Short { .. } => Mechanism::ShortToken,
        }
    }
}

/// What a bearer token is presented for, outside issuance.
#[derive(Debug, Clone, Copy)]
pub enum BearerUse<'a> {
    Introspection,
    /// Revoking the token with this id (as given in the path).
    Revocation {
        target: &'a str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Long,
    Short,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Long => "long",
            TokenKind::Short => "short",
        }
    }
}

/// What introspection reports about an active token.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub token_id: String,
    pub kind: TokenKind,
    pub client_id: ClientId,
    pub scopes: Scopes,
    pub issued_at: i64,
    pub expires_at: i64,
    /// The audience a short-term token was minted for (a resource server checks it is itself).
    pub audience: Option<String>,
}
