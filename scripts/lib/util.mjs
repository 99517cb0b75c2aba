// Small helpers shared by the stack scripts: logging, running commands, polling.
// No npm dependencies on purpose: this code runs before `npm install`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

const useColor =
  !process.env.NO_COLOR && (process.env.FORCE_COLOR ? process.env.FORCE_COLOR !== '0' : process.stdout.isTTY);

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, gray: 90, bold: 1 };
export const color = (name, text) => (useColor ? `\x1b[${CODES[name]}m${text}\x1b[0m` : text);

export const log = (...args) => console.log(color('green', '[stack]'), ...args);
export const warn = (...args) => console.warn(color('yellow', '[stack] warning:'), ...args);
export const fail = (...args) => console.error(color('red', '[stack] error:'), ...args);

/** An error whose message is meant for the user as is (no stack trace). */
export class StackError extends Error {}

// Children that are running right now, so a signal to us can be forwarded to them.
export const activeChildren = new Set();

/**
 * Run a command to completion. `stdio: 'inherit'` streams output to the terminal;
 * otherwise output is captured and returned. Rejects with the output on a non-zero exit
 * unless `allowFail` is set.
 */
export function run(cmd, args = [], opts = {}) {
  const { input, allowFail = false, stdio = 'pipe', ...spawnOpts } = opts;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      ...spawnOpts,
      stdio:
        stdio === 'inherit' ? ['ignore', 'inherit', 'inherit'] : [input == null ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    activeChildren.add(child);
    let out = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (out += d));
    if (input != null) child.stdin.end(input);
    child.on('error', (err) => {
      activeChildren.delete(child);
      reject(new StackError(`could not run ${cmd}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      activeChildren.delete(child);
      const res = { code: code ?? 128, signal, out };
      if (code === 0 || allowFail) resolve(res);
      else
        reject(
          new StackError(
            `${[cmd, ...args].join(' ')} failed (${signal ?? `exit ${code}`})${out ? `:\n${out.trimEnd()}` : ''}`,
          ),
        );
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Poll `check` until it returns a truthy value or the deadline passes.
 * `check` may throw a StackError to abort early (e.g. the server process died).
 */
export async function waitFor(what, check, { timeoutMs = 60_000, intervalMs = 250, onTimeout } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) {
      const extra = onTimeout ? `\n${await onTimeout()}` : '';
      throw new StackError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${extra}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * True if we can listen on host:port. Used instead of a test connect: on loopback, connecting
 * to a port with no listener can pick that very port as the ephemeral source (our ports lie in
 * Linux's ephemeral range) and "connect to itself", leaving a socket that then blocks the bind.
 */
export function portFree(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

export function pidAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (err.code !== 'EPERM') return false;
  }
  // A zombie (exited, not yet reaped: some container inits reap late) counts as gone.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** The command line of a process (Linux /proc), or null if unknown. */
export function pidCmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return null;
  }
}

export function readPidFile(file) {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8').split('\n')[0].trim(), 10);
    return Number.isInteger(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** Wait for a pid to disappear; SIGKILL it after the timeout. */
export async function waitForExit(pid, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
      await sleep(200);
      return false;
    }
    await sleep(100);
  }
  return true;
}

/** The last lines of a log file, for error messages. */
export function tail(file, lines = 30) {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    return `--- last lines of ${file} ---\n${text.slice(-lines).join('\n')}`;
  } catch {
    return `(no log at ${file})`;
  }
}

export function fileMtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return null;
  }
}

/** fetch with a timeout; credentials given separately because fetch rejects user:pass in URLs. */
export async function http(method, url, { body, user, password, headers = {}, timeoutMs = 5000 } = {}) {
  const h = { ...headers };
  if (user != null) h.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(url, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {}
  return { status: res.status, ok: res.ok, text, json };
}
