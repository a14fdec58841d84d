//! `outbound` is parsed as a URL; these are the shapes the hand-written parser took. And the
//! file outbox's settings, and which base URLs are loopback for it.

use secrecy::ExposeSecret;

use super::super::Outbound;
use super::{load, rejected};

fn smtp(text: &str) -> (bool, String, u16, Option<String>, Option<String>) {
    match Outbound::parse(text) {
        Ok(Outbound::Smtp {
            implicit_tls,
            host,
            port,
            username,
            password,
        }) => (
            implicit_tls,
            host,
            port,
            username,
            password.map(|p| p.expose_secret().to_owned()),
        ),
        Ok(Outbound::File) => panic!("{text}: file"),
        Err(e) => panic!("{text}: {e}"),
    }
}

#[test]
fn file_in_any_case() {
    assert!(matches!(Outbound::parse(" FILE "), Ok(Outbound::File)));
}

#[test]
fn default_ports_and_no_credentials() {
    assert_eq!(
        smtp("smtp://relay.example"),
        (false, "relay.example".into(), 587, None, None)
    );
    assert_eq!(
        smtp("smtps://relay.example/"),
        (true, "relay.example".into(), 465, None, None)
    );
    assert_eq!(
        smtp("smtp://127.0.0.1:2525"),
        (false, "127.0.0.1".into(), 2525, None, None)
    );
}

#[test]
fn ipv6_host_is_unbracketed() {
    assert_eq!(
        smtp("smtp://[::1]:25"),
        (false, "::1".into(), 25, None, None)
    );
}

#[test]
fn user_and_password_are_percent_decoded() {
    let (_, host, _, user, pass) = smtp("smtps://mail%2Ber:p%40ss%3Aw@relay.example:465");
    assert_eq!(host, "relay.example");
    assert_eq!(user.as_deref(), Some("mail+er"));
    assert_eq!(pass.as_deref(), Some("p@ss:w"));
    // An unencoded '@' in the password: the last '@' ends the credentials.
    let (_, host, _, user, pass) = smtp("smtp://u:p@ss@relay.example");
    assert_eq!(host, "relay.example");
    assert_eq!(user.as_deref(), Some("u"));
    assert_eq!(pass.as_deref(), Some("p@ss"));
    let (_, _, _, user, pass) = smtp("smtp://alone@relay.example");
    assert_eq!(user.as_deref(), Some("alone"));
    assert_eq!(pass, None);
}

#[test]
fn bad_shapes_are_refused() {
    for bad in [
        "smtp://",
        "smtp://relay.example:0",
        "smtp://relay.example:99999",
        "smtp://relay.example/path",
        "smtp://relay.example?x=1",
        "relay.example:25",
        "http://relay.example",
    ] {
        assert!(Outbound::parse(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn outbox_retention_is_at_least_an_hour() -> Result<(), super::ConfigError> {
    rejected(
        None,
        &[("SEALPOST_OUTBOUND_FILE_RETENTION_HOURS", "0")],
        "SEALPOST_OUTBOUND_FILE_RETENTION_HOURS",
    );
    let (config, _) = load(None, &[])?;
    assert_eq!(config.outbound_file_retention_hours, 24);
    assert!(!config.outbound_file_allow_public);
    Ok(())
}

#[test]
fn base_urls_on_this_machine_are_loopback() -> Result<(), String> {
    for (url, loopback) in [
        ("http://127.0.0.1:8080", true),
        ("http://127.0.0.2:8080/x", true),
        ("http://[::1]:8080", true),
        ("http://[::ffff:127.0.0.1]:8080", true),
        ("http://localhost:8080", true),
        ("http://LOCALHOST.:8080", true),
        ("http://dev.localhost", true),
        ("http://0.0.0.0:8080", false),
        ("http://[::]:8080", false),
        ("http://10.0.0.1", false),
        ("https://pickup.example.org", false),
        ("https://localhost.example.org", false),
    ] {
        assert_eq!(super::BaseUrl::parse(url)?.is_loopback(), loopback, "{url}");
    }
    Ok(())
}
