//! airlock: a PostgreSQL wire-protocol proxy that forwards reads at
//! near-native speed and will hold writes for human approval.
//!
//! # Layout
//!
//! - [`protocol`]: bytes ↔ the few typed messages the proxy reads or writes;
//!   framing; no policy, no I/O.
//! - [`frontend`]: the client listener, startup and authentication relay,
//!   cancel routing, and the per-client [`frontend::session::Session`] state
//!   machine. Every client message passes the session's
//!   [`frontend::gate::Gate`] before it is forwarded; server messages stream
//!   back through the [`frontend::relay::Relay`] scanner untouched.
//! - [`classify`]: SQL → statement facts (kind, tables, functions, risk
//!   flags) with libpg_query; fails closed; a bounded per-thread cache.
//! - [`catalog`]: each upstream database's user-defined code (functions,
//!   operators, views, domains, policies), kept current, which completes the
//!   classifier's facts with what the text does not show.
//! - [`policy`]: ordered rule files → allow / deny / require approval;
//!   policy test cases; live reload.
//! - [`backend`]: connections to the upstream PostgreSQL server.
//! - [`config`]: settings from flags, `AIRLOCK_*` variables and TOML.
//! - [`admin`]: the HTTP admin API (health, readiness, metrics).
//! - [`metrics`]: process-wide counters.
//! - [`cluster`]: throwaway PostgreSQL clusters for the demo, tests and
//!   benchmarks.
//! - [`demo`]: `airlock demo`.
//!
//! Design decisions that need more than a module doc live in `docs/`.

#![deny(unsafe_code)]

pub mod admin;
pub mod approval;
pub mod backend;
pub mod catalog;
pub mod classify;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod frontend;
pub mod metrics;
pub mod policy;
pub mod protocol;
pub mod store;

pub use config::Config;
pub use frontend::{serve, Proxy};
