/**
 * lab-bench's security-group comparison topologies (lab/bench-variants.ts): from reference.yaml,
 * one with every VM port in a group accepting the iperf3 port (firewall on every node), one with
 * port security off on every port; both valid topologies, the rest of the file unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseTopology } from '../../src/dvr/topology';
import { nodeConfig } from '../../src/dvr/node-config';
import { BENCH_GROUP, benchTopology } from '../../src/lab/bench-variants';
import { allows, isFiltered } from '../../src/lab/sg-model';

const FILE = path.join(__dirname, '../../../examples/topologies/reference.yaml');
const TEXT = fs.readFileSync(FILE, 'utf8');

test('filtered: every port in the bench group, firewall on every node, the iperf3 port and ICMP accepted, others not', () => {
  const t = parseTopology(FILE, benchTopology(TEXT, 'filtered', 5299));
  const orig = parseTopology(FILE, TEXT);
  assert.deepEqual(t.ports.map((p) => p.name), orig.ports.map((p) => p.name));
  assert.deepEqual(t.routers.map((r) => r.interfaces.map((i) => i.subnet)), orig.routers.map((r) => r.interfaces.map((i) => i.subnet)));
  assert.ok(t.nodes.every((n) => n.firewallDriver === 'openvswitch'));
  for (const p of t.ports) {
    assert.deepEqual(p.securityGroups, [BENCH_GROUP]);
    assert.equal(isFiltered(t, p), true);
  }
  const [a, b] = t.ports;
  assert.equal(allows(t, a, b, 6, 5299), true);
  assert.equal(allows(t, a, b, 1, 8), true);
  assert.equal(allows(t, a, b, 6, 5300), false);
  const c1 = nodeConfig(t, 'C1').bridges.find((x) => x.name === 'br-int')!.flows.map((f) => f.text);
  assert.ok(c1.some((f) => f.includes('table=82,') && f.includes('tp_dst=5299')), 'C1 has the rule for the iperf3 port');
});

test('unfiltered: port security off on every port, no groups, firewall driver still on', () => {
  const t = parseTopology(FILE, benchTopology(TEXT, 'unfiltered', 5299));
  assert.ok(t.nodes.every((n) => n.firewallDriver === 'openvswitch'));
  for (const p of t.ports) {
    assert.equal(p.portSecurityEnabled, false);
    assert.deepEqual(p.securityGroups, []);
    assert.equal(isFiltered(t, p), false);
  }
  const c1 = nodeConfig(t, 'C1').bridges.find((x) => x.name === 'br-int')!.flows.map((f) => f.text);
  assert.equal(c1.some((f) => f.includes('tp_dst=5299') || /^table=60,priority=100,in_port=10,.*resubmit\(,71\)$/.test(f)), false,
    'no rules; VM1 not sent to the egress filter');
});
