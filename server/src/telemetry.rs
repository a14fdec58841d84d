//! Logging setup: `tracing` to stderr, human-readable or JSON lines.
//!
//! stdout is reserved for command output (generated passwords, tokens, the `listening` line
//! tests read), so logs always go to stderr. The filter comes from `RUST_LOG`, defaulting to
//! `info` for Sealpost and `warn` for noisy dependencies. Never log a secret: link secrets,
//! passphrases, keys, passwords and tokens must not reach any `tracing` macro.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter used when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_sessions=warn,hyper=warn";

/// Install the global subscriber. Calling it twice is harmless (the second call is ignored),
/// which keeps tests that build several apps in one process simple.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colour only on a terminal: logs saved to a file or the journal must stay greppable.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // Already installed (tests, or a second `App`): keep the first subscriber.
    drop(result);
}
