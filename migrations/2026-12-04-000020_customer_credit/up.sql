-- A customer's credit standing (等级信用, the fourth aspect of a customer's value): a grade
-- `a` (best) to `d`, a limit in minor units of a currency, and when it was last reviewed.
-- Kept as one object like the MAN qualification.
ALTER TABLE customers
    ADD COLUMN credit jsonb
        CONSTRAINT customers_credit_check CHECK (
            jsonb_typeof(credit) = 'object'
            AND credit ->> 'grade' IN ('a', 'b', 'c', 'd')
            AND jsonb_typeof(credit -> 'reviewed_at') = 'string');

-- Graded customers are few (those whose credit was checked): an index of their own, so
-- that `GET /v1/customers?credit_grade=…` reads them in any order.
CREATE INDEX customers_credit_grade_idx ON customers ((credit ->> 'grade'), created_at, id)
    WHERE (credit ->> 'grade') IS NOT NULL AND deleted_at IS NULL;

-- The pipeline's settings (one row): the stage past which an opportunity of a customer
-- whose MAN qualification says no money (an `m` prospect) needs that customer's credit
-- grade. NULL: no such rule.
CREATE TABLE pipeline_settings (
    id                    boolean PRIMARY KEY DEFAULT true CHECK (id),
    credit_required_after text REFERENCES pipeline_stages (key),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    version               bigint NOT NULL DEFAULT 1
);
INSERT INTO pipeline_settings DEFAULT VALUES;
CREATE INDEX pipeline_settings_credit_required_after_idx
    ON pipeline_settings (credit_required_after);
