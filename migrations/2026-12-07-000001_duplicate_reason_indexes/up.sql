-- A page of the duplicate pairs of one reason (`GET /v1/customers/duplicates?reason=`) walked
-- the list's index from the best score and filtered out every pair without that reason: at a
-- million customers the first page of `name_address`, the lowest-scored, read 15 000 pairs
-- (15 ms). Each reason gets its own index in the list's order; `src/duplicates/list.sql` is
-- run with the reason written in, so the planner can choose it. The pairs are a few percent
-- of the customers, so these are small and cheap to keep.
CREATE INDEX customer_duplicate_pairs_external_id_idx ON customer_duplicate_pairs
    (rank, customer_a, customer_b) WHERE 'external_id' = ANY (reasons);
CREATE INDEX customer_duplicate_pairs_email_idx ON customer_duplicate_pairs
    (rank, customer_a, customer_b) WHERE 'email' = ANY (reasons);
CREATE INDEX customer_duplicate_pairs_phone_idx ON customer_duplicate_pairs
    (rank, customer_a, customer_b) WHERE 'phone' = ANY (reasons);
CREATE INDEX customer_duplicate_pairs_name_address_idx ON customer_duplicate_pairs
    (rank, customer_a, customer_b) WHERE 'name_address' = ANY (reasons);
