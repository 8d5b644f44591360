-- What the public portal shows and searches: the applicant, the products, the dates; the
-- text a search looks in (lower-cased, every name and code of the record); and each status a
-- document has had, with when.
ALTER TABLE conformity_documents ADD COLUMN applicant TEXT NOT NULL DEFAULT '';
ALTER TABLE conformity_documents ADD COLUMN products TEXT NOT NULL DEFAULT '';
ALTER TABLE conformity_documents ADD COLUMN start_date TEXT NOT NULL DEFAULT '';
ALTER TABLE conformity_documents ADD COLUMN valid_until TEXT NOT NULL DEFAULT '';
ALTER TABLE conformity_documents ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
CREATE INDEX conformity_documents_country ON conformity_documents (country, status);
CREATE TABLE conformity_status_history (
    doc_id TEXT NOT NULL,
    status TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX conformity_status_history_doc ON conformity_status_history (doc_id);
