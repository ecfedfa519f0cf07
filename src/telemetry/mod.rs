//! What the service says about itself: its log lines (`logging`) and its metrics (`metrics`).
//! Cross-cutting, so every layer reaches it; it reaches none of them but for the names of
//! their values (a grant, a token kind, a database error).

pub mod logging;
pub mod metrics;
