//! The attack suite: what an attacker would try against the release build, one file per class
//! of attack, each test named for the attack it holds back. SECURITY.md maps every threat to
//! the tests here. All run black-box over HTTP, on SQLite and (with
//! `TOKENSMITH_TEST_BACKEND=postgres`) on PostgreSQL.

mod admin;
mod audience;
mod audit_flood;
mod connections;
mod federation;
mod files;
mod fixed_values;
mod hostile_input;
mod lineage;
mod lockout;
mod operator_input;
mod uniform_failures;
mod weak_keys;
mod webhooks;
