-- Sealpost schema v1 (SQLite).
-- Conventions: ids are UUIDv7 as TEXT (hyphenated, lower case); times are INTEGER Unix
-- milliseconds UTC; booleans are INTEGER 0/1. Message content never appears here in clear:
-- parts/chunks hold only ciphertext (invariant 1).

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    role          TEXT    NOT NULL CHECK (role IN ('sender', 'admin', 'auditor')),
    password_hash TEXT    NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE api_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id),
    token_hash   BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE messages (
    id             TEXT    NOT NULL PRIMARY KEY,
    sender_user_id TEXT    REFERENCES users (id),
    sender_address TEXT    NOT NULL,
    source         TEXT    NOT NULL CHECK (source IN ('api', 'smtp', 'web')),
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    purged_at      INTEGER,
    total_bytes    INTEGER NOT NULL DEFAULT 0,
    part_count     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX messages_sender ON messages (sender_user_id, created_at);
-- The purge job scans for live messages past expiry.
CREATE INDEX messages_expiry ON messages (expires_at) WHERE purged_at IS NULL;

CREATE TABLE parts (
    message_id TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    part_no    INTEGER NOT NULL CHECK (part_no >= 0),
    header     BLOB    NOT NULL CHECK (length(header) = 8),
    plain_len  INTEGER NOT NULL CHECK (plain_len >= 0),
    PRIMARY KEY (message_id, part_no)
) STRICT;

CREATE TABLE chunks (
    message_id TEXT    NOT NULL,
    part_no    INTEGER NOT NULL,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    bytes      BLOB    NOT NULL,
    PRIMARY KEY (message_id, part_no, seq),
    FOREIGN KEY (message_id, part_no) REFERENCES parts (message_id, part_no) ON DELETE CASCADE
) STRICT;

CREATE TABLE recipients (
    id              TEXT    NOT NULL PRIMARY KEY,
    message_id      TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    address         TEXT    NOT NULL,
    pickup_id       TEXT    NOT NULL UNIQUE CHECK (length(pickup_id) = 22),
    wrapped_dek     BLOB,
    passphrase_salt BLOB,
    notified_at     INTEGER,
    first_opened_at INTEGER,
    last_opened_at  INTEGER,
    open_count      INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_at       INTEGER
) STRICT;
CREATE INDEX recipients_message ON recipients (message_id);

CREATE TABLE access_codes (
    id           TEXT    NOT NULL PRIMARY KEY,
    recipient_id TEXT    NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    code_hash    BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    used_at      INTEGER
) STRICT;
CREATE INDEX access_codes_recipient ON access_codes (recipient_id, created_at);

-- tower-sessions records; `data` is the JSON session map, never a secret (invariant 2).
CREATE TABLE sessions (
    id          TEXT    NOT NULL PRIMARY KEY,
    data        BLOB    NOT NULL,
    expiry_date INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_expiry ON sessions (expiry_date);

-- Append-only, hash-chained audit log; see docs/AUDIT.md for the canonical encoding.
-- seq is assigned by the application (last seq + 1) inside a BEGIN IMMEDIATE transaction.
CREATE TABLE audit_events (
    seq          INTEGER NOT NULL PRIMARY KEY,
    ts           INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    message_id   TEXT,
    recipient_id TEXT,
    ip           TEXT,
    user_agent   TEXT,
    detail       TEXT    NOT NULL,
    prev_hash    BLOB    NOT NULL,
    hash         BLOB    NOT NULL
) STRICT;
CREATE INDEX audit_events_ts ON audit_events (ts);
CREATE INDEX audit_events_message ON audit_events (message_id) WHERE message_id IS NOT NULL;
