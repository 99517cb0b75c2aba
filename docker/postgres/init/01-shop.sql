-- Runs once, when a postgres container starts with an empty volume, in its database `shop`
-- (POSTGRES_DB). Same layout as scripts/lib/postgres.mjs builds for the local stack:
-- one LOGIN role per service owning a schema of the same name, nothing else.
-- SHOP_SERVICES (space-separated) names the services this server holds: unset, all three (the
-- shared server); `order`, `payment` or `inventory` on a server of its own (compose profile
-- `cluster`), which then knows no other service's role.
-- The passwords are development-only defaults.
\set ON_ERROR_STOP on
\set services 'order payment inventory'
\getenv services SHOP_SERVICES
SELECT set_config('shop.services', :'services', false) AS services;

DO $$
DECLARE
  svc text;
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  FOREACH svc IN ARRAY regexp_split_to_array(trim(current_setting('shop.services')), '\s+') LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = svc || '_svc') THEN
      EXECUTE format('CREATE ROLE %I', svc || '_svc');
    END IF;
    EXECUTE format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %L',
                   svc || '_svc', svc || '_svc_dev_password');
    EXECUTE format('ALTER ROLE %I SET search_path = %I', svc || '_svc', svc || '_svc');
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', svc || '_svc', svc || '_svc');
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', svc || '_svc');
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), svc || '_svc');
  END LOOP;
END
$$;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
