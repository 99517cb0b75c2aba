// The Node.js the project's commands run on. The supported lines are package.json's `engines`
// (the current LTS lines); where the machine's `node` is none of them (an end-of-life 20, say),
// the command runs again on the release in `.nvmrc`, brought from the npm registry's `node`
// package by npx (cached after the first time), rather than failing.
// No npm dependencies on purpose: this code runs before `npm install`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StackError, log } from './util.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FROM_NPM = 'SHOP_NODE_FROM_NPM'; // set in the command run again: it must not run again itself

/** The lines `engines.node` accepts, each with its minimum (`^22.15.0 || ^24.0.0` → [22, 15, 0], [24, 0, 0]). */
export function supportedLines() {
  const { engines } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  return [...String(engines?.node ?? '').matchAll(/\^(\d+)\.(\d+)\.(\d+)/g)].map((m) => m.slice(1, 4).map(Number));
}

/** Whether a Node.js version (`22.14.0`) is in one of those lines, at or above its minimum. */
export function isSupported(version) {
  const [major, minor, patch] = version.split('.').map(Number);
  return supportedLines().some(([m, min, p]) => major === m && (minor > min || (minor === min && patch >= p)));
}

/** The release the project runs on where the machine's is not supported (`.nvmrc`). */
export function preferredRelease() {
  return fs.readFileSync(path.join(ROOT, '.nvmrc'), 'utf8').trim();
}

/**
 * Returns when this process runs on a supported Node.js. Otherwise runs this same command on
 * `.nvmrc`'s release (its `node` first on PATH, so Jest and every child use it too) and exits
 * with its code. SHOP_NODE_RUNTIME=machine keeps the machine's node whatever it is.
 */
export async function onSupportedRuntime() {
  if (isSupported(process.versions.node) || process.env.SHOP_NODE_RUNTIME === 'machine') return;
  const release = preferredRelease();
  if (process.env[FROM_NPM]) {
    throw new StackError(
      `node@${release} from the npm registry reports ${process.versions.node}, not a supported line`,
    );
  }
  log(
    `Node.js ${process.versions.node} is not a supported LTS release (${supportedLines()
      .map((l) => `^${l.join('.')}`)
      .join(' || ')}): ` +
      `running on node@${release} from the npm registry (npx; SHOP_NODE_RUNTIME=machine to keep this one)`,
  );
  const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
  const child = spawn(npx, ['-y', '-p', `node@${release}`, '--', 'node', ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [FROM_NPM]: release },
  });
  // The child gets a terminal's Ctrl-C itself (same process group); a SIGTERM sent to us alone is passed on.
  const forward = (signal) => child.kill(signal);
  process.on('SIGTERM', forward);
  process.on('SIGINT', () => undefined);
  const code = await new Promise((resolve) => {
    child.on('error', (err) => {
      log(`could not run npx: ${err.message}`);
      resolve(1);
    });
    child.on('close', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  process.exit(code);
}
