//! Storage: the data directory, the database and the server key.

use secrecy::{ExposeSecret, SecretString};
use serde::Serializer;
use url::Url;

use super::error::Checks;
use super::{Config, ConfigError};

/// Check the storage settings, and fill in the defaults that follow `data_dir`.
pub(super) fn check(config: &mut Config, checks: &Checks) -> Result<(), ConfigError> {
    if config.data_dir.as_os_str().is_empty() {
        return Err(checks.invalid("data_dir", "must not be empty"));
    }
    if !checks.is_set("database_url") {
        config.database_url = SecretString::from(format!(
            "sqlite://{}",
            config.data_dir.join("sealpost.db").display()
        ));
    } else if !config.database_url.expose_secret().starts_with("sqlite:") {
        return Err(checks.invalid(
            "database_url",
            "only sqlite: URLs are supported in this version",
        ));
    }
    if !checks.is_set("server_key_file") {
        config.server_key_file = config.data_dir.join("server.key");
    }
    if config
        .server_key
        .as_ref()
        .is_some_and(|key| key.expose_secret().trim().is_empty())
    {
        config.server_key = None;
    }
    Ok(())
}

/// Serialize a database URL without its password (and as `(secret)` if it is no URL).
pub(super) fn url_without_password<S: Serializer>(
    url: &SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match Url::parse(url.expose_secret()) {
        Ok(mut url) => {
            if url.password().is_some() && url.set_password(Some("redacted")).is_err() {
                return serializer.serialize_str("(secret)");
            }
            serializer.serialize_str(url.as_str())
        }
        Err(_) => serializer.serialize_str("(secret)"),
    }
}

/// Serialize a secret as `(secret)`, or nothing when it is not set.
pub(super) fn redacted<S: Serializer>(
    secret: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => serializer.serialize_str("(secret)"),
        None => serializer.serialize_none(),
    }
}
