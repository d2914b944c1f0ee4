-- What was written since merge $1 (of survivor $2, at $3) that an unmerge would undo or
-- lose: moved rows changed since, and points or survey responses the survivor got since
-- (the merge summed its balance and derived its answers). Only non-zero counts.
SELECT what, n FROM (
    SELECT 'interactions' AS what, count(*) AS n
    FROM customer_merge_moves m JOIN interactions t ON t.id = m.row_id
    WHERE m.merge_id = $1 AND m.kind IN ('interaction', 'interaction_contact')
      AND t.updated_at > $3
    UNION ALL
    SELECT 'purchases', count(*)
    FROM customer_merge_moves m JOIN purchases t ON t.id = m.row_id
    WHERE m.merge_id = $1 AND m.kind = 'purchase' AND t.updated_at > $3
    UNION ALL
    SELECT 'opportunities', count(*)
    FROM customer_merge_moves m JOIN opportunities t ON t.id = m.row_id
    WHERE m.merge_id = $1
      AND m.kind IN ('opportunity', 'opportunity_contact', 'opportunity_contact_removed')
      AND t.updated_at > $3
    UNION ALL
    SELECT 'survey_responses', count(*)
    FROM customer_merge_moves m JOIN survey_responses t ON t.id = m.row_id
    WHERE m.merge_id = $1 AND m.kind = 'survey_response' AND t.updated_at > $3
    UNION ALL
    SELECT 'contact_links', count(*)
    FROM customer_merge_moves m JOIN contacts t ON t.id = m.row_id
    WHERE m.merge_id = $1 AND m.kind IN ('contact_organization', 'contact_person')
      AND t.updated_at > $3
    UNION ALL
    SELECT 'loyalty_ledger_entries', count(*)
    FROM loyalty_ledger WHERE customer_id = $2 AND created_at > $3
    UNION ALL
    SELECT 'new_survey_responses', count(*)
    FROM survey_responses WHERE customer_id = $2 AND created_at > $3
) changed
WHERE n > 0
