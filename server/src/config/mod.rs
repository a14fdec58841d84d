//! One typed configuration, loaded in layers with [`figment`]: built-in defaults <
//! `sealpost.toml` < `SEALPOST_*` environment variables.
//!
//! The file is the one named by `--config`, else by `SEALPOST_CONFIG`, else `./sealpost.toml`
//! when it exists. Every setting has an environment form `SEALPOST_<NAME>` (the TOML key in
//! upper case); there a list is comma-separated, a switch is 1/true/yes/on or 0/false/no/off,
//! and an empty value counts as unset.
//!
//! [`Config`] is where a setting is declared: its field, with the doc comment that is also its
//! row in `docs/CONFIG.md` (`docs.rs`) and its default beside it. A setting's checks live in its
//! section's module (`storage.rs`, `http.rs`, `checkpoint.rs`, `limits.rs`, `outbound.rs`,
//! `smtp.rs`); values are extracted once and checked once, and an error names the setting and
//! where it was set (`error.rs`). Unknown TOML keys and unknown `SEALPOST_*` variables are
//! returned as warnings (logged once logging is up). A setting that would open Sealpost to
//! everyone (a network as wide as the Internet where a few hosts are meant) is refused unless a
//! second setting acknowledges it.
//!
//! Secrets (`server_key`, `checkpoint_key`, the outbound relay password, the database URL which
//! may carry a password) are [`SecretString`]s, so `Debug` never prints them, and they serialize
//! redacted.
//! No error message repeats a value read from a source unless a check here put it there on
//! purpose, for a setting that is not secret.

#![expect(
    clippy::disallowed_methods,
    reason = "configuration is the one place the environment is read"
)]

mod checkpoint;
mod docs;
mod error;
mod http;
mod limits;
mod outbound;
mod smtp;
mod sources;
mod storage;
#[cfg(test)]
mod tests;
mod throttle;
mod values;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::store::users::Role;
use documented::DocumentedFields;
use figment::Figment;
use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_inline_default::serde_inline_default;

pub use docs::settings_table;
pub use error::ConfigError;
pub use http::BaseUrl;
pub use outbound::Outbound;
pub use values::LogFormat;

use error::Checks;
use sources::{Environment, TomlFile};

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "SEALPOST_CONFIG";
/// The prefix of every setting's environment form.
pub const ENV_PREFIX: &str = "SEALPOST_";
/// The file read when neither `--config` nor `SEALPOST_CONFIG` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "sealpost.toml";

/// The resolved configuration. Build it with [`Config::load`], or with [`Config::builder`] in
/// tests and tools; every field has been checked.
#[serde_inline_default]
#[derive(Debug, Clone, Deserialize, Serialize, DocumentedFields)]
pub struct Config {
    /// Directory for the database, the generated server and checkpoint keys and the outbox
    /// (created mode 0700).
    #[serde_inline_default(PathBuf::from("./data"))]
    pub data_dir: PathBuf,
    /// HTTP listener, `IP:port`.
    #[serde_inline_default(SocketAddr::from(([127, 0, 0, 1], 8080)))]
    #[serde(deserialize_with = "values::socket_addr")]
    pub http_addr: SocketAddr,
    /// SMTP listener, `IP:port`.
    #[serde_inline_default(SocketAddr::from(([127, 0, 0, 1], 2525)))]
    #[serde(deserialize_with = "values::socket_addr")]
    pub smtp_addr: SocketAddr,
    /// Public URL that links start with; its origin is the only one allowed to post forms.
    /// When not set it follows `http_addr`: `http://<http_addr>`, or `https://` with
    /// `tls_cert`.
    #[serde(default = "BaseUrl::unset")]
    pub base_url: BaseUrl,
    /// sqlx database URL; only `sqlite:` URLs in this version. Secret: it may carry a password.
    /// When not set it follows `data_dir`: `sqlite://<data_dir>/sealpost.db`.
    #[serde(default, serialize_with = "storage::url_without_password")]
    pub database_url: SecretString,
    /// Where outbound mail goes: `file` (`.eml` files in `<data_dir>/outbox/`),
    /// `smtp://[user[:password]@]host[:port]` (port 587; STARTTLS required unless the host is
    /// loopback) or `smtps://…` (TLS from the first byte, port 465). User and password may be
    /// percent-encoded. Secret: it may carry a password.
    #[serde(default)]
    pub outbound: Outbound,
    /// Let `outbound = file` serve a `base_url` that is not loopback. The outbox keeps every
    /// link secret and one-time code in clear on disk, so it is for development; without this,
    /// `serve` refuses to start with a public `base_url` and the file outbox.
    #[serde(default)]
    pub outbound_file_allow_public: bool,
    /// Hours an outbox `.eml` file (`outbound = file`) is kept before the periodic jobs delete
    /// it; each one holds a link secret or a one-time code.
    #[serde_inline_default(24)]
    pub outbound_file_retention_hours: u32,
    /// Log line format: `text`, or `json` (one object per line, for log shippers).
    #[serde(default)]
    pub log_format: LogFormat,
    /// Expiry in days given to a message when the sender names none; at most
    /// `max_expiry_days`.
    #[serde_inline_default(30)]
    pub default_expiry_days: u32,
    /// The longest expiry in days a sender may ask for.
    #[serde_inline_default(90)]
    pub max_expiry_days: u32,
    /// Largest accepted message (raw MIME or API body: all bodies and attachments), in bytes.
    #[serde_inline_default(50 * 1024 * 1024)]
    pub max_message_bytes: u64,
    /// Most recipients per message.
    #[serde_inline_default(50)]
    pub max_recipients: u32,
    /// Most attachments per message.
    #[serde_inline_default(20)]
    pub max_attachments: u32,
    /// IPs or CIDRs of TLS-terminating reverse proxies whose `X-Forwarded-For` is believed.
    /// Non-empty also allows plain HTTP on a non-loopback address (the proxy terminates TLS).
    #[serde(default, deserialize_with = "values::networks")]
    pub trusted_proxies: Vec<IpNet>,
    /// Accept `trusted_proxies` entries broader than a /8 (IPv4) or /32 (IPv6), such as
    /// `0.0.0.0/0`; every client in them can then choose the IP address the audit log and the
    /// per-client limits see, with `X-Forwarded-For`.
    #[serde(default)]
    pub trusted_proxies_allow_wide: bool,
    /// PEM certificate chain for HTTPS (and STARTTLS); set together with `tls_key`. Needed to
    /// serve on a non-loopback address without a trusted proxy.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS (and STARTTLS); set together with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Most concurrent HTTP connections. When they are all open, a new connection takes the
    /// place of the one that has waited longest without a request being handled (a slow or
    /// idle client), which is closed; only when every connection has a request being handled
    /// is the new one closed at once. Keep it well below the process's open-file limit
    /// (`ulimit -n`, often 1024).
    #[serde_inline_default(512)]
    pub http_max_connections: u32,
    /// Most concurrent HTTP connections from one client (an IP address, or an IPv6 /64); one
    /// more is closed at once. Peers
    /// in `trusted_proxies` are exempt (all their clients share the proxy's address), but
    /// `http_max_connections` counts them too.
    #[serde_inline_default(32)]
    pub http_max_connections_per_ip: u32,
    /// Seconds a client has to send a whole request head, counted from the start of the
    /// connection (after the TLS handshake) or, on a kept-alive connection, from the end of
    /// the previous response; then the connection is closed.
    #[serde_inline_default(30)]
    pub http_header_read_timeout_secs: u32,
    /// Seconds an HTTP connection may go with no bytes moving either way and no request being
    /// handled (an idle keep-alive connection, a client that sends nothing or stops reading
    /// its response) before it is closed. Also the longest pause within a request body: a
    /// body that stops arriving for this long fails and its request ends.
    #[serde_inline_default(15)]
    pub http_idle_timeout_secs: u32,
    /// Seconds a client has to finish the TLS handshake (HTTPS only).
    #[serde_inline_default(10)]
    pub http_tls_handshake_timeout_secs: u32,
    /// Where the server key is kept (mode 0600); generated on first start. When not set it
    /// follows `data_dir`: `<data_dir>/server.key`.
    #[serde(default)]
    pub server_key_file: PathBuf,
    /// The server key itself (key-file format), e.g. from a secret store; when set,
    /// `server_key_file` is not read or written. Secret.
    #[serde(default, serialize_with = "storage::redacted")]
    pub server_key: Option<SecretString>,
    /// Where the Ed25519 key that signs audit checkpoints is kept (mode 0600); generated on
    /// first start, and named then after `checkpoint_origin`. When not set it follows
    /// `data_dir`: `<data_dir>/checkpoint.key`.
    #[serde(default)]
    pub checkpoint_key_file: PathBuf,
    /// The checkpoint key itself (key-file format, `PRIVATE+KEY+…`), e.g. from a secret store;
    /// when set, `checkpoint_key_file` is not read or written. Secret.
    #[serde(default, serialize_with = "storage::redacted")]
    pub checkpoint_key: Option<SecretString>,
    /// The name of this audit log, the first line of every checkpoint: no spaces or `+`. When
    /// not set it follows `base_url`: `<base_url host>/audit`.
    #[serde(default)]
    pub checkpoint_origin: String,
    /// Minutes between the checkpoints the periodic jobs sign (0: none; `sealpost audit
    /// checkpoint` signs one at any time). A checkpoint is signed only when the log has grown
    /// since the last one.
    #[serde_inline_default(60)]
    pub checkpoint_interval_minutes: u32,
    /// An address (a witness: an auditor's mailbox, an archive) each periodic checkpoint is
    /// mailed to as plain text, through `outbound`; a copy outside the database is what makes
    /// a checkpoint worth keeping.
    #[serde(default)]
    pub checkpoint_mail_to: Option<String>,
    /// Staff and recipient sessions end after this many idle minutes.
    #[serde_inline_default(15)]
    pub session_idle_minutes: u32,
    /// Staff sessions end this many hours after sign-in, however active.
    #[serde_inline_default(12)]
    pub staff_session_max_hours: u32,
    /// Staff roles that must use a TOTP second factor; a user of such a role without one is
    /// sent to enrolment right after the password and can do nothing else until it is done.
    /// Other roles may enrol if they wish.
    #[serde_inline_default(vec![Role::Admin, Role::Auditor])]
    pub staff_totp_required_roles: Vec<Role>,
    /// Failed staff sign-ins (wrong email, password, TOTP or recovery code) one client IP may
    /// make per minute; beyond it the sign-in page answers `429 Too Many Requests`.
    #[serde_inline_default(10)]
    pub staff_signin_failures_per_minute: u32,
    /// Failed sign-ins to one staff account, from any client, after which the account is
    /// locked for `staff_lockout_minutes`; the lock lifts by itself, and a successful sign-in
    /// resets the count. Kept in the database, so a restart does not reset it.
    #[serde_inline_default(5)]
    pub staff_lockout_threshold: u32,
    /// How long a staff account stays locked after `staff_lockout_threshold` failures, in
    /// minutes. Failures older than this are forgotten.
    #[serde_inline_default(15)]
    pub staff_lockout_minutes: u32,
    /// Wrong codes, link secrets or passphrases one client (an IP address, or an IPv6 /64) may
    /// enter for one recipient before that client is blocked from the message for
    /// `lockout_minutes`. From the 3rd wrong entry on, the client must also wait between tries
    /// (1 s, then 2 s, 4 s… up to 5 minutes). Other clients are not affected.
    #[serde_inline_default(10)]
    pub lockout_threshold: u32,
    /// How long a client that reached `lockout_threshold` is blocked from the message, in
    /// minutes; the block then lifts by itself. A client's failures are also forgotten this
    /// long after its last one.
    #[serde_inline_default(60)]
    pub lockout_minutes: u32,
    /// Wrong entries from all clients together after which the recipient is locked for
    /// everyone; more than `lockout_threshold`, so one client alone cannot lock a recipient
    /// out. The recipient unlocks it with a new one-time code after
    /// `lockout_cooldown_minutes`; the sender (API) or an admin (`sealpost recipient unlock`)
    /// can unlock it at any time.
    #[serde_inline_default(50)]
    pub lockout_recipient_threshold: u32,
    /// Minutes after a recipient was locked before a new one-time code can unlock it.
    #[serde_inline_default(15)]
    pub lockout_cooldown_minutes: u32,
    /// One-time codes one client (an IP address, or an IPv6 /64) may ask to be sent to one
    /// recipient per hour. A code can be entered only from the client that asked for it, so a
    /// stranger who knows a pickup id can neither spend the recipient's code nor, alone, use
    /// up the recipient's codes.
    #[serde_inline_default(3)]
    pub codes_per_client_per_hour: u32,
    /// One-time codes a recipient may be sent per hour from all clients together, so that the
    /// recipient's mailbox cannot be flooded; more than `codes_per_client_per_hour`.
    #[serde_inline_default(10)]
    pub codes_per_recipient_per_hour: u32,
    /// Form posts to pickup pages (code, verify, open, download) one client IP may make per
    /// minute; beyond it the client gets `429 Too Many Requests` until its budget refills.
    #[serde_inline_default(30)]
    pub pickup_posts_per_minute: u32,
    /// API requests with an unknown, revoked or malformed bearer token one client IP may make
    /// per minute; beyond it each such request gets `429 Too Many Requests`.
    #[serde_inline_default(10)]
    pub api_auth_failures_per_minute: u32,
    /// SMTP connections one client IP may open per minute; beyond it `421 4.7.0`.
    #[serde_inline_default(120)]
    pub smtp_connections_per_minute: u32,
    /// Failed SMTP AUTH attempts per minute, per client IP and per relay name; beyond either
    /// the session gets `421 4.7.0` and is closed.
    #[serde_inline_default(10)]
    pub smtp_auth_failures_per_minute: u32,
    /// Repeated refusals of one kind from one client (bad tokens, throttled requests, refused
    /// SMTP connections…): how many per window are audited one by one; the rest are counted
    /// and audited as one `refusals_counted` event when the window ends.
    #[serde_inline_default(3)]
    pub audit_refusals_per_window: u32,
    /// The length of that window, in seconds.
    #[serde_inline_default(60)]
    pub audit_refusal_window_seconds: u32,
    /// Optional implicit-TLS SMTP listener (port 465 style), `IP:port`.
    #[serde(default, deserialize_with = "values::opt_socket_addr")]
    pub smtps_addr: Option<SocketAddr>,
    /// PEM certificate chain for SMTP STARTTLS; set together with `smtp_tls_key`. When not set,
    /// `tls_cert`, else a self-signed certificate generated into the data directory. Its
    /// SHA-256 fingerprint is logged at start, for pinning on the relaying MTA.
    pub smtp_tls_cert: Option<PathBuf>,
    /// PEM private key for SMTP STARTTLS; set together with `smtp_tls_cert`.
    pub smtp_tls_key: Option<PathBuf>,
    /// IPs or CIDRs of clients allowed to submit over SMTP without AUTH (TLS still required).
    #[serde(default, deserialize_with = "values::networks")]
    pub smtp_allowed_networks: Vec<IpNet>,
    /// Accept `smtp_allowed_networks` entries broader than a /8 (IPv4) or /32 (IPv6), such as
    /// `0.0.0.0/0`; every client in them can then have Sealpost mail notifications without
    /// AUTH (an open notification relay).
    #[serde(default)]
    pub smtp_allow_wide_networks: bool,
    /// Envelope sender domains accepted over SMTP, matched without case (empty: any).
    #[serde(default, deserialize_with = "smtp::domains")]
    pub smtp_allowed_sender_domains: Vec<String>,
    /// Let loopback clients AUTH and submit without STARTTLS. Never applies to any other
    /// client.
    #[serde(default)]
    pub smtp_allow_loopback_plaintext: bool,
    /// Most concurrent SMTP sessions.
    #[serde_inline_default(100)]
    pub smtp_max_sessions: u32,
    /// Most concurrent SMTP sessions from one client IP.
    #[serde_inline_default(20)]
    pub smtp_max_sessions_per_ip: u32,
    /// Most concurrent SMTP sessions from one client IP that have not authenticated yet; one
    /// more gets `421 4.7.0`. A session that authenticates counts only toward
    /// `smtp_max_sessions_per_ip` from then on. Clients in `smtp_allowed_networks` (which
    /// relay without AUTH) are exempt. The default matches `smtp_max_sessions_per_ip`: a relay
    /// opens its connections all at once (Postfix's default destination concurrency is 20), and
    /// each is unauthenticated until its AUTH; lower it where relays open fewer.
    #[serde_inline_default(20)]
    pub smtp_max_unauthenticated_per_ip: u32,
    /// Seconds an SMTP session may last without authenticating (the STARTTLS handshake
    /// included); then it gets `421 4.7.0` and is closed. Clients in `smtp_allowed_networks`
    /// are exempt.
    #[serde_inline_default(60)]
    pub smtp_unauthenticated_timeout_secs: u32,
    /// Commands an SMTP session may send before it authenticates, every command counted (EHLO,
    /// STARTTLS, NOOP, RSET, HELP, unknown ones, AUTH itself); the next one gets `421 4.7.0`
    /// and the session is closed. At least 4 (EHLO, STARTTLS, EHLO, AUTH). Clients in
    /// `smtp_allowed_networks` are exempt.
    #[serde_inline_default(10)]
    pub smtp_unauthenticated_max_commands: u32,
    /// Memory in bytes all SMTP sessions together may hold for messages being received (each
    /// DATA is parsed whole); a transfer beyond it gets `452 4.3.1` and the MTA tries again
    /// later. At least `max_message_bytes`.
    #[serde_inline_default(1024 * 1024 * 1024)]
    pub smtp_data_memory_bytes: u64,
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
        Self::from_sources(
            file.as_ref().map(|(p, t)| (p.as_path(), t.as_str())),
            Environment::process_vars(),
        )
    }

    /// Resolve defaults < `file` (path, TOML text) < `env` (every variable of the environment,
    /// as name and value; those without the `SEALPOST_` prefix are skipped).
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut figment = Figment::new();
        let mut warnings = Vec::new();
        if let Some((path, text)) = file {
            let file = TomlFile::parse(path, text)?;
            warnings.extend(file.warnings());
            figment = figment.merge(file);
        }
        let env = Environment::from_vars(env);
        warnings.extend(env.warnings());
        let (config, more) = Self::from_figment(&figment.merge(env))?;
        warnings.extend(more);
        Ok((config, warnings))
    }

    /// Extract the settings `figment` holds over the defaults, fill in the defaults that follow
    /// other settings, and check every value. Returns the config and warnings to log.
    pub fn from_figment(figment: &Figment) -> Result<(Self, Vec<String>), ConfigError> {
        let mut config: Self = figment.extract_lossy().map_err(ConfigError::from_figment)?;
        let checks = Checks::new(figment);
        let mut warnings = Vec::new();
        storage::check(&mut config, &checks)?;
        http::check(&mut config, &checks, &mut warnings)?;
        checkpoint::check(&mut config, &checks)?;
        limits::check(&config, &checks)?;
        outbound::check(&config, &checks)?;
        smtp::check(&config, &checks)?;
        throttle::check(&config, &checks)?;
        Ok((config, warnings))
    }

    /// Settings over the defaults in code, validated like a loaded configuration:
    /// `Config::builder().set("data_dir", dir).set("max_recipients", 3).build()?`.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            figment: Figment::new(),
            unknown: None,
        }
    }

    /// Every setting's name, in declaration order: the TOML keys, and lower-cased without the
    /// `SEALPOST_` prefix the environment names.
    pub fn keys() -> &'static [&'static str] {
        Self::FIELD_NAMES
    }

    /// Whether links point at an `https://` base URL (cookies are then marked `Secure`).
    pub fn base_url_is_https(&self) -> bool {
        self.base_url.url().scheme() == "https"
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

/// `SEALPOST_<KEY>`: a setting's environment form.
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
}

/// Builds a [`Config`] from settings given in code, through the same extraction and checks as
/// [`Config::load`]. See [`Config::builder`].
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    figment: Figment,
    unknown: Option<String>,
}

impl ConfigBuilder {
    /// Set `key` (a TOML key) to `value`, as the file or environment would.
    pub fn set(mut self, key: &str, value: impl Serialize) -> Self {
        if !Config::keys().contains(&key) {
            self.unknown.get_or_insert_with(|| key.to_owned());
        }
        self.figment = self.figment.merge((key, value));
        self
    }

    /// The checked configuration, and warnings a loaded one would log.
    pub fn build_with_warnings(self) -> Result<(Config, Vec<String>), ConfigError> {
        if let Some(key) = self.unknown {
            return Err(ConfigError::Invalid {
                setting: key,
                origin: None,
                reason: "no such setting".to_owned(),
            });
        }
        Config::from_figment(&self.figment)
    }

    /// The checked configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        self.build_with_warnings().map(|(config, _)| config)
    }
}
