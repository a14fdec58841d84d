//! The file transport's outbox, `<data_dir>/outbox/` (`outbound = file`, the default): each
//! mail an `.eml` file, for development.
//!
//! Every notification in it holds a link secret and every code mail a one-time code, in
//! clear. So the directory is private (0700) and each file is too (0600), written under a
//! temporary name, fsync'd and renamed into place whole (a mail counts as sent once its file
//! is durable); at start ([`prepare`]) a temporary file a crash left behind is deleted and
//! what an older version left readable by others is restricted; the periodic jobs delete mails
//! older than `outbound_file_retention_hours` ([`prune`]); and `serve` refuses the file outbox
//! with a `base_url` that is not loopback ([`check_policy`]), where real recipients' secrets
//! would pile up on the server's disk, unless `outbound_file_allow_public` says otherwise.

use std::io::{self, Write as _};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::config::{Config, Outbound};
use crate::files;

/// Mode of the outbox directory.
const DIR_MODE: u32 = 0o700;
/// Mode of each mail.
const FILE_MODE: u32 = 0o600;

/// Why `serve` refuses the file outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxPolicyError {
    #[error(
        "refusing the file outbox with base_url {0}, which is not loopback: outbound = file \
         writes every link secret and one-time code in clear to <data_dir>/outbox/, for \
         development only. Set outbound to the organisation's relay (SEALPOST_OUTBOUND=\
         smtp://host:port), or, for a test instance whose mail stays on this machine, \
         outbound_file_allow_public = true (SEALPOST_OUTBOUND_FILE_ALLOW_PUBLIC=true)"
    )]
    PublicBaseUrl(String),
}

/// Whether the configuration may run with its outbound mail: the file outbox only serves a
/// loopback `base_url`, unless `outbound_file_allow_public` is set.
pub fn check_policy(config: &Config) -> Result<(), OutboxPolicyError> {
    match config.outbound {
        Outbound::File if !config.base_url.is_loopback() && !config.outbound_file_allow_public => {
            Err(OutboxPolicyError::PublicBaseUrl(
                config.base_url.to_string(),
            ))
        }
        _ => Ok(()),
    }
}

/// What [`prepare`] cleaned up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Temporary files of writes a crash cut short, deleted.
    pub removed_temporary: u64,
    /// The directory and mails whose mode let other users in, restricted.
    pub restricted: u64,
}

/// At start, before anything writes to `dir`: create it (0700), delete the temporary files
/// of writes cut short, and restrict the directory and mails an older version left readable
/// by others.
pub fn prepare(dir: &Path) -> io::Result<Prepared> {
    files::ensure_private_dir(dir)?;
    let mut done = Prepared {
        restricted: u64::from(files::restrict_mode(dir, DIR_MODE)?),
        ..Prepared::default()
    };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("tmp") => {
                std::fs::remove_file(&path)?;
                done.removed_temporary += 1;
            }
            Some("eml") => done.restricted += u64::from(files::restrict_mode(&path, FILE_MODE)?),
            _ => {}
        }
    }
    if done.removed_temporary > 0 {
        files::sync_dir(dir)?;
    }
    Ok(done)
}

/// Delete the mails in `dir` last written more than `keep` ago; returns how many. A missing
/// directory holds none.
pub fn prune(dir: &Path, keep: Duration) -> io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let cutoff = SystemTime::now()
        .checked_sub(keep)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        if entry.metadata()?.modified()? < cutoff {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Write `bytes` as a new `<uuid>.eml` (mode 0600) in `dir`: to a temporary name, fsync,
/// rename, fsync the directory, so the file is either complete or absent after a crash.
pub(super) fn write(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    files::ensure_private_dir(dir)?;
    let id = uuid::Uuid::now_v7();
    let tmp = dir.join(format!(".{id}.tmp"));
    let written = files::create_exclusive(&tmp, FILE_MODE).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written {
        // A full disk, say: leave no part of a mail behind.
        std::fs::remove_file(&tmp).ok();
        return Err(e);
    }
    std::fs::rename(&tmp, dir.join(format!("{id}.eml")))?;
    files::sync_dir(dir)
}
