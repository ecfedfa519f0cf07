//! The service's rules: grants, token lifetimes, revocation, introspection and limits.
//!
//! Architecture invariant: nothing here knows HTTP (no status codes, no JSON wire types) or
//! SQL. Time comes from the injected [`crate::clock::Clock`].

pub mod admin;
pub mod audit;
pub mod cache;
pub mod client;
pub mod client_key;
pub mod error;
pub mod federation;
pub mod keys;
pub mod limits;
pub mod otp;
pub mod revocation;
pub mod service;
pub mod token;
pub mod types;
pub mod usage;
pub mod webhook;

pub use error::{DomainError, DomainResult};
pub use service::{
    ADMIN_READ, ADMIN_WRITE, AdminCaller, AdminRight, AdminSession, Bearer, BearerUse, Caller, Credential,
    ExchangeParams, IssuedLong, IssuedShort, LongTokenParams, ServiceConfig, ShortTokenParams, TokenInfo, TokenKind,
    TokenService,
};
pub use types::{
    Audience, CLIENT_SECRET_PREFIX, ClientId, LONG_TOKEN_PREFIX, LongTokenId, Mechanism, OpaqueSecret, Scope, Scopes,
    ShortTokenId, TOKENS_INTROSPECT, TOKENS_WRITE, TokenId, TokenName,
};
