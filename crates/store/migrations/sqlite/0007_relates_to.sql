-- The answer to a message is found by what it relates to (the synchronous exchange waits
-- for it).
CREATE INDEX messages_relates_to ON messages (relates_to);
