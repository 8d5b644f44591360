-- Reference data: immutable, numbered versions of each resource and crosswalk. `content` is
-- the canonical JSON whose SHA-256 is `sha256`; a version is never changed once written.
CREATE TABLE nsi_versions (
    code TEXT NOT NULL,
    version BIGINT NOT NULL,
    kind TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    content BYTEA NOT NULL,
    PRIMARY KEY (code, version)
);
