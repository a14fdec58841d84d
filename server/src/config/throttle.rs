//! Per-client rate limits and the auditing of repeated refusals (`crate::throttle`).

use super::error::Checks;
use super::{Config, ConfigError};

/// Each budget at least 1 (0 would refuse every client), and a window of at least a second.
pub(super) fn check(config: &Config, checks: &Checks) -> Result<(), ConfigError> {
    checks.positive(
        "pickup_posts_per_minute",
        config.pickup_posts_per_minute.into(),
    )?;
    checks.positive(
        "api_auth_failures_per_minute",
        config.api_auth_failures_per_minute.into(),
    )?;
    checks.positive(
        "smtp_connections_per_minute",
        config.smtp_connections_per_minute.into(),
    )?;
    checks.positive(
        "smtp_auth_failures_per_minute",
        config.smtp_auth_failures_per_minute.into(),
    )?;
    checks.positive(
        "staff_signin_failures_per_minute",
        config.staff_signin_failures_per_minute.into(),
    )?;
    checks.positive(
        "audit_refusal_window_seconds",
        config.audit_refusal_window_seconds.into(),
    )?;
    Ok(())
}
