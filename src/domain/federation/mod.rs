//! Federation: external identity tokens (a GitHub Actions OIDC token, a Kubernetes
//! service-account token, any OIDC provider's JWT) standing in for a client's secret.
//!
//! The operator trusts issuers (`issuer`: the exact `iss`, and where its keys come from) and
//! binds clients to the claims of their tokens with rules (`matching`: one issuer, one
//! audience, conditions that must all hold, caps on lifetime and scopes); a token that
//! satisfies no rule, or the rules of several clients, authenticates nobody. `admin` holds the
//! operator's changes, each audited.

pub mod admin;
pub mod issuer;
pub mod keys;
pub mod matching;
pub mod verify;

pub use issuer::{IssuerKeys, IssuerName, TrustedIssuer, check_remote_url};
pub use matching::{ClaimMatch, ClaimPattern, FederationRule, NoRule, choose};
pub use verify::{ExternalIdentity, ExternalKey, Refusal};
