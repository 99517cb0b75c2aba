import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The files generated from services.json (scripts/lib/generated-files.mjs) must be what
 * `npm run generate` writes: one edited by hand, or a services.json changed without regenerating,
 * fails here (and so in CI).
 */
const ROOT = path.resolve(__dirname, '..');
const generate = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'generate.mjs'), ...args], { cwd: ROOT, encoding: 'utf8' });

describe('files generated from services.json', () => {
  it('are as `npm run generate` writes them', () => {
    const check = generate('--check');
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('--check names each file that differs, and exits 1', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'generated-'));
    try {
      expect(generate('--root', dir).status).toBe(0);
      expect(generate('--check', '--root', dir).status).toBe(0); // a second run changes nothing
      fs.appendFileSync(path.join(dir, 'docker-compose.yml'), '# edited by hand\n');
      fs.rmSync(path.join(dir, 'nest-cli.json'));
      const check = generate('--check', '--root', dir);
      expect(check.status).toBe(1);
      const named = check.stderr.split('\n').filter((line) => line.startsWith('  '));
      expect(named.map((line) => line.trim())).toEqual(['docker-compose.yml', 'nest-cli.json (missing)']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
