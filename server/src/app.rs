//! Start-up: data directory, server key, database, first admin; and running the listeners.
//!
//! `App::open` is what every CLI command needs (it never prints); `App::build` adds first-run
//! set-up for `serve`. Listeners take an already-bound `TcpListener` and a shutdown future, so
//! tests bind `127.0.0.1:0` and never sleep waiting for readiness.
//!
//! The server key is read from `server_key` (environment) or `server_key_file`, never from
//! the database, and is generated with mode 0600 on first start. It is never logged. The
//! checkpoint key, which signs audit checkpoints, is kept the same way beside it
//! (`checkpoint_key`, `checkpoint_key_file`).

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use sealpost_crypto::ServerKey;
use secrecy::ExposeSecret;
use serde_json::json;
use zeroize::Zeroizing;

use crate::audit::checkpoint::CheckpointKey;
use crate::audit::{self, Action, Event, actor};
use crate::config::Config;
use crate::files;
use crate::notify::Mailer;
use crate::store::Store;
use crate::store::users::{self, Role};
use crate::throttle::Throttle;
use crate::web;

/// What every handler gets: cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub server_key: Arc<ServerKey>,
    /// Signs audit checkpoints (`crate::audit::checkpoint`).
    pub checkpoint_key: Arc<CheckpointKey>,
    /// Outbound mail: notifications, codes.
    pub mailer: Mailer,
    /// Bounds concurrent Argon2id derivations of recipients' passphrases (19 MiB each), so
    /// passphrase guessing cannot exhaust memory or CPU.
    pub kdf_limit: Arc<tokio::sync::Semaphore>,
    /// Bounds concurrent Argon2id checks of relay (and, later, staff) passwords. Separate from
    /// [`AppState::kdf_limit`], so a flood of SMTP AUTH guesses cannot slow recipients down.
    pub password_limit: Arc<tokio::sync::Semaphore>,
    /// Per-client rate limits and the counting of repeated refusals.
    pub throttle: Arc<Throttle>,
}

/// Concurrent Argon2id derivations allowed: about one per core, at most 8.
fn kdf_permits() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8)
}

/// An opened Sealpost instance.
#[derive(Debug)]
pub struct App {
    state: AppState,
}

/// The email of the admin created on first start.
pub const FIRST_ADMIN_EMAIL: &str = "admin@localhost";

/// Credentials of a freshly created account, shown once.
#[derive(Debug)]
pub struct NewCredentials {
    pub email: String,
    pub password: Zeroizing<String>,
}

impl App {
    /// Create/open the data directory, load or generate the server and checkpoint keys, open
    /// and migrate the database. Prints nothing.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        files::create_private_dir(&config.data_dir)?;
        let server_key = load_or_create_server_key(&config)?;
        let checkpoint_key = load_or_create_checkpoint_key(&config)?;
        if let Some(db_file) = Store::sqlite_file(&config.database_url) {
            precreate_private_file(&db_file)?;
        }
        let store = Store::open(&config.database_url)
            .await
            .context("cannot open the database")?;
        store
            .migrate()
            .await
            .context("cannot migrate the database")?;
        let mailer = Mailer::from_config(&config).context("cannot set up outbound mail")?;
        Ok(Self {
            state: AppState {
                store,
                throttle: Arc::new(Throttle::new(&config)),
                config: Arc::new(config),
                server_key: Arc::new(server_key),
                checkpoint_key: Arc::new(checkpoint_key),
                mailer,
                kdf_limit: Arc::new(tokio::sync::Semaphore::new(kdf_permits())),
                password_limit: Arc::new(tokio::sync::Semaphore::new(kdf_permits())),
            },
        })
    }

    /// [`App::open`], then on first run (no users) create `admin@localhost` with a generated
    /// password and print it once to stdout.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let app = Self::open(config).await?;
        if let Some(admin) = ensure_first_admin(&app.state.store).await? {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "created first admin {} with one-time password:",
                admin.email
            )?;
            writeln!(out, "{}", admin.password.as_str())?;
            out.flush()?;
        }
        Ok(app)
    }

    /// The state handed to handlers.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// Serve HTTP — over TLS when a certificate is configured — on `listener` until `shutdown`
    /// resolves, then finish in-flight requests. Refuses plain HTTP on a public address (see
    /// [`web::check_listener_policy`]). Both go through [`crate::net::http::serve`], with the
    /// timeouts and connection caps of the `http_*` settings.
    pub async fn serve_http(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = listener.local_addr()?;
        let config = &self.state.config;
        let tls = match (
            web::check_listener_policy(addr, config)?,
            &config.tls_cert,
            &config.tls_key,
        ) {
            (web::Scheme::Https, Some(cert), Some(key)) => {
                Some(crate::tls::server_config(cert, key, &[b"http/1.1"])?)
            }
            _ => None,
        };
        let https = tls.is_some();
        tracing::info!(%addr, https, "HTTP listening");
        let limits = crate::net::http::HttpLimits::from_config(config);
        let router = web::router(self.state.clone());
        crate::net::http::serve(listener, router, tls, limits, shutdown)
            .await
            .context("HTTP server failed")?;
        tracing::info!(https, "HTTP stopped");
        Ok(())
    }
}

/// Hash a password off the async runtime (Argon2id is CPU- and memory-heavy).
pub async fn hash_password(password: Zeroizing<String>) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || sealpost_crypto::password::hash(&password))
        .await
        .context("password hashing task failed")?
        .context("cannot hash password")
}

/// If there are no users, create [`FIRST_ADMIN_EMAIL`] with a generated password (audited as
/// `user_added` by `system`) and return its credentials. The admin must change the password
/// at first sign-in (`must_change_password`).
pub async fn ensure_first_admin(store: &Store) -> anyhow::Result<Option<NewCredentials>> {
    {
        let mut conn = store.acquire().await?;
        if users::count(&mut conn).await? > 0 {
            return Ok(None);
        }
    }
    let password = sealpost_crypto::password::generate();
    let hash = hash_password(password.clone()).await?;
    let mut tx = store.begin_write().await?;
    // Re-check under the write lock: another process may have created a user meanwhile.
    if users::count(&mut tx).await? > 0 {
        return Ok(None);
    }
    let user = users::insert(&mut tx, FIRST_ADMIN_EMAIL, Role::Admin, &hash).await?;
    // The printed password has been on a terminal: it must be replaced at first sign-in.
    crate::store::staff_auth::set_must_change_password(&mut tx, user.id, true).await?;
    audit::record(
        &mut tx,
        Event::new(actor::SYSTEM, Action::UserAdded).with_detail(
            json!({ "user_id": user.id, "email": user.email, "role": "admin", "first_run": true }),
        ),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(email = FIRST_ADMIN_EMAIL, "created first admin");
    Ok(Some(NewCredentials {
        email: user.email,
        password,
    }))
}

/// The server key from `config.server_key`, else from `config.server_key_file`, generating
/// that file (mode 0600, fsync'd) if it does not exist. Errors never include key material.
pub fn load_or_create_server_key(config: &Config) -> anyhow::Result<ServerKey> {
    if let Some(text) = &config.server_key {
        return ServerKey::parse(text.expose_secret().trim())
            .map_err(|e| anyhow::anyhow!("SEALPOST_SERVER_KEY is not a valid server key: {e}"));
    }
    let path = &config.server_key_file;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            warn_if_readable_by_others(path, "server key");
            ServerKey::parse(text.trim()).map_err(|e| {
                anyhow::anyhow!("server key file {} is not valid: {e}", path.display())
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = ServerKey::generate();
            write_private_file(path, key.encode().as_bytes())
                .with_context(|| format!("cannot write server key file {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new server key; back it up separately from the database");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read server key file {}", path.display())),
    }
}

/// The checkpoint key from `config.checkpoint_key`, else from `config.checkpoint_key_file`,
/// generating that file (mode 0600, fsync'd) if it does not exist, named after
/// `checkpoint_origin`. A key keeps its name when the origin changes later (its key id depends
/// on it), with a warning. Errors never include key material.
pub fn load_or_create_checkpoint_key(config: &Config) -> anyhow::Result<CheckpointKey> {
    let key = if let Some(text) = &config.checkpoint_key {
        CheckpointKey::parse(text.expose_secret()).map_err(|e| {
            anyhow::anyhow!("SEALPOST_CHECKPOINT_KEY is not a valid checkpoint key: {e}")
        })?
    } else {
        let path = &config.checkpoint_key_file;
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                warn_if_readable_by_others(path, "checkpoint key");
                CheckpointKey::parse(&text).map_err(|e| {
                    anyhow::anyhow!("checkpoint key file {} is not valid: {e}", path.display())
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = CheckpointKey::generate(&config.checkpoint_origin)
                    .context("cannot make a checkpoint key")?;
                write_private_file(path, key.encode().as_bytes()).with_context(|| {
                    format!("cannot write checkpoint key file {}", path.display())
                })?;
                tracing::info!(path = %path.display(), public_key = %key.verifier(), "generated a new checkpoint key; back it up separately from the database");
                key
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot read checkpoint key file {}", path.display())
                });
            }
        }
    };
    if key.name() != config.checkpoint_origin {
        tracing::warn!(
            key_name = key.name(),
            origin = %config.checkpoint_origin,
            "the checkpoint key is named differently from checkpoint_origin; checkpoints carry \
             the origin and are signed under the key's name"
        );
    }
    Ok(key)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "{what} file is accessible to other users; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _what: &str) {}

/// Create an empty database file with mode 0600 if none exists, so SQLite (which gives its
/// `-wal` and `-shm` files the main file's mode) never creates world-readable files.
fn precreate_private_file(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    match write_private_file(path, b"") {
        Ok(()) => Ok(()),
        // Lost a race with another process creating it: fine.
        Err(_) if path.exists() => Ok(()),
        Err(e) => Err(e.context(format!("cannot create database file {}", path.display()))),
    }
}

/// Create `path` exclusively with mode 0600 (and its directory, mode 0700, if missing).
fn write_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        files::create_private_dir(parent)?;
    }
    files::create_new(path, bytes, 0o600)
}

/// Refuse a staff address that is not a valid mailbox (the same rules as recipients').
pub fn check_staff_email(email: &str) -> anyhow::Result<()> {
    crate::messages::EmailAddress::parse(email)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::TestApp;

    #[tokio::test]
    async fn first_run_creates_dir_key_db_and_admin_once() -> anyhow::Result<()> {
        let (_dir, config) = TestApp::builder().config()?;
        let app = App::open(config.clone()).await?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let dir_mode = std::fs::metadata(&config.data_dir)?.permissions().mode() & 0o777;
            assert_eq!(dir_mode, 0o700);
            let key_mode = std::fs::metadata(&config.server_key_file)?
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(key_mode, 0o600);
            let checkpoint_key_mode = std::fs::metadata(&config.checkpoint_key_file)?
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(checkpoint_key_mode, 0o600);
            let db_mode = std::fs::metadata(config.data_dir.join("sealpost.db"))?
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(db_mode, 0o600);
        }
        let admin = ensure_first_admin(app.store()).await?;
        let admin = admin.ok_or_else(|| anyhow::anyhow!("no admin created"))?;
        assert_eq!(admin.email, FIRST_ADMIN_EMAIL);
        assert!(ensure_first_admin(app.store()).await?.is_none());

        let mut conn = app.store().acquire().await?;
        let user = users::find_by_email(&mut conn, FIRST_ADMIN_EMAIL)
            .await?
            .ok_or_else(|| anyhow::anyhow!("admin missing"))?;
        assert!(sealpost_crypto::password::verify(
            &admin.password,
            &user.password_hash
        ));
        drop(conn);
        let key_id = app.state().server_key.key_id();
        let checkpoint_key = app.state().checkpoint_key.verifier();
        assert_eq!(checkpoint_key.name(), "127.0.0.1/audit");
        app.store().close().await;

        // Reopening reads the same keys back.
        let again = App::open(config).await?;
        assert_eq!(again.state().server_key.key_id(), key_id);
        assert_eq!(again.state().checkpoint_key.verifier(), checkpoint_key);
        assert!(audit::verify(again.store()).await?.ok());
        Ok(())
    }

    #[test]
    fn bad_server_key_env_is_rejected_without_echo() -> anyhow::Result<()> {
        let (_dir, config) = TestApp::builder()
            .set("server_key", "not-a-key-hunter2")
            .config()?;
        match load_or_create_server_key(&config) {
            Ok(_) => panic!("accepted a bad key"),
            Err(e) => assert!(!format!("{e:#}").contains("hunter2")),
        }
        Ok(())
    }

    #[test]
    fn bad_checkpoint_key_env_is_rejected_without_echo() -> anyhow::Result<()> {
        let (_dir, config) = TestApp::builder()
            .set("checkpoint_key", "PRIVATE+KEY+n+00000000+hunter2")
            .config()?;
        match load_or_create_checkpoint_key(&config) {
            Ok(_) => panic!("accepted a bad key"),
            Err(e) => assert!(!format!("{e:#}").contains("hunter2")),
        }
        assert!(
            !config.checkpoint_key_file.exists(),
            "no file with the key in the environment"
        );

        let key = CheckpointKey::generate("elsewhere.example/audit")?;
        let (_dir, config) = TestApp::builder()
            .set("checkpoint_key", key.encode().as_str())
            .config()?;
        assert_eq!(
            load_or_create_checkpoint_key(&config)?.verifier(),
            key.verifier()
        );
        assert!(!format!("{config:?}").contains(key.encode().as_str()));
        Ok(())
    }

    #[test]
    fn staff_email_check() {
        assert!(check_staff_email("a@example.org").is_ok());
        assert!(check_staff_email("admin@localhost").is_ok());
        for bad in ["", "a", "@x", "a@", "a b@x", "a@b@c"] {
            assert!(check_staff_email(bad).is_err(), "{bad}");
        }
    }
}
