//! Settings that would open Sealpost to everyone are refused unless a second setting
//! acknowledges them, with an error that says which setting to set and carries no secret.

use super::{load, rejected};

/// Networks no list of trusted clients should hold by accident, each with the prefix that the
/// error names.
const WIDE: &[(&str, &str)] = &[
    ("0.0.0.0/0", "/8"),
    ("0.0.0.0/1", "/8"),
    ("128.0.0.0/7", "/8"),
    ("::/0", "/32"),
    ("2000::/3", "/32"),
    ("2001:db8::/31", "/32"),
];

#[test]
fn wide_smtp_allowed_networks_are_refused_unless_acknowledged() {
    for (net, widest) in WIDE {
        let list = format!("192.0.2.7, {net}");
        let error = rejected(
            None,
            &[("SEALPOST_SMTP_ALLOWED_NETWORKS", &list)],
            "SEALPOST_SMTP_ALLOWED_NETWORKS",
        );
        assert!(error.contains(net), "{error}");
        assert!(
            error.contains(&format!("broader than a {widest}")),
            "{error}"
        );
        assert!(error.contains("open notification relay"), "{error}");
        assert!(
            error.contains("smtp_allow_wide_networks = true")
                && error.contains("SEALPOST_SMTP_ALLOW_WIDE_NETWORKS=true"),
            "{error}"
        );

        let (config, _) = load(
            None,
            &[
                ("SEALPOST_SMTP_ALLOWED_NETWORKS", &list),
                ("SEALPOST_SMTP_ALLOW_WIDE_NETWORKS", "true"),
            ],
        )
        .unwrap_or_else(|e| panic!("{net} acknowledged: {e}"));
        assert_eq!(config.smtp_allowed_networks.len(), 2);
    }
}

#[test]
fn wide_trusted_proxies_are_refused_unless_acknowledged() {
    for (net, _) in WIDE {
        let file = format!("trusted_proxies = [\"{net}\"]\n");
        let error = rejected(Some(&file), &[], "trusted_proxies (in test.toml)");
        assert!(error.contains(net), "{error}");
        assert!(error.contains("X-Forwarded-For"), "{error}");
        assert!(
            error.contains("trusted_proxies_allow_wide = true")
                && error.contains("SEALPOST_TRUSTED_PROXIES_ALLOW_WIDE=true"),
            "{error}"
        );
        let file = format!("{file}trusted_proxies_allow_wide = true\n");
        load(Some(&file), &[]).unwrap_or_else(|e| panic!("{net} acknowledged: {e}"));
    }
}

#[test]
fn networks_up_to_a_slash_8_or_32_need_no_acknowledgement() -> Result<(), super::ConfigError> {
    let narrow = "10.0.0.0/8, 192.168.0.0/16, 203.0.113.9, 2001:db8::/32, ::1";
    let (config, warnings) = load(
        None,
        &[
            ("SEALPOST_SMTP_ALLOWED_NETWORKS", narrow),
            ("SEALPOST_TRUSTED_PROXIES", narrow),
        ],
    )?;
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.smtp_allowed_networks.len(), 5);
    assert_eq!(config.trusted_proxies.len(), 5);
    assert!(!config.smtp_allow_wide_networks && !config.trusted_proxies_allow_wide);
    Ok(())
}
