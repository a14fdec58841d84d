-- A message is written in two steps: its parts stream in while it is 'receiving' (invisible to
-- every reader), and it becomes 'ready' in the same transaction that records its notifications.
-- A crash in between leaves a 'receiving' message, which the cleanup job deletes, so a crash
-- never leaves half a message visible (invariant 3).
ALTER TABLE messages ADD COLUMN state TEXT NOT NULL DEFAULT 'receiving'
    CHECK (state IN ('receiving', 'ready'));
ALTER TABLE messages ADD COLUMN receiving_since INTEGER;
CREATE INDEX messages_receiving ON messages (created_at) WHERE state = 'receiving';
