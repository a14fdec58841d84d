-- Staff sign-in: forced password change, "sign out everywhere", TOTP second factor with
-- recovery codes, and failed sign-ins per account (kept here so a restart does not reset them).

-- 1 while the user must choose a new password before doing anything else (the first admin's
-- one-time password from `serve`).
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0
    CHECK (must_change_password IN (0, 1));
-- Bumped by "sign out everywhere" and by a password change: every session carries the
-- generation it was signed in at, and one with an older number is no longer accepted.
ALTER TABLE users ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0;

-- One TOTP secret per user, sealed under a key derived from the server key (never in clear).
-- `confirmed_at` is NULL while enrolment waits for the first code; `last_step` is the newest
-- time step accepted, so the same code (same step) cannot be used twice.
CREATE TABLE staff_totp (
    user_id       TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    confirmed_at  INTEGER,
    last_step     INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Single-use recovery codes: SHA-256 of a random 80-bit code (high entropy, so a plain hash
-- is enough; no slow KDF needed).
CREATE TABLE staff_recovery_codes (
    user_id   TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB    NOT NULL CHECK (length(code_hash) = 32),
    used_at   INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- Failed sign-ins per account: after `staff_lockout_threshold` the account is locked until
-- `locked_until`, which lifts by itself; a successful sign-in deletes the row.
CREATE TABLE staff_signin_failures (
    user_id        TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    failures       INTEGER NOT NULL CHECK (failures >= 1),
    last_failed_at INTEGER NOT NULL,
    locked_until   INTEGER
) STRICT;
