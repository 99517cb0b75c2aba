#!/usr/bin/env node
// Writes every file generated from services.json (scripts/lib/generated-files.mjs lists them).
//
//   npm run generate                 write them (a second run changes nothing)
//   npm run generate -- --check      change nothing; exit 1 naming each file that differs
//   ... --root DIR                   read and write the files under DIR instead of the repo
//                                    (the list is still the repo's services.json)
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './lib/config.mjs';
import { generatedFiles } from './lib/generated-files.mjs';
import { ensureDependencies } from './lib/project.mjs';

const args = process.argv.slice(2);
const check = args.includes('--check');
const rootAt = args.indexOf('--root');
const root = rootAt >= 0 ? path.resolve(args[rootAt + 1]) : ROOT;
const unknown = args.filter((a, i) => a !== '--check' && a !== '--root' && i !== rootAt + 1);
if (unknown.length || (rootAt >= 0 && !args[rootAt + 1])) {
  console.error(`usage: node scripts/generate.mjs [--check] [--root DIR]`);
  process.exit(2);
}

// Formatted as `npm run lint` wants them, with the repo's prettier settings (installed first: on a
// fresh clone node_modules is not there yet).
await ensureDependencies();
const prettier = await import('prettier');
const options = (await prettier.resolveConfig(path.join(ROOT, 'package.json'))) ?? {};
const drifted = [];
for (const file of generatedFiles()) {
  const text = file.parser ? await prettier.format(file.text, { ...options, parser: file.parser }) : file.text;
  const target = path.join(root, file.path);
  const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : null;
  if (current === text) continue;
  if (check) {
    drifted.push(`${file.path}${current === null ? ' (missing)' : ''}`);
  } else {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, text);
    console.log(`wrote ${file.path}`);
  }
}
if (drifted.length) {
  console.error(
    `not as services.json makes them (run \`npm run generate\`, and edit services.json rather than these):\n` +
      drifted.map((f) => `  ${f}`).join('\n'),
  );
  process.exit(1);
}
if (check) console.log('the generated files match services.json');
