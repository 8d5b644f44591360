-- People who sign in to the node's pages (not the ISs: their tokens are the node's).
-- password is an Argon2id PHC string; roles a comma-separated list; failures counts the
-- wrong passwords since the last right one, and locked_until (Unix microseconds) is when
-- a lock-out ends.
CREATE TABLE people_accounts (
    login TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    roles TEXT NOT NULL,
    password TEXT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    created_at BIGINT NOT NULL
);
-- Signed-in sessions, by the SHA-256 of their cookie (the cookie itself is never stored),
-- each with the token its forms carry against cross-site requests.
CREATE TABLE people_sessions (
    token_sha256 TEXT PRIMARY KEY,
    login TEXT NOT NULL REFERENCES people_accounts (login) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX people_sessions_login ON people_sessions (login);
