-- Evaluates the tiers of some members at a time: each one's qualifying sum over the
-- programme's window, the tier it reaches and the move the downgrade policy allows; writes
-- every move to the tier history, updates the accounts and answers the moves by customer.
-- $1 the members' customer ids (accounts locked by the caller); $2 the evaluation's time;
-- $3 upgrades only (a purchase); $4 the basis, as recorded. The code puts the window row,
-- the basis's qualifying sum and the tier change columns in place of their placeholders.
WITH {window},
m AS (SELECT a.customer_id, a.tier_key, a.below_since, {q} AS qualifying
      FROM loyalty_accounts a CROSS JOIN w WHERE a.customer_id = ANY($1)),
d AS (SELECT m.*, w.*, ct.position AS cur_pos, ct.threshold AS cur_threshold,
             tt.key AS target_key, tt.position AS target_pos,
             tt.threshold AS target_threshold
      FROM m CROSS JOIN w
      LEFT JOIN loyalty_tiers ct ON ct.key = m.tier_key
      LEFT JOIN LATERAL (SELECT key, position, threshold FROM loyalty_tiers
                         WHERE threshold <= m.qualifying
                         ORDER BY position DESC LIMIT 1) tt ON true),
decided AS MATERIALIZED (
    SELECT d.*, r.reason,
           CASE WHEN r.reason IS NOT NULL THEN NULL
                WHEN d.target_pos < d.cur_pos AND NOT $3
                    THEN COALESCE(d.below_since, $2)
                WHEN d.target_pos < d.cur_pos THEN d.below_since
           END AS new_below
    FROM d CROSS JOIN LATERAL (SELECT CASE
        WHEN d.target_key IS NOT DISTINCT FROM d.tier_key THEN NULL
        WHEN d.tier_key IS NULL THEN 'qualified'
        WHEN d.cur_pos IS NULL THEN 'tier_removed'
        WHEN d.target_pos > d.cur_pos THEN 'qualified'
        WHEN $3 THEN NULL
        WHEN d.downgrade = 'window_end' THEN 'below_threshold'
        WHEN d.downgrade = 'grace_period'
             AND d.below_since + make_interval(days => d.grace_days) <= $2
            THEN 'grace_period_ended'
    END AS reason) r),
changes AS (
    INSERT INTO loyalty_tier_changes ({CHANGE_COLUMNS})
    SELECT uuid_v7(), customer_id, tier_key, target_key,
           CASE reason WHEN 'qualified' THEN 'up' WHEN 'tier_removed' THEN 'moved'
                       ELSE 'down' END,
           reason, $4, qualifying,
           CASE WHEN reason IN ('qualified', 'tier_removed') THEN target_threshold
                ELSE cur_threshold END,
           window_from, window_to, $2, version
    FROM decided WHERE reason IS NOT NULL
    RETURNING {CHANGE_COLUMNS}),
accounts AS (
    UPDATE loyalty_accounts a
    SET tier_key = CASE WHEN x.reason IS NULL THEN a.tier_key ELSE x.target_key END,
        tier_since = CASE WHEN x.reason IS NULL THEN a.tier_since ELSE $2 END,
        below_since = x.new_below, updated_at = now()
    FROM decided x
    WHERE a.customer_id = x.customer_id
      AND (x.reason IS NOT NULL OR x.new_below IS DISTINCT FROM a.below_since))
SELECT {CHANGE_COLUMNS} FROM changes ORDER BY customer_id
