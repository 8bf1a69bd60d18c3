//! End-to-end tests: the whole stack in-process, through the gateway, on
//! fresh databases and a private Redis namespace per test.

mod flows;
mod gateway_auth;
mod hostile_input;
mod rate_limit;
mod stream;
mod support;
