#!/usr/bin/env node
// `npm run compose:env [-- --cluster]`: fresh secrets for the compose demo, which has no default
// for any (docker-compose.yml requires them):
//   .env                              the passwords, the Erlang cookie, the admin token, and each
//                                     service's URLs with them (--cluster: the profile `cluster`)
//   .compose/rabbitmq-definitions.json  the broker's definitions with its users' password hashes
// Both are gitignored. Run again to change every secret; then `docker compose down -v`, since the
// servers' volumes keep the passwords of their first start.
// `--validate` (npm run compose:validate): `docker-compose config -q` with secrets written to a
// scratch folder, for both layouts (the file needs them all; nothing is written here).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './lib/config.mjs';
import { COMPOSE_SECRETS_DIR, composeEnv, composeSecrets, rabbitDefinitions } from './lib/generated-files.mjs';

const args = process.argv.slice(2);
const unknown = args.filter((a) => !['--cluster', '--validate'].includes(a) && !a.startsWith('--out='));
if (unknown.length) {
  console.error('usage: npm run compose:env [-- --cluster]   (writes .env and .compose/rabbitmq-definitions.json)');
  process.exit(2);
}

/** Writes the demo's secrets into `out`: .env (only its owner reads it) and the broker's users. */
function writeSecrets(out, { cluster }) {
  const secrets = composeSecrets();
  const dir = path.join(out, COMPOSE_SECRETS_DIR);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700); // the folder keeps other users out; the broker's user reads the file
  const write = (file, text, mode) => {
    fs.writeFileSync(path.join(out, file), text, { mode });
    fs.chmodSync(path.join(out, file), mode);
  };
  write('.env', composeEnv(secrets, { cluster }), 0o600);
  write(path.join(COMPOSE_SECRETS_DIR, 'rabbitmq-definitions.json'), rabbitDefinitions(secrets), 0o644);
}

if (args.includes('--validate')) {
  for (const cluster of [false, true]) {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-env-'));
    try {
      writeSecrets(scratch, { cluster });
      const envFile = path.join(scratch, '.env');
      const check = ['--env-file', envFile, '-f', path.join(ROOT, 'docker-compose.yml'), 'config', '-q'];
      const result = spawnSync('docker-compose', check, { cwd: ROOT, stdio: 'inherit' });
      if (result.status !== 0) process.exit(result.status ?? 1);
      console.log(`docker-compose.yml is valid (${cluster ? 'profile cluster' : 'one server each'})`);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  }
} else {
  // --out=<dir>: another folder than the repository's (the tests).
  const out = args.find((a) => a.startsWith('--out='))?.slice('--out='.length) ?? ROOT;
  writeSecrets(out, { cluster: args.includes('--cluster') });
  console.log(`wrote .env and ${COMPOSE_SECRETS_DIR}/rabbitmq-definitions.json in ${out}`);
  console.log('RabbitMQ UI: user admin, password RABBITMQ_ADMIN_PASSWORD in .env; the admin token: ADMIN_TOKEN');
}
