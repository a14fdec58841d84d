//! Each invalid value fails fast with an error naming the setting (and the variable, where the
//! value came from the environment); no error repeats a secret.

use super::rejected;

#[test]
fn http_addr_not_a_socket_address() {
    rejected(None, &[("SEALPOST_HTTP_ADDR", "localhost")], "http_addr");
}

#[test]
fn max_recipients_not_a_number_names_the_variable() {
    rejected(
        None,
        &[("SEALPOST_MAX_RECIPIENTS", "many")],
        "SEALPOST_MAX_RECIPIENTS",
    );
}

#[test]
fn log_format_unknown() {
    rejected(None, &[("SEALPOST_LOG_FORMAT", "xml")], "log_format");
}

#[test]
fn outbound_unknown_scheme() {
    rejected(None, &[("SEALPOST_OUTBOUND", "ftp://x")], "outbound");
}

#[test]
fn base_url_without_scheme() {
    rejected(None, &[("SEALPOST_BASE_URL", "example.com")], "base_url");
}

#[test]
fn base_url_with_query_or_space() {
    rejected(
        None,
        &[("SEALPOST_BASE_URL", "https://x.org/?a=1")],
        "base_url",
    );
    rejected(
        None,
        &[("SEALPOST_BASE_URL", "https://x.org/a b")],
        "base_url",
    );
    rejected(None, &[("SEALPOST_BASE_URL", "https://")], "base_url");
}

#[test]
fn trusted_proxies_bad_prefix() {
    rejected(
        None,
        &[("SEALPOST_TRUSTED_PROXIES", "10.0.0.0/99")],
        "trusted_proxies",
    );
}

#[test]
fn tls_cert_without_key() {
    rejected(None, &[("SEALPOST_TLS_CERT", "/c.pem")], "tls_cert");
}

#[test]
fn http_caps_and_timeouts_zero() {
    for key in [
        "http_max_connections",
        "http_max_connections_per_ip",
        "http_header_read_timeout_secs",
        "http_idle_timeout_secs",
        "http_tls_handshake_timeout_secs",
    ] {
        let var = format!("SEALPOST_{}", key.to_ascii_uppercase());
        rejected(None, &[(var.as_str(), "0")], key);
    }
}

#[test]
fn default_expiry_beyond_max() {
    rejected(
        None,
        &[("SEALPOST_DEFAULT_EXPIRY_DAYS", "100")],
        "default_expiry_days",
    );
}

#[test]
fn max_recipients_text_in_file() {
    let e = rejected(Some("max_recipients = \"ten\""), &[], "max_recipients");
    assert!(e.contains("test.toml"), "{e}");
}

#[test]
fn max_recipients_negative_in_file() {
    rejected(Some("max_recipients = -1"), &[], "max_recipients");
}

#[test]
fn lockout_threshold_zero() {
    rejected(
        None,
        &[("SEALPOST_LOCKOUT_THRESHOLD", "0")],
        "lockout_threshold",
    );
}

#[test]
fn data_dir_empty_in_file() {
    rejected(Some("data_dir = \"\""), &[], "data_dir");
}

#[test]
fn database_url_not_sqlite() {
    rejected(
        None,
        &[("SEALPOST_DATABASE_URL", "postgres://db/sealpost")],
        "database_url",
    );
}

#[test]
fn smtp_data_memory_below_max_message() {
    rejected(
        None,
        &[
            ("SEALPOST_MAX_MESSAGE_BYTES", "2000"),
            ("SEALPOST_SMTP_DATA_MEMORY_BYTES", "1000"),
        ],
        "smtp_data_memory_bytes",
    );
}

// The SMTP settings; these errors name the variable, whose lower case contains the key.

fn smtp_rejected(key: &str, value: &str) {
    let needle = key.trim_start_matches("SEALPOST_").to_ascii_lowercase();
    let e = rejected(None, &[(key, value)], "");
    assert!(
        e.to_ascii_lowercase().contains(&needle),
        "{e} should name {needle}"
    );
}

#[test]
fn smtp_allowed_networks_bad_prefix() {
    smtp_rejected("SEALPOST_SMTP_ALLOWED_NETWORKS", "10.0.0.0/33");
}

#[test]
fn smtp_allowed_sender_domains_not_a_domain() {
    smtp_rejected("SEALPOST_SMTP_ALLOWED_SENDER_DOMAINS", "exa mple.org");
}

#[test]
fn smtp_allow_loopback_plaintext_not_a_switch() {
    smtp_rejected("SEALPOST_SMTP_ALLOW_LOOPBACK_PLAINTEXT", "maybe");
}

#[test]
fn smtp_max_sessions_zero() {
    smtp_rejected("SEALPOST_SMTP_MAX_SESSIONS", "0");
}

#[test]
fn smtp_unauthenticated_limits_zero_or_too_few_commands() {
    smtp_rejected("SEALPOST_SMTP_MAX_UNAUTHENTICATED_PER_IP", "0");
    smtp_rejected("SEALPOST_SMTP_UNAUTHENTICATED_TIMEOUT_SECS", "0");
    // A relay needs EHLO, STARTTLS, EHLO and AUTH.
    smtp_rejected("SEALPOST_SMTP_UNAUTHENTICATED_MAX_COMMANDS", "3");
}

#[test]
fn smtp_tls_cert_without_key() {
    smtp_rejected("SEALPOST_SMTP_TLS_CERT", "/c.pem");
}

#[test]
fn smtps_addr_not_a_socket_address() {
    smtp_rejected("SEALPOST_SMTPS_ADDR", "nowhere");
}

// Secrets never appear in an error.

#[test]
fn outbound_password_not_in_error() {
    let e = rejected(
        None,
        &[("SEALPOST_OUTBOUND", "smtp://u:hunter2@host:notaport")],
        "outbound",
    );
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn outbound_not_text_in_file_not_in_error() {
    let e = rejected(Some("outbound = 2718281828"), &[], "outbound");
    assert!(!e.contains("2718281828"), "{e}");
}

#[test]
fn server_key_not_text_in_file_not_in_error() {
    let e = rejected(Some("server_key = 31415926535"), &[], "server_key");
    assert!(!e.contains("31415926535"), "{e}");
    let e = rejected(Some("server_key = [\"hunter2\"]"), &[], "server_key");
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn database_url_not_in_error() {
    let e = rejected(
        None,
        &[("SEALPOST_DATABASE_URL", "postgres://u:hunter2@db/sealpost")],
        "SEALPOST_DATABASE_URL",
    );
    assert!(!e.contains("hunter2"), "{e}");
    let e = rejected(Some("database_url = 27182818"), &[], "database_url");
    assert!(!e.contains("27182818"), "{e}");
}

#[test]
fn file_syntax_error_does_not_show_the_line() {
    // An unterminated string: the parser's own message would quote the line.
    let e = rejected(Some("server_key = \"hunter2\n"), &[], "test.toml");
    assert!(!e.contains("hunter2"), "{e}");
    assert!(e.contains("line 1"), "{e}");
}
