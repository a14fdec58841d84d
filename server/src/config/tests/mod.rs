use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;

use super::*;

mod invalid;
mod outbound;
mod risky;

fn load(file: Option<&str>, env: &[(&str, &str)]) -> Result<(Config, Vec<String>), ConfigError> {
    Config::from_sources(
        file.map(|text| (Path::new("test.toml"), text)),
        env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

/// Loading fails with an error containing `needle`.
fn rejected(file: Option<&str>, env: &[(&str, &str)], needle: &str) -> String {
    match load(file, env) {
        Ok(_) => panic!("expected an error for {env:?} / {file:?}"),
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains(needle), "{text} should name {needle}");
            text
        }
    }
}

fn ip(text: &str) -> IpAddr {
    match text.parse() {
        Ok(ip) => ip,
        Err(e) => panic!("{text}: {e}"),
    }
}

#[test]
fn defaults() -> Result<(), ConfigError> {
    let (c, warnings) = load(None, &[])?;
    assert!(warnings.is_empty());
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(c.smtp_addr.to_string(), "127.0.0.1:2525");
    assert_eq!(&*c.base_url, "http://127.0.0.1:8080");
    assert_eq!(
        c.database_url.expose_secret(),
        "sqlite://./data/sealpost.db"
    );
    assert!(matches!(c.outbound, Outbound::File));
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.default_expiry_days, 30);
    assert_eq!(c.max_expiry_days, 90);
    assert_eq!(c.max_message_bytes, 50 * 1024 * 1024);
    assert_eq!(c.max_recipients, 50);
    assert_eq!(c.max_attachments, 20);
    assert!(c.trusted_proxies.is_empty());
    assert_eq!(c.server_key_file, PathBuf::from("./data/server.key"));
    assert!(c.server_key.is_none());
    assert_eq!(c.session_idle_minutes, 15);
    assert_eq!(c.lockout_threshold, 10);
    assert!(c.smtps_addr.is_none());
    assert!(c.smtp_tls_cert.is_none());
    assert!(c.smtp_allowed_networks.is_empty());
    assert!(c.smtp_allowed_sender_domains.is_empty());
    assert!(!c.smtp_allow_loopback_plaintext);
    assert_eq!(c.smtp_max_sessions, 100);
    assert_eq!(c.smtp_data_memory_bytes, 1024 * 1024 * 1024);
    assert_eq!(c.smtp_max_sessions_per_ip, 20);
    Ok(())
}

#[test]
fn smtp_settings() -> Result<(), ConfigError> {
    let (c, warnings) = load(
        Some("smtp_allowed_sender_domains = [\"Example.ORG.\"]\n"),
        &[
            ("SEALPOST_SMTPS_ADDR", "127.0.0.1:4650"),
            ("SEALPOST_SMTP_ALLOWED_NETWORKS", "10.0.0.0/8, 192.0.2.7"),
            ("SEALPOST_SMTP_ALLOW_LOOPBACK_PLAINTEXT", "yes"),
            ("SEALPOST_SMTP_MAX_SESSIONS_PER_IP", "3"),
        ],
    )?;
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.smtps_addr.map(|a| a.port()), Some(4650));
    assert_eq!(c.smtp_allowed_networks.len(), 2);
    assert_eq!(
        c.smtp_allowed_sender_domains,
        vec!["example.org".to_owned()]
    );
    assert!(c.smtp_allow_loopback_plaintext);
    assert_eq!(c.smtp_max_sessions_per_ip, 3);
    Ok(())
}

#[test]
fn file_overrides_defaults_and_env_overrides_file() -> Result<(), ConfigError> {
    let file = r#"
        data_dir = "/srv/sealpost"
        http_addr = "0.0.0.0:8443"
        max_recipients = 5
        log_format = "json"
        trusted_proxies = ["10.0.0.0/8", "192.168.1.7"]
    "#;
    let (c, _) = load(
        Some(file),
        &[
            ("SEALPOST_HTTP_ADDR", "127.0.0.1:9000"),
            ("SEALPOST_MAX_ATTACHMENTS", "3"),
        ],
    )?;
    assert_eq!(c.data_dir, PathBuf::from("/srv/sealpost"));
    // derived defaults follow the data dir from the file
    assert_eq!(
        c.database_url.expose_secret(),
        "sqlite:///srv/sealpost/sealpost.db"
    );
    assert_eq!(c.server_key_file, PathBuf::from("/srv/sealpost/server.key"));
    assert_eq!(c.http_addr.to_string(), "127.0.0.1:9000");
    assert_eq!(c.max_recipients, 5);
    assert_eq!(c.max_attachments, 3);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.trusted_proxies.len(), 2);
    assert!(c.is_trusted_proxy(ip("10.1.2.3")));
    assert!(c.is_trusted_proxy(ip("192.168.1.7")));
    assert!(!c.is_trusted_proxy(ip("192.168.1.8")));
    Ok(())
}

#[test]
fn env_list_and_secret() -> Result<(), ConfigError> {
    let (c, _) = load(
        None,
        &[
            ("SEALPOST_TRUSTED_PROXIES", "127.0.0.1, ::1"),
            (
                "SEALPOST_OUTBOUND",
                "smtps://mailer:p%40ss@relay.example:465",
            ),
            ("SEALPOST_SERVER_KEY", "c2VjcmV0"),
            ("SEALPOST_DATABASE_URL", "sqlite://u:dbpass@localhost/x.db"),
        ],
    )?;
    assert_eq!(c.trusted_proxies.len(), 2);
    match &c.outbound {
        Outbound::Smtp {
            implicit_tls,
            host,
            port,
            username,
            password,
        } => {
            assert!(implicit_tls);
            assert_eq!(host, "relay.example");
            assert_eq!(*port, 465);
            assert_eq!(username.as_deref(), Some("mailer"));
            assert_eq!(password.as_ref().map(|p| p.expose_secret()), Some("p@ss"));
        }
        Outbound::File => panic!("expected smtp outbound"),
    }
    let debug = format!("{c:?}");
    assert!(!debug.contains("p@ss"), "password leaked into Debug");
    assert!(!debug.contains("c2VjcmV0"), "server key leaked into Debug");
    let serialized = format!("{:?}", figment::value::Value::serialize(&c));
    assert!(!serialized.contains("p@ss") && !serialized.contains("p%40ss"));
    assert!(!serialized.contains("c2VjcmV0"), "server key serialized");
    assert!(!debug.contains("dbpass") && !serialized.contains("dbpass"));
    Ok(())
}

#[test]
fn env_switches_take_the_usual_words() -> Result<(), ConfigError> {
    for (word, on) in [
        ("1", true),
        ("true", true),
        ("YES", true),
        ("on", true),
        ("0", false),
        ("false", false),
        ("no", false),
        ("Off", false),
    ] {
        let (c, _) = load(None, &[("SEALPOST_SMTP_ALLOW_LOOPBACK_PLAINTEXT", word)])?;
        assert_eq!(c.smtp_allow_loopback_plaintext, on, "{word}");
    }
    Ok(())
}

#[test]
fn empty_env_values_are_unset() -> Result<(), ConfigError> {
    let (c, warnings) = load(
        Some("max_recipients = 5\n"),
        &[
            ("SEALPOST_HTTP_ADDR", ""),
            ("SEALPOST_MAX_RECIPIENTS", ""),
            ("SEALPOST_SERVER_KEY", ""),
            ("SEALPOST_MAX_ATTACHMENTS", " 7 "),
        ],
    )?;
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(c.max_recipients, 5);
    assert!(c.server_key.is_none());
    assert_eq!(c.max_attachments, 7);
    Ok(())
}

#[test]
fn unknown_keys_warn() -> Result<(), ConfigError> {
    let (_, warnings) = load(
        Some("colour = \"blue\"\n"),
        &[
            ("SEALPOST_NOPE", "1"),
            ("SEALPOST_CONFIG", "x.toml"),
            ("HOME", "/root"),
        ],
    )?;
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("colour"));
    assert!(warnings[1].contains("SEALPOST_NOPE"));
    Ok(())
}

#[test]
fn keys_are_the_serialized_fields() -> Result<(), ConfigError> {
    // The known keys come from the struct's fields; serde must read and write the same names.
    let c = Config::builder().build()?;
    let Ok(figment::value::Value::Dict(_, dict)) = figment::value::Value::serialize(&c) else {
        panic!("the config does not serialize to a table");
    };
    let serialized: Vec<&str> = dict.keys().map(String::as_str).collect();
    let mut keys = Config::keys().to_vec();
    keys.sort_unstable();
    assert_eq!(serialized, keys);
    Ok(())
}

#[test]
fn builder_sets_values_and_refuses_unknown_keys() -> Result<(), ConfigError> {
    let c = Config::builder()
        .set("data_dir", "/tmp/x")
        .set("smtp_allowed_networks", ["10.0.0.0/8"])
        .set("max_recipients", 3)
        .build()?;
    assert_eq!(c.server_key_file, PathBuf::from("/tmp/x/server.key"));
    assert_eq!(c.smtp_allowed_networks.len(), 1);
    assert_eq!(c.max_recipients, 3);
    match Config::builder().set("max_recipient", 3).build() {
        Ok(_) => panic!("a misspelt key was accepted"),
        Err(e) => assert!(e.to_string().contains("max_recipient"), "{e}"),
    }
    Ok(())
}

// base_url follows http_addr.

#[test]
fn base_url_follows_http_addr() -> Result<(), ConfigError> {
    let (c, warnings) = load(None, &[("SEALPOST_HTTP_ADDR", "127.0.0.1:9000")])?;
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(&*c.base_url, "http://127.0.0.1:9000");
    assert!(!c.base_url_is_https());

    let (c, _) = load(
        Some("http_addr = \"[::1]:8443\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n"),
        &[],
    )?;
    assert_eq!(&*c.base_url, "https://[::1]:8443");
    assert!(c.base_url_is_https());

    let (c, _) = load(
        None,
        &[
            ("SEALPOST_HTTP_ADDR", "127.0.0.1:9000"),
            ("SEALPOST_BASE_URL", "https://pickup.example.org/"),
        ],
    )?;
    assert_eq!(&*c.base_url, "https://pickup.example.org");
    Ok(())
}

#[test]
fn base_url_on_every_address_warns() -> Result<(), ConfigError> {
    for addr in ["0.0.0.0:8080", "[::]:8080"] {
        let (c, warnings) = load(None, &[("SEALPOST_HTTP_ADDR", addr)])?;
        assert_eq!(&*c.base_url, format!("http://{addr}"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("base_url"), "{warnings:?}");
        assert!(warnings[0].contains("SEALPOST_BASE_URL"), "{warnings:?}");
    }
    // Set, it is not derived and nothing is warned about.
    let (_, warnings) = load(
        None,
        &[
            ("SEALPOST_HTTP_ADDR", "0.0.0.0:8080"),
            ("SEALPOST_BASE_URL", "https://pickup.example.org"),
        ],
    )?;
    assert!(warnings.is_empty(), "{warnings:?}");
    Ok(())
}

#[test]
fn links_from_base_url_have_one_slash() -> Result<(), String> {
    for (text, link) in [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/p/x"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/p/x"),
        (
            "https://example.org/sealpost/",
            "https://example.org/sealpost/p/x",
        ),
        (
            "https://example.org:8443/sealpost",
            "https://example.org:8443/sealpost/p/x",
        ),
    ] {
        let base = BaseUrl::parse(text)?;
        assert_eq!(format!("{base}/p/x"), link, "{text}");
        assert_eq!(
            format!("{}/p/x", base.trim_end_matches('/')),
            link,
            "{text}"
        );
    }
    let base = BaseUrl::parse("https://example.org:8443/sealpost")?;
    assert_eq!(
        base.url().origin().ascii_serialization(),
        "https://example.org:8443"
    );
    Ok(())
}
