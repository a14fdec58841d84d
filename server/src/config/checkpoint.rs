//! Signed audit checkpoints (`crate::audit::checkpoint`): where the key is kept, the origin
//! that names the log, how often the periodic jobs sign, and the optional witness address.

use secrecy::ExposeSecret;

use super::error::Checks;
use super::{Config, ConfigError};
use crate::audit::checkpoint::valid_name;
use crate::messages::EmailAddress;

/// The longest origin: it is on every checkpoint, twice.
const MAX_ORIGIN: usize = 255;

/// Check the checkpoint settings, and fill in the defaults that follow `data_dir` and
/// `base_url` (so after [`super::http::check`]).
pub(super) fn check(config: &mut Config, checks: &Checks) -> Result<(), ConfigError> {
    if !checks.is_set("checkpoint_key_file") {
        config.checkpoint_key_file = config.data_dir.join("checkpoint.key");
    }
    if config
        .checkpoint_key
        .as_ref()
        .is_some_and(|key| key.expose_secret().trim().is_empty())
    {
        config.checkpoint_key = None;
    }
    if !checks.is_set("checkpoint_origin") {
        config.checkpoint_origin = format!("{}/audit", config.base_url.host_name());
    }
    let origin = &config.checkpoint_origin;
    if !valid_name(origin) || origin.chars().count() > MAX_ORIGIN {
        return Err(checks.invalid(
            "checkpoint_origin",
            format!(
                "must be 1 to {MAX_ORIGIN} characters without spaces, control characters or '+' \
                 (it also names the checkpoint key)"
            ),
        ));
    }
    config.checkpoint_mail_to = match config.checkpoint_mail_to.take() {
        Some(to) if to.trim().is_empty() => None,
        Some(to) => {
            EmailAddress::parse(&to)
                .map_err(|e| checks.invalid("checkpoint_mail_to", e.to_string()))?;
            Some(to.trim().to_owned())
        }
        None => None,
    };
    Ok(())
}
