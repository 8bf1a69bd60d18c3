//! `micro`: the full-screen console ([`console`]), the command line, and the pieces both use — the
//! listen core ([`listen`]), signed forwarding ([`forward`]), credentials
//! ([`credentials`]), the logged-in session ([`session`]), output helpers, the
//! parts of `micro demo` ([`demo`]) and the local platform the console can
//! start ([`local_stack`]).

pub mod cli;
pub mod commands;
pub mod config;
pub mod console;
pub mod credentials;
pub mod demo;
pub mod exit;
pub mod forward;
pub mod listen;
pub mod local_stack;
pub mod output;
pub mod session;
pub mod trigger;
