-- The application role every service switches to inside its transactions
-- (`set_config('role', 'director_app', true)`, see director-platform `tenant::begin`).
-- It owns nothing and cannot log in; row-level security applies to it even when the pool
-- itself logs in as a superuser. Deployments whose login role is not a superuser grant it
-- membership: `GRANT director_app TO <login role>`.
--
-- Roles are cluster-wide and every service's database runs this migration, possibly at the
-- same moment: creation races are caught and ignored.
DO $$
BEGIN
    CREATE ROLE director_app NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO director_app;

-- Keeps `updated_at` honest whatever the statement: the database, not the service, stamps it.
CREATE FUNCTION set_updated_at() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
