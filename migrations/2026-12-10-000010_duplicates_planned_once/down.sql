ALTER FUNCTION customer_duplicates_refresh(customer_duplicate_key[]) RESET plan_cache_mode;
