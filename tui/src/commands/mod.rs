//! One module per subcommand group; each returns the exit code or a
//! [`CliError`](crate::exit::CliError) that `main` prints.

pub mod account;
pub mod demo;
pub mod events;
pub mod keys;
pub mod ledger;
pub mod listen;
pub mod payments;
pub mod trigger;
pub mod webhooks;

use std::io::{IsTerminal, Write};

use clap::CommandFactory;

use crate::cli::{Cli, Command, Format, Global};
use crate::config::{Settings, Target, config_dir};
use crate::exit::{CliError, CliResult};
use crate::session::Invocation;

/// Resolves the global flags against the config file.
pub fn context(global: &Global) -> CliResult<Invocation> {
    let dir = config_dir().map_err(|e| CliError::Other(e.to_string()))?;
    let settings = Settings::load(&dir).map_err(|e| CliError::Usage(e.to_string()))?;
    let target = Target::resolve(global.gateway.clone(), global.profile.clone(), &settings);
    Ok(Invocation {
        target,
        settings,
        config_dir: dir,
        api_key: global.api_key.clone().filter(|k| !k.is_empty()),
        insecure_storage: global.insecure_storage,
    })
}

/// Runs one subcommand; `Ok` carries the exit code.
pub async fn run(global: Global, command: Command) -> CliResult<u8> {
    if let Command::Completions { shell } = command {
        let mut out = std::io::stdout();
        clap_complete::generate(shell, &mut Cli::command(), "micro", &mut out);
        return Ok(crate::exit::OK);
    }
    let context = context(&global)?;
    let format = global.format.unwrap_or(Format::Text);
    match command {
        Command::Register(args) => account::register(&context, args, format).await,
        Command::Login(args) => account::login(&context, args, format).await,
        Command::Logout => account::logout(&context).await,
        Command::Whoami => account::whoami(&context, format).await,
        Command::Listen(args) => {
            let format = global.format.unwrap_or(if std::io::stdout().is_terminal() {
                Format::Text
            } else {
                Format::Json
            });
            listen::run(&context, args, format).await
        }
        Command::Trigger(args) => trigger::run(&context, args, format).await,
        Command::Payments(command) => payments::run(&context, command, format).await,
        Command::Events(command) => events::run(&context, command, format).await,
        Command::Ledger(command) => ledger::run(&context, command, format).await,
        Command::Keys(command) => keys::run(&context, command, format).await,
        Command::Webhooks(command) => webhooks::run(&context, command, format).await,
        Command::Demo(args) => demo::run(&context, args, format).await,
        Command::Completions { .. } => Ok(crate::exit::OK),
    }
}

/// Writes to stdout, ignoring a closed pipe (`micro ... | head`).
pub(crate) fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Text or JSON for one value.
pub(crate) fn show<T: serde::Serialize>(format: Format, value: &T, text: impl FnOnce(&T) -> String) {
    match format {
        Format::Json => print(&crate::output::json(value)),
        Format::Text => print(&text(value)),
    }
}

pub(crate) fn page(args: &crate::cli::PageArgs) -> contract::list::PageParams {
    contract::list::PageParams {
        limit: args.limit,
        starting_after: args.starting_after.clone(),
    }
}

/// A list's table, and a hint when there is more.
pub(crate) fn list_text(table: &crate::output::Table, has_more: bool, last_id: Option<&str>) -> String {
    let mut text = table.render();
    if let (true, Some(id)) = (has_more, last_id) {
        text.push_str(&format!("(more: --starting-after {id})\n"));
    }
    text
}
