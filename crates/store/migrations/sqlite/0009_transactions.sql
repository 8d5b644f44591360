-- The initiator's side of every transaction this node's ISs start (node::conversations): the
-- engine's snapshot, the deadline the timer waits for, and every MessageID the request went out
-- with (the first and each retry), so that signals and responses relating to any of them find
-- it.
CREATE TABLE transactions (
    request_id TEXT PRIMARY KEY,
    participant TEXT NOT NULL,
    conversation_id TEXT,
    process TEXT NOT NULL,
    version TEXT NOT NULL,
    transaction_code TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    why TEXT,
    deadline BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX transactions_due ON transactions (outcome, deadline);
CREATE TABLE transaction_messages (
    message_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL
);
