//! Helpers shared by the black-box tests in `server/tests/`: the real `sealpost` binary on a
//! free port in a temporary data directory, driven over real sockets. One concern per module:
//!
//! - `env`: the process environment, read in one function;
//! - `tools`: optional external tools and `SEALPOST_TEST_REQUIRE`;
//! - `app`: the binary, its CLI and `sealpost serve` ([`App`]), the audit log through the CLI;
//! - `http`: requests and [`Reply`], page text, `multipart/form-data` bodies;
//! - `outbox`: the file outbox's mails, pickup links and one-time codes;
//! - `pickup`: the recipient's steps, up to a whole [`PickedUp`] message;
//! - `files`: test data, canaries, scanning files for secrets;
//! - `db`: the database file from outside (the one module that runs SQL).

#![allow(
    dead_code,
    unused_imports,
    reason = "each test crate includes this module and uses a different part of it"
)]

pub mod app;
pub mod db;
pub mod env;
pub mod files;
pub mod http;
pub mod outbox;
pub mod pickup;
pub mod tools;

pub use app::{App, AppBuilder, add_relay, cli, listening_addr, sealpost, smtp_addr, spawn_app};
pub use db::{Db, Dump, dump_diff};
pub use files::{
    canary, contains, copy_dir, files_under, log_mentions_code, pseudo_random_bytes, target_dir,
    text,
};
pub use http::{Multipart, Reply, attachments, html_text, html_unescape};
pub use outbox::{Mail, PickupLink, digit_runs};
pub use pickup::{Opened, PickedUp};
pub use tools::{cpython_email_corpus, require, require_tool};
