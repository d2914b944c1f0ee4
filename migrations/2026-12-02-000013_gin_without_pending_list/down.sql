ALTER INDEX customers_search_words_idx RESET (fastupdate);
ALTER INDEX customers_tags_idx RESET (fastupdate);
ALTER INDEX customers_attributes_idx RESET (fastupdate);
ALTER INDEX customers_email_search_idx RESET (fastupdate);
ALTER INDEX customers_phone_search_idx RESET (fastupdate);
