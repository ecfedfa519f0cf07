//! `tokensmith config check [--config FILE] [serve's flags] [--json]`: resolves the settings
//! exactly as `serve` would (defaults ← file ← environment ← flags), validates them and the
//! files they name (TLS certificate and key, master key), and prints the effective settings
//! as TOML (loadable again with `--config`) or JSON, with the database password and the master
//! key redacted. It opens no database and binds no port. Invalid input: a one-line error
//! naming the key or value, and a non-zero exit.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;

use super::serve::ServeArgs;
use crate::config::{LogFormat, Settings};
use crate::store::{self, redact_url};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration (file, environment and flags, as `serve` reads them) and print
    /// the effective settings with secrets redacted.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Print one JSON object instead of TOML.
    #[arg(long)]
    pub json: bool,
}

/// The effective settings, one field per configuration key, in the example file's order.
/// Derived values are resolved (the issuer from the listen address, the key file from the
/// database); settings that are unset and have no default are absent.
#[derive(Debug, Serialize)]
pub struct Effective {
    pub listen: String,
    /// The URL with its password replaced by `***`.
    pub database: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    pub issuer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    pub signing_alg: String,
    pub default_audience: String,
    pub long_ttl_default_days: u32,
    pub long_ttl_max_days: u32,
    pub short_ttl_max_secs: u32,
    pub failures_per_client: u32,
    pub failures_per_address: u32,
    pub failure_window_secs: u32,
    pub otp_failures_per_day: u32,
    pub failure_delay_ms: u32,
    pub audit_failures_per_window: u32,
    pub issuance_per_client_per_minute: u32,
    pub trusted_proxies: Vec<String>,
    pub body_limit_bytes: usize,
    pub header_timeout_secs: u64,
    pub body_timeout_secs: u64,
    pub max_connections: usize,
    pub cleanup_interval_secs: u64,
    pub expired_retention_days: u32,
    pub token_cache_ttl_ms: u32,
    pub audit_short_tokens: bool,
    pub audit_retention_days: u32,
    pub federation_max_token_lifetime_secs: u32,
    pub expiry_warning_days: Vec<u32>,
    pub webhook_timeout_secs: u64,
    pub webhook_retry_schedule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    pub shutdown_timeout_secs: u64,
    pub log_format: LogFormat,
}

impl Effective {
    /// Every field of `Settings` is named (no `..`): a setting added there and not shown here
    /// does not compile.
    pub fn of(s: &Settings) -> Self {
        let Settings {
            listen,
            admin_listen,
            admin_url: _,
            database,
            issuer: _,
            key_file,
            master_key,
            signing_alg,
            default_audience,
            long_ttl_default_days,
            long_ttl_max_days,
            short_ttl_max_secs,
            failures_per_client,
            failures_per_address,
            failure_window_secs,
            otp_failures_per_day,
            failure_delay_ms,
            audit_failures_per_window,
            issuance_per_client_per_minute,
            trusted_proxies,
            body_limit_bytes,
            header_timeout_secs,
            body_timeout_secs,
            max_connections,
            cleanup_interval_secs,
            expired_retention_days,
            token_cache_ttl_ms,
            audit_short_tokens,
            audit_retention_days,
            federation_max_token_lifetime_secs,
            expiry_warning_days,
            webhook_timeout_secs,
            webhook_retry_schedule,
            tls_cert,
            tls_key,
            shutdown_timeout_secs,
            log_format,
        } = s.clone();
        let issuer = s.issuer_for(listen);
        Effective {
            listen: listen.to_string(),
            admin_url: admin_listen.map(|a| s.admin_url_for(a)),
            admin_listen: admin_listen.map(|a| a.to_string()),
            database: redact_url(&database),
            default_audience: default_audience.unwrap_or_else(|| issuer.clone()),
            issuer,
            // The master key itself is never printed; with one, no key file is read.
            key_file: if master_key.is_some() {
                None
            } else {
                key_file.or_else(|| crate::app::default_key_file(&database))
            },
            signing_alg: signing_alg.as_str().to_owned(),
            long_ttl_default_days,
            long_ttl_max_days,
            short_ttl_max_secs,
            failures_per_client,
            failures_per_address,
            failure_window_secs,
            otp_failures_per_day,
            failure_delay_ms,
            audit_failures_per_window,
            issuance_per_client_per_minute,
            trusted_proxies: trusted_proxies.iter().map(ToString::to_string).collect(),
            body_limit_bytes,
            header_timeout_secs,
            body_timeout_secs,
            max_connections,
            cleanup_interval_secs,
            expired_retention_days,
            token_cache_ttl_ms,
            audit_short_tokens,
            audit_retention_days,
            federation_max_token_lifetime_secs,
            expiry_warning_days,
            webhook_timeout_secs,
            webhook_retry_schedule: webhook_retry_schedule.to_string(),
            tls_cert,
            tls_key,
            shutdown_timeout_secs,
            log_format,
        }
    }
}

/// What `serve` would refuse at startup that can be known without a database: the database
/// URL, the master key's form, the key file's mode and form (and, for a shared database, that
/// there is one), and the TLS files.
pub fn check(s: &Settings) -> anyhow::Result<()> {
    store::check_url(&s.database)?;
    match (&s.master_key, s.key_file.clone().or_else(|| crate::app::default_key_file(&s.database))) {
        (Some(m), _) => {
            use secrecy::ExposeSecret;
            crate::crypto::Keyring::load_or_create(Path::new(""), Some(m.expose_secret()))
                .map_err(|e| anyhow::anyhow!("TOKENSMITH_MASTER_KEY: {e}"))?;
        }
        (None, Some(path)) => {
            let existing = crate::crypto::Keyring::load_existing(&path)?;
            if existing.is_none() && store::sqlite_path(&s.database).is_none() {
                anyhow::bail!("key_file {} does not exist (a shared database needs an existing key)", path.display())
            }
        }
        (None, None) => anyhow::bail!(
            "no master key for database {}: set TOKENSMITH_MASTER_KEY or key_file",
            redact_url(&s.database)
        ),
    }
    if let (Some(cert), Some(key)) = (&s.tls_cert, &s.tls_key) {
        crate::tls::acceptor(cert, key)?;
    }
    Ok(())
}

pub(super) async fn run(cmd: ConfigCommand, log_format: Option<LogFormat>) -> anyhow::Result<()> {
    let ConfigCommand::Check(args) = cmd;
    let settings = args.serve.settings(log_format).map_err(anyhow::Error::msg)?;
    check(&settings)?;
    let effective = Effective::of(&settings);
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut json = serde_json::to_value(&effective)?;
        if let Some(o) = json.as_object_mut() {
            o.insert("master_key".into(), settings.master_key.as_ref().map(|_| "<redacted>").into());
        }
        writeln!(out, "{json:#}")?;
    } else {
        writeln!(out, "# tokensmith: configuration is valid; the effective settings follow")?;
        for warning in settings.warnings() {
            writeln!(out, "# warning: {warning}")?;
        }
        if settings.master_key.is_some() {
            writeln!(out, "# master key: from TOKENSMITH_MASTER_KEY (redacted)")?;
        }
        write!(out, "{}", toml::to_string(&effective)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::config::FileConfig;
    use clap::Parser;

    const EXAMPLE: &str = include_str!("../../tokensmith.example.toml");

    /// Every key `FileConfig` accepts, from serde's own list (its "expected one of" message).
    fn file_keys() -> Vec<String> {
        let err = toml::from_str::<FileConfig>("no_such_key = 1").unwrap_err().message().to_owned();
        let list = err.split("expected one of").nth(1).unwrap_or_else(|| panic!("serde lists the keys: {err}"));
        let keys: Vec<String> = list.split(',').map(|k| k.trim().trim_matches('`').to_owned()).collect();
        assert!(keys.len() > 20 && keys.contains(&"listen".to_owned()), "{keys:?}");
        keys
    }

    fn settings_of(toml_text: &str) -> Settings {
        let mut s = Settings::default();
        toml::from_str::<FileConfig>(toml_text).unwrap().apply(&mut s).unwrap();
        s.validate().unwrap();
        s
    }

    #[test]
    fn the_example_file_parses_validates_and_states_the_defaults() {
        let s = settings_of(EXAMPLE);
        assert_eq!(
            toml::to_string(&Effective::of(&s)).unwrap(),
            toml::to_string(&Effective::of(&Settings::default())).unwrap(),
            "the example's values are the defaults"
        );
    }

    #[test]
    fn every_key_is_in_the_example_file_with_a_comment() {
        let lines: Vec<&str> = EXAMPLE.lines().collect();
        for key in file_keys() {
            let at = lines
                .iter()
                .position(|l| {
                    let l = l.trim_start_matches('#').trim_start();
                    l.strip_prefix(key.as_str()).is_some_and(|rest| rest.trim_start().starts_with('='))
                })
                .unwrap_or_else(|| panic!("key {key} is missing from tokensmith.example.toml"));
            assert!(at > 0 && lines[at - 1].starts_with("# "), "key {key} has a comment above it");
        }
    }

    #[test]
    fn the_examples_commented_out_keys_are_valid_when_uncommented() {
        let uncommented: String = EXAMPLE
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if file_keys().iter().any(|k| rest.starts_with(&format!("{k} = "))) => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let s = settings_of(&uncommented);
        assert!(s.tls(), "the example shows the TLS keys");
        assert!(s.issuer.is_some());
    }

    #[test]
    fn the_printed_settings_load_back_as_the_same_settings() {
        let s = Settings { short_ttl_max_secs: 300, log_format: LogFormat::Json, ..Settings::default() };
        let printed = toml::to_string(&Effective::of(&s)).unwrap();
        let again = settings_of(&printed);
        assert_eq!(toml::to_string(&Effective::of(&again)).unwrap(), printed);
    }

    #[test]
    fn the_database_password_is_redacted() {
        let s = Settings { database: "postgres://u:hunter2@db/x".into(), ..Settings::default() };
        let printed = toml::to_string(&Effective::of(&s)).unwrap();
        assert!(!printed.contains("hunter2") && printed.contains("u:***@db/x"), "{printed}");
    }

    #[test]
    fn config_check_takes_the_same_flags_as_serve() {
        let cli = Cli::try_parse_from(["tokensmith", "config", "check", "--listen", "127.0.0.1:9", "--json"]).unwrap();
        let Command::Config(cmd) = cli.command else { panic!("config check") };
        let ConfigCommand::Check(args) = *cmd;
        assert!(args.json);
        assert_eq!(args.serve.settings(None).unwrap().listen.port(), 9);
    }
}
