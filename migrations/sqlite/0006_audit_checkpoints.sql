-- Signed audit checkpoints (docs/AUDIT.md, "Checkpoints"): each note exactly as it was signed,
-- so that the latest can be listed and sent on. Verification never trusts this table: a
-- checkpoint proves something only where a copy is kept outside the database.
CREATE TABLE audit_checkpoints (
    id        INTEGER NOT NULL PRIMARY KEY,
    -- the audit seq the checkpoint covers (the newest row when it was signed; 0: empty log)
    seq       INTEGER NOT NULL CHECK (seq >= 0),
    head_hash BLOB    NOT NULL CHECK (length(head_hash) = 32),
    signed_at INTEGER NOT NULL,
    note      TEXT    NOT NULL CHECK (length(note) <= 16384)
) STRICT;
