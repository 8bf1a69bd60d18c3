//! End-to-end tests: the whole stack in-process, through the gateway, on
//! fresh databases and a private Redis namespace per test.

mod auth_failures;
mod callers;
mod flows;
mod gateway_auth;
mod hostile_input;
mod login_lockout;
mod metrics;
mod paths;
mod rate_limit;
mod stream;
mod stream_bounds;
mod support;
