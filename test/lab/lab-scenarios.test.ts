/**
 * What `lab check` checks is derived from the topology (issue 15 item 2): the north-south
 * scenarios (lab-check-ns.ts northSouthScenarios) and the isolation pairs (lab-check.ts
 * isolationPairs) of the example topologies. The captures themselves run in
 * test/integration/multi-router-lab.test.ts (root).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { loadTopology } from '../../src/dvr/topology';
import { northSouthScenarios, NsScenario } from '../../src/lab/lab-check-ns';
import { isolationPairs } from '../../src/lab/lab-check';

const EXAMPLES = path.join(__dirname, '../../../examples/topologies');
const load = (f: string) => loadTopology(path.join(EXAMPLES, f));

const text = (s: NsScenario): string => (s.kind === 'snat' ? `SNAT ${s.vm.name} by ${s.router.name} from ${s.sgMac}`
  : s.kind === 'qg' ? `qg ${s.router.name}` : `FIP ${s.ip} (${s.port}, router ${s.router.name}) on ${s.server}${s.central ? ' central' : ''}`);

test('multi-router.yaml: every router\'s SNAT and qg-, every floating IP (two routers\' on C1, the dvr_no_external one on NN)', () => {
  assert.deepEqual(northSouthScenarios(load('multi-router.yaml')).map(text), [
    'SNAT VM2 by R from fa:16:3e:a2:00:02',
    'qg R',
    'SNAT BL2 by B from fa:16:3e:b1:00:02',
    'qg B',
    'FIP 203.0.113.50 (VM1, router R) on C1',
    'FIP 203.0.113.51 (VM3, router R) on NN central',
    'FIP 203.0.113.52 (BL1, router B) on C1',
  ]);
});

test('reference.yaml: the one SNAT VM, the qg- and the floating IP, as the check had them before', () => {
  assert.deepEqual(northSouthScenarios(load('reference.yaml')).map(text),
    ['SNAT VM2 by R from fa:16:3e:0b:00:02', 'qg R', 'FIP 203.0.113.50 (VM1, router R) on C1']);
});

test('isolation pairs: projects with overlapping subnets, and who answers where the address is taken in the sender\'s own project', () => {
  const show = (f: string): string[] => isolationPairs(load(f)).map(({ a, b, twin }) => `${a.name}->${b.name}${twin ? ` (${twin.name})` : ''}`);
  assert.deepEqual(show('multi-router.yaml'), [
    'VM1->BL1 (VM1)', 'VM1->BL2', 'VM3->BL1 (VM1)', 'VM3->BL2', 'BL1->VM1 (BL1)', 'BL1->VM3', 'BL2->VM1 (BL1)', 'BL2->VM3',
  ]);
  // The same address plan: each ping is answered by the sender itself, and never reaches the other project.
  assert.deepEqual(show('two-tenants.yaml'), ['red1->blue1 (red1)', 'red2->blue2 (red2)', 'blue1->red1 (blue1)', 'blue2->red2 (blue2)']);
  assert.deepEqual(show('reference.yaml'), []);
});
