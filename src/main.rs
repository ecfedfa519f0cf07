//! The `tokensmith` binary: parse the command line, run it, and turn errors into a
//! one-line message and a non-zero exit code. Everything else lives in the library.

use clap::Parser;
use tokensmith::cli::{Cli, init_tracing, run};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, lowercase, with the chain of causes.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            std::process::ExitCode::FAILURE
        }
    }
}
