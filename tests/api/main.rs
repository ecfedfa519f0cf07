//! Black-box HTTP tests of tokensmith: each test spawns the real application on port 0 with
//! its own database (a SQLite file, or with `TOKENSMITH_TEST_BACKEND=postgres` a PostgreSQL
//! database of its own), registers clients with the real binary, and checks the answers
//! against the API the README and `docs/api/` describe.

mod admin_api;
mod assertion_grant;
mod attacks;
mod cli;
mod cli_remote;
mod client_credentials_grant;
mod config_check;
mod durability;
mod expiry_warnings;
mod faults;
mod federation_admin;
mod federation_grant;
mod hardening;
mod health;
mod helpers;
mod introspection;
mod keys;
mod last_use;
mod limits;
mod metadata;
mod multi_instance;
mod observability;
mod oidc_issuer;
mod otp_grant;
mod process;
mod request_validation;
mod revocation;
mod robustness;
mod rotation;
mod secrets_at_rest;
mod short_term_tokens;
mod short_token_grant;
mod shutdown;
mod tls;
mod token_exchange;
mod webhook_receiver;
mod webhooks;
