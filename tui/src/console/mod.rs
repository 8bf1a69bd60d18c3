//! The full-screen console that `micro` opens with no subcommand.
//!
//! Elm-style: [`state::State`] holds everything, [`update::update`] turns a
//! [`msg::Msg`] into state changes and [`update::Command`]s, [`view::render`]
//! draws the state, and [`runtime`] is the only part that touches the
//! terminal and the network.

#[cfg(feature = "testing")]
pub mod fixtures;
pub mod keymap;
pub mod msg;
pub mod runtime;
pub mod state;
pub mod store;
pub mod update;
pub mod view;

/// `micro` with no subcommand: the console for the global flags' gateway
/// and profile, after starting a local platform if one is wanted
/// ([`crate::local_stack`]), which is stopped when the console ends.
pub async fn run(global: crate::cli::Global, console: crate::cli::ConsoleArgs) -> crate::exit::CliResult<u8> {
    let context = crate::commands::context(&global)?;
    let mut stack = crate::local_stack::prepare(&global, console, &context).await?;
    let result = tokio::select! {
        result = runtime::run(context) => result,
        // Closing the terminal or `kill` would otherwise leave the platform
        // running and the terminal in raw mode.
        () = terminated() => {
            runtime::restore_terminal();
            Ok(())
        }
    };
    if let Some(stack) = stack.as_mut() {
        let status = stack.stop();
        eprintln!(
            "Stopped micro-stack{}; its log is {}",
            status.map(|s| format!(" ({s})")).unwrap_or_default(),
            stack.log.display()
        );
    }
    result.map_err(|e| crate::exit::CliError::Other(format!("the console stopped: {e:#}")))?;
    Ok(crate::exit::OK)
}

/// SIGTERM or SIGHUP; never where they cannot be caught.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut hangup)) =
            (signal(SignalKind::terminate()), signal(SignalKind::hangup()))
        {
            tokio::select! {
                _ = term.recv() => {}
                _ = hangup.recv() => {}
            }
            return;
        }
    }
    std::future::pending::<()>().await;
}
