//! End-to-end tests: the whole stack in-process, through the gateway, on
//! fresh databases and a private Redis namespace per test.

mod callers;
mod flows;
mod gateway_auth;
mod login_lockout;
mod paths;
mod rate_limit;
mod stream;
mod support;
