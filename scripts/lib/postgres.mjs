// Postgres: private clusters (an instance from config.mjs: the shared one under .local/postgres,
// or one per service under .local/postgres-<svc>) or the server given by PG_ADMIN_URL, and the
// idempotent provisioning of the database, the per-service roles and schemas.
import fs from 'node:fs';
import path from 'node:path';
import {
  MAX_CONNECTIONS_PER_SERVICE,
  PG,
  PG_PER_SERVICE,
  PG_SUPERUSER,
  SERVICES,
  dbMigratorPassword,
  dbMigratorRole,
  dbPassword,
  dbRole,
  federatedDb,
} from './config.mjs';
import { asUser, ensureTraversable, isRoot, osUser, ownedDir } from './system.mjs';
import { StackError, log, pidAlive, portFree, run, tail, warn } from './util.mjs';

export const PG_LIB = '/usr/lib/postgresql';

/** The installed Postgres major versions that ship `binary`, newest first. */
export function installedPostgresVersions(binary = 'initdb') {
  try {
    return fs
      .readdirSync(PG_LIB)
      .filter((v) => fs.existsSync(path.join(PG_LIB, v, 'bin', binary)))
      .sort((a, b) => Number(b) - Number(a));
  } catch {
    return [];
  }
}

/** The bin folder of a Postgres major version (Debian's layout). */
export const postgresBinDirOf = (version) => path.join(PG_LIB, String(version), 'bin');

/** The bin folder of the installed Postgres: the data folder's version if present, else the newest. */
export function findBinDir(inst = PG) {
  const versions = installedPostgresVersions();
  let wanted;
  try {
    wanted = fs.readFileSync(path.join(inst.data, 'PG_VERSION'), 'utf8').trim();
  } catch {}
  if (wanted && !versions.includes(wanted) && versions.length)
    throw new StackError(
      `${inst.data} was created by Postgres ${wanted}, but only ${versions.join(', ')} is installed. ` +
        `Install postgresql-${wanted}, or remove ${inst.dir} to start over (its data is lost).`,
    );
  const v = wanted ?? versions[0];
  return v ? postgresBinDirOf(v) : null;
}

/** Debian packages that must be installed before Postgres can be used. */
export function postgresPackagesNeeded() {
  if (process.env.PG_ADMIN_URL) return fs.existsSync('/usr/bin/psql') ? [] : ['postgresql-client'];
  return findBinDir() ? [] : ['postgresql'];
}

const psqlBin = () => {
  const bin = !process.env.PG_ADMIN_URL && findBinDir();
  return bin ? path.join(bin, 'psql') : 'psql';
};

/** Run SQL through psql as the admin; stops at the first error. */
export async function psql(url, sql) {
  return run(psqlBin(), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', '-'], {
    input: sql,
    env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
  });
}

function withDb(url, db) {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(db)}`;
  return u.toString();
}

/** State of a private cluster from its pid file: { pid, port } when its postmaster is alive. */
function localStatus(inst) {
  try {
    const lines = fs.readFileSync(path.join(inst.data, 'postmaster.pid'), 'utf8').split('\n');
    const pid = Number.parseInt(lines[0], 10);
    const port = Number.parseInt(lines[3], 10);
    return pidAlive(pid) ? { pid, port } : null;
  } catch {
    return null;
  }
}

async function isReady(binDir, port) {
  const { code } = await run(path.join(binDir, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port)], {
    allowFail: true,
  });
  return code === 0;
}

function pgUser() {
  if (!isRoot) return null;
  const user = osUser('postgres');
  if (!user) throw new StackError('the postgres OS user does not exist (is the postgresql package installed?)');
  return user;
}

async function initCluster(inst, binDir, user) {
  log(`creating a Postgres cluster in ${inst.data}`);
  // initdb reads the superuser password from a file; it lives only for this call.
  const pwfile = path.join(inst.dir, '.pwfile');
  fs.writeFileSync(pwfile, `${PG_SUPERUSER.password}\n`, { mode: 0o600 });
  if (user) fs.chownSync(pwfile, user.uid, user.gid);
  try {
    await run(
      path.join(binDir, 'initdb'),
      [
        '-D',
        inst.data,
        '-U',
        PG_SUPERUSER.user,
        `--pwfile=${pwfile}`,
        '--auth-host=scram-sha-256', // TCP logins need a password
        '--auth-local=peer',
        '--encoding=UTF8',
        '--no-locale',
      ],
      { cwd: inst.dir, ...asUser(user) },
    );
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
  // Test-box tuning. Durability settings stay at their defaults: this cluster holds dev data.
  // The port is not set here but on each start (-p), so PG_PORT can change between runs.
  fs.appendFileSync(
    path.join(inst.data, 'postgresql.conf'),
    [
      '',
      '# --- set by scripts/stack.mjs ---',
      "listen_addresses = '127.0.0.1'",
      "unix_socket_directories = ''   # TCP only: no socket folder to create or to collide on",
      `max_connections = ${MAX_CONNECTIONS_PER_SERVICE * SERVICES.length}   # per service: replicas x pool + test suites`,
      'shared_buffers = 256MB',
      '',
    ].join('\n'),
  );
}

/** The handle of a private cluster (also used by `env`, which starts nothing). */
export function localPostgresHandle(inst, port = inst.port, startedHere = false) {
  return {
    external: false,
    name: inst.name,
    host: '127.0.0.1',
    port,
    services: inst.services,
    adminUrlFor: (db) =>
      `postgres://${PG_SUPERUSER.user}:${PG_SUPERUSER.password}@127.0.0.1:${port}/${encodeURIComponent(db)}`,
    startedHere,
    stop: () => stopLocalPostgres(inst),
  };
}

/**
 * Make sure a Postgres is reachable: the private cluster `inst` (default: the shared one, or the
 * server given by PG_ADMIN_URL). Returns a handle describing it; `startedHere` tells whether
 * this invocation started it (and so must stop it).
 */
export async function ensurePostgres(inst = PG) {
  if (process.env.PG_ADMIN_URL) {
    if (inst !== PG) throw new StackError('PG_ADMIN_URL gives one server: it cannot be used with --db-per-service');
    const admin = new URL(process.env.PG_ADMIN_URL);
    const pg = {
      external: true,
      host: admin.hostname,
      port: Number(admin.port || 5432),
      services: SERVICES,
      adminUrlFor: (db) => withDb(process.env.PG_ADMIN_URL, db),
      startedHere: false,
      stop: async () => {},
    };
    await psql(pg.adminUrlFor(admin.pathname.slice(1) || 'postgres'), 'SELECT 1;').catch((err) => {
      throw new StackError(`cannot reach Postgres at PG_ADMIN_URL: ${err.message}`);
    });
    log(`using Postgres from PG_ADMIN_URL (${admin.hostname}:${pg.port})`);
    return pg;
  }

  const binDir = findBinDir(inst);
  if (!binDir) throw new StackError('Postgres binaries not found under /usr/lib/postgresql');
  const user = pgUser();
  ownedDir(inst.dir, user, 0o700);
  ensureTraversable(inst.dir, user);

  const running = localStatus(inst);
  if (running && (await isReady(binDir, running.port))) {
    if (running.port !== inst.port)
      warn(`${inst.name} already runs on port ${running.port} (not ${inst.port}); using it`);
    log(`reusing ${inst.name} (pid ${running.pid}, port ${running.port})`);
    return localPostgresHandle(inst, running.port, false);
  }
  if (running)
    throw new StackError(`${inst.name} (pid ${running.pid}) runs but does not answer.\n${tail(inst.logFile)}`);

  if (!fs.existsSync(path.join(inst.data, 'PG_VERSION'))) await initCluster(inst, binDir, user);
  if (!(await portFree(inst.port)))
    throw new StackError(
      `port ${inst.port} (${inst.name}) is taken by another program; see the port variables in scripts/lib/config.mjs`,
    );

  log(`starting ${inst.name} on 127.0.0.1:${inst.port}`);
  // pg_stat_statements (loaded on each start, like the port, so an existing cluster gets it
  // too): the benchmark counts the statements of a checkout with it. Only if it is installed.
  const options = [`-p ${inst.port}`];
  if (fs.existsSync(path.join(binDir, '..', 'lib', 'pg_stat_statements.so')))
    options.push('-c shared_preload_libraries=pg_stat_statements');
  // detached: its own session, so a Ctrl-C in the terminal does not hit the postmaster;
  // we stop it ourselves after the services are down.
  await run(
    path.join(binDir, 'pg_ctl'),
    ['-D', inst.data, '-l', inst.logFile, '-w', '-t', '60', '-o', options.join(' '), 'start'],
    { cwd: inst.dir, detached: true, ...asUser(user) },
  ).catch((err) => {
    throw new StackError(`${inst.name} did not start: ${err.message}\n${tail(inst.logFile)}`);
  });
  return localPostgresHandle(inst, inst.port, true);
}

/**
 * Database per service: one private cluster per service, started at once. One handle whose
 * `perService` maps each service to its server; it stops (only) the servers started here.
 */
export async function ensurePostgresPerService() {
  const results = await Promise.allSettled(PG_PER_SERVICE.map((inst) => ensurePostgres(inst)));
  const handles = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const group = {
    external: false,
    perService: Object.fromEntries(handles.map((h) => [h.services[0].name, h])),
    get startedHere() {
      return handles.some((h) => h.startedHere);
    },
    set startedHere(v) {
      for (const h of handles) h.startedHere = v;
    },
    stop: async () => {
      for (const h of handles) if (h.startedHere) await h.stop();
    },
  };
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    await group.stop();
    throw failed.reason;
  }
  return group;
}

/** Stop a private cluster (pg_ctl finds the postmaster through its pid file). */
export async function stopLocalPostgres(inst = PG) {
  const running = localStatus(inst);
  if (!running) return false;
  const binDir = findBinDir(inst);
  log(`stopping ${inst.name} (pid ${running.pid})`);
  await run(path.join(binDir, 'pg_ctl'), ['-D', inst.data, '-m', 'fast', '-w', '-t', '60', 'stop'], {
    cwd: inst.dir,
    ...asUser(pgUser()),
  });
  return true;
}

const q = (ident) => `"${ident.replaceAll('"', '""')}"`;
const lit = (s) => `'${s.replaceAll("'", "''")}'`;

/**
 * Idempotent: the database, and for each service the server holds (`pg.services`: all on the
 * shared server, only its own on a service's server) two LOGIN roles and a schema: the migration
 * role `<svc>_svc_migrator` owns the schema `<svc>_svc` (it creates and changes the tables); the
 * runtime role `<svc>_svc` may only read and write the rows of its tables and use their sequences,
 * now and in any table the migrations add (default privileges), except the migrations table,
 * which it may only read. Nothing else, no PUBLIC access. With `recreate`, the database is dropped first.
 */
export async function provisionPostgres(pg, db, { recreate = false } = {}) {
  const services = pg.services ?? SERVICES;
  const logins = services.flatMap((s) => [
    [dbRole(s.name), dbPassword(s.name), dbRole(s.name)],
    [dbMigratorRole(s.name), dbMigratorPassword(s.name), dbRole(s.name)],
  ]);
  const cluster = [];
  for (const [role, password, schema] of logins) {
    cluster.push(
      `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${lit(role)}) THEN CREATE ROLE ${q(role)}; END IF; END $$;`,
      `ALTER ROLE ${q(role)} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD ${lit(password)};`,
      `ALTER ROLE ${q(role)} SET search_path = ${q(schema)};`,
    );
  }
  // WITH (FORCE) ends sessions left over by an aborted run.
  if (recreate) cluster.push(`DROP DATABASE IF EXISTS ${q(db)} WITH (FORCE);`);
  cluster.push(
    `SELECT 'CREATE DATABASE ${q(db)}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = ${lit(db)}) \\gexec`,
  );
  await psql(pg.adminUrlFor('postgres'), cluster.join('\n'));

  const inDb = [
    `REVOKE ALL ON DATABASE ${q(db)} FROM PUBLIC;`,
    `GRANT CONNECT ON DATABASE ${q(db)} TO ${logins.map(([role]) => q(role)).join(', ')};`,
    'REVOKE ALL ON SCHEMA public FROM PUBLIC;',
  ];
  for (const s of services) {
    const [role, migrator] = [q(dbRole(s.name)), q(dbMigratorRole(s.name))];
    const schema = role;
    inDb.push(
      `CREATE SCHEMA IF NOT EXISTS ${schema} AUTHORIZATION ${migrator};`,
      `ALTER SCHEMA ${schema} OWNER TO ${migrator};`,
      // A database provisioned before the migration role: what the runtime role created is the migrator's now.
      `REASSIGN OWNED BY ${role} TO ${migrator};`,
      `REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC;`,
      `GRANT USAGE ON SCHEMA ${schema} TO ${role};`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role};`,
      `GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${schema} TO ${role};`,
      `ALTER DEFAULT PRIVILEGES FOR ROLE ${migrator} IN SCHEMA ${schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role};`,
      `ALTER DEFAULT PRIVILEGES FOR ROLE ${migrator} IN SCHEMA ${schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${role};`,
      ...migrationsTableGrants(schema, migrator, role),
    );
  }
  await psql(pg.adminUrlFor(db), inDb.join('\n'));
}

/**
 * The migrations table (TypeORM's `migrations`), made here rather than by the first migration so
 * that it never gets the runtime role's default privileges: a service that could insert a name
 * there would make the migrator skip that migration. TypeORM uses the table when it exists; the
 * columns are the ones it would create. Also run on a database whose table TypeORM made.
 */
const migrationsTableGrants = (schema, migrator, role) => [
  `CREATE TABLE IF NOT EXISTS ${schema}.migrations (id serial PRIMARY KEY, "timestamp" int8 NOT NULL, name varchar NOT NULL);`,
  `ALTER TABLE ${schema}.migrations OWNER TO ${migrator};`,
  `REVOKE ALL ON ${schema}.migrations, ${schema}.migrations_id_seq FROM ${role}, PUBLIC;`,
  `GRANT SELECT ON ${schema}.migrations TO ${role};`,
];

/**
 * Database per service: `<db>_federated` on the coordinator's server (recreated), in which each service's
 * schema is imported from its server through postgres_fdw, so one superuser connection can
 * still join `order_svc.orders` with `inventory_svc.…` (tests and invariant checks only).
 * Run after the migrations: IMPORT FOREIGN SCHEMA copies the tables that exist then.
 */
export async function federate(pg, db) {
  const home = pg.perService[SERVICES[0].name];
  const fed = federatedDb(db);
  await psql(
    home.adminUrlFor('postgres'),
    `DROP DATABASE IF EXISTS ${q(fed)} WITH (FORCE);\nCREATE DATABASE ${q(fed)};`,
  );
  const sql = ['CREATE EXTENSION postgres_fdw;', `REVOKE ALL ON DATABASE ${q(fed)} FROM PUBLIC;`];
  for (const svc of SERVICES) {
    const h = pg.perService[svc.name];
    const server = q(`${svc.name}_server`);
    const schema = q(dbRole(svc.name));
    sql.push(
      `CREATE SERVER ${server} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host ${lit(h.host)}, port ${lit(String(h.port))}, dbname ${lit(db)});`,
      `CREATE USER MAPPING FOR ${q(PG_SUPERUSER.user)} SERVER ${server} OPTIONS (user ${lit(PG_SUPERUSER.user)}, password ${lit(PG_SUPERUSER.password)});`,
      `CREATE SCHEMA ${schema};`,
      // Column defaults too (inserts that rely on them work), except TypeORM's migrations
      // table, whose serial default names a sequence that exists only on the service's server.
      `IMPORT FOREIGN SCHEMA ${schema} EXCEPT (migrations) FROM SERVER ${server} INTO ${schema} OPTIONS (import_default 'true');`,
    );
  }
  await psql(home.adminUrlFor(fed), sql.join('\n'));
  log(`federated ${SERVICES.map((s) => dbRole(s.name)).join(', ')} into ${fed} on ${home.name}`);
}
