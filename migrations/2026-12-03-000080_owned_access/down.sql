CREATE OR REPLACE FUNCTION users_bump_credentials_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash
        OR NEW.role IS DISTINCT FROM OLD.role
        OR NEW.active IS DISTINCT FROM OLD.active THEN
        NEW.credentials_version := OLD.credentials_version + 1;
    END IF;
    RETURN NEW;
END
$$;

ALTER TABLE users DROP CONSTRAINT users_admin_access_check;
ALTER TABLE users DROP COLUMN access;
