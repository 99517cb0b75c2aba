-- Runs once, when a postgres container starts with an empty volume, in its database `shop`
-- (POSTGRES_DB). Same layout as scripts/lib/postgres.mjs builds for the local stack: per service,
-- a migration role `<svc>_svc_migrator` owning a schema `<svc>_svc` (it creates and changes the
-- tables), and a runtime role `<svc>_svc` that may only read and write the rows of that schema's
-- tables and use its sequences (default privileges cover the tables the migrations add), and only
-- read the migrations table, made here so that it never gets those privileges (a name inserted
-- there would make the migrator skip that migration; TypeORM uses the table when it exists).
-- SHOP_SERVICES (space-separated) names the services this server holds, as docker-compose.yml
-- (generated from services.json) sets it: every service on the shared server; one on a server of
-- its own (compose profile `cluster`), which then knows no other service's roles.
-- SHOP_ROLE_PASSWORDS (`<role>=<password> …`, written by `npm run compose:env` to .env) gives each
-- role its password: there is no default.
\set ON_ERROR_STOP on
\getenv services SHOP_SERVICES
\if :{?services}
\else
  DO $$ BEGIN RAISE EXCEPTION 'SHOP_SERVICES is not set: name the services this server holds'; END $$;
\endif
\getenv passwords SHOP_ROLE_PASSWORDS
\if :{?passwords}
\else
  DO $$ BEGIN RAISE EXCEPTION 'SHOP_ROLE_PASSWORDS is not set: run npm run compose:env'; END $$;
\endif
SELECT set_config('shop.services', :'services', false) AS services;
SELECT set_config('shop.passwords', :'passwords', false) IS NOT NULL AS passwords;

DO $$
DECLARE
  svc text;
  runtime text;
  migrator text;
  login text;
  password text;
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  FOREACH svc IN ARRAY regexp_split_to_array(trim(current_setting('shop.services')), '\s+') LOOP
    runtime := svc || '_svc';
    migrator := svc || '_svc_migrator';
    FOREACH login IN ARRAY ARRAY[runtime, migrator] LOOP
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = login) THEN
        EXECUTE format('CREATE ROLE %I', login);
      END IF;
      SELECT substr(pair, length(login) + 2) INTO password
        FROM regexp_split_to_table(trim(current_setting('shop.passwords')), '\s+') AS pair
       WHERE starts_with(pair, login || '=');
      IF coalesce(password, '') = '' THEN
        RAISE EXCEPTION 'SHOP_ROLE_PASSWORDS has no password for %', login;
      END IF;
      EXECUTE format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %L',
                     login, password);
      EXECUTE format('ALTER ROLE %I SET search_path = %I', login, runtime);
      EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), login);
    END LOOP;
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', runtime, migrator);
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', runtime);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', runtime, runtime);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
                   migrator, runtime, runtime);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO %I',
                   migrator, runtime, runtime);
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I.migrations (id serial PRIMARY KEY, "timestamp" int8 NOT NULL, name varchar NOT NULL)',
                   runtime);
    EXECUTE format('ALTER TABLE %I.migrations OWNER TO %I', runtime, migrator);
    EXECUTE format('REVOKE ALL ON %I.migrations, %I.migrations_id_seq FROM %I, PUBLIC', runtime, runtime, runtime);
    EXECUTE format('GRANT SELECT ON %I.migrations TO %I', runtime, runtime);
  END LOOP;
END
$$;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
