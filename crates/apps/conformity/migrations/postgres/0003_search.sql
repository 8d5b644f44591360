-- Full-text search of the registry: the words of each document's names and codes, matched by
-- word prefix (the 'simple' configuration: no stemming, the same words SQLite's FTS5 sees).
CREATE INDEX conformity_documents_search ON conformity_documents USING gin (to_tsvector('simple', search_text));
