// RabbitMQ: private nodes (an instance from config.mjs: the single node under .local/rabbitmq,
// or the three nodes of the broker cluster under .local/rabbitmq-cluster/node-<i>) or the broker
// given by AMQP_ADMIN_URL + RABBITMQ_MANAGEMENT_URL, and the idempotent provisioning of vhost,
// users and permissions.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  RABBIT,
  RABBIT_ADMIN,
  RABBIT_CLUSTER,
  BROKER_LIMITS,
  SERVICES,
  amqpPassword,
  amqpUser,
  brokerPermissions,
  brokerTopology,
} from './config.mjs';
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

/** The files of a node, all under its folder. */
const filesOf = (inst) => ({
  home: path.join(inst.dir, 'home'), // HOME of the node and of rabbitmqctl: holds the Erlang cookie
  conf: path.join(inst.dir, 'rabbitmq.conf'),
  advanced: path.join(inst.dir, 'advanced.config'),
  envConf: path.join(inst.dir, 'rabbitmq-env.conf'),
  plugins: path.join(inst.dir, 'enabled_plugins'),
  mnesia: path.join(inst.dir, 'mnesia'),
  logs: path.join(inst.dir, 'log'),
  pid: path.join(inst.dir, 'rabbitmq.pid'),
  out: path.join(inst.dir, 'server.out'),
});

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

// Everything that makes a node private: own name, ports, config, data, logs, cookie.
// RABBITMQ_CONF_ENV_FILE / ADVANCED_CONFIG_FILE point at our files so /etc/rabbitmq is not read.
function nodeEnv(inst) {
  const files = filesOf(inst);
  return {
    HOME: files.home,
    RABBITMQ_NODENAME: inst.nodename,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(inst.amqpPort),
    RABBITMQ_DIST_PORT: String(inst.distPort),
    RABBITMQ_CONFIG_FILE: files.conf,
    RABBITMQ_ADVANCED_CONFIG_FILE: files.advanced,
    RABBITMQ_CONF_ENV_FILE: files.envConf,
    RABBITMQ_ENABLED_PLUGINS_FILE: files.plugins,
    RABBITMQ_MNESIA_BASE: files.mnesia,
    RABBITMQ_LOG_BASE: files.logs,
    RABBITMQ_PID_FILE: files.pid,
    // Keep Erlang distribution (CLI tools <-> node, node <-> node) on loopback too.
    // ERL_EPMD_ADDRESS only applies if epmd is not running yet (it is shared with any other
    // Erlang node on the box).
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    ERL_EPMD_ADDRESS: '127.0.0.1',
  };
}

/** rabbitmqctl against a node, as the node's user (the cookie must match). Slow: ~1-2 s a call. */
export function rabbitmqctl(args, opts = {}, inst = RABBIT) {
  return run(ctlBin(), ['-n', inst.nodename, ...args], {
    cwd: inst.dir,
    ...asUser(rabbitUser(), nodeEnv(inst)),
    ...opts,
  });
}

/** Write `content` to `file` (mode 0400, owned by `user`) unless it already holds exactly that. */
function writeSecret(file, content, user) {
  try {
    if (fs.readFileSync(file, 'utf8') === content) return;
    fs.rmSync(file, { force: true });
  } catch {}
  fs.writeFileSync(file, content, { mode: 0o400 });
  if (user) fs.chownSync(file, user.uid, user.gid);
}

/**
 * The node's folder, cookie and config. A cluster node (`inst.cookie`) gets the cluster's
 * shared cookie; nodes 2 and 3 are told to join node 1 on their first boot (classic_config
 * peer discovery only runs on a blank node; after that a node rejoins its cluster by itself).
 */
function writeNodeFiles(inst, user) {
  const files = filesOf(inst);
  ownedDir(inst.dir, user, 0o750);
  ensureTraversable(inst.dir, user);
  for (const d of [files.home, files.mnesia, files.logs]) ownedDir(d, user, 0o750);
  const cookieFile = path.join(files.home, '.erlang.cookie');
  const newCookie = () => crypto.randomBytes(15).toString('hex').toUpperCase();
  if (inst.cookie) {
    ownedDir(path.dirname(inst.cookie), user, 0o750);
    if (!fs.existsSync(inst.cookie)) writeSecret(inst.cookie, newCookie(), user);
    writeSecret(cookieFile, fs.readFileSync(inst.cookie, 'utf8'), user);
  } else if (!fs.existsSync(cookieFile)) writeSecret(cookieFile, newCookie(), user);
  const seed = inst.index > 1 ? RABBIT_CLUSTER[0].nodename : null;
  // Rewritten on each start so AMQP_PORT & co. take effect.
  fs.writeFileSync(
    files.conf,
    [
      '# Written by scripts/stack.mjs for a private dev/test node. Development only.',
      `listeners.tcp.default = 127.0.0.1:${inst.amqpPort}`,
      'management.tcp.ip = 127.0.0.1',
      `management.tcp.port = ${inst.managementPort}`,
      '# only loopback listeners anyway; lets every user log in over them',
      'loopback_users = none',
      '# bootstrap admin on first boot (saves slow rabbitmqctl calls); dev-only credentials',
      `default_user = ${RABBIT_ADMIN.user}`,
      `default_pass = ${RABBIT_ADMIN.password}`,
      'default_user_tags.administrator = true',
      'log.console = false',
      'log.file.level = info',
      '# a larger message is refused (the transport also dead-letters what passes this but exceeds its own bound)',
      `max_message_size = ${BROKER_LIMITS.maxMessageBytes}`,
      ...(seed
        ? [
            '# first boot: join the cluster of node 1 (started and ready before this one)',
            'cluster_formation.peer_discovery_backend = classic_config',
            `cluster_formation.classic_config.nodes.1 = ${seed}`,
          ]
        : []),
      '',
    ].join('\n'),
  );
  fs.writeFileSync(files.envConf, '# intentionally empty: all settings come from the environment\n');
  fs.writeFileSync(files.plugins, '[rabbitmq_management].\n');
}

/** The beam pid from the node's pid file, if that process is alive and really is that node. */
function localPid(inst) {
  const files = filesOf(inst);
  const pid = readPidFile(files.pid);
  if (!pid || !pidAlive(pid)) return null;
  const cmd = pidCmdline(pid);
  // Guard against a recycled pid: our VM's command line carries `-home <the node's home folder>`.
  if (cmd != null && !cmd.includes(files.home)) return null;
  return pid;
}

/** True if the node has data (it booted before, and so belongs to its cluster already). */
const hasData = (inst) => fs.existsSync(path.join(filesOf(inst).mnesia, inst.nodename));

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

/** The handle of a private node (also used by `env`, which starts nothing). */
export function localRabbitHandle(inst, startedHere = false) {
  return handle({
    external: false,
    index: inst.index,
    nodename: inst.nodename,
    protocol: 'amqp:',
    host: '127.0.0.1',
    port: inst.amqpPort,
    adminUser: RABBIT_ADMIN.user,
    adminPassword: RABBIT_ADMIN.password,
    mgmtBase: `http://127.0.0.1:${inst.managementPort}`,
    mgmtUser: RABBIT_ADMIN.user,
    mgmtPassword: RABBIT_ADMIN.password,
    startedHere,
    stop: () => stopLocalRabbit(inst),
  });
}

/**
 * The broker cluster as one handle: node 1's (admin URL, management API) plus `nodes`, every
 * node's handle. It stops only the nodes started here, node 1 last.
 */
export function clusterHandle(nodes) {
  return {
    ...nodes[0],
    nodes,
    get startedHere() {
      return nodes.some((n) => n.startedHere);
    },
    set startedHere(v) {
      for (const n of nodes) n.startedHere = v;
    },
    stop: async () => {
      for (const n of [...nodes].reverse()) if (n.startedHere) await n.stop();
    },
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
 * Wait until the node is ready: its management API answers and lists its AMQP listener.
 * We never probe the AMQP port with a test connect while the node boots (see portFree in
 * util.mjs: such a probe can occupy the very port the node is about to bind).
 */
async function waitUntilReady(inst, h, { hasExited = () => null, timeoutMs }) {
  const files = filesOf(inst);
  const logTail = () => `${tail(files.out, 15)}\n${tail(path.join(files.logs, `${inst.nodename}.log`))}`;
  let restored = false;
  await waitFor(
    `RabbitMQ node ${inst.nodename} to accept connections`,
    async () => {
      const exited = hasExited();
      if (exited) throw new StackError(`RabbitMQ ${inst.nodename} exited during start (${exited})\n${logTail()}`);
      let res;
      try {
        res = await h.api('GET', '/overview');
      } catch {
        return false;
      }
      if (res.status === 401 && !restored) {
        // Booted, but our admin user is gone (default_user only applies to a fresh node).
        restored = true;
        await restoreAdmin(inst);
        return false;
      }
      return res.status === 200 && res.json?.listeners?.some((l) => l.protocol === 'amqp' && Number(l.port) === h.port);
    },
    { timeoutMs, onTimeout: logTail },
  );
}

function externalRabbit() {
  if (!process.env.RABBITMQ_MANAGEMENT_URL)
    throw new StackError('AMQP_ADMIN_URL is set but RABBITMQ_MANAGEMENT_URL is not (http://user:pass@host:15672)');
  const a = new URL(process.env.AMQP_ADMIN_URL);
  const m = new URL(process.env.RABBITMQ_MANAGEMENT_URL);
  const adminUser = decodeURIComponent(a.username);
  const adminPassword = decodeURIComponent(a.password);
  return handle({
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
}

/**
 * Make sure a broker is reachable: the private node `inst` (default: the single node, or the
 * broker given by AMQP_ADMIN_URL). `startedHere` tells whether this invocation started it.
 */
export async function ensureRabbit(inst = RABBIT) {
  if (process.env.AMQP_ADMIN_URL) {
    if (inst !== RABBIT)
      throw new StackError('AMQP_ADMIN_URL gives one broker: it cannot be used with --broker-cluster');
    const h = externalRabbit();
    const status = await managementStatus(h);
    if (status !== 200)
      throw new StackError(`RabbitMQ management API at RABBITMQ_MANAGEMENT_URL answered ${status || 'nothing'}`);
    log(`using RabbitMQ from AMQP_ADMIN_URL (${h.host}:${h.port})`);
    return h;
  }

  const pid = localPid(inst);
  if (pid) {
    const h = localRabbitHandle(inst, false);
    // Running (perhaps still booting, if another command just started it): wait for it.
    await waitUntilReady(inst, h, { timeoutMs: 90_000 });
    log(`reusing RabbitMQ node ${inst.nodename} (pid ${pid}, AMQP port ${h.port})`);
    return h;
  }

  for (const [what, port] of [
    ['AMQP', inst.amqpPort],
    ['management', inst.managementPort],
    ['Erlang distribution', inst.distPort],
  ])
    if (!(await portFree(port)))
      throw new StackError(
        `RabbitMQ ${what} port ${port} (${inst.nodename}) is taken by another program; see the port variables in scripts/lib/config.mjs`,
      );

  const user = rabbitUser();
  const files = filesOf(inst);
  writeNodeFiles(inst, user);
  fs.rmSync(files.pid, { force: true });
  log(`starting RabbitMQ node ${inst.nodename} on 127.0.0.1:${inst.amqpPort} (management ${inst.managementPort})`);
  const out = fs.openSync(files.out, 'a');
  // detached + unref: the node lives on after `up` exits and ignores the terminal's Ctrl-C.
  const child = spawn(serverBin(), [], {
    cwd: inst.dir,
    detached: true,
    stdio: ['ignore', out, out],
    ...asUser(user, nodeEnv(inst)),
  });
  fs.closeSync(out);
  let exited = null;
  child.on('exit', (code, signal) => (exited = signal ?? `exit ${code}`));
  child.unref();

  const h = localRabbitHandle(inst, true);
  const started = Date.now();
  // A node that rejoins its cluster may wait for a peer's tables: allow for that.
  await waitUntilReady(inst, h, { hasExited: () => exited, timeoutMs: 120_000 });
  log(`RabbitMQ node ${inst.nodename} up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return h;
}

/** Wait until the management API of `h` lists every node in `names` as running. */
export async function waitClusterRunning(h, names, timeoutMs = 60_000) {
  await waitFor(
    `RabbitMQ nodes ${names.join(', ')} to run in one cluster`,
    async () => {
      try {
        const res = await h.api('GET', '/nodes');
        return res.status === 200 && names.every((n) => res.json?.some((x) => x.name === n && x.running));
      } catch {
        return false;
      }
    },
    { timeoutMs, intervalMs: 500 },
  );
}

/**
 * True if the node was the last of its cluster to stop (RabbitMQ records the nodes that ran
 * when it shut down): it boots without waiting for its peers' tables, so it goes first.
 */
function stoppedLast(inst) {
  try {
    const file = path.join(filesOf(inst).mnesia, inst.nodename, 'nodes_running_at_shutdown');
    const names = fs.readFileSync(file, 'utf8').match(/'[^']+'|[\w.-]+@[\w.-]+/g) ?? [];
    return names.length > 0 && names.every((n) => n.replaceAll("'", '') === inst.nodename);
  } catch {
    return false;
  }
}

/**
 * The broker cluster: three private nodes joined as one. One node at a time (RabbitMQ 3.10
 * fails a boot whose feature flags it syncs with a peer that is still booting itself): running
 * nodes are reused, then the node that stopped last (it needs no peer to boot), then the others
 * in order. A node that has data rejoins its cluster by itself; a blank node 2 or 3 joins node 1.
 */
export async function ensureRabbitCluster() {
  if (process.env.AMQP_ADMIN_URL)
    throw new StackError('AMQP_ADMIN_URL gives one broker: it cannot be used with --broker-cluster');
  const t0 = Date.now();
  const rank = (inst) => (localPid(inst) ? 0 : hasData(inst) && stoppedLast(inst) ? 1 : 2);
  // After a crash of every node none knows it stopped last, and each would wait for the others:
  // let the first one boot on its own data (its peers then sync from it).
  const first = RABBIT_CLUSTER[0];
  if (RABBIT_CLUSTER.every((inst) => rank(inst) === 2) && hasData(first)) {
    warn(`no node of the broker cluster is known to have stopped last (a crash?): force_boot ${first.nodename}`);
    await rabbitmqctl(['force_boot'], {}, first);
  }
  const order = [...RABBIT_CLUSTER].sort((a, b) => rank(a) - rank(b) || a.index - b.index);
  const handles = new Map();
  let failure;
  for (const inst of order) {
    try {
      handles.set(inst, await ensureRabbit(inst));
    } catch (err) {
      failure = err;
      break;
    }
  }
  const cluster = clusterHandle(RABBIT_CLUSTER.map((inst) => handles.get(inst)).filter(Boolean));
  try {
    if (failure) throw failure;
    await waitClusterRunning(
      cluster,
      RABBIT_CLUSTER.map((n) => n.nodename),
    );
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  log(`RabbitMQ cluster of ${RABBIT_CLUSTER.length} nodes ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return cluster;
}

/** The admin user comes from default_user on first boot; restore it if someone removed it. */
async function restoreAdmin(inst) {
  warn(`RabbitMQ admin user missing or changed on ${inst.nodename}; restoring it with rabbitmqctl`);
  const ctl = (args) => rabbitmqctl(args, {}, inst);
  await ctl(['await_startup', '--timeout', '60']);
  const { out } = await ctl(['list_users', '-q']);
  if (!out.split('\n').some((l) => l.split(/\s/)[0] === RABBIT_ADMIN.user))
    await ctl(['add_user', RABBIT_ADMIN.user, RABBIT_ADMIN.password]);
  else await ctl(['change_password', RABBIT_ADMIN.user, RABBIT_ADMIN.password]);
  await ctl(['set_user_tags', RABBIT_ADMIN.user, 'administrator']);
}

/**
 * Stop a node by the pid in its pid file: the VM shuts down cleanly on SIGTERM; SIGKILL is a
 * crash (fault tests), which its peers see as a lost node.
 */
export async function stopLocalRabbit(inst = RABBIT, { signal = 'SIGTERM' } = {}) {
  const pid = localPid(inst);
  if (!pid) return false;
  log(`${signal === 'SIGKILL' ? 'killing' : 'stopping'} RabbitMQ node ${inst.nodename} (pid ${pid})`);
  process.kill(pid, signal);
  if (!(await waitForExit(pid, 60_000))) warn(`RabbitMQ node ${inst.nodename} did not stop within 60 s; killed it`);
  fs.rmSync(filesOf(inst).pid, { force: true });
  return true;
}

/** Is the node's process running (by its pid file)? */
export const rabbitRunning = (inst) => localPid(inst) != null;

/**
 * The beam pid of every private node behind a handle (the single node, or each node of the
 * cluster), from their pid files; null for a node that is not running, [] for a broker given by URL.
 */
export function localRabbitPids(h) {
  if (h.external) return [];
  const insts = [RABBIT, ...RABBIT_CLUSTER];
  return (h.nodes ?? [h]).map((n) => {
    const inst = insts.find((i) => i.nodename === n.nodename);
    return inst ? localPid(inst) : null;
  });
}

async function must(h, method, p, body, okStatuses = [200, 201, 204]) {
  const res = await h.api(method, p, body);
  if (!okStatuses.includes(res.status))
    throw new StackError(`RabbitMQ management ${method} ${p} answered ${res.status}: ${res.text.slice(0, 300)}`);
  return res;
}

/**
 * Idempotent: the vhost and its limits, the whole checkout topology (exchanges, queues, bindings,
 * length-limit policies: no service user may declare anything, see brokerPermissions in
 * config.mjs), one user per service with its limits, permissions on the vhost, admin's
 * permissions. With `recreate`, the vhost (and all its queues) is deleted first.
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
  await must(h, 'PUT', `/vhost-limits/${v}/max-connections`, { value: BROKER_LIMITS.vhostMaxConnections });
  await must(h, 'PUT', `/vhost-limits/${v}/max-queues`, { value: BROKER_LIMITS.vhostMaxQueues });
  const { exchanges, queues, bindings, policies } = brokerTopology();
  // Policies first: the queues are bounded from their first message.
  for (const { name, ...policy } of policies)
    await must(h, 'PUT', `/policies/${v}/${encodeURIComponent(name)}`, policy);
  for (const { name, type } of exchanges)
    await must(h, 'PUT', `/exchanges/${v}/${encodeURIComponent(name)}`, { type, durable: true, auto_delete: false });
  for (const { name, arguments: args } of queues)
    await must(h, 'PUT', `/queues/${v}/${encodeURIComponent(name)}`, {
      durable: true,
      auto_delete: false,
      arguments: args,
    });
  for (const { source, destination, routing_key } of bindings)
    await must(h, 'POST', `/bindings/${v}/e/${encodeURIComponent(source)}/q/${encodeURIComponent(destination)}`, {
      routing_key,
    });
  // Each service user gets only what its role needs (see brokerPermissions in config.mjs).
  const all = { configure: '.*', write: '.*', read: '.*' };
  for (const svc of SERVICES) {
    const user = encodeURIComponent(amqpUser(svc.name));
    const { topics, ...permissions } = brokerPermissions(svc.name);
    await must(h, 'PUT', `/users/${user}`, { password: amqpPassword(svc.name), tags: '' });
    await must(h, 'PUT', `/user-limits/${user}/max-connections`, { value: BROKER_LIMITS.userMaxConnections });
    await must(h, 'PUT', `/user-limits/${user}/max-channels`, { value: BROKER_LIMITS.userMaxChannels });
    await must(h, 'PUT', `/permissions/${v}/${user}`, permissions);
    for (const topic of topics) await must(h, 'PUT', `/topic-permissions/${v}/${user}`, topic);
  }
  await must(h, 'PUT', `/permissions/${v}/${encodeURIComponent(h.adminUser)}`, all);
}
