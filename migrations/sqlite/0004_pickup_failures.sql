-- Failed pickup guesses (wrong one-time codes, link secrets, passphrases) per recipient and
-- client, so that one client's guesses slow down and then block that client only, for a while,
-- instead of locking the recipient out for everyone. `client` is the client's IP address, or
-- its IPv6 /64 written as `<prefix>::/64`. The recipient-wide total stays in
-- `recipients.failed_attempts`; a recipient is locked (`recipients.locked_at`) only when the
-- total from all clients together reaches `lockout_recipient_threshold`.
CREATE TABLE pickup_failures (
    recipient_id   TEXT    NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    client         TEXT    NOT NULL CHECK (length(client) BETWEEN 1 AND 64),
    failures       INTEGER NOT NULL CHECK (failures >= 1),
    last_failed_at INTEGER NOT NULL,
    blocked_until  INTEGER,
    PRIMARY KEY (recipient_id, client)
) STRICT;
