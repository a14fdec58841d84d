//! One typed configuration, loaded in layers: built-in defaults < `sealpost.toml` < `SEALPOST_*`
//! environment variables.
//!
//! The file is the one named by `--config`, else by `SEALPOST_CONFIG`, else `./sealpost.toml`
//! when it exists. Every setting has an environment form `SEALPOST_<NAME>` (the TOML key in
//! upper case). Invalid values fail fast with an error naming the setting; unknown TOML keys
//! and unknown `SEALPOST_*` variables are returned as warnings (logged once logging is up).
//!
//! Secrets (`server_key`, the outbound relay password, the database URL which may carry a
//! password) are [`SecretString`]s, so `Debug` never prints them. This module must never log
//! or print a secret value, not even in an error message.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "SEALPOST_CONFIG";
/// The prefix of every setting's environment form.
pub const ENV_PREFIX: &str = "SEALPOST_";
/// The file read when neither `--config` nor `SEALPOST_CONFIG` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "sealpost.toml";

/// Every key the TOML file and the environment may set. Kept next to [`RawConfig`]; a unit test
/// checks the two agree.
pub const KNOWN_KEYS: &[&str] = &[
    "data_dir",
    "http_addr",
    "smtp_addr",
    "base_url",
    "database_url",
    "outbound",
    "log_format",
    "default_expiry_days",
    "max_expiry_days",
    "max_message_bytes",
    "max_recipients",
    "max_attachments",
    "trusted_proxies",
    "tls_cert",
    "tls_key",
    "server_key_file",
    "server_key",
    "session_idle_minutes",
    "lockout_threshold",
    "smtps_addr",
    "smtp_tls_cert",
    "smtp_tls_key",
    "smtp_allowed_networks",
    "smtp_allowed_sender_domains",
    "smtp_allow_loopback_plaintext",
    "smtp_max_sessions",
    "smtp_max_sessions_per_ip",
    "smtp_data_memory_bytes",
];

/// Why the configuration could not be loaded. Messages name the setting and never contain a
/// secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("invalid value for {setting}: {reason}")]
    Invalid { setting: String, reason: String },
}

fn invalid(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_owned(),
        reason: reason.into(),
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("expected \"text\" or \"json\"".to_owned()),
        }
    }
}

/// Where outbound mail (notifications, codes, replies) goes.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// Write `.eml` files into `<data_dir>/outbox/` (the development default).
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
        let (implicit_tls, rest, default_port) = if let Some(rest) = text.strip_prefix("smtps://") {
            (true, rest, 465)
        } else if let Some(rest) = text.strip_prefix("smtp://") {
            (false, rest, 587)
        } else {
            return Err("expected \"file\", smtp://host:port or smtps://host:port".to_owned());
        };
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                let user = percent_decode(user).ok_or("invalid percent-encoding in user")?;
                let pass = match pass {
                    Some(p) => Some(SecretString::from(
                        percent_decode(p).ok_or("invalid percent-encoding in password")?,
                    )),
                    None => None,
                };
                (Some(user), pass)
            }
        };
        let (host, port) = split_host_port(hostport, default_port)?;
        Ok(Self::Smtp {
            implicit_tls,
            host,
            port,
            username,
            password,
        })
    }
}

fn split_host_port(hostport: &str, default_port: u16) -> Result<(String, u16), String> {
    if hostport.is_empty() {
        return Err("missing host".to_owned());
    }
    // Bracketed IPv6: [::1]:25
    if let Some(inner) = hostport.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or("unclosed '[' in host")?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| "invalid port".to_owned())?,
            None if after.is_empty() => default_port,
            None => return Err("invalid host".to_owned()),
        };
        return Ok((host.to_owned(), port));
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) => {
            if host.is_empty() {
                return Err("missing host".to_owned());
            }
            let port: u16 = port.parse().map_err(|_| "invalid port".to_owned())?;
            if port == 0 {
                return Err("invalid port".to_owned());
            }
            Ok((host.to_owned(), port))
        }
        None => Ok((hostport.to_owned(), default_port)),
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The resolved configuration. Build it with [`Config::load`] (or [`Config::from_sources`] in
/// tests); every field has been validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory for the database, the generated server key and the outbox.
    pub data_dir: PathBuf,
    /// HTTP listener address.
    pub http_addr: SocketAddr,
    /// SMTP listener address.
    pub smtp_addr: SocketAddr,
    /// Public base URL used in links, without a trailing slash.
    pub base_url: String,
    /// sqlx database URL (secret: it may carry a password).
    pub database_url: SecretString,
    /// Outbound mail transport.
    pub outbound: Outbound,
    /// Log line format.
    pub log_format: LogFormat,
    /// Expiry given to a message when the sender names none.
    pub default_expiry_days: u32,
    /// The longest expiry a sender may ask for.
    pub max_expiry_days: u32,
    /// Largest accepted message (raw MIME or API body), in bytes.
    pub max_message_bytes: u64,
    /// Most recipients per message.
    pub max_recipients: u32,
    /// Most attachments per message.
    pub max_attachments: u32,
    /// Reverse proxies whose `X-Forwarded-For` is believed. Non-empty also allows plain HTTP on
    /// a non-loopback address (the proxy terminates TLS).
    pub trusted_proxies: Vec<IpNet>,
    /// PEM certificate chain for HTTPS (and STARTTLS); set together with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (and STARTTLS); set together with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Where the server key is kept (mode 0600); generated on first start.
    pub server_key_file: PathBuf,
    /// The server key itself (key-file format), usually from `SEALPOST_SERVER_KEY`; when set,
    /// `server_key_file` is not read or written.
    pub server_key: Option<SecretString>,
    /// Staff and recipient sessions end after this many idle minutes.
    pub session_idle_minutes: u32,
    /// Failed attempts after which a recipient is locked.
    pub lockout_threshold: u32,
    /// Optional implicit-TLS SMTP listener (port 465 style); none by default.
    pub smtps_addr: Option<SocketAddr>,
    /// PEM certificate chain for SMTP STARTTLS; else `tls_cert`, else a self-signed certificate
    /// generated into the data directory.
    pub smtp_tls_cert: Option<PathBuf>,
    /// PEM private key for SMTP STARTTLS; set together with `smtp_tls_cert`.
    pub smtp_tls_key: Option<PathBuf>,
    /// Client networks allowed to submit over SMTP without AUTH (default: none).
    pub smtp_allowed_networks: Vec<IpNet>,
    /// Envelope sender domains accepted over SMTP, lower case (empty: any).
    pub smtp_allowed_sender_domains: Vec<String>,
    /// Let loopback clients AUTH and submit without STARTTLS (default false). Never applies to
    /// any other client.
    pub smtp_allow_loopback_plaintext: bool,
    /// Most concurrent SMTP sessions.
    pub smtp_max_sessions: u32,
    /// Most concurrent SMTP sessions from one client IP.
    pub smtp_max_sessions_per_ip: u32,
    /// Memory all SMTP sessions together may hold for messages being received (DATA is parsed
    /// whole); beyond it a transfer gets `452 4.3.1` and the client tries again later.
    pub smtp_data_memory_bytes: u64,
}

/// One layer of settings, every field optional. The TOML file deserializes into it directly;
/// the environment is parsed into it by [`RawConfig::from_env`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub data_dir: Option<PathBuf>,
    pub http_addr: Option<String>,
    pub smtp_addr: Option<String>,
    pub base_url: Option<String>,
    pub database_url: Option<SecretString>,
    pub outbound: Option<SecretString>,
    pub log_format: Option<String>,
    pub default_expiry_days: Option<u32>,
    pub max_expiry_days: Option<u32>,
    pub max_message_bytes: Option<u64>,
    pub max_recipients: Option<u32>,
    pub max_attachments: Option<u32>,
    pub trusted_proxies: Option<Vec<String>>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub server_key_file: Option<PathBuf>,
    pub server_key: Option<SecretString>,
    pub session_idle_minutes: Option<u32>,
    pub lockout_threshold: Option<u32>,
    pub smtps_addr: Option<String>,
    pub smtp_tls_cert: Option<PathBuf>,
    pub smtp_tls_key: Option<PathBuf>,
    pub smtp_allowed_networks: Option<Vec<String>>,
    pub smtp_allowed_sender_domains: Option<Vec<String>>,
    pub smtp_allow_loopback_plaintext: Option<bool>,
    pub smtp_max_sessions: Option<u32>,
    pub smtp_max_sessions_per_ip: Option<u32>,
    pub smtp_data_memory_bytes: Option<u64>,
}

fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
}

fn parse_env_num<T: FromStr>(key: &str, value: String) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(&env_name(key), "expected a non-negative whole number"))
}

impl RawConfig {
    /// Parse a TOML document. Unknown keys are dropped and reported in the returned warnings.
    pub fn from_toml(path: &Path, text: &str) -> Result<(Self, Vec<String>), ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let mut warnings = Vec::new();
        let unknown: Vec<String> = table
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            table.remove(&key);
            warnings.push(format!(
                "unknown key {key:?} in config file {} ignored",
                path.display()
            ));
        }
        let raw: Self = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Toml {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        Ok((raw, warnings))
    }

    /// Read `SEALPOST_<KEY>` for every known key through `lookup`. Unknown `SEALPOST_*` names in
    /// `all_names` are reported as warnings. `trusted_proxies` is comma-separated.
    pub fn from_env(
        lookup: &dyn Fn(&str) -> Option<String>,
        all_names: &[String],
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let get = |key: &str| lookup(&env_name(key)).filter(|v| !v.is_empty());
        let mut raw = Self {
            data_dir: get("data_dir").map(PathBuf::from),
            http_addr: get("http_addr"),
            smtp_addr: get("smtp_addr"),
            base_url: get("base_url"),
            database_url: get("database_url").map(SecretString::from),
            outbound: get("outbound").map(SecretString::from),
            log_format: get("log_format"),
            trusted_proxies: get("trusted_proxies").map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
            tls_cert: get("tls_cert").map(PathBuf::from),
            tls_key: get("tls_key").map(PathBuf::from),
            server_key_file: get("server_key_file").map(PathBuf::from),
            server_key: get("server_key").map(SecretString::from),
            ..Self::default()
        };
        if let Some(v) = get("default_expiry_days") {
            raw.default_expiry_days = Some(parse_env_num("default_expiry_days", v)?);
        }
        if let Some(v) = get("max_expiry_days") {
            raw.max_expiry_days = Some(parse_env_num("max_expiry_days", v)?);
        }
        if let Some(v) = get("max_message_bytes") {
            raw.max_message_bytes = Some(parse_env_num("max_message_bytes", v)?);
        }
        if let Some(v) = get("max_recipients") {
            raw.max_recipients = Some(parse_env_num("max_recipients", v)?);
        }
        if let Some(v) = get("max_attachments") {
            raw.max_attachments = Some(parse_env_num("max_attachments", v)?);
        }
        if let Some(v) = get("session_idle_minutes") {
            raw.session_idle_minutes = Some(parse_env_num("session_idle_minutes", v)?);
        }
        if let Some(v) = get("lockout_threshold") {
            raw.lockout_threshold = Some(parse_env_num("lockout_threshold", v)?);
        }
        raw.smtps_addr = get("smtps_addr");
        raw.smtp_tls_cert = get("smtp_tls_cert").map(PathBuf::from);
        raw.smtp_tls_key = get("smtp_tls_key").map(PathBuf::from);
        raw.smtp_allowed_networks = get("smtp_allowed_networks").map(|v| split_list(&v));
        raw.smtp_allowed_sender_domains =
            get("smtp_allowed_sender_domains").map(|v| split_list(&v));
        if let Some(v) = get("smtp_allow_loopback_plaintext") {
            raw.smtp_allow_loopback_plaintext =
                Some(parse_env_bool("smtp_allow_loopback_plaintext", &v)?);
        }
        if let Some(v) = get("smtp_max_sessions") {
            raw.smtp_max_sessions = Some(parse_env_num("smtp_max_sessions", v)?);
        }
        if let Some(v) = get("smtp_data_memory_bytes") {
            raw.smtp_data_memory_bytes = Some(parse_env_num("smtp_data_memory_bytes", v)?);
        }
        if let Some(v) = get("smtp_max_sessions_per_ip") {
            raw.smtp_max_sessions_per_ip = Some(parse_env_num("smtp_max_sessions_per_ip", v)?);
        }
        let known: Vec<String> = KNOWN_KEYS.iter().map(|k| env_name(k)).collect();
        let warnings = all_names
            .iter()
            .filter(|n| n.starts_with(ENV_PREFIX) && n.as_str() != CONFIG_ENV)
            .filter(|n| !known.contains(n))
            .map(|n| format!("unknown environment variable {n} ignored"))
            .collect();
        Ok((raw, warnings))
    }

    /// Lay `over` on top of `self`: every setting present in `over` wins.
    pub fn merge(self, over: Self) -> Self {
        Self {
            data_dir: over.data_dir.or(self.data_dir),
            http_addr: over.http_addr.or(self.http_addr),
            smtp_addr: over.smtp_addr.or(self.smtp_addr),
            base_url: over.base_url.or(self.base_url),
            database_url: over.database_url.or(self.database_url),
            outbound: over.outbound.or(self.outbound),
            log_format: over.log_format.or(self.log_format),
            default_expiry_days: over.default_expiry_days.or(self.default_expiry_days),
            max_expiry_days: over.max_expiry_days.or(self.max_expiry_days),
            max_message_bytes: over.max_message_bytes.or(self.max_message_bytes),
            max_recipients: over.max_recipients.or(self.max_recipients),
            max_attachments: over.max_attachments.or(self.max_attachments),
            trusted_proxies: over.trusted_proxies.or(self.trusted_proxies),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
            server_key_file: over.server_key_file.or(self.server_key_file),
            server_key: over.server_key.or(self.server_key),
            session_idle_minutes: over.session_idle_minutes.or(self.session_idle_minutes),
            lockout_threshold: over.lockout_threshold.or(self.lockout_threshold),
            smtps_addr: over.smtps_addr.or(self.smtps_addr),
            smtp_tls_cert: over.smtp_tls_cert.or(self.smtp_tls_cert),
            smtp_tls_key: over.smtp_tls_key.or(self.smtp_tls_key),
            smtp_allowed_networks: over.smtp_allowed_networks.or(self.smtp_allowed_networks),
            smtp_allowed_sender_domains: over
                .smtp_allowed_sender_domains
                .or(self.smtp_allowed_sender_domains),
            smtp_allow_loopback_plaintext: over
                .smtp_allow_loopback_plaintext
                .or(self.smtp_allow_loopback_plaintext),
            smtp_max_sessions: over.smtp_max_sessions.or(self.smtp_max_sessions),
            smtp_max_sessions_per_ip: over
                .smtp_max_sessions_per_ip
                .or(self.smtp_max_sessions_per_ip),
            smtp_data_memory_bytes: over.smtp_data_memory_bytes.or(self.smtp_data_memory_bytes),
        }
    }
}

fn parse_addr(
    setting: &str,
    value: Option<String>,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    value.trim().parse().map_err(|_| {
        invalid(
            setting,
            format!("{value:?} is not an IP:port socket address"),
        )
    })
}

fn parse_proxy(entry: &str) -> Result<IpNet, ConfigError> {
    let entry = entry.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    entry.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        invalid(
            "trusted_proxies",
            format!("{entry:?} is not an IP address or CIDR"),
        )
    })
}

/// A comma-separated environment list.
fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_env_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(&env_name(key), "expected true or false")),
    }
}

/// An IP address or CIDR network.
fn parse_net(setting: &str, entry: &str) -> Result<IpNet, ConfigError> {
    let entry = entry.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    entry
        .parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| invalid(setting, format!("{entry:?} is not an IP address or CIDR")))
}

/// A domain name, lower-cased.
fn parse_domain(setting: &str, entry: &str) -> Result<String, ConfigError> {
    let domain = entry.trim().trim_end_matches('.').to_lowercase();
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if !ok {
        return Err(invalid(setting, format!("{entry:?} is not a domain name")));
    }
    Ok(domain)
}

fn positive(setting: &str, value: Option<u32>, default: u32) -> Result<u32, ConfigError> {
    let value = value.unwrap_or(default);
    if value == 0 {
        return Err(invalid(setting, "must be at least 1"));
    }
    Ok(value)
}

impl Config {
    /// Load the configuration from the real file system and process environment.
    ///
    /// `cli_path` is the `--config` argument. Returns the config and warnings to log.
    pub fn load(cli_path: Option<&Path>) -> Result<(Self, Vec<String>), ConfigError> {
        let env_path = std::env::var_os(CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let path = match cli_path.map(Path::to_owned).or(env_path) {
            Some(p) => Some(p),
            None => {
                let p = PathBuf::from(DEFAULT_CONFIG_FILE);
                p.is_file().then_some(p)
            }
        };
        let file = match path {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Some((path, text))
            }
            None => None,
        };
        let names: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .collect();
        let lookup = |name: &str| std::env::var(name).ok();
        Self::from_sources(
            file.as_ref().map(|(p, t)| (p.as_path(), t.as_str())),
            &lookup,
            &names,
        )
    }

    /// Resolve defaults < `file` (path, TOML text) < environment (`lookup`, with `env_names`
    /// listing every variable name present, for unknown-name warnings).
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        lookup: &dyn Fn(&str) -> Option<String>,
        env_names: &[String],
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let file_raw = match file {
            Some((path, text)) => {
                let (raw, w) = RawConfig::from_toml(path, text)?;
                warnings.extend(w);
                raw
            }
            None => RawConfig::default(),
        };
        let (env_raw, w) = RawConfig::from_env(lookup, env_names)?;
        warnings.extend(w);
        let config = Self::from_raw(file_raw.merge(env_raw))?;
        Ok((config, warnings))
    }

    /// Apply defaults to a merged layer and validate every value.
    pub fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let data_dir = raw.data_dir.unwrap_or_else(|| PathBuf::from("./data"));
        if data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        let http_addr = parse_addr("http_addr", raw.http_addr, "127.0.0.1:8080")?;
        let smtp_addr = parse_addr("smtp_addr", raw.smtp_addr, "127.0.0.1:2525")?;

        let base_url = raw
            .base_url
            .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
        let base_url = base_url.trim().trim_end_matches('/').to_owned();
        let rest = base_url
            .strip_prefix("https://")
            .or_else(|| base_url.strip_prefix("http://"))
            .ok_or_else(|| invalid("base_url", "must start with https:// or http://"))?;
        if rest.is_empty() || rest.contains(['?', '#', ' ']) {
            return Err(invalid("base_url", "must be scheme://host[:port][/path]"));
        }

        let database_url = match raw.database_url {
            Some(url) => {
                if !url.expose_secret().starts_with("sqlite:") {
                    return Err(invalid(
                        "database_url",
                        "only sqlite: URLs are supported in this version",
                    ));
                }
                url
            }
            None => SecretString::from(format!(
                "sqlite://{}",
                data_dir.join("sealpost.db").display()
            )),
        };

        let outbound = match raw.outbound {
            Some(text) => {
                Outbound::parse(text.expose_secret()).map_err(|r| invalid("outbound", r))?
            }
            None => Outbound::File,
        };
        let log_format = match raw.log_format {
            Some(text) => text.parse().map_err(|r: String| invalid("log_format", r))?,
            None => LogFormat::Text,
        };

        let default_expiry_days = positive("default_expiry_days", raw.default_expiry_days, 30)?;
        let max_expiry_days = positive("max_expiry_days", raw.max_expiry_days, 90)?;
        if default_expiry_days > max_expiry_days {
            return Err(invalid(
                "default_expiry_days",
                format!("{default_expiry_days} is more than max_expiry_days ({max_expiry_days})"),
            ));
        }
        let max_message_bytes = raw.max_message_bytes.unwrap_or(50 * 1024 * 1024);
        if max_message_bytes == 0 {
            return Err(invalid("max_message_bytes", "must be at least 1"));
        }
        let max_recipients = positive("max_recipients", raw.max_recipients, 50)?;
        let max_attachments = raw.max_attachments.unwrap_or(20);

        let trusted_proxies = raw
            .trusted_proxies
            .unwrap_or_default()
            .iter()
            .map(|e| parse_proxy(e))
            .collect::<Result<Vec<_>, _>>()?;

        let (tls_cert, tls_key) = match (raw.tls_cert, raw.tls_key) {
            (Some(c), Some(k)) => (Some(c), Some(k)),
            (None, None) => (None, None),
            _ => {
                return Err(invalid(
                    "tls_cert",
                    "tls_cert and tls_key must be set together",
                ));
            }
        };

        let server_key_file = raw
            .server_key_file
            .unwrap_or_else(|| data_dir.join("server.key"));
        let server_key = raw
            .server_key
            .filter(|k| !k.expose_secret().trim().is_empty());

        let session_idle_minutes = positive("session_idle_minutes", raw.session_idle_minutes, 15)?;
        let lockout_threshold = positive("lockout_threshold", raw.lockout_threshold, 10)?;

        let smtps_addr = match raw.smtps_addr {
            Some(text) => Some(parse_addr("smtps_addr", Some(text), "")?),
            None => None,
        };
        let (smtp_tls_cert, smtp_tls_key) = match (raw.smtp_tls_cert, raw.smtp_tls_key) {
            (Some(c), Some(k)) => (Some(c), Some(k)),
            (None, None) => (None, None),
            _ => {
                return Err(invalid(
                    "smtp_tls_cert",
                    "smtp_tls_cert and smtp_tls_key must be set together",
                ));
            }
        };
        let smtp_allowed_networks = raw
            .smtp_allowed_networks
            .unwrap_or_default()
            .iter()
            .map(|e| parse_net("smtp_allowed_networks", e))
            .collect::<Result<Vec<_>, _>>()?;
        let smtp_allowed_sender_domains = raw
            .smtp_allowed_sender_domains
            .unwrap_or_default()
            .iter()
            .map(|d| parse_domain("smtp_allowed_sender_domains", d))
            .collect::<Result<Vec<_>, _>>()?;
        let smtp_allow_loopback_plaintext = raw.smtp_allow_loopback_plaintext.unwrap_or(false);
        let smtp_max_sessions = positive("smtp_max_sessions", raw.smtp_max_sessions, 100)?;
        let smtp_max_sessions_per_ip =
            positive("smtp_max_sessions_per_ip", raw.smtp_max_sessions_per_ip, 20)?;
        let smtp_data_memory_bytes = raw.smtp_data_memory_bytes.unwrap_or(1024 * 1024 * 1024);
        if smtp_data_memory_bytes < max_message_bytes {
            // Otherwise a message of the maximum size could never be accepted, only deferred.
            return Err(invalid(
                "smtp_data_memory_bytes",
                "must be at least max_message_bytes",
            ));
        }

        Ok(Self {
            data_dir,
            http_addr,
            smtp_addr,
            base_url,
            database_url,
            outbound,
            log_format,
            default_expiry_days,
            max_expiry_days,
            max_message_bytes,
            max_recipients,
            max_attachments,
            trusted_proxies,
            tls_cert,
            tls_key,
            server_key_file,
            server_key,
            session_idle_minutes,
            lockout_threshold,
            smtps_addr,
            smtp_tls_cert,
            smtp_tls_key,
            smtp_allowed_networks,
            smtp_allowed_sender_domains,
            smtp_allow_loopback_plaintext,
            smtp_max_sessions,
            smtp_max_sessions_per_ip,
            smtp_data_memory_bytes,
        })
    }

    /// Whether links point at an `https://` base URL (cookies are then marked `Secure`).
    pub fn base_url_is_https(&self) -> bool {
        self.base_url.starts_with("https://")
    }

    /// Whether `ip` is one of the trusted reverse proxies.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The directory outbound `.eml` files are written to with [`Outbound::File`].
    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> (HashMap<String, String>, Vec<String>) {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let names = map.keys().cloned().collect();
        (map, names)
    }

    fn load(
        file: Option<&str>,
        pairs: &[(&str, &str)],
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let (map, names) = env(pairs);
        let lookup = move |k: &str| map.get(k).cloned();
        Config::from_sources(file.map(|t| (Path::new("test.toml"), t)), &lookup, &names)
    }

    #[test]
    fn defaults() -> Result<(), ConfigError> {
        let (c, warnings) = load(None, &[])?;
        assert!(warnings.is_empty());
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.smtp_addr.to_string(), "127.0.0.1:2525");
        assert_eq!(c.base_url, "http://127.0.0.1:8080");
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
        for (key, value) in [
            ("SEALPOST_SMTP_ALLOWED_NETWORKS", "10.0.0.0/33"),
            ("SEALPOST_SMTP_ALLOWED_SENDER_DOMAINS", "exa mple.org"),
            ("SEALPOST_SMTP_ALLOW_LOOPBACK_PLAINTEXT", "maybe"),
            ("SEALPOST_SMTP_MAX_SESSIONS", "0"),
            ("SEALPOST_SMTP_TLS_CERT", "/c.pem"),
            ("SEALPOST_SMTPS_ADDR", "nowhere"),
        ] {
            let needle = key.trim_start_matches(ENV_PREFIX).to_ascii_lowercase();
            match load(None, &[(key, value)]) {
                Ok(_) => panic!("{key}={value} accepted"),
                Err(e) => assert!(
                    e.to_string().to_ascii_lowercase().contains(&needle),
                    "{e} should name {needle}"
                ),
            }
        }
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
        assert!(c.is_trusted_proxy("10.1.2.3".parse().map_err(|_| invalid("t", "ip"))?));
        assert!(c.is_trusted_proxy("192.168.1.7".parse().map_err(|_| invalid("t", "ip"))?));
        assert!(!c.is_trusted_proxy("192.168.1.8".parse().map_err(|_| invalid("t", "ip"))?));
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
        Ok(())
    }

    #[test]
    fn unknown_keys_warn() -> Result<(), ConfigError> {
        let (_, warnings) = load(Some("colour = \"blue\"\n"), &[("SEALPOST_NOPE", "1")])?;
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("colour"));
        assert!(warnings[1].contains("SEALPOST_NOPE"));
        Ok(())
    }

    #[test]
    fn invalid_values_fail_fast_naming_the_setting() {
        /// (TOML file, environment, text the error must contain)
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (None, &[("SEALPOST_HTTP_ADDR", "localhost")], "http_addr"),
            (
                None,
                &[("SEALPOST_MAX_RECIPIENTS", "many")],
                "SEALPOST_MAX_RECIPIENTS",
            ),
            (None, &[("SEALPOST_LOG_FORMAT", "xml")], "log_format"),
            (None, &[("SEALPOST_OUTBOUND", "ftp://x")], "outbound"),
            (None, &[("SEALPOST_BASE_URL", "example.com")], "base_url"),
            (
                None,
                &[("SEALPOST_TRUSTED_PROXIES", "10.0.0.0/99")],
                "trusted_proxies",
            ),
            (None, &[("SEALPOST_TLS_CERT", "/c.pem")], "tls_cert"),
            (
                None,
                &[("SEALPOST_DEFAULT_EXPIRY_DAYS", "100")],
                "default_expiry_days",
            ),
            (Some("max_recipients = \"ten\""), &[], "max_recipients"),
            (Some("max_recipients = -1"), &[], "max_recipients"),
            (
                None,
                &[("SEALPOST_LOCKOUT_THRESHOLD", "0")],
                "lockout_threshold",
            ),
        ];
        for (file, pairs, needle) in cases {
            match load(*file, pairs) {
                Ok(_) => panic!("expected an error for {pairs:?} / {file:?}"),
                Err(e) => assert!(e.to_string().contains(needle), "{e} should name {needle}"),
            }
        }
    }

    #[test]
    fn outbound_password_not_in_error() {
        let (map, names) = env(&[("SEALPOST_OUTBOUND", "smtp://u:hunter2@host:notaport")]);
        let lookup = move |k: &str| map.get(k).cloned();
        match Config::from_sources(None, &lookup, &names) {
            Ok(_) => panic!("expected an error"),
            Err(e) => assert!(!e.to_string().contains("hunter2")),
        }
    }

    #[test]
    fn known_keys_match_raw_config() {
        // A TOML document setting every known key must deserialize without error, so the key
        // list and the struct cannot drift apart.
        let doc: String = KNOWN_KEYS
            .iter()
            .map(|k| match *k {
                "trusted_proxies" | "smtp_allowed_networks" | "smtp_allowed_sender_domains" => {
                    format!("{k} = []\n")
                }
                "smtp_allow_loopback_plaintext" => format!("{k} = true\n"),
                "default_expiry_days"
                | "max_expiry_days"
                | "max_message_bytes"
                | "smtp_data_memory_bytes"
                | "max_recipients"
                | "max_attachments"
                | "session_idle_minutes"
                | "lockout_threshold"
                | "smtp_max_sessions"
                | "smtp_max_sessions_per_ip" => format!("{k} = 1\n"),
                _ => format!("{k} = \"x\"\n"),
            })
            .collect();
        match RawConfig::from_toml(Path::new("t.toml"), &doc) {
            Ok((_, warnings)) => assert!(warnings.is_empty(), "{warnings:?}"),
            Err(e) => panic!("{e}"),
        }
    }
}
