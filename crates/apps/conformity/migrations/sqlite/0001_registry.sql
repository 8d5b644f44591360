-- The unified registry of conformity documents (P.TS.01's common resource), one row per
-- document, keyed by its number.
CREATE TABLE conformity_documents (
    doc_id TEXT PRIMARY KEY,
    country TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    edoc_id TEXT,
    xml TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
