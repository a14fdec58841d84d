//! Optional external tools (`chromium`, `swaks`, `python3`, `openssl`, Postfix, CPython's
//! e-mail corpus): one [`require`] decides whether a test that lacks one skips or fails.
//!
//! `SEALPOST_TEST_REQUIRE` unset or empty: a missing tool prints `skipping: <why>` (to stdout
//! and stderr) and the test passes. `all`, or a comma-separated list naming the tool (spaces
//! around names ignored): the test panics, naming it. CI sets `all`, so nothing passes by
//! skipping there.

use std::path::PathBuf;

use super::env;

/// Whether `SEALPOST_TEST_REQUIRE` demands `name`.
fn required(name: &str) -> bool {
    env::var("SEALPOST_TEST_REQUIRE")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .any(|t| t == "all" || t == name)
}

/// `check()` finds the tool `name` (`Ok`) or says why it is missing (`Err`). On `Err`: panic
/// when `SEALPOST_TEST_REQUIRE` demands `name`, else print `skipping: <why>` and return
/// `None`, so the test returns early and passes.
pub fn require<T>(name: &str, check: impl FnOnce() -> Result<T, String>) -> Option<T> {
    let why = match check() {
        Ok(found) => return Some(found),
        Err(why) => why,
    };
    assert!(
        !required(name),
        "{why}, but SEALPOST_TEST_REQUIRE requires {name}"
    );
    eprintln!("skipping: {why}");
    println!("skipping: {why}");
    None
}

/// The path of program `name` on `PATH` (a file of that name in one of its directories), under
/// [`require`]: `skipping: <name> not installed` when there is none.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    require(name, || {
        env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|candidate| candidate.is_file())
            })
            .ok_or_else(|| format!("{name} not installed"))
    })
}
