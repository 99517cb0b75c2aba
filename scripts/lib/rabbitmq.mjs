// RabbitMQ: a private node under .local/rabbitmq (or the broker given by AMQP_ADMIN_URL +
// RABBITMQ_MANAGEMENT_URL), and the idempotent provisioning of vhost, users and permissions.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { RABBIT, RABBIT_ADMIN, SERVICES, amqpPassword, amqpUser, brokerPermissions } from './config.mjs';
import { asUser, ensureTraversable, isRoot, osUser, ownedDir } from './system.mjs';
import {
  StackError,
  http,
  log,
  pidAlive,
  pidCmdline,
  portFree,
  readPidFile,
  run,
  tail,
  waitFor,
  waitForExit,
  warn,
} from './util.mjs';

// Debian ships the real scripts here; /usr/sbin/rabbitmq-server is a wrapper that su's to the
// rabbitmq user and sends output to /var/log. We run the real one as that user ourselves.
const BIN = '/usr/lib/rabbitmq/bin';
const serverBin = () =>
  fs.existsSync(`${BIN}/rabbitmq-server`) ? `${BIN}/rabbitmq-server` : '/usr/sbin/rabbitmq-server';
const ctlBin = () => (fs.existsSync(`${BIN}/rabbitmqctl`) ? `${BIN}/rabbitmqctl` : '/usr/sbin/rabbitmqctl');

const files = {
  home: path.join(RABBIT.dir, 'home'), // HOME of the node and of rabbitmqctl: holds the private Erlang cookie
  conf: path.join(RABBIT.dir, 'rabbitmq.conf'),
  envConf: path.join(RABBIT.dir, 'rabbitmq-env.conf'),
  plugins: path.join(RABBIT.dir, 'enabled_plugins'),
  mnesia: path.join(RABBIT.dir, 'mnesia'),
  logs: path.join(RABBIT.dir, 'log'),
  pid: path.join(RABBIT.dir, 'rabbitmq.pid'),
  out: path.join(RABBIT.dir, 'server.out'),
};

export function rabbitPackagesNeeded() {
  if (process.env.AMQP_ADMIN_URL) return [];
  return fs.existsSync('/usr/sbin/rabbitmq-server') || fs.existsSync(`${BIN}/rabbitmq-server`)
    ? []
    : ['rabbitmq-server'];
}

function rabbitUser() {
  if (!isRoot) return null;
  const user = osUser('rabbitmq');
  if (!user) throw new StackError('the rabbitmq OS user does not exist (is rabbitmq-server installed?)');
  return user;
}

// Everything that makes this node private: own name, ports, config, data, logs, cookie.
// RABBITMQ_CONF_ENV_FILE / ADVANCED_CONFIG_FILE point at our files so /etc/rabbitmq is not read.
const nodeEnv = () => ({
  HOME: files.home,
  RABBITMQ_NODENAME: RABBIT.nodename,
  RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
  RABBITMQ_NODE_PORT: String(RABBIT.amqpPort),
  RABBITMQ_DIST_PORT: String(RABBIT.distPort),
  RABBITMQ_CONFIG_FILE: files.conf,
  RABBITMQ_ADVANCED_CONFIG_FILE: path.join(RABBIT.dir, 'advanced.config'),
  RABBITMQ_CONF_ENV_FILE: files.envConf,
  RABBITMQ_ENABLED_PLUGINS_FILE: files.plugins,
  RABBITMQ_MNESIA_BASE: files.mnesia,
  RABBITMQ_LOG_BASE: files.logs,
  RABBITMQ_PID_FILE: files.pid,
  // Keep Erlang distribution (CLI tools <-> node) on loopback too. ERL_EPMD_ADDRESS only
  // applies if epmd is not running yet (it is shared with any other Erlang node on the box).
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  ERL_EPMD_ADDRESS: '127.0.0.1',
});

/** rabbitmqctl against our node, as the node's user (the cookie must match). Slow: ~1-2 s a call. */
export function rabbitmqctl(args, opts = {}) {
  return run(ctlBin(), ['-n', RABBIT.nodename, ...args], {
    cwd: RABBIT.dir,
    ...asUser(rabbitUser(), nodeEnv()),
    ...opts,
  });
}

function writeNodeFiles(user) {
  ownedDir(RABBIT.dir, user, 0o750);
  ensureTraversable(RABBIT.dir, user);
  for (const d of [files.home, files.mnesia, files.logs]) ownedDir(d, user, 0o750);
  const cookie = path.join(files.home, '.erlang.cookie');
  if (!fs.existsSync(cookie)) {
    fs.writeFileSync(cookie, crypto.randomBytes(15).toString('hex').toUpperCase(), { mode: 0o400 });
    if (user) fs.chownSync(cookie, user.uid, user.gid);
  }
  // Rewritten on each start so AMQP_PORT & co. take effect.
  fs.writeFileSync(
    files.conf,
    [
      '# Written by scripts/stack.mjs for the private dev/test node. Development only.',
      `listeners.tcp.default = 127.0.0.1:${RABBIT.amqpPort}`,
      'management.tcp.ip = 127.0.0.1',
      `management.tcp.port = ${RABBIT.managementPort}`,
      '# only loopback listeners anyway; lets every user log in over them',
      'loopback_users = none',
      '# bootstrap admin on first boot (saves slow rabbitmqctl calls); dev-only credentials',
      `default_user = ${RABBIT_ADMIN.user}`,
      `default_pass = ${RABBIT_ADMIN.password}`,
      'default_user_tags.administrator = true',
      'log.console = false',
      'log.file.level = info',
      '',
    ].join('\n'),
  );
  fs.writeFileSync(files.envConf, '# intentionally empty: all settings come from the environment\n');
  fs.writeFileSync(files.plugins, '[rabbitmq_management].\n');
}

/** The beam pid from our pid file, if that process is alive and really is our node. */
function localPid() {
  const pid = readPidFile(files.pid);
  if (!pid || !pidAlive(pid)) return null;
  const cmd = pidCmdline(pid);
  // Guard against a recycled pid: our VM's command line carries `-home <our home folder>`.
  if (cmd != null && !cmd.includes(files.home)) return null;
  return pid;
}

function handle(fields) {
  const { protocol, host, port, mgmtBase, mgmtUser, mgmtPassword } = fields;
  const mgmt = new URL(mgmtBase);
  mgmt.username = encodeURIComponent(mgmtUser);
  mgmt.password = encodeURIComponent(mgmtPassword);
  return {
    ...fields,
    adminUrlFor: (vhost) =>
      `${protocol}//${encodeURIComponent(fields.adminUser)}:${encodeURIComponent(fields.adminPassword)}@${host}:${port}/${encodeURIComponent(vhost)}`,
    managementUrlWithCreds: mgmt.toString().replace(/\/$/, ''),
    api: (method, p, body) =>
      http(method, `${mgmtBase.replace(/\/$/, '')}/api${p}`, { body, user: mgmtUser, password: mgmtPassword }),
  };
}

async function managementStatus(h) {
  try {
    return (await h.api('GET', '/overview')).status;
  } catch {
    return 0;
  }
}

/**
 * Wait until the node is ready: its management API answers and lists our AMQP listener.
 * We never probe the AMQP port with a test connect while the node boots (see portFree in
 * util.mjs: such a probe can occupy the very port the node is about to bind).
 */
async function waitUntilReady(h, { hasExited = () => null, timeoutMs }) {
  const logTail = () => `${tail(files.out, 15)}\n${tail(path.join(files.logs, `${RABBIT.nodename}.log`))}`;
  let restored = false;
  await waitFor(
    'RabbitMQ to accept connections',
    async () => {
      const exited = hasExited();
      if (exited) throw new StackError(`RabbitMQ exited during start (${exited})\n${logTail()}`);
      let res;
      try {
        res = await h.api('GET', '/overview');
      } catch {
        return false;
      }
      if (res.status === 401 && !restored) {
        // Booted, but our admin user is gone (default_user only applies to a fresh node).
        restored = true;
        await restoreAdmin();
        return false;
      }
      return res.status === 200 && res.json?.listeners?.some((l) => l.protocol === 'amqp' && Number(l.port) === h.port);
    },
    { timeoutMs, onTimeout: logTail },
  );
}

/** Make sure a broker is reachable; `startedHere` tells whether this invocation started it. */
export async function ensureRabbit() {
  if (process.env.AMQP_ADMIN_URL) {
    if (!process.env.RABBITMQ_MANAGEMENT_URL)
      throw new StackError('AMQP_ADMIN_URL is set but RABBITMQ_MANAGEMENT_URL is not (http://user:pass@host:15672)');
    const a = new URL(process.env.AMQP_ADMIN_URL);
    const m = new URL(process.env.RABBITMQ_MANAGEMENT_URL);
    const adminUser = decodeURIComponent(a.username);
    const adminPassword = decodeURIComponent(a.password);
    const h = handle({
      external: true,
      protocol: a.protocol,
      host: a.hostname,
      port: Number(a.port || (a.protocol === 'amqps:' ? 5671 : 5672)),
      adminUser,
      adminPassword,
      mgmtBase: `${m.protocol}//${m.host}${m.pathname}`,
      mgmtUser: m.username ? decodeURIComponent(m.username) : adminUser,
      mgmtPassword: m.username ? decodeURIComponent(m.password) : adminPassword,
      startedHere: false,
      stop: async () => {},
    });
    const status = await managementStatus(h);
    if (status !== 200)
      throw new StackError(`RabbitMQ management API at RABBITMQ_MANAGEMENT_URL answered ${status || 'nothing'}`);
    log(`using RabbitMQ from AMQP_ADMIN_URL (${h.host}:${h.port})`);
    return h;
  }

  const user = rabbitUser();
  const local = (startedHere) =>
    handle({
      external: false,
      protocol: 'amqp:',
      host: '127.0.0.1',
      port: RABBIT.amqpPort,
      adminUser: RABBIT_ADMIN.user,
      adminPassword: RABBIT_ADMIN.password,
      mgmtBase: `http://127.0.0.1:${RABBIT.managementPort}`,
      mgmtUser: RABBIT_ADMIN.user,
      mgmtPassword: RABBIT_ADMIN.password,
      startedHere,
      stop: () => stopLocalRabbit(),
    });

  const pid = localPid();
  if (pid) {
    const h = local(false);
    // Running (perhaps still booting, if another command just started it): wait for it.
    await waitUntilReady(h, { timeoutMs: 60_000 });
    log(`reusing RabbitMQ (pid ${pid}, AMQP port ${h.port})`);
    return h;
  }

  for (const [what, port] of [
    ['AMQP', RABBIT.amqpPort],
    ['management', RABBIT.managementPort],
    ['Erlang distribution', RABBIT.distPort],
  ])
    if (!(await portFree(port)))
      throw new StackError(
        `RabbitMQ ${what} port ${port} is taken by another program; see the port variables in scripts/lib/config.mjs`,
      );

  writeNodeFiles(user);
  fs.rmSync(files.pid, { force: true });
  log(
    `starting RabbitMQ node ${RABBIT.nodename} on 127.0.0.1:${RABBIT.amqpPort} (management ${RABBIT.managementPort})`,
  );
  const out = fs.openSync(files.out, 'a');
  // detached + unref: the node lives on after `up` exits and ignores the terminal's Ctrl-C.
  const child = spawn(serverBin(), [], {
    cwd: RABBIT.dir,
    detached: true,
    stdio: ['ignore', out, out],
    ...asUser(user, nodeEnv()),
  });
  fs.closeSync(out);
  let exited = null;
  child.on('exit', (code, signal) => (exited = signal ?? `exit ${code}`));
  child.unref();

  const h = local(true);
  const started = Date.now();
  await waitUntilReady(h, { hasExited: () => exited, timeoutMs: 90_000 });
  log(`RabbitMQ up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return h;
}

/** The admin user comes from default_user on first boot; restore it if someone removed it. */
async function restoreAdmin() {
  warn('RabbitMQ admin user missing or changed; restoring it with rabbitmqctl');
  const ctl = (args) => rabbitmqctl(args);
  await ctl(['await_startup', '--timeout', '60']);
  const { out } = await ctl(['list_users', '-q']);
  if (!out.split('\n').some((l) => l.split(/\s/)[0] === RABBIT_ADMIN.user))
    await ctl(['add_user', RABBIT_ADMIN.user, RABBIT_ADMIN.password]);
  else await ctl(['change_password', RABBIT_ADMIN.user, RABBIT_ADMIN.password]);
  await ctl(['set_user_tags', RABBIT_ADMIN.user, 'administrator']);
}

/** Stop our node by the pid in its pid file (the VM shuts down cleanly on SIGTERM). */
export async function stopLocalRabbit() {
  const pid = localPid();
  if (!pid) return false;
  log(`stopping RabbitMQ (pid ${pid})`);
  process.kill(pid, 'SIGTERM');
  if (!(await waitForExit(pid, 60_000))) warn('RabbitMQ did not stop within 60 s; killed it');
  fs.rmSync(files.pid, { force: true });
  return true;
}

async function must(h, method, p, body, okStatuses = [200, 201, 204]) {
  const res = await h.api(method, p, body);
  if (!okStatuses.includes(res.status))
    throw new StackError(`RabbitMQ management ${method} ${p} answered ${res.status}: ${res.text.slice(0, 300)}`);
  return res;
}

/**
 * Idempotent: the vhost, one user per service, permissions on the vhost, admin's permissions.
 * With `recreate`, the vhost (and all its queues) is deleted first.
 */
export async function provisionRabbit(h, vhost, { recreate = false } = {}) {
  const v = encodeURIComponent(vhost);
  if (recreate) await must(h, 'DELETE', `/vhosts/${v}`, undefined, [204, 404]);
  await must(h, 'PUT', `/vhosts/${v}`, { description: 'shop checkout (created by scripts/stack.mjs)' });
  // The vhost's processes start asynchronously; wait until the node reports it running.
  await waitFor(
    `vhost ${vhost} to start`,
    async () => {
      const res = await h.api('GET', `/vhosts/${v}`);
      const state = res.json?.cluster_state;
      return res.status === 200 && (!state || Object.values(state).every((s) => s === 'running'));
    },
    { timeoutMs: 30_000 },
  );
  // Each service user gets only what its role needs (see brokerPermissions in config.mjs).
  const all = { configure: '.*', write: '.*', read: '.*' };
  for (const svc of SERVICES) {
    const user = encodeURIComponent(amqpUser(svc.name));
    const { topics, ...permissions } = brokerPermissions(svc.name);
    await must(h, 'PUT', `/users/${user}`, { password: amqpPassword(svc.name), tags: '' });
    await must(h, 'PUT', `/permissions/${v}/${user}`, permissions);
    for (const topic of topics) await must(h, 'PUT', `/topic-permissions/${v}/${user}`, topic);
  }
  await must(h, 'PUT', `/permissions/${v}/${encodeURIComponent(h.adminUser)}`, all);
}
