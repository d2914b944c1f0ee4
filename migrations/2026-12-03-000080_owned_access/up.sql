-- Owned-only access: a staff user limited to the customers they manage
-- (`customers.account_manager_id`). Admins see everything, always: the CHECK keeps an admin
-- from being `owned` whichever path writes the row (API, CLI, plain SQL).
--
-- No new index: the customer list filtered to one manager is already served in every order
-- by customers_manager_idx (created_at), customers_manager_updated_idx (updated_at) and
-- customers_manager_name_idx (lower(name)); what hangs off a customer is reached through
-- those customer ids and the (customer_id, ...) indexes of each table.
ALTER TABLE users
    ADD COLUMN access text NOT NULL DEFAULT 'all'
        CONSTRAINT users_access_check CHECK (access IN ('all', 'owned')),
    ADD CONSTRAINT users_admin_access_check CHECK (role <> 'admin' OR access = 'all');

-- A change of access ends the user's old tokens at once, like a role change: a token must
-- never outlive the access it was issued under.
CREATE OR REPLACE FUNCTION users_bump_credentials_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash
        OR NEW.role IS DISTINCT FROM OLD.role
        OR NEW.access IS DISTINCT FROM OLD.access
        OR NEW.active IS DISTINCT FROM OLD.active THEN
        NEW.credentials_version := OLD.credentials_version + 1;
    END IF;
    RETURN NEW;
END
$$;
