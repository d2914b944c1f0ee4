-- The Pareto page statement of src/analytics/store.rs pareto() (revenue), by hand, for the
-- "what would help" stage of bench/analytics.sh: as the service runs it (page_first=false),
-- or with the page taken from the ranking before the customers are joined to it
-- (page_first=true). The rows are the same; psql receives a count and a digest of them.
-- Variables: cur, from, to (the period), after (the cursor's rank), fetch (limit + 1), top
-- (top_sales_percent or NULL), page_first.
SELECT count(*) AS rows, max(rank) AS last_rank,
       md5(string_agg(customer_id::text || '|' || coalesce(name, '') || '|' || value || '|' || cumulative
                      || '|' || n || '|' || total || '|' || band_values::text || '|' || sales_customers::text,
                      ',' ORDER BY rank)) AS digest
FROM (
WITH t AS (
     SELECT customer_id, sum(amount - refunded)::bigint AS value, count(*) AS purchases
     FROM purchases
     WHERE currency = :'cur' AND occurred_at >= :'from'::date AND occurred_at < :'to'::date + 1
     GROUP BY customer_id
     HAVING sum(amount - refunded) > 0),
 r AS MATERIALIZED (
     SELECT customer_id, value, purchases,
            row_number() OVER w AS rank,
            sum(value) OVER w AS cumulative,
            count(*) OVER () AS n,
            sum(value) OVER () AS total
     FROM t WINDOW w AS (ORDER BY value DESC, customer_id)),
 summary AS (
     SELECT count(*) AS n, coalesce(sum(value), 0)::bigint AS total,
            ARRAY[coalesce(sum(value) FILTER (WHERE rank <= ceil(n * 10 / 100.0)), 0)::bigint,
                  coalesce(sum(value) FILTER (WHERE rank <= ceil(n * 20 / 100.0)), 0)::bigint,
                  coalesce(sum(value) FILTER (WHERE rank <= ceil(n * 40 / 100.0)), 0)::bigint,
                  coalesce(sum(value) FILTER (WHERE rank <= ceil(n * 50 / 100.0)), 0)::bigint] AS band_values,
            ARRAY[coalesce(min(rank) FILTER (WHERE cumulative * 100 >= 10 * total), 0)::bigint,
                  coalesce(min(rank) FILTER (WHERE cumulative * 100 >= 20 * total), 0)::bigint,
                  coalesce(min(rank) FILTER (WHERE cumulative * 100 >= 40 * total), 0)::bigint,
                  coalesce(min(rank) FILTER (WHERE cumulative * 100 >= 50 * total), 0)::bigint,
                  coalesce(min(rank) FILTER (WHERE cumulative * 100 >= 80 * total), 0)::bigint] AS sales_customers
     FROM r)
 SELECT summary.*, page.rank, page.customer_id, page.name, page.value,
        page.purchases, page.cumulative
 FROM summary
\if :page_first
 LEFT JOIN LATERAL (
     SELECT p.rank, p.customer_id,
            CASE WHEN c.deleted_at IS NULL AND c.erased_at IS NULL THEN c.name END AS name,
            p.value, p.purchases, p.cumulative::bigint AS cumulative
     FROM (SELECT * FROM r
           WHERE r.rank > :after
             AND (:top::int IS NULL OR (r.cumulative - r.value) * 100 < :top * r.total)
           ORDER BY r.rank
           LIMIT :fetch) p
     JOIN customers c ON c.id = p.customer_id) page ON true
\else
 LEFT JOIN LATERAL (
     SELECT r.rank, r.customer_id,
            CASE WHEN c.deleted_at IS NULL AND c.erased_at IS NULL THEN c.name END AS name,
            r.value, r.purchases, r.cumulative::bigint AS cumulative
     FROM r JOIN customers c ON c.id = r.customer_id
     WHERE r.rank > :after
       AND (:top::int IS NULL OR (r.cumulative - r.value) * 100 < :top * r.total)
     ORDER BY r.rank
     LIMIT :fetch) page ON true
\endif
 ORDER BY page.rank) pareto;
