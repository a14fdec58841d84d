//! The inbound SMTP listener's settings.

use serde::{Deserializer, de};

use super::error::Checks;
use super::{Config, ConfigError, values};

/// The commands a relay needs before it is authenticated: EHLO, STARTTLS, EHLO, AUTH.
const MIN_COMMANDS_BEFORE_AUTH: u32 = 4;

/// Check the SMTP settings.
pub(super) fn check(config: &Config, checks: &Checks) -> Result<(), ConfigError> {
    checks.together(
        ("smtp_tls_cert", config.smtp_tls_cert.is_some()),
        ("smtp_tls_key", config.smtp_tls_key.is_some()),
    )?;
    checks.positive("smtp_max_sessions", config.smtp_max_sessions.into())?;
    checks.positive(
        "smtp_max_sessions_per_ip",
        config.smtp_max_sessions_per_ip.into(),
    )?;
    checks.narrow_networks(
        ("smtp_allowed_networks", &config.smtp_allowed_networks),
        ("smtp_allow_wide_networks", config.smtp_allow_wide_networks),
        "every client in it could have Sealpost mail notifications without AUTH (an open \
         notification relay)",
    )?;
    checks.positive(
        "smtp_max_unauthenticated_per_ip",
        config.smtp_max_unauthenticated_per_ip.into(),
    )?;
    checks.positive(
        "smtp_unauthenticated_timeout_secs",
        config.smtp_unauthenticated_timeout_secs.into(),
    )?;
    if config.smtp_unauthenticated_max_commands < MIN_COMMANDS_BEFORE_AUTH {
        return Err(checks.invalid(
            "smtp_unauthenticated_max_commands",
            "must be at least 4: a relay needs EHLO, STARTTLS, EHLO and AUTH",
        ));
    }
    if config.smtp_data_memory_bytes < config.max_message_bytes {
        // Otherwise a message of the maximum size could never be accepted, only deferred.
        return Err(checks.invalid(
            "smtp_data_memory_bytes",
            "must be at least max_message_bytes",
        ));
    }
    Ok(())
}

/// A list of domain names, lower-cased and without a trailing dot.
pub(super) fn domains<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    values::list(d)?
        .iter()
        .map(|entry| parse_domain(entry).map_err(de::Error::custom))
        .collect()
}

pub(super) fn parse_domain(entry: &str) -> Result<String, String> {
    let domain = entry.trim().trim_end_matches('.').to_lowercase();
    if !crate::messages::is_host_name(&domain) {
        return Err(format!("{entry:?} is not a domain name"));
    }
    Ok(domain)
}
