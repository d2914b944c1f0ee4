-- A sum of bigints as a bigint. PostgreSQL's sum(bigint) keeps a 128-bit state and gives a
-- numeric, which the analytics computation and the value endpoint then cast back to bigint:
-- per purchase and per customer that costs a numeric state, its finishing and the cast
-- (bench/README.md, the guidance section). int8pl adds in a bigint and raises "bigint out of
-- range" when a running total leaves it, as the cast does for a total out of range; the
-- totals summed so (net sales, costs, of one customer's purchases) fit a bigint.
CREATE AGGREGATE bigint_sum(bigint) (
    SFUNC = int8pl,
    STYPE = bigint,
    COMBINEFUNC = int8pl,
    PARALLEL = SAFE
);
