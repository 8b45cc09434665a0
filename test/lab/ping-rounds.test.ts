/**
 * lab check pings its pairs in rounds (lab-check.ts pingRounds): a check picks its pair's frames
 * by the pair's addresses, so no round may hold a VM or an address twice, except a pair's own
 * two directions where the caller allows them (east-west). Every pair is in exactly one round,
 * each round in the pairs' order. Checked on the example topologies' ordered VM pairs and isolation pairs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadTopology, TopoPort } from '../../src/dvr/topology';
import { isolationPairs, pingRounds } from '../../src/lab/lab-check';
import { PING_PARALLEL } from '../../src/lab/ping';

const EXAMPLES = path.join(__dirname, '../../../examples/topologies');
const FILES = ['reference.yaml', 'security-groups.yaml', 'multi-router.yaml', 'two-tenants.yaml', 'vlan.yaml', 'ha.yaml'];

function allPairs(file: string): { a: TopoPort; b: TopoPort }[] {
  const vms = loadTopology(path.join(EXAMPLES, file)).ports.filter((p) => p.node !== '' && p.fixedIps.length > 0);
  return vms.flatMap((a) => vms.filter((b) => b !== a).map((b) => ({ a, b })));
}

function assertRounds(pairs: { a: TopoPort; b: TopoPort }[], bothWays: boolean, what: string): number {
  const rounds = pingRounds(pairs, bothWays);
  const at = (x: { a: TopoPort; b: TopoPort }): number => pairs.indexOf(x);
  assert.deepEqual(rounds.flat().map(at).sort((x, y) => x - y), pairs.map((_, i) => i), `${what}: every pair once`);
  for (const r of rounds) {
    assert.deepEqual(r.map(at), r.map(at).sort((x, y) => x - y), `${what}: a round keeps the pairs' order`);
    assert.ok(r.length <= PING_PARALLEL, `${what}: a round of ${r.length} pings`);
    const owner = new Map<string, string>();
    for (const { a, b } of r) {
      const who = bothWays ? [a.name, b.name].sort().join(' ') : `${a.name} ${b.name}`;
      for (const k of [`vm:${a.name}`, `vm:${b.name}`, `ip:${a.fixedIps[0].ip}`, `ip:${b.fixedIps[0].ip}`]) {
        assert.ok((owner.get(k) ?? who) === who, `${what}: ${k} in pairs ${owner.get(k)} and ${who} of one round`);
        owner.set(k, who);
      }
    }
  }
  return rounds.length;
}

for (const f of FILES) {
  test(`${f}: rounds never share a VM or an address between pairs`, () => {
    const pairs = allPairs(f);
    const together = assertRounds(pairs, true, `${f} both ways`);
    const apart = assertRounds(pairs, false, `${f} one way`);
    if (pairs.length > 1) assert.ok(together < pairs.length && together <= apart, `${f}: ${pairs.length} pairs in ${together} / ${apart} rounds`);
    assertRounds(isolationPairs(loadTopology(path.join(EXAMPLES, f))), false, `${f} isolation`);
  });
}

test('two-tenants.yaml reuses addresses across projects (what the address rule of a round is for)', () => {
  const vms = loadTopology(path.join(EXAMPLES, 'two-tenants.yaml')).ports.filter((p) => p.node !== '' && p.fixedIps.length > 0);
  assert.ok(new Set(vms.map((p) => p.fixedIps[0].ip)).size < vms.length);
});
