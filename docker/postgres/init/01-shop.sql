-- Runs once, when the postgres container starts with an empty volume, in database `shop`
-- (POSTGRES_DB). Same layout as scripts/lib/postgres.mjs builds for the local stack:
-- one LOGIN role per service owning a schema of the same name, nothing else.
-- The passwords are development-only defaults.
\set ON_ERROR_STOP on

DO $$
DECLARE
  svc text;
BEGIN
  FOREACH svc IN ARRAY ARRAY['order', 'payment', 'inventory'] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = svc || '_svc') THEN
      EXECUTE format('CREATE ROLE %I', svc || '_svc');
    END IF;
    EXECUTE format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %L',
                   svc || '_svc', svc || '_svc_dev_password');
    EXECUTE format('ALTER ROLE %I SET search_path = %I', svc || '_svc', svc || '_svc');
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', svc || '_svc', svc || '_svc');
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', svc || '_svc');
  END LOOP;
END
$$;

REVOKE ALL ON DATABASE shop FROM PUBLIC;
GRANT CONNECT ON DATABASE shop TO order_svc, payment_svc, inventory_svc;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
