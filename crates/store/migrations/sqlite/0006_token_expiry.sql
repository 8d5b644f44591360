-- API tokens may expire: a token is refused from `expires_at` on (microseconds), as it is once
-- revoked. NULL: it does not expire.
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
