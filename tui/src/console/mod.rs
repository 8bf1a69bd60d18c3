//! The full-screen console that `micro` opens with no subcommand.
//!
//! Elm-style: [`state::State`] holds everything, [`update::update`] turns a
//! [`msg::Msg`] into state changes and [`update::Command`]s, [`view::render`]
//! draws the state, and [`runtime`] is the only part that touches the
//! terminal and the network.

pub mod fixtures;
pub mod keymap;
pub mod msg;
pub mod state;
pub mod store;
pub mod update;
pub mod view;
