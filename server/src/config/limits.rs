//! Limits on messages, expiry and sessions.

use super::error::Checks;
use super::{Config, ConfigError};

/// Check the limits: each at least 1 where 0 would refuse everything, and the default expiry
/// within the longest.
pub(super) fn check(config: &Config, checks: &Checks) -> Result<(), ConfigError> {
    checks.positive("default_expiry_days", config.default_expiry_days.into())?;
    checks.positive("max_expiry_days", config.max_expiry_days.into())?;
    if config.default_expiry_days > config.max_expiry_days {
        return Err(checks.invalid(
            "default_expiry_days",
            format!(
                "{} is more than max_expiry_days ({})",
                config.default_expiry_days, config.max_expiry_days
            ),
        ));
    }
    checks.positive("max_message_bytes", config.max_message_bytes)?;
    checks.positive("max_recipients", config.max_recipients.into())?;
    checks.positive("session_idle_minutes", config.session_idle_minutes.into())?;
    checks.positive("lockout_threshold", config.lockout_threshold.into())?;
    Ok(())
}
