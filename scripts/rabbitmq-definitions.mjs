#!/usr/bin/env node
// Writes docker/rabbitmq/definitions.json: vhost `shop`, its shared exchanges, the service users
// and admin, with development-only passwords. RabbitMQ wants password hashes in definitions, so
// this computes rabbit_password_hashing_sha256: base64(salt(4 random bytes) + sha256(salt +
// password)), keeping the hash already in the file while it still matches the password (so a
// rerun changes only what changed).
// Run again after changing users or permissions: node scripts/rabbitmq-definitions.mjs
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  RABBIT_ADMIN,
  ROOT,
  SERVICES,
  SHARED_EXCHANGES,
  amqpPassword,
  amqpUser,
  brokerPermissions,
} from './lib/config.mjs';

const file = path.join(ROOT, 'docker', 'rabbitmq', 'definitions.json');
const hashWithSalt = (salt, password) =>
  Buffer.concat([
    salt,
    crypto
      .createHash('sha256')
      .update(Buffer.concat([salt, Buffer.from(password, 'utf8')]))
      .digest(),
  ]).toString('base64');
const previousHashes = new Map();
try {
  for (const u of JSON.parse(fs.readFileSync(file, 'utf8')).users ?? []) previousHashes.set(u.name, u.password_hash);
} catch {}
const hash = (name, password) => {
  const previous = previousHashes.get(name);
  if (previous && hashWithSalt(Buffer.from(previous, 'base64').subarray(0, 4), password) === previous) return previous;
  return hashWithSalt(crypto.randomBytes(4), password);
};
const user = (name, password, tags) => ({
  name,
  password_hash: hash(name, password),
  hashing_algorithm: 'rabbit_password_hashing_sha256',
  tags,
});
const vhost = 'shop';
const all = { configure: '.*', write: '.*', read: '.*' };
const users = [user(RABBIT_ADMIN.user, RABBIT_ADMIN.password, ['administrator'])];
for (const s of SERVICES) users.push(user(amqpUser(s.name), amqpPassword(s.name), []));
// Least privilege for the service users, the same rules as the local stack (brokerPermissions).
const serviceGrants = SERVICES.map((s) => ({ user: amqpUser(s.name), ...brokerPermissions(s.name) }));
const definitions = {
  users,
  vhosts: [{ name: vhost }],
  permissions: [
    { user: RABBIT_ADMIN.user, vhost, ...all },
    ...serviceGrants.map(({ user: name, configure, write, read }) => ({ user: name, vhost, configure, write, read })),
  ],
  topic_permissions: serviceGrants.flatMap(({ user: name, topics }) =>
    topics.map((t) => ({ user: name, vhost, ...t })),
  ),
  parameters: [],
  global_parameters: [],
  policies: [],
  queues: [],
  // The services declare their own queues and dead-letter exchanges; they may not declare these.
  exchanges: SHARED_EXCHANGES.map(({ name, type }) => ({
    name,
    vhost,
    type,
    durable: true,
    auto_delete: false,
    internal: false,
    arguments: {},
  })),
  bindings: [],
};
let text = `${JSON.stringify(definitions, null, 2)}\n`;
try {
  // Match the repo's formatting when prettier is installed (optional).
  const prettier = await import('prettier');
  text = await prettier.format(text, { ...(await prettier.resolveConfig(file)), filepath: file });
} catch {}
fs.writeFileSync(file, text);
console.log(`wrote ${path.relative(ROOT, file)}`);
