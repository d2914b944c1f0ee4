-- The duplicates refresh (2026-12-05-000030) plans its statements once per session, not on
-- every write (issue 17). Its statements take the touched keys as an array; PostgreSQL plans
-- such a statement again for each call's values as long as the generic plan does not look
-- cheaper, which for an array it never does (the custom plan knows the array's length). The
-- group-holders query, five lookups of customers with its 44 indexes, then cost 0.9 ms to
-- plan and 0.05 ms to run: half of a customer's insert. The plans do not depend on the
-- values: every lookup is by key, whatever the array holds.
ALTER FUNCTION customer_duplicates_refresh(customer_duplicate_key[])
    SET plan_cache_mode = force_generic_plan;
