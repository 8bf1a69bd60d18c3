//! Auth through its HTTP routes, on a fresh database and a private Redis
//! namespace, with the internal token the gateway would attach.

mod api_keys;
mod callers;
mod helpers;
mod lockout;
mod refresh;
mod registration;
mod sessions;
mod webhook_secrets;
