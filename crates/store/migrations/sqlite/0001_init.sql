-- ortaq store, SQLite engine. Times are microseconds since the Unix epoch (UTC).
--
-- Tables that belong to a message refer to it by its row id (`msg`), which grows with every
-- message: their index entries append at the right edge instead of landing on a random page,
-- as a UUID key would, so a commit of many messages writes few pages. The UUID MessageID is
-- indexed once, in `messages`, where duplicates are detected.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    track_id TEXT NOT NULL,
    accept_time BIGINT NOT NULL,
    direction TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    action TEXT NOT NULL,
    kind TEXT NOT NULL,
    conversation_id TEXT,
    procedure_id TEXT,
    relates_to TEXT,
    envelope BLOB NOT NULL,
    received BLOB,
    envelope_sha256 TEXT NOT NULL
);

-- The state of a message is the last row of its history: state changes append, they never
-- rewrite the message row (which carries the envelope bytes).
CREATE TABLE message_states (
    id INTEGER PRIMARY KEY,
    msg BIGINT NOT NULL,
    state TEXT NOT NULL,
    at BIGINT NOT NULL,
    detail TEXT
);
CREATE INDEX message_states_msg ON message_states (msg, id);

CREATE TABLE conversations (
    conversation_id TEXT PRIMARY KEY,
    process TEXT NOT NULL,
    transaction_code TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    messages BIGINT NOT NULL
);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    msg BIGINT NOT NULL UNIQUE,
    destination TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE state = 'pending';

CREATE TABLE inbox (
    seq INTEGER PRIMARY KEY,
    participant TEXT NOT NULL,
    msg BIGINT NOT NULL,
    queued_at BIGINT NOT NULL,
    delivered_at BIGINT,
    acked_at BIGINT,
    UNIQUE (participant, msg)
);
CREATE INDEX inbox_unacked ON inbox (participant, seq) WHERE acked_at IS NULL;

CREATE TABLE message_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    event TEXT NOT NULL,
    envelope_sha256 TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE log_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO log_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE log_checkpoints (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    at BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);

CREATE TABLE api_tokens (
    token_sha256 TEXT PRIMARY KEY,
    participant TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
