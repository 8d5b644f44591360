-- Federation: the detached signature of the node that first accepted a message (kept as
-- evidence and forwarded unchanged by relays), the certificates those signatures name, and
-- what the delivery engine needs per outbox entry (expiry, last error, claims per peer).
ALTER TABLE messages ADD COLUMN signature TEXT;
ALTER TABLE messages ADD COLUMN signer_sha256 TEXT;

CREATE TABLE certificates (
    sha256 TEXT PRIMARY KEY,
    der BLOB NOT NULL,
    first_seen BIGINT NOT NULL
);

ALTER TABLE outbox ADD COLUMN expires_at BIGINT;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (destination, next_attempt_at, id) WHERE state = 'pending';
