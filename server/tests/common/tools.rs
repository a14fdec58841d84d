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

/// CPython's own e-mail test corpus (`test/test_email/data/msg_*.txt`, sorted), under
/// [`require`] with the name `cpython-email-corpus`: some distributions leave the `test`
/// package out (Debian: `libpython3.11-testsuite`).
pub fn cpython_email_corpus() -> Option<Vec<PathBuf>> {
    require("cpython-email-corpus", cpython_email_files)
}

fn cpython_email_files() -> Result<Vec<PathBuf>, String> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import test.test_email, os; \
             print(os.path.join(os.path.dirname(test.test_email.__file__), 'data'))",
        ])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err("CPython's `test` package is not installed".to_owned());
    }
    let dir = PathBuf::from(super::text(&out.stdout).trim());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("msg_") && n.ends_with(".txt"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no msg_*.txt in {}", dir.display()));
    }
    Ok(files)
}
