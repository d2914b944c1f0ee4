-- Customers' standing at a time: tier, qualifying sum and window, points available, the
-- window's contributions, the points lapsing up to a horizon and the tier history; customers
-- who are no members yet come back too. $1 the customer ids; $2 the time; $3 the horizon
-- (included). The code puts the window row, the basis's qualifying sum and contributions and
-- the tier change columns in place of their placeholders.
WITH {window}
SELECT ids.customer_id, a.tier_key, a.tier_since, a.below_since,
       a.created_at AS member_since, {q} AS qualifying, w.window_from, w.window_to,
       (SELECT COALESCE(sum(l.remaining), 0)::bigint FROM loyalty_lots l
        WHERE l.customer_id = ids.customer_id AND l.remaining > 0
          AND (l.expires_at IS NULL OR l.expires_at > $2)) AS balance,
       (SELECT COALESCE(jsonb_agg(jsonb_build_object('at', x.at, 'value', x.value)
                                  ORDER BY x.at), '[]'::jsonb)
        FROM ({c}) x) AS contributions,
       (SELECT COALESCE(jsonb_agg(jsonb_build_object('expires_at', e.expires_at,
                                                     'points', e.points)
                                  ORDER BY e.expires_at), '[]'::jsonb)
        FROM (SELECT l.expires_at, sum(l.remaining)::bigint AS points
              FROM loyalty_lots l
              WHERE l.customer_id = ids.customer_id AND l.remaining > 0
                AND l.expires_at > $2 AND l.expires_at <= $3
              GROUP BY l.expires_at) e) AS expiring,
       (SELECT COALESCE(jsonb_agg(to_jsonb(h) ORDER BY h.changed_at, h.id),
                        '[]'::jsonb)
        FROM (SELECT {CHANGE_COLUMNS} FROM loyalty_tier_changes t
              WHERE t.customer_id = ids.customer_id) h) AS history
FROM unnest($1::uuid[]) AS ids(customer_id)
CROSS JOIN w
LEFT JOIN loyalty_accounts a ON a.customer_id = ids.customer_id
ORDER BY ids.customer_id
