-- The operator console searches messages by conversation and by time.
CREATE INDEX messages_conversation ON messages (conversation_id);
CREATE INDEX messages_accept_time ON messages (accept_time);
