//! The full-screen console that `micro` opens with no subcommand.
//!
//! Elm-style: [`state::State`] holds everything, [`update::update`] turns a
//! [`msg::Msg`] into state changes and [`update::Command`]s, [`view::render`]
//! draws the state, and [`runtime`] is the only part that touches the
//! terminal and the network.

pub mod fixtures;
pub mod keymap;
pub mod msg;
pub mod runtime;
pub mod state;
pub mod store;
pub mod update;
pub mod view;

/// `micro` with no subcommand: the console for the global flags' gateway and profile.
pub async fn run(global: crate::cli::Global) -> crate::exit::CliResult<u8> {
    let context = crate::commands::context(&global)?;
    runtime::run(context)
        .await
        .map_err(|e| crate::exit::CliError::Other(format!("the console stopped: {e:#}")))?;
    Ok(crate::exit::OK)
}
