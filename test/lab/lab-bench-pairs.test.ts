/**
 * What lab-bench measures, derived from the topology (no namespaces): the north-south pair of
 * `--compare snat` (lab-bench.northSouthPair) and the kernel twin's networks for a GRE
 * topology, refused unless the VXLAN stand-in is asked for (lab-kernel.nodeNetworks).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadTopology } from '../../src/dvr/topology';
import { northSouthPair } from '../../src/lab/lab-bench';
import { nodeNetworks } from '../../src/lab/lab-kernel';

const TOPO = path.join(__dirname, '../../../examples/topologies');

test('--compare snat: VM2 leaves by SNAT, VM1 by its floating IP, both to the external gateway', () => {
  const t = loadTopology(path.join(TOPO, 'reference.yaml'));
  assert.deepEqual(northSouthPair(t), { snatVm: 'VM2', fipVm: 'VM1', upstream: '203.0.113.1' });
});

test('--compare snat refuses a topology without a floating IP', () => {
  const t = loadTopology(path.join(TOPO, 'reference.yaml'));
  assert.throws(() => northSouthPair({ ...t, floatingIps: [] }), /floating IP and one reaching out by SNAT/);
});

test('kernel twin of reference-gre: refused as GRE, built as VXLAN when asked', () => {
  const t = loadTopology(path.join(TOPO, 'reference-gre.yaml'));
  const c1 = t.nodes.find((n) => n.name === 'C1')!;
  assert.throws(() => nodeNetworks(t, c1), /network A on node C1 is gre; only VXLAN tenant networks are built \(GRE as a VXLAN stand-in only when asked\)/);
  assert.deepEqual(nodeNetworks(t, c1, true), { networks: ['A', 'B'], router: 'R' });
});
