//! Files Sealpost creates in its data directory: the directory itself (mode 0700) and files
//! that must never be overwritten or read by other users (the server key, the TLS key, the
//! database, the outbox's mails), created exclusively and made durable before anything relies
//! on them.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Create `dir` (and its parents) with mode 0700; an existing one is kept, with a warning when
/// other users can read it.
#[cfg(unix)]
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if dir.is_dir() {
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o777), "data directory is accessible to other users; chmod 700 recommended");
        }
        return Ok(());
    }
    ensure_private_dir(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))
}

#[cfg(not(unix))]
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    ensure_private_dir(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))
}

/// Create `dir` and any missing parent with mode 0700 (on Unix); an existing directory is
/// left as it is.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Take every permission beyond `mode` away from `path` (on Unix): a file or directory an
/// older version created readable by others. Returns whether anything changed.
pub fn restrict_mode(path: &Path, mode: u32) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = std::fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
        if current & !mode == 0 {
            return Ok(false);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))?;
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(false)
    }
}

/// Open `path` for writing, created exclusively (it must not exist) with `mode` on Unix.
pub fn create_exclusive(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// Make the entries created, renamed or removed in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Create `path` exclusively (it must not exist) with `mode` on Unix, write `bytes`, and fsync
/// the file and its directory entry.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut file = create_exclusive(path, mode)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Make the new directory entry durable too.
        sync_dir(parent).ok();
    }
    Ok(())
}
