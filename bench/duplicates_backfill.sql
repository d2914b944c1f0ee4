-- The duplicate candidates (migration 2026-12-05-000030) of customers written with the
-- trigger that keeps them (`customers_duplicates_inserted`) off, as bulk seeds do: the
-- trigger's own refresh over every live customer's keys, 50 000 customers per transaction.
-- One statement, run outside a transaction block (it commits as it goes); ANALYZE
-- customer_duplicate_pairs and customer_duplicate_links after it.
DO $$
DECLARE after uuid := '00000000-0000-0000-0000-000000000000';
        last uuid;
BEGIN
    LOOP
        SELECT id INTO last FROM (SELECT id FROM customers WHERE id > after
                                  ORDER BY id LIMIT 50000) c ORDER BY id DESC LIMIT 1;
        EXIT WHEN last IS NULL;
        PERFORM customer_duplicates_refresh(ARRAY(
            SELECT DISTINCT (k.reason, k.key)::customer_duplicate_key
            FROM customers c, customer_duplicate_keys(c) k
            WHERE c.id > after AND c.id <= last));
        COMMIT;
        after := last;
    END LOOP;
END
$$;
