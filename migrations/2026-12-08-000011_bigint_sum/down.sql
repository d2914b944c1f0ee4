DROP AGGREGATE bigint_sum(bigint);
