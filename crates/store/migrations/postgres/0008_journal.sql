-- The diagnostic journal: what happened to messages is read from message_states by time, and
-- the collecting node (the EEC) keeps the periodic reports of every gateway, one row per
-- gateway and period (a repeated report changes nothing).
CREATE INDEX message_states_at ON message_states (at);
CREATE TABLE journal_reports (
    segment TEXT NOT NULL,
    period_from BIGINT NOT NULL,
    period_to BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    counts TEXT NOT NULL,
    records TEXT NOT NULL,
    PRIMARY KEY (segment, period_from, period_to)
);
