-- SMTP relay credentials: the organisation's MTAs (Postfix, Exchange, Sendmail) authenticate
-- with SMTP AUTH before relaying to Sealpost. Only an Argon2id PHC hash of each generated
-- password is kept; the password itself is printed once by `sealpost relay add`.
CREATE TABLE relays (
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
) STRICT;
