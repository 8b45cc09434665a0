/**
 * What `lab up` prints for each VM's way to the upstream (lab/lab.ts northSouthPath): its
 * floating IP's node, or SNAT by its own router on the dvr_snat node or the HA master, with
 * that router's gateway address (issue 15: it used to name the first router's for every VM).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { northSouthPath } from '../../src/lab/lab';
import { loadTopology } from '../../src/dvr/topology';

const EXAMPLES = path.join(__dirname, '../../../examples/topologies');

test('reference.yaml: VM1 by its floating IP from C1, VM2 by SNAT of R on NN', () => {
  const t = loadTopology(path.join(EXAMPLES, 'reference.yaml'));
  const port = (n: string) => t.ports.find((p) => p.name === n)!;
  assert.equal(northSouthPath(t, port('VM1')), 'as floating IP 203.0.113.50, leaves C1 directly');
  assert.equal(northSouthPath(t, port('VM2')), 'SNAT on NN to 203.0.113.10 (router R)');
});

test('ha.yaml: SNAT on the HA router\'s master', () => {
  const t = loadTopology(path.join(EXAMPLES, 'ha.yaml'));
  assert.equal(northSouthPath(t, t.ports.find((p) => p.name === 'VM2')!), 'SNAT on NN1/NN2 (the master) to 203.0.113.10 (router R)');
});

test('a second router with its own gateway: its VMs are named with its address, not the first router\'s', () => {
  const ref = fs.readFileSync(path.join(EXAMPLES, 'reference.yaml'), 'utf8');
  // R keeps network A; network B moves to router S with gateway 203.0.113.20.
  const text = ref
    .replace('      - { subnet: B-v4, mac: fa:16:3e:0b:00:01, snat: { ip: 10.0.2.2, mac: fa:16:3e:0b:00:02 } }\n', '')
    .replace(/^fip_agent_gateways:/m, `  - name: S
    distributed: true
    interfaces:
      - { subnet: B-v4, mac: fa:16:3e:0b:00:01, snat: { ip: 10.0.2.2, mac: fa:16:3e:0b:00:02 } }
    external_gateway: { network: public, ip: 203.0.113.20, mac: fa:16:3e:ee:00:20 }
fip_agent_gateways:`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-ns-'));
  try {
    const file = path.join(dir, 'two-routers.yaml');
    fs.writeFileSync(file, text);
    const t = loadTopology(file);
    assert.deepEqual(t.routers.map((r) => r.name), ['R', 'S']);
    assert.equal(northSouthPath(t, t.ports.find((p) => p.name === 'VM2')!), 'SNAT on NN to 203.0.113.20 (router S)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
