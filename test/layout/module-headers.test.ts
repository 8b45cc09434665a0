/**
 * Module headers name files that exist: every `something.ts` in the header comment of a module
 * under src/ (its callers, its peers, where a measurement lives) resolves to a file of the
 * checkout, relative to src/, to the module's own folder or to the checkout's root. A file
 * renamed or removed without its mentions fails here with the module and the name.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

/** The checkout: this file runs from dist/test/layout/. */
const ROOT = path.join(__dirname, '..', '..', '..');

function modules(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) modules(p, out);
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The comment block the module starts with, or '' if it starts with code. */
export function headerOf(text: string): string {
  const m = /^\s*\/\*[\s\S]*?\*\//.exec(text);
  return m === null ? '' : m[0];
}

/** The .ts names a header mentions ("of10.ts/of13.ts" is two). */
export function tsNames(header: string): string[] {
  const names: string[] = [];
  for (const m of header.matchAll(/[A-Za-z0-9_./-]+\.ts\b/g)) {
    for (const part of m[0].split(/(?<=\.ts)\//)) if (!part.startsWith('.')) names.push(part);
  }
  return names;
}

function exists(module: string, name: string): boolean {
  return [path.join(ROOT, 'src', name), path.join(path.dirname(module), name), path.join(ROOT, name)].some((p) => fs.existsSync(p));
}

test('tsNames splits joined names and leaves out patterns', () => {
  assert.deepEqual(tsNames('/** Who calls: of10.ts/of13.ts, dpif/stages.ts (emcLookup) and test/x*.test.ts. */'),
    ['of10.ts', 'of13.ts', 'dpif/stages.ts']);
});

test('every .ts name in a src/ module header is a file of the checkout', () => {
  const missing: string[] = [];
  const files = modules(path.join(ROOT, 'src'));
  assert.ok(files.length > 100, `only ${files.length} modules found under ${ROOT}/src`);
  for (const f of files) {
    for (const name of tsNames(headerOf(fs.readFileSync(f, 'utf8')))) {
      if (!exists(f, name)) missing.push(`${path.relative(ROOT, f)}: ${name}`);
    }
  }
  assert.deepEqual(missing, []);
});
