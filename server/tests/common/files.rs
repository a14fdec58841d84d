//! Files, bytes and text: reproducible test data, unique canaries, scanning a data directory,
//! and the where-is-this-secret checks the invariant tests make.

use std::path::{Path, PathBuf};

/// Lossy UTF-8.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The target directory (`target/`), for artefacts a human may want to look at.
pub fn target_dir() -> PathBuf {
    // CARGO_BIN_EXE_sealpost is <target>/<profile>/sealpost.
    let exe = Path::new(env!("CARGO_BIN_EXE_sealpost"));
    exe.parent()
        .and_then(Path::parent)
        .map_or_else(std::env::temp_dir, Path::to_path_buf)
}

/// Whether `code` appears in `log` as a number of its own, not counting fractional seconds of
/// timestamps (`…:56.123456Z`), which are six digits after a dot.
pub fn log_mentions_code(log: &str, code: &str) -> bool {
    let bytes = log.as_bytes();
    let mut from = 0;
    while let Some(pos) = log[from..].find(code) {
        let at = from + pos;
        let end = at + code.len();
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(end).copied();
        let standalone = !before.is_some_and(|b| b.is_ascii_digit() || b == b'.')
            && !after.is_some_and(|b| b.is_ascii_digit());
        if standalone {
            return true;
        }
        from = at + 1;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Files and bytes

/// Deterministic pseudo-random bytes (SplitMix64), so a failure can be reproduced.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A marker unique to this test run: `<label>-<pid>-<nanos>`.
pub fn canary(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{label}-{}-{nanos:x}", std::process::id())
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Copy a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy directory");
    for file in files_under(from) {
        let rel = file.strip_prefix(from).expect("file under the source");
        let dest = to.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).expect("create directory");
        }
        std::fs::copy(&file, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", file.display()));
    }
}
