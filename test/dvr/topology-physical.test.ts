/**
 * Physical networks in the topology (issue 17 item 1): vlan and flat networks on physical
 * networks, several bridge_mappings per node, network_vlan_ranges, VLAN/VXLAN networks on one
 * router. Every refusal is a ConfigError naming the file, the line and the field; each case
 * edits examples/topologies/vlan.yaml in one place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../src/errors';
import { parseTopology } from '../../src/dvr/topology';

const VLAN = fs.readFileSync(path.join(__dirname, '../../../examples/topologies/vlan.yaml'), 'utf8');

function errOf(text: string): ConfigError {
  try {
    parseTopology('vlan.yaml', text);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

function edit(from: string, to: string, text = VLAN): string {
  assert.ok(text.includes(from), `vlan.yaml has no "${from}"`);
  return text.replace(from, to);
}

test('vlan.yaml parses: vlan, vxlan and flat networks, two physical networks per node, one router', () => {
  const t = parseTopology('vlan.yaml', VLAN);
  assert.deepEqual(t.networks.map((n) => `${n.name}:${n.type}:${n.physicalNetwork}:${n.segmentationId}:${n.mtuBytes}`),
    ['V1:vlan:physnet1:101:1500', 'V2:vlan:physnet1:102:1500', 'A:vxlan::1001:1450', 'public:flat:external:0:1500']);
  const c1 = t.nodes[0];
  assert.deepEqual([...c1.bridgeMappings], [['physnet1', 'br-vlan'], ['external', 'br-ex']]);
  assert.deepEqual([...c1.physicalInterfaces], [['br-vlan', 'phys1'], ['br-ex', 'ext1']]);
  assert.deepEqual([...c1.vlanRanges], [['physnet1', [[100, 199]]]]);
  assert.deepEqual(t.routers[0].interfaces.map((i) => i.subnet), ['V1-v4', 'V2-v4', 'A-v4']);
});

test('a VID outside network_vlan_ranges is fine when no node gives ranges for that physnet', () => {
  const text = VLAN.replace(/    network_vlan_ranges: \[physnet1:100:199\]\n/g, '').replace('segmentation_id: 101', 'segmentation_id: 4094');
  assert.equal(parseTopology('vlan.yaml', text).networks[0].segmentationId, 4094);
});

test('the same VID on two physical networks is fine', () => {
  const text = edit('bridge_mappings: [physnet1:br-vlan, external:br-ex]\n    physical_interfaces: { br-vlan: phys1, br-ex: ext1 }\n    network_vlan_ranges: [physnet1:100:199]\n  - name: C2',
    'bridge_mappings: [physnet1:br-vlan, external:br-ex, physnet2:br-p2]\n    physical_interfaces: { br-vlan: phys1, br-ex: ext1 }\n    network_vlan_ranges: [physnet1:100:199]\n  - name: C2')
    .replace('{ name: V2, network_type: vlan, physical_network: physnet1, segmentation_id: 102 }',
      '{ name: V2, network_type: vlan, physical_network: physnet2, segmentation_id: 101 }');
  const t = parseTopology('vlan.yaml', text);
  assert.deepEqual(t.networks.slice(0, 2).map((n) => `${n.physicalNetwork}:${n.segmentationId}`), ['physnet1:101', 'physnet2:101']);
});

// [what, text in vlan.yaml, replacement, exact message]
const CASES: [string, string, string, string][] = [
  ['a vlan network without segmentation_id',
    '{ name: V1, network_type: vlan, physical_network: physnet1, segmentation_id: 101 }',
    '{ name: V1, network_type: vlan, physical_network: physnet1 }',
    'vlan.yaml:37: networks[V1].segmentation_id: is required'],
  ['a vlan network without physical_network',
    '{ name: V1, network_type: vlan, physical_network: physnet1, segmentation_id: 101 }',
    '{ name: V1, network_type: vlan, segmentation_id: 101 }',
    'vlan.yaml:37: networks[V1].physical_network: is required'],
  ['VID 0', 'segmentation_id: 101', 'segmentation_id: 0',
    'vlan.yaml:37: networks[V1].segmentation_id: expected an integer in 1..4094, got 0'],
  ['VID 4095', 'segmentation_id: 101', 'segmentation_id: 4095',
    'vlan.yaml:37: networks[V1].segmentation_id: expected an integer in 1..4094, got 4095'],
  ['a VID outside the node ranges', 'segmentation_id: 101', 'segmentation_id: 300',
    "vlan.yaml:37: networks[V1].segmentation_id: VLAN 300 is outside node C1's network_vlan_ranges for physnet1 (100:199)"],
  ['a VID used twice on one physical network', 'segmentation_id: 102', 'segmentation_id: 101',
    'vlan.yaml:38: networks[V2].segmentation_id: VLAN 101 on physical network physnet1 is already used by network V1'],
  ['a physical network no node maps', 'physical_network: physnet1, segmentation_id: 102', 'physical_network: physnet9, segmentation_id: 102',
    'vlan.yaml:38: networks[V2].physical_network: no node maps physical network physnet9 (bridge_mappings)'],
  ['two flat networks on one physical network',
    '  - { name: A, network_type: vxlan, segmentation_id: 1001 }',
    '  - { name: A, network_type: flat, physical_network: external }',
    'vlan.yaml:40: networks[public].physical_network: physical network external already carries flat network A'],
  ['a flat network with a segmentation id',
    '{ name: public, network_type: flat, physical_network: external,',
    '{ name: public, network_type: flat, segmentation_id: 7, physical_network: external,',
    'vlan.yaml:40: networks[public].segmentation_id: a flat network has no segmentation id'],
  ['a vxlan network with a physical network',
    '{ name: A, network_type: vxlan, segmentation_id: 1001 }',
    '{ name: A, network_type: vxlan, segmentation_id: 1001, physical_network: physnet1 }',
    'vlan.yaml:39: networks[A].physical_network: a vxlan network has no physical network (only vlan and flat do)'],
  ['a physical network mapped twice on a node',
    'bridge_mappings: [physnet1:br-vlan, external:br-ex]',
    'bridge_mappings: [physnet1:br-vlan, physnet1:br-ex]',
    'vlan.yaml:17: nodes[C1].bridge_mappings[1]: physical network physnet1 is already mapped to br-vlan'],
  ['two physical networks on one bridge',
    'bridge_mappings: [physnet1:br-vlan, external:br-ex]',
    'bridge_mappings: [physnet1:br-vlan, external:br-vlan]',
    'vlan.yaml:17: nodes[C1].bridge_mappings[1]: bridge br-vlan already carries physical network physnet1 (one physical network per bridge)'],
  ['a mapping onto br-int',
    'bridge_mappings: [physnet1:br-vlan, external:br-ex]',
    'bridge_mappings: [physnet1:br-int, external:br-ex]',
    "vlan.yaml:17: nodes[C1].bridge_mappings[0]: bridge br-int is flowd's own; map physnet1 to a bridge of its own (e.g. br-physnet1)"],
  ['a malformed mapping',
    'bridge_mappings: [physnet1:br-vlan, external:br-ex]',
    'bridge_mappings: [physnet1, external:br-ex]',
    'vlan.yaml:17: nodes[C1].bridge_mappings[0]: expected "physnet:bridge", got "physnet1"'],
  ['a physical interface on an unmapped bridge',
    'physical_interfaces: { br-vlan: phys1, br-ex: ext1 }',
    'physical_interfaces: { br-phys: phys1, br-ex: ext1 }',
    'vlan.yaml:18: nodes[C1].physical_interfaces.br-phys: br-phys is not a bridge of bridge_mappings (br-vlan, br-ex)'],
  ['one device in two bridges',
    'physical_interfaces: { br-vlan: phys1, br-ex: ext1 }',
    'physical_interfaces: { br-vlan: phys1, br-ex: phys1 }',
    'vlan.yaml:18: nodes[C1].physical_interfaces.br-ex: device phys1 is already plugged into br-vlan'],
  ['a malformed VLAN range', 'network_vlan_ranges: [physnet1:100:199]', 'network_vlan_ranges: [physnet1:100]',
    'vlan.yaml:19: nodes[C1].network_vlan_ranges[0]: expected "physnet" or "physnet:min:max", got "physnet1:100"'],
  ['a VLAN range beyond 4094', 'network_vlan_ranges: [physnet1:100:199]', 'network_vlan_ranges: [physnet1:100:5000]',
    'vlan.yaml:19: nodes[C1].network_vlan_ranges[0]: VLAN range 100:5000 must satisfy 1 <= min <= max <= 4094'],
  ['an inverted VLAN range', 'network_vlan_ranges: [physnet1:100:199]', 'network_vlan_ranges: [physnet1:199:100]',
    'vlan.yaml:19: nodes[C1].network_vlan_ranges[0]: VLAN range 199:100 must satisfy 1 <= min <= max <= 4094'],
  ['a VLAN range of an unmapped physical network', 'network_vlan_ranges: [physnet1:100:199]', 'network_vlan_ranges: [physnet2:100:199]',
    "vlan.yaml:19: nodes[C1].network_vlan_ranges[0]: physical network physnet2 is not in this node's bridge_mappings"],
];

for (const [what, from, to, msg] of CASES) {
  test(`physical topology error: ${what}`, () => {
    const e = errOf(edit(from, to));
    assert.equal(e.message, msg);
    assert.equal(e.code, 'E_CONFIG');
  });
}
