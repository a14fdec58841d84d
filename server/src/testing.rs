//! For in-crate tests only: one way to get a running instance. [`TestApp`] is a real
//! [`App`] opened on a migrated SQLite database in a fresh temporary directory, with the file
//! outbox, settings given like `TestApp::builder().set("max_recipients", 3).build().await?`;
//! helpers add a sender, a relay, submit a message through the domain, and read the outbox.
//!
//! Nothing here reaches around the layers under test: rows are looked at and changed through
//! `store::testing`, messages are submitted through [`Draft`] as every source does.

use std::path::{Path, PathBuf};

use sealpost_crypto::Passphrase;
use serde::Serialize;
use uuid::Uuid;

use crate::app::{App, AppState};
use crate::config::{Config, ConfigBuilder};
use crate::messages::{
    Draft, EmailAddress, NewMessage, RequestCtx, Sender as MessageSender, Source, Submitted,
};
use crate::store::Store;
use crate::store::users::{self, Role};
use crate::store::{relays, tokens};

/// The address of the sender [`TestApp::add_sender`] adds unless told otherwise.
pub(crate) const SENDER: &str = "sender@example.org";

/// Settings for a [`TestApp`] (or only its [`Config`]); `data_dir` is always the temporary
/// directory's `data/`.
#[derive(Debug)]
pub(crate) struct TestAppBuilder {
    settings: ConfigBuilder,
}

impl TestAppBuilder {
    /// Set `key` (a TOML key) to `value`, as `sealpost.toml` would.
    pub(crate) fn set(mut self, key: &str, value: impl Serialize) -> Self {
        self.settings = self.settings.set(key, value);
        self
    }

    /// The checked configuration with its data directory in a fresh temporary directory
    /// (nothing created in it yet); keep the `TempDir` as long as the config is used.
    pub(crate) fn config(self) -> anyhow::Result<(tempfile::TempDir, Config)> {
        let dir = tempfile::tempdir()?;
        let config = self
            .settings
            .set("data_dir", dir.path().join("data"))
            .build()?;
        Ok((dir, config))
    }

    /// Open the instance: data directory, server key, migrated database, file outbox.
    pub(crate) async fn build(self) -> anyhow::Result<TestApp> {
        let (dir, config) = self.config()?;
        let app = App::open(config).await?;
        Ok(TestApp { app, _dir: dir })
    }
}

/// A sender with an API token, as the CLI makes one.
#[derive(Debug, Clone)]
pub(crate) struct TestSender {
    pub user_id: Uuid,
    pub email: String,
    /// The bearer token (`sp_…`).
    pub token: String,
}

/// An opened instance in a temporary directory, deleted when dropped.
#[derive(Debug)]
pub(crate) struct TestApp {
    app: App,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub(crate) fn builder() -> TestAppBuilder {
        TestAppBuilder {
            settings: Config::builder(),
        }
    }

    /// An instance on the default settings.
    pub(crate) async fn new() -> anyhow::Result<Self> {
        Self::builder().build().await
    }

    pub(crate) fn state(&self) -> &AppState {
        self.app.state()
    }

    pub(crate) fn store(&self) -> &Store {
        self.app.store()
    }

    pub(crate) fn config(&self) -> &Config {
        self.app.config()
    }

    /// Add a sender (role `sender`) with an API token.
    pub(crate) async fn add_sender(&self, email: &str) -> anyhow::Result<TestSender> {
        let token = sealpost_crypto::token::generate().to_string();
        let mut conn = self.store().acquire().await?;
        let user = users::insert(&mut conn, email, Role::Sender, "x").await?;
        tokens::insert(&mut conn, user.id, &sealpost_crypto::token::digest(&token)).await?;
        Ok(TestSender {
            user_id: user.id,
            email: user.email,
            token,
        })
    }

    /// Add relay credentials `name` / `password` (hashed as `sealpost relay add` does).
    pub(crate) async fn add_relay(&self, name: &str, password: &str) -> anyhow::Result<()> {
        let hash = sealpost_crypto::password::hash(password)?;
        let mut conn = self.store().acquire().await?;
        relays::insert(&mut conn, name, &hash).await?;
        Ok(())
    }

    /// Submit a message from `sender` through [`Draft`] (source `api`): `text` as its body,
    /// to every address of `to`, with an optional passphrase. Returns what commit returned.
    pub(crate) async fn submit(
        &self,
        sender: &TestSender,
        to: &[&str],
        text: &str,
        passphrase: Option<&str>,
    ) -> anyhow::Result<Submitted> {
        let from = MessageSender {
            user_id: Some(sender.user_id),
            address: sender.email.clone(),
            display_name: None,
        };
        let mut draft = Draft::begin(self.state(), from, Source::Api);
        draft.add_bodies(Some(text), None).await?;
        let recipients = to
            .iter()
            .map(|a| EmailAddress::parse(a))
            .collect::<Result<Vec<_>, _>>()?;
        let message = NewMessage {
            recipients,
            subject: "Test message".to_owned(),
            passphrase: passphrase.map(|p| Passphrase::new(p.to_owned())),
            expires_in_days: None,
        };
        Ok(draft.commit(message, &RequestCtx::default()).await?)
    }

    /// Every mail in the outbox, oldest first.
    pub(crate) fn outbox(&self) -> anyhow::Result<Vec<OutboxMail>> {
        outbox_in(&self.config().outbox_dir())
    }

    /// The pickup link of the newest notification to `address`.
    pub(crate) fn notification_to(&self, address: &str) -> anyhow::Result<PickupLink> {
        self.outbox()?
            .iter()
            .rev()
            .filter(|m| m.to.eq_ignore_ascii_case(address))
            .find_map(OutboxMail::link)
            .ok_or_else(|| anyhow::anyhow!("no notification to {address} in the outbox"))
    }

    /// The one-time code of the newest code mail to `address`.
    pub(crate) fn code_to(&self, address: &str) -> anyhow::Result<String> {
        self.outbox()?
            .iter()
            .rev()
            .filter(|m| m.to.eq_ignore_ascii_case(address) && m.link().is_none())
            .find_map(OutboxMail::code)
            .ok_or_else(|| anyhow::anyhow!("no code mail to {address} in the outbox"))
    }
}

/// The parts of a pickup link `<base>/p/<pickup_id>#k=<secret>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PickupLink {
    pub pickup_id: String,
    pub secret: String,
}

/// One `.eml` file of an outbox, decoded.
#[derive(Debug, Clone)]
pub(crate) struct OutboxMail {
    pub path: PathBuf,
    pub raw: Vec<u8>,
    pub to: String,
    pub subject: String,
    /// The decoded text/plain body.
    pub text: String,
    /// The decoded text/html body.
    pub html: String,
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

impl OutboxMail {
    pub(crate) fn read(path: &Path) -> anyhow::Result<Self> {
        let raw = std::fs::read(path)?;
        let parsed = mail_parser::MessageParser::default()
            .parse(&raw)
            .ok_or_else(|| anyhow::anyhow!("{} is not a parseable mail", path.display()))?;
        let to = parsed
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            path: path.to_owned(),
            to,
            subject: parsed.subject().unwrap_or_default().to_owned(),
            text: parsed.body_text(0).unwrap_or_default().into_owned(),
            html: parsed.body_html(0).unwrap_or_default().into_owned(),
            raw,
        })
    }

    /// The pickup link in the text body, if this is a notification.
    pub(crate) fn link(&self) -> Option<PickupLink> {
        self.text.match_indices("/p/").find_map(|(at, _)| {
            let rest = &self.text[at + 3..];
            let id_len = rest.bytes().take_while(|b| is_b64url(*b)).count();
            let after = rest[id_len..].strip_prefix("#k=")?;
            let secret_len = after.bytes().take_while(|b| is_b64url(*b)).count();
            (id_len > 0 && secret_len == 22).then(|| PickupLink {
                pickup_id: rest[..id_len].to_owned(),
                secret: after[..secret_len].to_owned(),
            })
        })
    }

    /// The one run of exactly six digits in the text body (a one-time code), if there is
    /// exactly one.
    pub(crate) fn code(&self) -> Option<String> {
        let bytes = self.text.as_bytes();
        let mut runs = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 6 {
                runs.push(self.text[start..i].to_owned());
            }
            i += usize::from(i == start);
        }
        (runs.len() == 1).then(|| runs.remove(0))
    }
}

/// Every `.eml` in `dir`, oldest first (file names are UUIDv7, so they sort by time); nothing
/// when `dir` does not exist yet.
pub(crate) fn outbox_in(dir: &Path) -> anyhow::Result<Vec<OutboxMail>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry?.path());
    }
    paths.sort();
    let mut mails = Vec::new();
    for path in paths {
        // A temporary file (`.<id>.tmp`) left in the outbox would be a mailer bug: show it.
        if path.extension().is_none_or(|e| e != "eml") {
            anyhow::bail!("not a finished mail in the outbox: {}", path.display());
        }
        mails.push(OutboxMail::read(&path)?);
    }
    Ok(mails)
}
