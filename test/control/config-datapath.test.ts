/**
 * The node config's `datapath:` section: the EMC's insertion probability and lookup policy, as
 * parsed (with errors naming file, line and field) and as the switch's datapath then runs them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/control/config';
import { Switch } from '../../src/control/switch';
import { EMC_ALWAYS, EMC_DEFAULT_INSERT_INV_PROB, EMC_DEFAULT_POLICY } from '../../src/dpif/emc';
import { ConfigError } from '../../src/errors';

const BRIDGES = `bridges:
  - name: br0
    ports:
      - { name: p1, ofport: 1 }
`;

function switchOf(text: string): Switch {
  return new Switch(parseConfig('n.yaml', text), { open: () => null }, { nowMs: () => 0 });
}

test('datapath: absent keeps the defaults (1/100 insertion, measured lookup policy)', () => {
  const c = parseConfig('n.yaml', BRIDGES);
  assert.equal(c.datapath, undefined);
  const sw = switchOf(BRIDGES);
  assert.equal(sw.datapath.emc.insertInvProb, EMC_DEFAULT_INSERT_INV_PROB);
  assert.equal(sw.datapath.emc.lookupPolicy, EMC_DEFAULT_POLICY);
});

test('datapath: emc_insert_inv_prob and emc_lookup reach the EMC', () => {
  const text = `datapath:\n  emc_insert_inv_prob: 20\n  emc_lookup: always\n${BRIDGES}`;
  assert.deepEqual(parseConfig('n.yaml', text).datapath, { emcInsertInvProb: 20, emcLookup: 'always' });
  const sw = switchOf(text);
  assert.equal(sw.datapath.emc.insertInvProb, 20);
  assert.equal(sw.datapath.emc.lookupPolicy, EMC_ALWAYS);
  const off = switchOf(`datapath: { emc_insert_inv_prob: 0 }\n${BRIDGES}`);
  assert.equal(off.datapath.emc.insertInvProb, 0, 'OVS: 0 turns insertion off');
  assert.equal(off.datapath.emc.lookupPolicy, EMC_DEFAULT_POLICY);
});

test('datapath: bad values name the file, line and field', () => {
  const cases: [string, number, string, RegExp][] = [
    [`node: c1\ndatapath:\n  emc_lookup: sometimes\n${BRIDGES}`, 3, 'datapath.emc_lookup', /"sometimes" is not a lookup policy \(expected auto or always\)/],
    [`node: c1\ndatapath:\n  emc_insert_inv_prob: -1\n${BRIDGES}`, 3, 'datapath.emc_insert_inv_prob', /expected an integer in 0\.\.4294967295, got -1/],
    [`datapath:\n  emc_slots: 8192\n${BRIDGES}`, 2, 'datapath.emc_slots', /unknown field \(expected one of emc_insert_inv_prob, emc_lookup\)/],
    [`datapath: 100\n${BRIDGES}`, 1, 'datapath', /expected a mapping/],
  ];
  for (const [text, line, field, msg] of cases) {
    assert.throws(() => parseConfig('bad.yaml', text), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.file, 'bad.yaml');
      assert.equal(e.line, line, `${field}: ${e.message}`);
      assert.equal(e.field, field, e.message);
      assert.match(e.message, msg);
      return true;
    });
  }
});
