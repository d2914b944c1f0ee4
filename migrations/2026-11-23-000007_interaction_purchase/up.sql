-- An interaction can follow a purchase (a complaint about it, a thank-you call).
ALTER TABLE interactions ADD COLUMN purchase_id uuid REFERENCES purchases (id);
-- The foreign key's index, and "what was said about this purchase".
CREATE INDEX interactions_purchase_idx ON interactions (purchase_id);
