//! The HTTP side: the public base URL, and the checks of the listener settings (certificate,
//! connection caps, timeouts).

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use url::Url;

use super::error::Checks;
use super::{Config, ConfigError};

/// The public base URL: `http(s)://host[:port][/path]`, with no query or fragment.
///
/// It derefs to its text without a trailing slash, as links are built from it
/// (`format!("{base_url}/p/{id}")`); [`BaseUrl::url`] is the parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    url: Url,
    text: String,
}

impl BaseUrl {
    /// Parse and check a base URL. The error says what is wrong, without the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let shape = "must be scheme://host[:port][/path]";
        let has_scheme = |scheme: &str| {
            text.get(..scheme.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
        };
        if !has_scheme("https://") && !has_scheme("http://") {
            return Err("must start with https:// or http://".to_owned());
        }
        let url = Url::parse(text).map_err(|e| format!("{shape} ({e})"))?;
        if text.contains(' ') || url.query().is_some() || url.fragment().is_some() {
            return Err(shape.to_owned());
        }
        let text = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self { url, text })
    }

    /// The parsed URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host that links name, as a bare name (an IPv6 address without brackets): Sealpost's
    /// name in the SMTP greeting and in its generated certificate.
    pub fn host_name(&self) -> String {
        match self.url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => "localhost".to_owned(),
        }
    }

    /// Whether links lead to this machine only: `localhost` (or a name under it, RFC 6761
    /// section 6.3) or a loopback address.
    pub fn is_loopback(&self) -> bool {
        match self.url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.to_canonical().is_loopback(),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
            None => false,
        }
    }

    /// The value before [`check`] fills in the default that follows `http_addr`.
    pub(super) fn unset() -> Self {
        match Self::parse("http://127.0.0.1:8080") {
            Ok(url) => url,
            Err(e) => unreachable!("a literal base URL: {e}"),
        }
    }
}

impl Deref for BaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

impl Serialize for BaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// Check the HTTP settings, and fill in `base_url` from `http_addr` when it is not set.
pub(super) fn check(
    config: &mut Config,
    checks: &Checks,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    checks.together(
        ("tls_cert", config.tls_cert.is_some()),
        ("tls_key", config.tls_key.is_some()),
    )?;
    checks.narrow_networks(
        ("trusted_proxies", &config.trusted_proxies),
        (
            "trusted_proxies_allow_wide",
            config.trusted_proxies_allow_wide,
        ),
        "every client in it could choose the IP address the audit log and the per-client \
         limits see, with X-Forwarded-For, and reach plain HTTP",
    )?;
    checks.positive("http_max_connections", config.http_max_connections.into())?;
    checks.positive(
        "http_max_connections_per_ip",
        config.http_max_connections_per_ip.into(),
    )?;
    checks.positive(
        "http_header_read_timeout_secs",
        config.http_header_read_timeout_secs.into(),
    )?;
    checks.positive(
        "http_idle_timeout_secs",
        config.http_idle_timeout_secs.into(),
    )?;
    checks.positive(
        "http_tls_handshake_timeout_secs",
        config.http_tls_handshake_timeout_secs.into(),
    )?;
    if !checks.is_set("base_url") {
        let addr = config.http_addr;
        let scheme = if config.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        // Only an IPv6 zone (`[fe80::1%2]:8080`) makes no URL.
        config.base_url = BaseUrl::parse(&format!("{scheme}://{addr}")).map_err(|_| {
            checks.invalid(
                "base_url",
                format!("must be set: http_addr {addr} is not a URL host"),
            )
        })?;
        if addr.ip().is_unspecified() {
            warnings.push(format!(
                "base_url is not set and http_addr {addr} takes connections on every address, \
                 so links in mail would read {}: set base_url (SEALPOST_BASE_URL) to the public \
                 URL",
                config.base_url
            ));
        }
    }
    Ok(())
}
