-- A user with owned-only access lists only the imports they sent, newest first: this index
-- serves that list in its order (imports_idempotency_key leads with the same columns but
-- not in creation order, so the list would read and sort every import of the user).
CREATE INDEX imports_actor_created_idx ON imports (actor_type, actor_id, created_at, id);
