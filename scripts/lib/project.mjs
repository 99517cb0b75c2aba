// Project steps: npm dependencies, build, migrations, and bringing the infra up + provisioned.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { DEFAULT_LAYOUT, ROOT, SERVICES, migrationEnv, pgOf } from './config.mjs';
import { ensurePostgres, ensurePostgresPerService, postgresPackagesNeeded, provisionPostgres } from './postgres.mjs';
import { ensureRabbit, ensureRabbitCluster, provisionRabbit, rabbitPackagesNeeded } from './rabbitmq.mjs';
import { aptInstall, withLock } from './system.mjs';
import { browserPackagesNeeded } from './browser.mjs';
import { StackError, activeChildren, color, fileMtime, log, run } from './util.mjs';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** `npm ci` when node_modules is missing or older than package-lock.json. */
export async function ensureDependencies() {
  const lock = path.join(ROOT, 'package-lock.json');
  const marker = path.join(ROOT, 'node_modules', '.package-lock.json');
  const hasLock = fs.existsSync(lock);
  const stale =
    !fs.existsSync(path.join(ROOT, 'node_modules')) || (hasLock && (fileMtime(marker) ?? 0) < fileMtime(lock));
  if (!stale) return;
  const args = hasLock ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'];
  log(`npm ${args[0]} (node_modules missing or older than package-lock.json)`);
  await run(npm, args, { cwd: ROOT, stdio: 'inherit' });
}

export async function build() {
  log('npm run build');
  await run(npm, ['run', 'build'], { cwd: ROOT, stdio: 'inherit' }).catch(() => {
    throw new StackError('the build failed (see the compiler output above)');
  });
}

export const entry = (svc, file) => path.join(ROOT, 'dist', 'apps', svc.name, 'src', `${file}.js`);

const PALETTE = ['cyan', 'magenta', 'yellow', 'blue', 'green'];
export const labelOf = (svc, replica = 0) => `${svc.name}${replica ? `#${replica + 1}` : ''}`;
export function prefixer(svc, replica = 0) {
  const width = Math.max(...SERVICES.map((s) => s.name.length)) + 2;
  const label = `[${labelOf(svc, replica)}]`.padEnd(width + 1);
  return color(PALETTE[SERVICES.indexOf(svc) % PALETTE.length], label);
}

/**
 * Copy a child's output line by line, each line prefixed with the service's label; to the
 * terminal, or both streams to `sink` (a writable stream, e.g. a log file) when given.
 */
export function pipeLines(child, prefix, sink) {
  for (const [stream, out] of [
    [child.stdout, sink ?? process.stdout],
    [child.stderr, sink ?? process.stderr],
  ]) {
    if (!stream) continue;
    readline
      .createInterface({ input: stream, crlfDelay: Infinity })
      .on('line', (line) => out.write(`${prefix} ${line}\n`));
  }
}

/** Run each service's migrations, one service after the other, before any app starts. */
export async function migrate(prof, pg, amqp) {
  for (const svc of SERVICES) {
    const file = entry(svc, 'migrate');
    if (!fs.existsSync(file))
      throw new StackError(`${path.relative(ROOT, file)} does not exist (did the build produce it?)`);
    log(
      `migrating ${svc.name} (database ${prof.db} on port ${pgOf(pg, svc).port}, schema ${svc.name}_svc, as ${svc.name}_svc_migrator)`,
    );
    const child = spawn(process.execPath, [file], {
      cwd: ROOT,
      env: { ...process.env, ...migrationEnv(svc, prof, pg, amqp) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    activeChildren.add(child);
    pipeLines(child, prefixer(svc));
    const [code, signal] = await new Promise((resolve) => child.on('close', (c, s) => resolve([c, s])));
    activeChildren.delete(child);
    if (code !== 0) throw new StackError(`migrations of ${svc.name} failed (${signal ?? `exit ${code}`})`);
  }
}

/**
 * Install missing system packages, bring Postgres and RabbitMQ up (or reuse them) and
 * provision the given profiles. `layout` (config.mjs layoutFrom) picks one Postgres or one per
 * service, one RabbitMQ node or the three-node cluster. Under a lock, so parallel commands
 * don't race each other. Returns { pg, amqp } handles; their `startedHere` says what this
 * invocation must stop.
 */
export async function ensureInfra(profiles, onStarted = () => {}, layout = DEFAULT_LAYOUT) {
  return withLock(async () => {
    // Chromium only where tests run: the browser suite (test/browser) drives it.
    const browser = profiles.some((p) => p.mode === 'test') ? browserPackagesNeeded() : [];
    await aptInstall([...postgresPackagesNeeded(), ...rabbitPackagesNeeded(), ...browser]);
    // Start both at once: RabbitMQ takes ~10 s to boot (a node), Postgres ~1 s.
    const [pgRes, amqpRes] = await Promise.allSettled([
      layout.dbPerService ? ensurePostgresPerService() : ensurePostgres(),
      layout.brokerCluster ? ensureRabbitCluster() : ensureRabbit(),
    ]);
    for (const r of [pgRes, amqpRes]) if (r.status === 'fulfilled') onStarted(r.value);
    for (const r of [pgRes, amqpRes]) if (r.status === 'rejected') throw r.reason;
    const pg = pgRes.value;
    const amqp = amqpRes.value;
    const servers = pg.perService ? Object.values(pg.perService) : [pg];
    for (const prof of profiles) {
      log(`provisioning database ${prof.db} and vhost ${prof.vhost}${prof.recreate ? ' (recreated)' : ''}`);
      await Promise.all([
        ...servers.map((server) => provisionPostgres(server, prof.db, { recreate: prof.recreate })),
        provisionRabbit(amqp, prof.vhost, { recreate: prof.recreate }),
      ]);
    }
    return { pg, amqp };
  });
}

/** Stop the servers that this invocation started (and only those). */
export async function stopStarted(handles) {
  for (const h of handles) {
    if (!h?.startedHere) continue;
    try {
      await h.stop();
      h.startedHere = false;
    } catch (err) {
      console.error(err.message);
    }
  }
}
