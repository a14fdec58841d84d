//! Limits on messages, expiry, sessions and the lockout of guessing clients.

use super::error::Checks;
use super::{Config, ConfigError};

/// Check the limits: each at least 1 where 0 would refuse everything, the default expiry
/// within the longest, and the recipient-wide code and lockout bounds above the per-client ones.
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
    checks.positive(
        "staff_session_max_hours",
        config.staff_session_max_hours.into(),
    )?;
    checks.positive(
        "staff_lockout_threshold",
        config.staff_lockout_threshold.into(),
    )?;
    checks.positive("staff_lockout_minutes", config.staff_lockout_minutes.into())?;
    checks.positive("lockout_threshold", config.lockout_threshold.into())?;
    checks.positive("lockout_minutes", config.lockout_minutes.into())?;
    checks.positive(
        "lockout_cooldown_minutes",
        config.lockout_cooldown_minutes.into(),
    )?;
    checks.positive(
        "codes_per_client_per_hour",
        config.codes_per_client_per_hour.into(),
    )?;
    if config.codes_per_recipient_per_hour <= config.codes_per_client_per_hour {
        return Err(checks.invalid(
            "codes_per_recipient_per_hour",
            format!(
                "{} is not more than codes_per_client_per_hour ({}): one client alone could use \
                 up the recipient's codes",
                config.codes_per_recipient_per_hour, config.codes_per_client_per_hour
            ),
        ));
    }
    if config.lockout_recipient_threshold <= config.lockout_threshold {
        return Err(checks.invalid(
            "lockout_recipient_threshold",
            format!(
                "{} is not more than lockout_threshold ({}): one client alone could lock a \
                 recipient out",
                config.lockout_recipient_threshold, config.lockout_threshold
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    /// Proof: a recipient-wide lockout threshold at or below the per-client one is refused,
    /// naming the setting (one client alone could then lock a recipient out); above it is
    /// accepted.
    #[test]
    fn the_recipient_lockout_must_need_more_than_one_client() {
        for at_most in [5_u32, 10] {
            let refused = Config::builder()
                .set("lockout_threshold", 10)
                .set("lockout_recipient_threshold", at_most)
                .build();
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|e| e.to_string().contains("lockout_recipient_threshold")),
                "{refused:?}"
            );
        }
        assert!(
            Config::builder()
                .set("lockout_threshold", 10)
                .set("lockout_recipient_threshold", 11)
                .build()
                .is_ok()
        );
    }
}
