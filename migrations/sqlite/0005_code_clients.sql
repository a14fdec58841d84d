-- One-time codes belong to the client that asked for them (its IP address, or its IPv6 /64
-- written as `<prefix>::/64`, as in `pickup_failures`): a code is checked only when entered
-- from that client, and codes are counted per client as well as per recipient, so a stranger
-- who knows a pickup id can neither spend the recipient's code nor use up the recipient's
-- codes alone. Codes issued before this migration belong to no client and can no longer be
-- entered; they expire within minutes anyway.
ALTER TABLE access_codes ADD COLUMN client TEXT NOT NULL DEFAULT '' CHECK (length(client) <= 64);
CREATE INDEX access_codes_client ON access_codes (recipient_id, client, created_at);
