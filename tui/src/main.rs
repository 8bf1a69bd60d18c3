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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => anyhow::bail!(
            "the full-screen console is not built yet; the platform is at {} (profile {})",
            cli.gateway,
            cli.profile
        ),
        Some(command) => anyhow::bail!("{command:?} is not built yet"),
    }
}
