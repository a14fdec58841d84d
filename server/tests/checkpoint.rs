//! Signed audit checkpoints from outside: the real `sealpost` binary on a real SQLite file.
//!
//! A checkpoint is signed and kept outside the data directory. Then, each on a copy of the
//! data directory, an altered row, the newest ten rows deleted, the whole chain recomputed
//! consistently (with the hash rule of `docs/AUDIT.md`, written out here), and an older copy
//! of the database restored each make `sealpost audit verify --checkpoint` exit 1 naming what
//! failed, while the honest log, grown since, exits 0.

mod common;

use std::path::{Path, PathBuf};

use common::db::AuditRow;
use common::{Db, copy_dir, text};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// `sealpost <args>` on `data`: exit code, and stdout followed by stderr.
fn run(data: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = common::cli(data, args);
    (
        out.status.code(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// `root/<name>/data`, its parent created (commands run from there).
fn data_dir(root: &Path, name: &str) -> std::io::Result<PathBuf> {
    let parent = root.join(name);
    std::fs::create_dir_all(&parent)?;
    Ok(parent.join("data"))
}

/// Run `args`, which must succeed; its stdout.
fn ok(data: &Path, args: &[&str]) -> String {
    let out = common::cli(data, args);
    assert!(
        out.status.success(),
        "sealpost {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Add `n` audit rows (each export is audited as `audit_exported`).
fn grow(data: &Path, n: usize) {
    for _ in 0..n {
        ok(data, &["audit", "export"]);
    }
}

fn verify_against(data: &Path, checkpoint: &Path) -> (Option<i32>, String) {
    run(
        data,
        &[
            "audit",
            "verify",
            "--checkpoint",
            &checkpoint.to_string_lossy(),
        ],
    )
}

/// A copy of the data directory `data` in `root/<name>/data`.
fn copy_of(data: &Path, root: &Path, name: &str) -> PathBuf {
    let copy = root.join(name).join("data");
    copy_dir(data, &copy);
    copy
}

fn db_files(data: &Path) -> Vec<PathBuf> {
    ["sealpost.db", "sealpost.db-wal", "sealpost.db-shm"]
        .iter()
        .map(|name| data.join(name))
        .filter(|path| path.exists())
        .collect()
}

/// The row hash of `docs/AUDIT.md`, "Canonical encoding": SHA-256 over `prev_hash`, then each
/// field as a 32-bit big-endian length and its UTF-8 bytes (NULL: `FF FF FF FF`), integers in
/// decimal ASCII.
fn documented_hash(row: &AuditRow) -> Vec<u8> {
    let mut bytes = row.prev_hash.clone();
    let seq = row.seq.to_string();
    let ts = row.ts.to_string();
    for field in [
        Some(seq.as_str()),
        Some(ts.as_str()),
        Some(row.actor.as_str()),
        Some(row.action.as_str()),
        row.message_id.as_deref(),
        row.recipient_id.as_deref(),
        row.ip.as_deref(),
        row.user_agent.as_deref(),
        Some(row.detail.as_str()),
    ] {
        match field {
            Some(value) => {
                let len = u32::try_from(value.len()).expect("a short field");
                bytes.extend_from_slice(&len.to_be_bytes());
                bytes.extend_from_slice(value.as_bytes());
            }
            None => bytes.extend_from_slice(&[0xFF; 4]),
        }
    }
    sealpost_crypto::hash::sha256(&bytes).to_vec()
}

/// Proof (threat model, insider editing the audit log): `audit verify --checkpoint` catches an
/// altered row, truncation, a consistent rewrite and a restored backup, each named; an honest
/// log that grew since the checkpoint passes, with this instance's key or the published one.
#[test]
fn verify_checkpoint_detects_tampering_truncation_rewrite_and_restore() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    let data = data_dir(root, "live")?;
    ok(
        &data,
        &["user", "add", "--email", "a@example.org", "--role", "admin"],
    );
    grow(&data, 14);
    assert_eq!(
        Db::read_only(&data.join("sealpost.db")).last_audit_seq(),
        15
    );
    // A backup taken before the checkpoint.
    let backup = copy_of(&data, root, "backup");
    grow(&data, 10);

    let kept = root.join("kept-elsewhere.checkpoint");
    let out = ok(
        &data,
        &["audit", "checkpoint", "--out", &kept.to_string_lossy()],
    );
    assert!(out.contains("checkpoint at seq 25 written to"), "{out}");
    let note = std::fs::read_to_string(&kept)?;
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines.len(), 6, "{note}");
    assert_eq!(lines[0], "127.0.0.1/audit");
    assert_eq!(lines[1], "25");
    assert_eq!(lines[4], "");
    assert!(lines[5].starts_with("\u{2014} 127.0.0.1/audit "), "{note}");
    let public_key = ok(&data, &["audit", "public-key"]).trim().to_owned();
    assert!(public_key.starts_with("127.0.0.1/audit+"), "{public_key}");
    let listed = ok(&data, &["audit", "checkpoints"]);
    assert!(listed.starts_with("25\t"), "{listed}");
    assert!(listed.contains(lines[2]), "{listed}");
    let events = ok(&data, &["audit", "export"]);
    let signed = events
        .lines()
        .find(|l| l.contains("\"action\":\"checkpoint_signed\""))
        .ok_or("no checkpoint_signed event")?;
    assert!(
        signed.contains("\"actor\":\"cli\"") && signed.contains("\"seq\":25"),
        "{signed}"
    );

    // (a) One row altered.
    let altered = copy_of(&data, root, "altered");
    Db::writable(&altered.join("sealpost.db"))
        .tamper("UPDATE audit_events SET detail = '{\"tampered\":true}' WHERE seq = 7");
    let (code, out) = verify_against(&altered, &kept);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("checkpoint does not verify: audit chain broken at seq 7"),
        "{out}"
    );

    // (b) The newest ten rows deleted: the chain alone still holds.
    let truncated = copy_of(&data, root, "truncated");
    let db = Db::writable(&truncated.join("sealpost.db"));
    let last = db.last_audit_seq();
    assert_eq!(
        db.tamper(&format!(
            "DELETE FROM audit_events WHERE seq > {}",
            last - 10
        )),
        10
    );
    drop(db);
    assert_eq!(run(&truncated, &["audit", "verify"]).0, Some(0));
    let (code, out) = verify_against(&truncated, &kept);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "the log ends at seq {}, before the checkpoint's seq 25: rows were deleted",
            last - 10
        )),
        "{out}"
    );

    // (c) Row 7 changed and every hash from there on recomputed by the documented rule.
    let rewritten = copy_of(&data, root, "rewritten");
    let db = Db::writable(&rewritten.join("sealpost.db"));
    let mut prev = Vec::new();
    for mut row in db.audit_rows() {
        if row.seq < 7 {
            prev = row.hash;
            continue;
        }
        if row.seq == 7 {
            row.detail = r#"{"rewritten":true}"#.to_owned();
        }
        row.prev_hash = prev;
        row.hash = documented_hash(&row);
        prev = row.hash.clone();
        db.rewrite_audit_row(&row);
    }
    drop(db);
    let (code, out) = run(&rewritten, &["audit", "verify"]);
    assert_eq!(code, Some(0), "the rewrite is consistent: {out}");
    let (code, out) = verify_against(&rewritten, &kept);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("row 25's hash differs from the checkpoint: the chain was rewritten"),
        "{out}"
    );

    // (d) The database copy from before the checkpoint restored; then restored and grown past
    // the checkpoint's seq.
    let restored = copy_of(&data, root, "restored");
    for file in db_files(&restored) {
        std::fs::remove_file(file)?;
    }
    for file in db_files(&backup) {
        std::fs::copy(&file, restored.join(file.file_name().ok_or("file name")?))?;
    }
    assert_eq!(run(&restored, &["audit", "verify"]).0, Some(0));
    let (code, out) = verify_against(&restored, &kept);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("the log ends at seq 15, before the checkpoint's seq 25"),
        "{out}"
    );
    grow(&restored, 12);
    let (code, out) = verify_against(&restored, &kept);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("row 25's hash differs from the checkpoint"),
        "{out}"
    );

    // The honest log, grown since: with this instance's key, and with the published one.
    grow(&data, 3);
    let (code, out) = verify_against(&data, &kept);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("checkpoint ok: the log extends the checkpoint of 127.0.0.1/audit at seq 25"),
        "{out}"
    );
    let kept_arg = kept.to_string_lossy();
    let with_key = [
        "audit",
        "verify",
        "--checkpoint",
        &kept_arg,
        "--key",
        &public_key,
    ];
    let (code, out) = run(&data, &with_key);
    assert_eq!(code, Some(0), "{out}");
    Ok(())
}

/// Proof: a checkpoint that was changed, cut short, or signed by another key is refused with
/// exit 1 and a reason; a missing file or a malformed `--key` is a usage error (exit 2).
#[test]
fn verify_checkpoint_refuses_bad_signatures_and_broken_files() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    let data = data_dir(root, "live")?;
    grow(&data, 3);
    let note = ok(&data, &["audit", "checkpoint"]);
    assert!(note.starts_with("127.0.0.1/audit\n3\n"), "{note}");
    let write = |name: &str, text: &str| -> std::io::Result<PathBuf> {
        let path = root.join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    };
    let good = write("good", &note)?;
    assert_eq!(verify_against(&data, &good).0, Some(0));

    let sig_line = note.lines().last().ok_or("no signature line")?;
    let sig_at = note.len() - sig_line.len() - 1;
    let mut flipped = note.clone().into_bytes();
    let i = sig_at + sig_line.len() - 20;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let cases = [
        (
            "changed-seq",
            note.replacen("\n3\n", "\n4\n", 1),
            "checkpoint does not verify: bad signature by 127.0.0.1/audit+",
        ),
        (
            "changed-signature",
            String::from_utf8(flipped)?,
            "checkpoint does not verify: bad signature",
        ),
        (
            "cut-short",
            note[..sig_at].to_owned(),
            "checkpoint does not verify: no blank line followed by signature lines",
        ),
        (
            "extra-line",
            note.replacen("\n\n", "\nextra\n\n", 1),
            "checkpoint does not verify: the checkpoint's body has 5 lines",
        ),
        (
            "crlf",
            note.replace('\n', "\r\n"),
            "checkpoint does not verify: line 1 ends with CR LF",
        ),
    ];
    for (name, text, expected) in cases {
        let (code, out) = verify_against(&data, &write(name, &text)?);
        assert_eq!(code, Some(1), "{name}: {out}");
        assert!(out.contains(expected), "{name}: {out}");
    }

    // Signed by another instance's key.
    let other = data_dir(root, "other")?;
    let other_note = ok(&other, &["audit", "checkpoint"]);
    let (code, out) = verify_against(&data, &write("signed-elsewhere", &other_note)?);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("checkpoint does not verify: not signed by the key 127.0.0.1/audit+"),
        "{out}"
    );
    let other_key = ok(&other, &["audit", "public-key"]).trim().to_owned();
    let good_arg = good.to_string_lossy();
    let (code, out) = run(
        &data,
        &[
            "audit",
            "verify",
            "--checkpoint",
            &good_arg,
            "--key",
            &other_key,
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not signed by the key"), "{out}");

    let (code, out) = run(
        &data,
        &[
            "audit",
            "verify",
            "--checkpoint",
            &good_arg,
            "--key",
            "nonsense",
        ],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("--key is not a checkpoint public key"),
        "{out}"
    );
    let missing = root.join("missing").to_string_lossy().into_owned();
    let (code, out) = run(&data, &["audit", "verify", "--checkpoint", &missing]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("cannot read checkpoint file"), "{out}");
    Ok(())
}

/// Proof: the checkpoint key is created at first start beside the server key (mode 0600),
/// kept across runs, and can come from the environment instead, leaving no file.
#[test]
fn the_checkpoint_key_is_a_private_file_or_comes_from_the_environment() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let first = ok(&data, &["audit", "public-key"]);
    let key_file = data.join("checkpoint.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file)?.permissions().mode() & 0o777,
            0o600
        );
    }
    let secret = std::fs::read_to_string(&key_file)?;
    assert!(secret.starts_with("PRIVATE+KEY+127.0.0.1/audit+"));
    assert_eq!(ok(&data, &["audit", "public-key"]), first);

    let elsewhere = data_dir(tmp.path(), "elsewhere")?;
    let out = common::sealpost(&elsewhere)
        .args(["audit", "public-key"])
        .env("SEALPOST_CHECKPOINT_KEY", secret.trim())
        .output()?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), first);
    assert!(!elsewhere.join("checkpoint.key").exists());
    Ok(())
}

/// A Python with the `cryptography` package, under [`common::require`]: the first `python3`
/// on the path, or else the system's `/usr/bin/python3` (where Debian's
/// `python3-cryptography` installs it when another Python comes first on the path).
fn python_with_cryptography() -> Option<&'static str> {
    common::require("python3-cryptography", || {
        for python in ["python3", "/usr/bin/python3"] {
            let has_it = std::process::Command::new(python)
                .args([
                    "-c",
                    "import cryptography.hazmat.primitives.asymmetric.ed25519",
                ])
                .output()
                .is_ok_and(|out| out.status.success());
            if has_it {
                return Ok(python);
            }
        }
        Err("no python3 with the `cryptography` package".to_owned())
    })
}

/// Proof (the format is specified well enough for another tool): `checkpoint_verify.py`,
/// written from `docs/AUDIT.md` alone with Python's `cryptography`, accepts a checkpoint with
/// the key `audit public-key` prints, reads its four lines, and refuses it once changed.
#[test]
fn an_independent_verifier_accepts_the_checkpoint() -> TestResult {
    let Some(python) = python_with_cryptography() else {
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let data = data_dir(tmp.path(), "live")?;
    grow(&data, 4);
    let note = ok(&data, &["audit", "checkpoint"]);
    let public_key = ok(&data, &["audit", "public-key"]);
    let head = Db::read_only(&data.join("sealpost.db"))
        .audit_rows()
        .into_iter()
        .find(|row| row.seq == 4)
        .ok_or("no row 4")?
        .hash;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/checkpoint_verify.py");
    let verify = |checkpoint: &str| -> std::io::Result<(Option<i32>, String)> {
        let file = tmp.path().join("checkpoint.txt");
        std::fs::write(&file, checkpoint)?;
        let out = std::process::Command::new(python)
            .arg(&script)
            .arg(public_key.trim())
            .arg(&file)
            .output()?;
        Ok((
            out.status.code(),
            format!("{}{}", text(&out.stdout), text(&out.stderr)),
        ))
    };
    let (code, out) = verify(&note)?;
    assert_eq!(code, Some(0), "{out}");
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields[..3], ["127.0.0.1/audit", "4", &hex::encode(&head)]);
    let (code, out) = verify(&note.replacen("\n4\n", "\n5\n", 1))?;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("bad signature"), "{out}");
    Ok(())
}
