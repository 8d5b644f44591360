-- Full-text search of the registry: the words of each document's names and codes, matched by
-- word prefix (FTS5, Unicode-aware tokens), kept beside the documents by the registry's writes
-- (named so the schema-parity check, which compares conformity_* tables, leaves it out); an
-- index row has its document's rowid (the registry is never VACUUMed, which could renumber them).
CREATE VIRTUAL TABLE search_conformity USING fts5(doc_id UNINDEXED, search_text, tokenize = 'unicode61');
INSERT INTO search_conformity (rowid, doc_id, search_text) SELECT rowid, doc_id, search_text FROM conformity_documents;
