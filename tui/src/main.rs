//! `micro`: the Micro developer console.

use clap::{Parser, Subcommand};

/// The Micro developer console: live webhook events, payments and the ledger
/// in your terminal, and subcommands for scripts.
#[derive(Debug, Parser)]
#[command(name = "micro", version, about)]
struct Cli {
    /// Where the Micro gateway listens.
    #[arg(
        long,
        env = "MICRO_GATEWAY",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    gateway: String,
    /// Which stored login to use.
    #[arg(long, default_value = "default", global = true)]
    profile: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in, create a development API key and keep it in the OS keyring.
    Login {
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Stream events and forward each one, signed, to a local URL.
    Listen {
        #[arg(long)]
        forward_to: Option<String>,
    },
    /// Create the objects that make an event happen, e.g. `payment.succeeded`.
    Trigger { event: String },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let what = match cli.command {
        None => "the full-screen console".to_owned(),
        Some(Command::Login { .. }) => "micro login".to_owned(),
        Some(Command::Listen { .. }) => "micro listen".to_owned(),
        Some(Command::Trigger { event }) => format!("micro trigger {event}"),
    };
    eprintln!(
        "micro: {what} is not available in this version; the platform's API is at {} (profile {})",
        cli.gateway, cli.profile
    );
    std::process::ExitCode::from(2)
}
