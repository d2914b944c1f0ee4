-- The vocabulary's trigram index with the default 12-byte signatures, replaced by
-- search_vocabulary_words_idx (previous migration).
DROP INDEX search_vocabulary_trgm_idx;
