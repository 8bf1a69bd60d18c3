//! `micro`: the Micro developer console.

use std::process::ExitCode;

use clap::Parser;
use micro::cli::Cli;
use micro::exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("micro: cannot start: {e}");
            return ExitCode::from(exit::OTHER);
        }
    };
    if cli.command.is_some() && (cli.console.start_stack || cli.console.no_start_stack) {
        eprintln!(
            "micro: --start-stack and --no-start-stack apply to the console only (micro without a subcommand)"
        );
        return ExitCode::from(exit::USAGE);
    }
    let result = match cli.command {
        None => runtime.block_on(micro::console::run(cli.global, cli.console)),
        Some(command) => runtime.block_on(micro::commands::run(cli.global, command)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("micro: {}", e.message());
            ExitCode::from(e.code())
        }
    }
}
