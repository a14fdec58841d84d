//! The process environment, read in one place: which `SEALPOST_*` variables to keep away from
//! the binary under test, `PATH` for finding tools, and the switches of the test run itself
//! (`SEALPOST_TEST_REQUIRE`, `SEALPOST_CRASH_SEED`). Nothing here sets a variable.

use std::ffi::OsString;

/// Every variable of the test process, as the operating system gave it.
#[expect(
    clippy::disallowed_methods,
    reason = "the tests' own switches and PATH come from the environment; this is the one place they are read"
)]
fn environment() -> Vec<(OsString, OsString)> {
    std::env::vars_os().collect()
}

/// The value of `name`, if it is set (to anything, even an empty or non-UTF-8 value).
pub fn var_os(name: &str) -> Option<OsString> {
    environment()
        .into_iter()
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// The value of `name` as text; `None` when unset or not UTF-8.
pub fn var(name: &str) -> Option<String> {
    var_os(name).and_then(|v| v.into_string().ok())
}

/// The names of the `SEALPOST_*` variables set in the test process.
pub fn sealpost_names() -> Vec<OsString> {
    environment()
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key.to_string_lossy().starts_with("SEALPOST_"))
        .collect()
}
