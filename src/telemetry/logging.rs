//! Log lines: one `tracing` subscriber per process, on stderr, as text or JSON. The access
//! line of every request comes from `http::observe`; the layers log what they decide.

use crate::config::LogFormat;

/// Installs the log subscriber on stderr (`RUST_LOG` filters; default `info`).
/// Admin commands default to warnings only: their output is the result, not a log.
/// With `json`, each line is one object whose event fields sit at the top level
/// (`request_id`, `operation`, `status`, …) beside `timestamp`, `level` and `target`.
pub fn init(format: LogFormat, serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if serving { "info,sqlx=warn" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: a log file or a journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
