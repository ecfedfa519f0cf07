//! `tokensmith serve`: settings from defaults, the config file, environment and flags; then
//! the server until SIGTERM or Ctrl-C, after which requests in flight get
//! `shutdown_timeout_secs` to finish and the process exits 0.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::app::Application;
use crate::config::{FileConfig, LogFormat, Settings};
use crate::store::redact_url;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags and environment override it).
    #[arg(long, env = "TOKENSMITH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: FileConfig,
}

impl ServeArgs {
    /// Defaults, then the file, then environment and flags (`log_format`: the global
    /// `--log-format` flag or `TOKENSMITH_LOG_FORMAT`, if given).
    pub fn settings(self, log_format: Option<LogFormat>) -> Result<Settings, String> {
        let mut s = Settings::default();
        if let Some(path) = &self.config {
            FileConfig::load(path)?.apply(&mut s)?;
        }
        self.overrides.apply(&mut s)?;
        if let Some(f) = log_format {
            s.log_format = f;
        }
        s.master_key = std::env::var("TOKENSMITH_MASTER_KEY").ok().map(Into::into);
        s.validate()?;
        Ok(s)
    }
}

pub(super) async fn run(args: ServeArgs, log_format: Option<LogFormat>) -> anyhow::Result<()> {
    let settings = match args.settings(log_format) {
        Ok(s) => s,
        Err(e) => {
            crate::telemetry::logging::init(log_format.unwrap_or_default(), true);
            anyhow::bail!(e)
        }
    };
    crate::telemetry::logging::init(settings.log_format, true);
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    serve(settings).await
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let database = settings.database.clone();
    let stop = shutdown_signal();
    let app = Application::build(settings).await?;
    let mut out = std::io::stdout().lock();
    let scheme = if app.tls() { "https" } else { "http" };
    writeln!(out, "tokensmith listening on {scheme}://{} (issuer {})", app.local_addr(), app.issuer())?;
    if let (Some(addr), Some(url)) = (app.admin_addr(), app.admin_url()) {
        writeln!(out, "admin API and console on {scheme}://{addr} (admin tokens' audience {url})")?;
    }
    writeln!(out, "database {}", redact_url(&database))?;
    if !app.has_clients() {
        writeln!(out, "no clients yet; create one with:")?;
        writeln!(
            out,
            "  tokensmith client create --database {} --name my-service --scopes \"tokens:write\"",
            redact_url(&database)
        )?;
    }
    out.flush()?;
    drop(out);
    app.run_until_stopped(stop).await
}

/// Completes on SIGTERM or Ctrl-C (SIGINT). The handlers are installed when this is called,
/// not when the future is first polled, so a signal that arrives while the server starts is
/// not lost (nor does it kill the process with the default action).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    };
    async move {
        #[cfg(unix)]
        match handlers {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received");
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn flags_override_the_config_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9001\"\nshort_ttl_max_secs = 300\n").unwrap();
        let cli = Cli::try_parse_from([
            "tokensmith",
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9002",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else { panic!("serve") };
        let s = args.settings(None).unwrap();
        assert_eq!(s.listen.port(), 9002);
        assert_eq!(s.short_ttl_max_secs, 300);
        assert_eq!(s.long_ttl_max_days, 90);
    }
}
