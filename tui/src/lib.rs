//! The `micro` client: the full-screen console and the pieces it shares with the subcommands.

pub mod console;
