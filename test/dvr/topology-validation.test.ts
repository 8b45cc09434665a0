/**
 * Topology validation (issue 7 item 1): every kind of mistake is a ConfigError that names the
 * file, the line and the field. Each case edits the reference topology in one place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../../src/errors';
import { drawDvrMac, parseTopology } from '../../src/dvr/topology';

const REF = fs.readFileSync(path.join(__dirname, '../../../examples/topologies/reference.yaml'), 'utf8');

function errOf(text: string): ConfigError {
  try {
    parseTopology('ref.yaml', text);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

function edit(from: string, to: string): string {
  assert.ok(REF.includes(from), `reference.yaml has no "${from}"`);
  return REF.replace(from, to);
}

// [what, text in reference.yaml, replacement, exact message]
const CASES: [string, string, string, string][] = [
  ["overlapping subnets on one network",
    "{ name: B-v4, network: B, cidr: 10.0.2.0/24, gateway_ip: 10.0.2.1 }",
    "{ name: B-v4, network: A, cidr: 10.0.1.128/25, gateway_ip: 10.0.1.129 }",
    "ref.yaml:35: subnets[B-v4].cidr: 10.0.1.128/25 overlaps subnet A-v4 (10.0.1.0/24) on network A"],
  ["a port IP outside its subnet",
    "fixed_ips: [10.0.2.20]",
    "fixed_ips: [10.0.3.20]",
    "ref.yaml:52: ports[VM2].fixed_ips[0]: 10.0.3.20 is outside the subnets of network B (10.0.2.0/24)"],
  ["a duplicate MAC",
    "mac: fa:16:3e:00:02:20",
    "mac: fa:16:3e:00:01:10",
    "ref.yaml:52: ports[VM2].mac: MAC fa:16:3e:00:01:10 is already used by port VM1"],
  ["a duplicate IP (port takes the gateway IP)",
    "fixed_ips: [10.0.2.20]",
    "fixed_ips: [10.0.2.1]",
    "ref.yaml:52: ports[VM2].fixed_ips[0]: IP 10.0.2.1 is already used by subnet B-v4 gateway on network B"],
  ["a segmentation id used twice",
    "segmentation_id: 1002",
    "segmentation_id: 1001",
    "ref.yaml:31: networks[B].segmentation_id: vxlan segmentation id 1001 is already used by network A"],
  ["an unknown node",
    "binding:host_id: C2",
    "binding:host_id: C9",
    "ref.yaml:53: ports[VM2].binding:host_id: unknown node \"C9\""],
  ["an unknown network",
    "network: B, fixed_ips",
    "network: Z, fixed_ips",
    "ref.yaml:52: ports[VM2].network: unknown network \"Z\""],
  ["an unknown subnet",
    "{ subnet: B-v4, mac",
    "{ subnet: B-v9, mac",
    "ref.yaml:43: routers[R].interfaces[1].subnet: unknown subnet \"B-v9\""],
  ["an unknown port",
    "{ ip: 203.0.113.50, port: VM1 }",
    "{ ip: 203.0.113.50, port: VM7 }",
    "ref.yaml:55: floating_ips[0].port: unknown port \"VM7\""],
  ["a tenant MTU the underlay cannot carry",
    "{ name: A, network_type: vxlan, segmentation_id: 1001 }",
    "{ name: A, network_type: vxlan, segmentation_id: 1001, mtu: 1500 }",
    "ref.yaml:30: networks[A].mtu: MTU 1500 + 50 bytes of VXLAN overhead = 1550 exceeds the underlay MTU 1500 of node C1"],
  ["bad MAC syntax",
    "dvr_mac: fa:16:3f:00:00:12",
    "dvr_mac: fa:16:3f:00:00:1g",
    "ref.yaml:19: nodes[C2].dvr_mac: expected a MAC address like fa:16:3e:00:00:01, got \"fa:16:3f:00:00:1g\""],
  ["bad IP syntax",
    "local_ip: 192.168.100.12",
    "local_ip: 192.168.100.312",
    "ref.yaml:17: nodes[C2].local_ip: expected an IPv4 address, got \"192.168.100.312\""],
  ["a prefix with host bits set",
    "cidr: 10.0.2.0/24",
    "cidr: 10.0.2.1/24",
    "ref.yaml:35: subnets[B-v4].cidr: expected an IPv4 prefix like 10.0.1.0/24 with host bits zero, got \"10.0.2.1/24\""],
  ["an unknown agent_mode",
    "agent_mode: dvr_snat",
    "agent_mode: dvr_snatt",
    "ref.yaml:23: nodes[NN].agent_mode: unknown agent_mode \"dvr_snatt\" (expected one of dvr, dvr_snat, dvr_no_external)"],
  ["an unknown network_type",
    "network_type: vxlan, segmentation_id: 1002",
    "network_type: vxlam, segmentation_id: 1002",
    "ref.yaml:31: networks[B].network_type: unknown network_type \"vxlam\" (expected one of vxlan, gre, vlan, flat)"],
  ["an SNAT port IP outside its subnet",
    "snat: { ip: 10.0.2.2,",
    "snat: { ip: 10.0.1.2,",
    "ref.yaml:43: routers[R].interfaces[1].snat.ip: 10.0.1.2 is outside subnet B-v4 (10.0.2.0/24)"],
  ["two nodes with one DVR MAC",
    "dvr_mac: fa:16:3f:00:00:12",
    "dvr_mac: fa:16:3f:00:00:11",
    "ref.yaml:19: nodes[C2].dvr_mac: MAC fa:16:3f:00:00:11 is already used by node C1 dvr_mac"],
  ["a device name longer than 15",
    "device: vm2-host",
    "device: vm2-host-with-a-long-name",
    "ref.yaml:53: ports[VM2].device: \"vm2-host-with-a-long-name\" is not a valid interface name (1-15 of letters, digits, _ . : -)"],
  ["an underlay MTU too small for the default tenant MTU",
    "  - name: NN\n    agent_mode: dvr_snat\n    local_ip: 192.168.100.13\n    underlay: { device: eth1, mac: \"52:54:00:00:00:13\" }",
    "  - name: NN\n    agent_mode: dvr_snat\n    local_ip: 192.168.100.13\n    underlay: { device: eth1, mac: \"52:54:00:00:00:13\", mtu: 1400 }",
    "ref.yaml:30: networks[A].mtu: MTU 1450 + 50 bytes of VXLAN overhead = 1500 exceeds the underlay MTU 1400 of node NN"],
  ["a floating IP off the external network",
    "{ ip: 203.0.113.50, port: VM1 }",
    "{ ip: 10.0.1.50, port: VM1 }",
    "ref.yaml:55: floating_ips[0].ip: 10.0.1.50 is not in a subnet of a router:external network"],
  ["an unknown field",
    "    distributed: true\n",
    "    distributed: true\n    colour: blue\n",
    "ref.yaml:41: routers[R].colour: unknown field (expected one of name, distributed, interfaces, external_gateway, fip_ports, ha, l3_agents, project)"],
];

for (const [what, from, to, msg] of CASES) {
  test(`topology error: ${what}`, () => {
    const e = errOf(edit(from, to));
    assert.equal(e.code, 'E_CONFIG');
    assert.equal(e.message, msg);
  });
}

test('topology error: overlapping subnets on one router (different networks)', () => {
  const t = REF
    .replace('  - { name: public, network_type: flat', '  - { name: C, network_type: vxlan, segmentation_id: 1003 }\n  - { name: public, network_type: flat')
    .replace('  - { name: public-v4,', '  - { name: C-v4, network: C, cidr: 10.0.2.128/25, gateway_ip: 10.0.2.129 }\n  - { name: public-v4,')
    .replace('    external_gateway:', '      - { subnet: C-v4, mac: fa:16:3e:0c:00:01 }\n    external_gateway:');
  assert.equal(errOf(t).message, 'ref.yaml:46: routers[R].interfaces[2].subnet: C-v4 (10.0.2.128/25) overlaps B-v4 (10.0.2.0/24) on router R');
});

test('topology error: a fixed IP outside the subnet it names', () => {
  assert.equal(errOf(edit('fixed_ips: [10.0.1.10]', 'fixed_ips: [{ ip_address: 10.0.1.10, subnet: B-v4 }]')).message,
    'ref.yaml:50: ports[VM1].fixed_ips[0]: 10.0.1.10 is outside subnet B-v4 (10.0.2.0/24)');
});

test('topology error: YAML syntax names the line', () => {
  assert.equal(errOf('nodes: [\n').message.split(':').slice(0, 3).join(':'), 'ref.yaml:2: yaml');
});

test('the same segmentation id on a GRE and a VXLAN network is fine; MTU defaults per type', () => {
  const t = parseTopology('ref.yaml', edit('network_type: vxlan, segmentation_id: 1002', 'network_type: gre, segmentation_id: 1001'));
  assert.deepEqual(t.networks.map((n) => [n.name, n.type, n.segmentationId, n.mtuBytes]),
    [['A', 'vxlan', 1001, 1450], ['B', 'gre', 1001, 1458], ['public', 'flat', 0, 1500]]);
});

test('reference topology parses with its DVR MACs, ports and floating IP', () => {
  const t = parseTopology('ref.yaml', REF);
  assert.deepEqual(t.nodes.map((n) => [n.name, n.agentMode, n.localIp, n.dvrMac]), [
    ['C1', 'dvr', '192.168.100.11', 'fa:16:3f:00:00:11'],
    ['C2', 'dvr', '192.168.100.12', 'fa:16:3f:00:00:12'],
    ['NN', 'dvr_snat', '192.168.100.13', 'fa:16:3f:00:00:13'],
  ]);
  assert.deepEqual(t.ports.map((p) => [p.name, p.node, p.device, p.fixedIps]), [
    ['VM1', 'C1', 'vm1-host', [{ subnet: 'A-v4', ip: '10.0.1.10' }]],
    ['VM2', 'C2', 'vm2-host', [{ subnet: 'B-v4', ip: '10.0.2.20' }]],
  ]);
  assert.deepEqual(t.floatingIps.map((f) => [f.ip, f.port]), [['203.0.113.50', 'VM1']]);
  assert.equal(t.routers[0].gateway?.mac, 'fa:16:3e:ee:00:10');
});

test('DVR MACs drawn from the base are deterministic (FNV-1a of the name) and unique', () => {
  const t = parseTopology('ref.yaml', REF.replace(/    dvr_mac: .*\n/g, ''));
  assert.deepEqual(t.nodes.map((n) => n.dvrMac), ['fa:16:3f:00:2d:f9', 'fa:16:3f:00:29:40', 'fa:16:3f:00:8d:4d']);
  // A collision takes the next value; a base with a non-zero fourth octet keeps it.
  assert.equal(drawDvrMac('fa:16:3f:00:00:00', 'C1', (m) => m === 'fa:16:3f:00:2d:f9'), 'fa:16:3f:00:2d:fa');
  assert.equal(drawDvrMac('fa:16:3f:07:00:00', 'C1', () => false).slice(0, 11), 'fa:16:3f:07');
});
