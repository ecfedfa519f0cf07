//! tokensmith: a token service.
//!
//! Clients authenticate with step-up credentials (a secret, a TOTP code, a signed JWT
//! assertion, or a short-term token holding `tokens:write`) to get **long-term tokens**;
//! those are exchanged for **short-term JWTs** that anyone can verify with the JWKS; either
//! kind is **revoked** by id, with a cascade from a long-term token to its short-term ones.
//!
//! # Layout
//! - [`http`]: axum routes, extractors, wire types, and the one error mapping (`ApiError`).
//! - [`domain`]: the rules: grants, scopes, lifetimes, revocation, introspection, limits.
//! - [`store`]: the `Store` trait and its SQLite and PostgreSQL implementations; the only
//!   code with SQL.
//! - [`signer`]: signing keys, short-term JWTs and the JWKS; pure, no storage.
//! - [`crypto`]: the master key, keyed hashes and sealing; nothing here is ever printed.
//! - [`app`] builds and runs the server; [`cli`] and `main` only parse and call.
//! - [`config`]: settings from defaults, a TOML file, the environment and flags.
//! - [`clock`]: time, injected, so tests move it instead of sleeping.
//! - [`telemetry`]: logging and metrics, for every layer.
//! - [`tls`]: the server's certificate and key, for HTTPS.
//! - [`files`]: the operator's small files, read with a bound.
//! - [`remote`]: fetching what trusted issuers publish (keys), with bounds.
//!
//! See ARCHITECTURE.md for the invariants.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::await_holding_lock))]

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod files;
pub mod http;
pub mod qr;
pub mod remote;
pub mod signer;
pub mod store;
pub mod telemetry;
#[cfg(test)]
mod tidy;
pub mod tls;
pub mod webhook_http;
