//! Sealpost server: the `sealpost` binary's library.
//!
//! Sealpost is the encryption fallback for email: messages that cannot travel under forced TLS
//! are stored encrypted and picked up over HTTPS (see `shared/DESIGN.md`). This crate holds
//! everything that does I/O: configuration, the SQLite store, the hash-chained audit log, the
//! HTTP (and later SMTP) listeners and the administrative CLI. All cryptography lives in
//! `sealpost-crypto`; this crate never implements a primitive itself.
//!
//! Layering, top to bottom:
//! - [`cli`] parses the command line and calls into [`app`];
//! - [`app`] opens the data directory, the server key and the [`store`], and runs listeners;
//! - [`web`] holds axum routers and the single [`web::AppError`]; handlers stay thin;
//! - [`audit`] appends to and verifies the tamper-evident log;
//! - [`jobs`] runs maintenance (expiry and purge);
//! - [`store`] is the only place where SQL is written.

pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod jobs;
pub mod messages;
pub mod notify;
pub mod smtp;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod web;
