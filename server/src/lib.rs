//! Sealpost server: the `sealpost` binary's library.
//!
//! Sealpost is the encryption fallback for email: messages that cannot travel under forced TLS
//! are stored encrypted and picked up over HTTPS (see `docs/DESIGN.md`, and
//! `docs/ARCHITECTURE.md` for the module map). This crate holds everything that does I/O:
//! configuration, the SQLite store, the hash-chained audit log, the HTTP and SMTP listeners,
//! outbound mail and the administrative CLI. All cryptography lives in `sealpost-crypto`; this
//! crate never implements a primitive itself.
//!
//! Layering, top to bottom:
//! - [`cli`] parses the command line and calls into [`app`];
//! - [`app`] opens the data directory, the server key and the [`store`], and runs listeners;
//! - [`web`] holds axum routers and the single [`web::AppError`]; [`smtp`] is the inbound
//!   SMTP listener; both stay thin and submit or open through [`messages`];
//! - [`messages`] is the domain: submissions become ciphertext, ciphertext becomes a message;
//! - [`notify`] sends notifications and one-time codes;
//! - [`audit`] appends to and verifies the tamper-evident log;
//! - [`jobs`] runs maintenance (expiry and purge);
//! - [`store`] is the only place where SQL is written.

pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod files;
pub mod ids;
pub mod jobs;
pub mod messages;
pub mod net;
pub mod notify;
pub mod serve;
pub mod smtp;
pub mod staff;
pub mod store;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod testing;
pub mod throttle;
pub mod tls;
pub mod web;
