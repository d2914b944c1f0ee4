CREATE INDEX search_vocabulary_trgm_idx ON search_vocabulary USING gist (word gist_trgm_ops);
