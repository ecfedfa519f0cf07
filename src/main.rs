//! The `tokensmith` binary: parse the command line, run it, and turn errors into a
//! one-line message and a non-zero exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use tokensmith::cli::{Cli, run};

/// mimalloc: the request path makes many small, short-lived allocations, and glibc's
/// allocator costs measurably more per request on it (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            eprintln!("{}", one_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, with the chain of causes.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// clap's message is several lines (usage, tips): keep, on one line, what is wrong, the
/// possible values or a suggestion when clap has one, and the help of the command concerned.
fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut message = lines.next().unwrap_or("invalid arguments").to_owned();
    // "the following required arguments were not provided:" names them on the next line.
    if message.ends_with(':') {
        message = format!("{message} {}", lines.next().unwrap_or_default());
    }
    let mut command = "tokensmith".to_owned();
    for line in lines {
        if let Some(values) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            message = format!("{message}; {values}");
        } else if let Some(tip) = line.strip_prefix("tip: ") {
            message = format!("{message}; {tip}");
        } else if let Some(usage) = line.strip_prefix("Usage: ") {
            // `tokensmith client create [OPTIONS] --name <NAME>`: the words before the first flag.
            let words: Vec<&str> = usage.split_whitespace().take_while(|w| !w.starts_with(['[', '<', '-'])).collect();
            if !words.is_empty() {
                command = words.join(" ");
            }
        }
    }
    format!("{message} (see {command} --help)")
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn clap_errors_become_one_line_naming_the_commands_help() {
        let rendered = "error: invalid value 'foo' for '<SHELL>'\n  [possible values: bash, zsh]\n\n\
                        Usage: tokensmith completions <SHELL>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "error: invalid value 'foo' for '<SHELL>'; possible values: bash, zsh (see tokensmith completions --help)"
        );
        let rendered = "error: the following required arguments were not provided:\n  --name <NAME>\n\n\
                        Usage: tokensmith client create --name <NAME> --scopes <SCOPES>\n";
        assert_eq!(
            one_line(rendered),
            "error: the following required arguments were not provided: --name <NAME> (see tokensmith client create --help)"
        );
        assert_eq!(one_line("error: boom\n"), "error: boom (see tokensmith --help)");
    }
}
