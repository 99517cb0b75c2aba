// OS-level helpers: apt packages, service users, folder ownership, an inter-process lock.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { LOCAL } from './config.mjs';
import { StackError, log, pidAlive, run, sleep, warn } from './util.mjs';

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Install Debian packages (one apt run for all of them). Only possible as root. */
export async function aptInstall(packages) {
  if (packages.length === 0) return;
  if (!isRoot)
    throw new StackError(
      `missing system packages: ${packages.join(' ')}. Install them (sudo apt-get install -y ${packages.join(' ')}) ` +
        `or point PG_ADMIN_URL / AMQP_ADMIN_URL + RABBITMQ_MANAGEMENT_URL at servers you already run.`,
    );
  log(`installing ${packages.join(', ')} with apt-get (first run only; takes a minute)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-q'], { env, stdio: 'inherit' });
  await run('apt-get', ['install', '-y', '-q', ...packages], { env, stdio: 'inherit' });
}

/** uid, gid and home of an OS user, or null if there is no such user. */
export function osUser(name) {
  try {
    const [, , uid, gid, , home] = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim().split(':');
    return { name, uid: Number(uid), gid: Number(gid), home };
  } catch {
    return null;
  }
}

/**
 * Spawn options that run a command as `user` when we are root (Postgres refuses to run as
 * root, and Debian's RabbitMQ expects its own user). We set uid/gid on spawn instead of going
 * through runuser/su: no PAM session, no extra fork, the environment stays exactly as given.
 * As a normal user, the servers simply run as that user.
 */
export function asUser(user, env = {}) {
  if (!isRoot) return { env: { ...process.env, ...env } };
  return {
    uid: user.uid,
    gid: user.gid,
    env: { ...process.env, HOME: user.home, USER: user.name, LOGNAME: user.name, ...env },
  };
}

/** Create `dir` (mode) and, as root, hand it to `user` (recursively if it isn't theirs yet). */
export function ownedDir(dir, user, mode = 0o700) {
  fs.mkdirSync(dir, { recursive: true });
  if (isRoot && user) {
    const st = fs.statSync(dir);
    if (st.uid !== user.uid) execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, dir]);
  }
  fs.chmodSync(dir, mode);
}

/**
 * A service user must be able to reach its data folder under the repo. If the repo sits under
 * a folder like /root (mode 700), add only the search bit (o+x: enter, not list) to each
 * ancestor that lacks it, and say so.
 */
export function ensureTraversable(dir, user) {
  if (!isRoot || !user) return;
  const ancestors = [];
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    ancestors.push(d);
    if (d === path.dirname(d)) break;
  }
  for (const d of ancestors.reverse()) {
    const st = fs.statSync(d);
    const ok = st.mode & 0o001 || (st.uid === user.uid && st.mode & 0o100) || (st.gid === user.gid && st.mode & 0o010);
    if (!ok) {
      fs.chmodSync(d, (st.mode & 0o7777) | 0o001);
      warn(`added o+x (search only) to ${d} so the ${user.name} user can reach ${dir}`);
    }
  }
}

/**
 * A lock so that two invocations (say `npm start` and `npm test` in two terminals) don't both
 * start or provision the same servers at once. Stale locks of dead processes are taken over.
 */
export async function withLock(fn, timeoutMs = 10 * 60_000) {
  fs.mkdirSync(LOCAL, { recursive: true });
  const file = path.join(LOCAL, 'stack.lock');
  const deadline = Date.now() + timeoutMs;
  let said = false;
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const holder = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
      if (!pidAlive(holder) || holder === process.pid) {
        fs.rmSync(file, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new StackError(`${file} is held by pid ${holder} for too long`);
      if (!said) log(`waiting for another stack command (pid ${holder}) to finish setting up…`);
      said = true;
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(file, { force: true });
  }
}
