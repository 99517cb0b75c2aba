import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * `npm run new:participant` refuses a name it cannot use before it writes anything (the whole
 * generated path, with a valid name, is the participant trial at the end of `npm test`). It runs
 * in a copy of what it reads (scripts/, services.json), so a refusal that wrote would show there.
 */
const ROOT = path.resolve(__dirname, '..');

describe('npm run new:participant', () => {
  let copy: string;
  const snapshot = () =>
    fs
      .readdirSync(copy, { recursive: true, encoding: 'utf8' })
      .sort()
      .map((file) => {
        const full = path.join(copy, file);
        return fs.statSync(full).isFile() ? `${file}:${fs.readFileSync(full, 'utf8').length}` : file;
      });
  const newParticipant = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(copy, 'scripts', 'new-participant.mjs'), ...args], {
      cwd: copy,
      encoding: 'utf8',
    });

  beforeAll(() => {
    copy = fs.mkdtempSync(path.join(os.tmpdir(), 'new-participant-'));
    fs.cpSync(path.join(ROOT, 'scripts'), path.join(copy, 'scripts'), { recursive: true });
    for (const file of ['services.json', 'package.json', '.nvmrc'])
      fs.copyFileSync(path.join(ROOT, file), path.join(copy, file));
    fs.mkdirSync(path.join(copy, 'apps', 'billing'), { recursive: true }); // an app folder without a list entry
  });
  afterAll(() => fs.rmSync(copy, { recursive: true, force: true }));

  it.each([
    ['no name', [], /usage: npm run new:participant/],
    ['two names', ['a', 'b'], /usage: npm run new:participant/],
    ['upper case', ['Shipping'], /'Shipping' is not a participant name/],
    ['a dash', ['gift-wrap'], /'gift-wrap' is not a participant name/],
    ['a leading digit', ['2day'], /'2day' is not a participant name/],
    ['the coordinator', ['order'], /'order' is already in services.json/],
    ['a participant', ['payment'], /'payment' is already in services.json/],
    ['an existing app folder', ['billing'], /apps\/billing exists already/],
  ])('refuses %s, and writes nothing', (_case, args, message) => {
    const before = snapshot();
    const run = newParticipant(...args);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(message);
    expect(snapshot()).toEqual(before);
  });
});
