DROP INDEX CONCURRENTLY IF EXISTS search_vocabulary_words_idx;
