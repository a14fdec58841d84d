//! Configuration errors, and how they name the setting.
//!
//! An error names the setting (its TOML key) and, when the value came from the environment or
//! the file, where: `invalid value for max_recipients (SEALPOST_MAX_RECIPIENTS): ...`. Errors
//! from extraction are rendered here from their kind, never with the offending value: serde's
//! own messages quote it (`invalid type: found string "hunter2"`), and the setting may be a
//! secret. Messages from this module's checks and deserializers may quote a value on purpose,
//! for settings that are not secret.

use std::path::PathBuf;

use figment::error::{Actual, Kind};
use figment::{Figment, Metadata, Source};
use ipnet::IpNet;

use super::Config;

/// Why the configuration could not be loaded. Messages name the setting and never contain a
/// secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Toml { path: PathBuf, message: String },
    #[error(
        "invalid value for {setting}{}: {reason}",
        origin.as_ref().map(|o| format!(" ({o})")).unwrap_or_default()
    )]
    Invalid {
        /// The setting's TOML key.
        setting: String,
        /// Where the value was set: `SEALPOST_<KEY>`, or `in <file>`; `None` for a default or a
        /// value set in code.
        origin: Option<String>,
        reason: String,
    },
}

impl ConfigError {
    /// The first error of an extraction, without the value that failed.
    pub(super) fn from_figment(error: figment::Error) -> Self {
        let profile = error.profile.clone().unwrap_or_default();
        let origin = error
            .metadata
            .as_ref()
            .and_then(|md| origin(md, &profile, &error.path));
        let setting = match error.path.first() {
            Some(key) => key.clone(),
            None => "configuration".to_owned(),
        };
        Self::Invalid {
            setting,
            origin,
            reason: reason(&error.kind),
        }
    }
}

/// Where a value was set, for the message: the environment variable's name, or the file.
fn origin(md: &Metadata, profile: &figment::Profile, path: &[String]) -> Option<String> {
    match md.source.as_ref()? {
        Source::File(file) => Some(format!("in {}", file.display())),
        Source::Custom(_) => Some(md.interpolate(profile, path)),
        _ => None,
    }
}

/// An extraction error's kind in words, without the value.
fn reason(kind: &Kind) -> String {
    match kind {
        Kind::Message(message) => message.clone(),
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!(
                "expected {}, found {}",
                expected_words(expected),
                what(actual)
            )
        }
        Kind::InvalidLength(len, expected) => format!("expected {expected}, found {len} items"),
        Kind::UnknownVariant(_, expected) => format!("expected one of: {}", expected.join(", ")),
        Kind::MissingField(field) => format!("missing {field}"),
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "number out of range".to_owned(),
        Kind::UnknownField(..)
        | Kind::DuplicateField(_)
        | Kind::Unsupported(_)
        | Kind::UnsupportedKey(..) => "not a value this setting takes".to_owned(),
    }
}

fn expected_words(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative whole number",
        "a boolean" => "true or false",
        other => other,
    }
}

/// What kind of value was found, never the value itself.
fn what(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "true or false",
        Actual::Signed(n) if *n < 0 => "a negative number",
        Actual::Unsigned(_) | Actual::Signed(_) => "a whole number",
        Actual::Float(_) => "a fractional number",
        Actual::Char(_) | Actual::Str(_) => "text",
        Actual::Bytes(_) => "bytes",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        _ => "another kind of value",
    }
}

/// The broadest IPv4 network a list of trusted clients may hold without an acknowledgement.
const WIDEST_V4: u8 = 8;
/// The broadest IPv6 network (a large site's allocation) likewise.
const WIDEST_V6: u8 = 32;

/// Whether `net` is broader than [`WIDEST_V4`] or [`WIDEST_V6`] (`0.0.0.0/0`, `::/0`, ...).
/// Clients are matched by their canonical address, so an IPv4-mapped IPv6 network matches no
/// one and needs no special case.
fn is_wide(net: &IpNet) -> bool {
    match net {
        IpNet::V4(net) => net.prefix_len() < WIDEST_V4,
        IpNet::V6(net) => net.prefix_len() < WIDEST_V6,
    }
}

/// The checks' view of the figment a [`Config`] came from: which settings were set, and where.
pub(super) struct Checks<'a> {
    figment: &'a Figment,
}

impl<'a> Checks<'a> {
    pub(super) fn new(figment: &'a Figment) -> Self {
        Self { figment }
    }

    /// Whether a source set `key` (else it has its default).
    pub(super) fn is_set(&self, key: &str) -> bool {
        self.figment.contains(key)
    }

    /// `key`'s value is invalid for `reason` (which must not contain a secret).
    pub(super) fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        debug_assert!(Config::keys().contains(&key), "no setting {key}");
        let origin = self.figment.find_metadata(key).and_then(|md| {
            let profile = self.figment.profile().clone();
            origin(md, &profile, &[key.to_owned()])
        });
        ConfigError::Invalid {
            setting: key.to_owned(),
            origin,
            reason: reason.into(),
        }
    }

    /// `key` must be at least 1.
    pub(super) fn positive(&self, key: &str, value: u64) -> Result<(), ConfigError> {
        if value == 0 {
            return Err(self.invalid(key, "must be at least 1"));
        }
        Ok(())
    }

    /// Every network of `key` is at most as broad as a /8 (IPv4) or /32 (IPv6), unless
    /// `allow_key` (`allowed`) acknowledges wider ones. `risk` says what a client in such a
    /// network could do, for the error.
    pub(super) fn narrow_networks(
        &self,
        (key, networks): (&str, &[IpNet]),
        (allow_key, allowed): (&str, bool),
        risk: &str,
    ) -> Result<(), ConfigError> {
        if allowed {
            return Ok(());
        }
        let Some(wide) = networks.iter().find(|net| is_wide(net)) else {
            return Ok(());
        };
        let widest = match wide {
            IpNet::V4(_) => WIDEST_V4,
            IpNet::V6(_) => WIDEST_V6,
        };
        Err(self.invalid(
            key,
            format!(
                "{wide} is broader than a /{widest}: {risk}; list only the hosts or networks \
                 meant, or set {allow_key} = true ({}=true) to accept it",
                super::env_name(allow_key)
            ),
        ))
    }

    /// Two settings that are set together or not at all, such as a certificate and its key.
    pub(super) fn together(
        &self,
        (first, first_set): (&str, bool),
        (second, second_set): (&str, bool),
    ) -> Result<(), ConfigError> {
        if first_set != second_set {
            return Err(self.invalid(first, format!("{first} and {second} must be set together")));
        }
        Ok(())
    }
}
