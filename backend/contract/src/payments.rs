//! Filled in with the payments service.
