DROP INDEX imports_actor_created_idx;
