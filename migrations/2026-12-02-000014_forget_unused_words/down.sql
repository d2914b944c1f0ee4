DROP FUNCTION forget_unused_search_words();
