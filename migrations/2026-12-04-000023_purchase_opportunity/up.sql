-- Sales inside and outside the funnel (漏斗外销售额): a purchase may name the opportunity it
-- closes. The foreign key on (opportunity_id, customer_id) checks in the insert itself that
-- the opportunity belongs to the purchase's customer: no extra statement on the purchase
-- path. A purchase without one (NULL) is not checked.
ALTER TABLE opportunities
    ADD CONSTRAINT opportunities_id_customer_key UNIQUE (id, customer_id);
ALTER TABLE purchases
    ADD COLUMN opportunity_id uuid,
    ADD CONSTRAINT purchases_opportunity_fkey FOREIGN KEY (opportunity_id, customer_id)
        REFERENCES opportunities (id, customer_id);
CREATE INDEX purchases_opportunity_idx ON purchases (opportunity_id, customer_id);
-- The forecast's sales of a period read purchases_occurred_idx (occurred_at, id).
