//! End-to-end tests of `micro`: the stack in-process on fresh databases,
//! the binary run as a user runs it.

mod account;
mod commands;
mod demo;
mod keyring;
mod listen;
mod local_stack;
mod support;
