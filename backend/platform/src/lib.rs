//! Plumbing every service shares, written once: configuration readers,
//! telemetry, database and Redis setup, the HTTP stack, health checks and
//! internal tokens; with the `testing` feature, the test harness's fresh
//! databases.

pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod health;
pub mod http;
pub mod ids;
pub mod internal_token;
pub mod metrics;
pub mod redis;
pub mod session;
pub mod shutdown;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// Every process that links the platform allocates with mimalloc: under
/// load a request's many small short-lived buffers (headers, JSON, spans)
/// cost glibc's malloc about a tenth of the gateway's CPU, and mimalloc's
/// per-thread free lists take most of that back.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
