/**
 * The modules a datapath pass runs (src/dpif, src/packet, src/netdev) export plain data
 * properties only: no re-export (`export { X } from './y'`, `export *`), which TypeScript's
 * CommonJS output defines as a getter on `exports`. One getter puts V8's `exports` object in
 * dictionary mode, and then every read of one of the module's constants, by an importer
 * (`conntrack_1.CS_SRC_NAT`) and by the module itself (TypeScript writes `exports.CS_SRC_NAT`
 * for its own exported consts), is a generic property lookup in optimized code instead of a
 * constant: in (f) (ct + SNAT) about a dozen such calls a batch, in the conntrack stage,
 * againRun, trackLookup and refresh (callgrind, 2026-12-05, issue 12). Import from the module
 * that defines a name instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const SRC = path.join(__dirname, '../../src');

test('the datapath\'s modules export no getter (no re-export): their exports objects stay in fast mode', () => {
  const found: string[] = [];
  let nModules = 0;
  for (const dir of ['dpif', 'packet', 'netdev']) {
    for (const f of fs.readdirSync(path.join(SRC, dir))) {
      if (!f.endsWith('.js')) continue;
      const mod = require(path.join(SRC, dir, f)) as Record<string, unknown>;
      nModules++;
      for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(mod))) {
        if (d.get !== undefined || d.set !== undefined) found.push(`${dir}/${f}: ${name}`);
      }
    }
  }
  assert.ok(nModules > 20, `only ${nModules} modules found under ${SRC}`);
  assert.deepEqual(found, []);
});
