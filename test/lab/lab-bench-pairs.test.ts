/**
 * What lab-bench measures, derived from the topology (no namespaces): the north-south pair of
 * `--compare snat` (lab-bench.northSouthPair) and the kernel twin's networks for a GRE
 * topology, refused unless the VXLAN stand-in is asked for (lab-kernel.nodeNetworks).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadTopology } from '../../src/dvr/topology';
import { formatTable, IperfSample, northSouthPair } from '../../src/lab/lab-bench';
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

test('--compare build: the table sets this tree\'s flowd against flowd-b with both builds\' daemons', () => {
  const sample = (system: 'flowd' | 'flowd-b', direction: 'forward' | 'reverse', gbit: number): IperfSample => ({
    system, direction, round: 1, bps: gbit * 1e9, retransmits: 0, wallS: 5,
    daemonCpuS: { C1: 2 }, daemonSysS: { C1: 1 }, daemonRxPackets: { C1: 100000 }, daemonRxBatches: { C1: 25000 },
    daemonBusyNs: { C1: 1e9 }, hostBusyPct: 99,
  });
  const text = formatTable({
    options: { topology: 't.yaml', rounds: 1, reps: 2, seconds: 5, omitS: 0, from: 'VM1', to: 'VM2', stateDir: '/x',
      kernelPrefix: 'fk-', compare: 'build', buildB: '/work/wt/base' },
    samples: [sample('flowd', 'forward', 6), sample('flowd', 'forward', 4), sample('flowd-b', 'forward', 4), sample('flowd-b', 'forward', 4),
      sample('flowd', 'reverse', 3), sample('flowd-b', 'reverse', 6)],
    loadBefore: '1', loadAfter: '2', cpus: 2, startedAt: '',
  });
  assert.match(text, /flowd: every daemon restarted from this tree after lab up; flowd-b: from \/work\/wt\/base/);
  assert.match(text, /VM1 -> VM2 +5\.000 +4\.000 +1\.250/);
  assert.match(text, /VM2 -> VM1 +3\.000 +6\.000 +0\.500/);
  assert.match(text, /VM1 -> VM2 +flowd-b +C1 /, 'CPU lines of the other build');
});

test('--compare build --restart b: the table says flowd kept the daemons lab up started', () => {
  const text = formatTable({
    options: { topology: 't.yaml', rounds: 1, reps: 1, seconds: 5, omitS: 0, from: 'VM1', to: 'VM2', stateDir: '/x',
      kernelPrefix: 'fk-', compare: 'build', buildB: '/work/wt/same', restart: 'b' },
    samples: [], loadBefore: '1', loadAfter: '2', cpus: 2, startedAt: '',
  });
  assert.match(text, /flowd: this tree's daemons as lab up started them; flowd-b: every daemon restarted from \/work\/wt\/same after lab up/);
});
