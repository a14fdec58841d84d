//! Where outbound mail (notifications, codes, replies) goes, and the file outbox's settings.

use percent_encoding::percent_decode_str;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use url::{Host, Url};

use super::error::Checks;
use super::{Config, ConfigError};

/// Check the outbound mail settings.
pub(super) fn check(config: &Config, checks: &Checks) -> Result<(), ConfigError> {
    checks.positive(
        "outbound_file_retention_hours",
        config.outbound_file_retention_hours.into(),
    )
}

/// Where outbound mail goes.
#[derive(Debug, Clone, Default)]
pub enum Outbound {
    /// Write `.eml` files into `<data_dir>/outbox/` (the development default).
    #[default]
    File,
    /// Relay over SMTP. `implicit_tls` is true for `smtps://` (TLS from the first byte); with
    /// `smtp://` STARTTLS is still required (invariant 5: never cleartext).
    Smtp {
        implicit_tls: bool,
        host: String,
        port: u16,
        username: Option<String>,
        password: Option<SecretString>,
    },
}

impl Outbound {
    /// Parse `file`, `smtp://[user[:pass]@]host[:port]` or `smtps://…`. User and password may
    /// be percent-encoded. The error never repeats the input (it may hold a password).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("file") {
            return Ok(Self::File);
        }
        let expected = "expected \"file\", smtp://host:port or smtps://host:port";
        // The URL's own errors ("invalid port number", ...) never quote it.
        let url = Url::parse(text).map_err(|e| format!("{expected} ({e})"))?;
        let (implicit_tls, default_port) = match url.scheme() {
            "smtps" => (true, 465),
            "smtp" => (false, 587),
            _ => return Err(expected.to_owned()),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(expected.to_owned());
        }
        let host = match url.host() {
            // Unbracketed, as the relay is dialled.
            Some(Host::Ipv6(ip)) => ip.to_string(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Domain(name)) if !name.is_empty() => name.to_owned(),
            _ => return Err("missing host".to_owned()),
        };
        let port = url.port().unwrap_or(default_port);
        if port == 0 {
            return Err("invalid port".to_owned());
        }
        let decode = |part: &str, what: &str| {
            percent_decode_str(part)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| format!("invalid percent-encoding in {what}"))
        };
        let password = match url.password() {
            Some(p) => Some(SecretString::from(decode(p, "password")?)),
            None => None,
        };
        let username = match url.username() {
            "" if password.is_none() => None,
            user => Some(decode(user, "user")?),
        };
        Ok(Self::Smtp {
            implicit_tls,
            host,
            port,
            username,
            password,
        })
    }
}

impl<'de> Deserialize<'de> for Outbound {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// `file`, or the relay's URL without the password.
impl Serialize for Outbound {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::File => serializer.serialize_str("file"),
            Self::Smtp {
                implicit_tls,
                host,
                port,
                username,
                ..
            } => {
                let scheme = if *implicit_tls { "smtps" } else { "smtp" };
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                let user = match username {
                    Some(user) => format!(
                        "{}@",
                        percent_encoding::utf8_percent_encode(
                            user,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    ),
                    None => String::new(),
                };
                serializer.serialize_str(&format!("{scheme}://{user}{host}:{port}"))
            }
        }
    }
}
