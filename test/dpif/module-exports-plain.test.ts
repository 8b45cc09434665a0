/**
 * flowd's modules export plain data properties only: no re-export (`export { X } from './y'`,
 * `export *`, or `export { X }` of an imported name), which TypeScript's CommonJS output defines
 * as a getter on `exports`. One getter puts V8's `exports` object in dictionary mode, and then
 * every read of one of the module's exports, by an importer (`conntrack_1.CS_SRC_NAT`,
 * `(0, match_syntax_1.parseMac)(...)`) and by the module itself (TypeScript writes
 * `exports.CS_SRC_NAT` for its own exported consts), is a generic property lookup in optimized
 * code instead of a constant: in (f) (ct + SNAT) about a dozen such lookups a batch, ~1400
 * instructions, in the conntrack stage, againRun, trackLookup and refresh (callgrind,
 * 2026-12-05, issue 12); the flow parser, xlate and the bridge paid the same on every upcall.
 * Import from the module that defines a name instead.
 * Every module under src/ is checked but the entry points (src/cli/, src/native/burst.ts),
 * which run when loaded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const SRC = path.join(__dirname, '../../src');
const ENTRY_POINTS = new Set(['cli', path.join('native', 'burst.js')]);

function modules(dir: string, out: string[]): string[] {
  for (const f of fs.readdirSync(path.join(SRC, dir), { withFileTypes: true })) {
    const rel = path.join(dir, f.name);
    if (ENTRY_POINTS.has(rel)) continue;
    if (f.isDirectory()) modules(rel, out);
    else if (f.name.endsWith('.js')) out.push(rel);
  }
  return out;
}

test('no module of src/ exports a getter (no re-export): their exports objects stay in fast mode', () => {
  const found: string[] = [];
  const all = modules('', []);
  for (const rel of all) {
    const mod = require(path.join(SRC, rel)) as Record<string, unknown>;
    for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(mod))) {
      if (d.get !== undefined || d.set !== undefined) found.push(`${rel}: ${name}`);
    }
  }
  assert.ok(all.length > 100, `only ${all.length} modules found under ${SRC}`);
  assert.ok(all.includes(path.join('dpif', 'conntrack.js')) && all.includes(path.join('ofproto', 'match-syntax.js')),
    'dpif/conntrack.js and ofproto/match-syntax.js are among the modules checked');
  assert.deepEqual(found, []);
});
