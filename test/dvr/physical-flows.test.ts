/**
 * Generated flows of physical networks (issue 17 item 2), as dump-flows text, for
 * examples/topologies/vlan.yaml: the physical bridge br-vlan in Neutron's layout (tables 0-3),
 * br-int's entries from it (table 0 VID -> local VLAN, tables 2 and 4), and the router's use of
 * the physical uplink. Local VLANs: C1 V1=1 A=2 V2=3 public=4; C2 V2=1 V1=2 A=3.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseTopology } from '../../src/dvr/topology';
import { DvrNodeConfig, nodeConfig } from '../../src/dvr/node-config';

const TEXT = fs.readFileSync(path.join(__dirname, '../../../examples/topologies/vlan.yaml'), 'utf8');
const TOPO = parseTopology('vlan.yaml', TEXT);

function flows(c: DvrNodeConfig, bridge: string, table?: number): string[] {
  const all = c.bridges.find((b) => b.name === bridge)!.flows.map((f) => f.text);
  return table === undefined ? all : all.filter((t) => t.startsWith(`table=${table},`));
}

test('C1: bridges, patch ports and local VLANs with two physical networks', () => {
  const c1 = nodeConfig(TOPO, 'C1');
  assert.deepEqual([...c1.localVlans], [['V1', 1], ['A', 2], ['V2', 3], ['public', 4]]);
  assert.deepEqual(c1.bridges.map((b) => `${b.name}: ${b.ports.map((p) => `${p.name}=${p.ofport}${p.peer ? `>${p.peer}` : ''}`).join(' ')}`), [
    'br-int: patch-tun=1>patch-int int-br-vlan=2>phy-br-vlan int-br-ex=3>phy-br-ex vm1-host=10 vm4-host=11',
    'br-tun: patch-int=1>patch-tun vxlan-c0a8640c=2 vxlan-c0a8640d=3',
    'br-vlan: phy-br-vlan=1>int-br-vlan phys1=2',
    'br-ex: phy-br-ex=1>int-br-ex ext1=2',
  ]);
});

test('C1 br-vlan: Neutron tables 0-3 (DVR_PROCESS_PHYSICAL, local VLAN -> VID, DVR_NOT_LEARN_PHYSICAL)', () => {
  assert.deepEqual(flows(nodeConfig(TOPO, 'C1'), 'br-vlan'), [
    'table=0,priority=2,in_port=1 actions=resubmit(,1)',
    'table=0,priority=1 actions=resubmit(,3)',
    'table=1,priority=2,dl_vlan=1,dl_dst=fa:16:3e:11:00:01 actions=drop',
    'table=1,priority=2,dl_vlan=3,dl_dst=fa:16:3e:12:00:01 actions=drop',
    'table=1,priority=1,dl_vlan=1,dl_src=fa:16:3e:11:00:01 actions=mod_dl_src:fa:16:3f:00:00:11,resubmit(,2)',
    'table=1,priority=1,dl_vlan=3,dl_src=fa:16:3e:12:00:01 actions=mod_dl_src:fa:16:3f:00:00:11,resubmit(,2)',
    'table=1,priority=0 actions=resubmit(,2)',
    'table=2,priority=4,in_port=1,dl_vlan=1 actions=mod_vlan_vid:101,NORMAL',
    'table=2,priority=4,in_port=1,dl_vlan=3 actions=mod_vlan_vid:102,NORMAL',
    'table=2,priority=2,in_port=1 actions=drop',
    'table=3,priority=2,dl_src=fa:16:3f:00:00:12 actions=output:1',
    'table=3,priority=2,dl_src=fa:16:3f:00:00:13 actions=output:1',
    'table=3,priority=1 actions=NORMAL',
  ]);
});

test('C2 br-vlan: the same network V1 is local VLAN 2 there, still VID 101 on the wire', () => {
  const t2 = flows(nodeConfig(TOPO, 'C2'), 'br-vlan', 2);
  assert.deepEqual(t2, [
    'table=2,priority=4,in_port=1,dl_vlan=1 actions=mod_vlan_vid:102,NORMAL',
    'table=2,priority=4,in_port=1,dl_vlan=2 actions=mod_vlan_vid:101,NORMAL',
    'table=2,priority=2,in_port=1 actions=drop',
  ]);
});

test('C1 br-int: VID -> local VLAN from int-br-vlan, DVR_TO_SRC_MAC_PHYSICAL, ARP_DVR_MAC_TO_DST_MAC_PHYSICAL', () => {
  const c1 = nodeConfig(TOPO, 'C1');
  const t0 = flows(c1, 'br-int', 0).filter((t) => /in_port=[23],|in_port=[23] /.test(t));
  assert.deepEqual(t0, [
    'table=0,priority=5,in_port=2,dl_dst=fa:16:3f:00:00:11 actions=resubmit(,4)',
    'table=0,priority=4,in_port=2,dl_src=fa:16:3f:00:00:12 actions=resubmit(,2)',
    'table=0,priority=4,in_port=2,dl_src=fa:16:3f:00:00:13 actions=resubmit(,2)',
    'table=0,priority=3,in_port=2,dl_vlan=101 actions=mod_vlan_vid:1,resubmit(,60)',
    'table=0,priority=3,in_port=2,dl_vlan=102 actions=mod_vlan_vid:3,resubmit(,60)',
    'table=0,priority=3,in_port=3,vlan_tci=0x0000/0x1fff actions=mod_vlan_vid:4,resubmit(,50)',
    'table=0,priority=2,in_port=2 actions=drop',
    'table=0,priority=2,in_port=3 actions=drop',
  ]);
  assert.deepEqual(flows(c1, 'br-int', 2), [
    'table=2,priority=20,dl_vlan=101,dl_dst=fa:16:3e:00:11:10 actions=mod_dl_src:fa:16:3e:11:00:01,mod_vlan_vid:1,resubmit(,60)',
    'table=2,priority=1 actions=drop',
  ]);
  assert.deepEqual(flows(c1, 'br-int', 4), [
    'table=4,priority=5,dl_vlan=101,dl_dst=fa:16:3f:00:00:11 actions=mod_dl_dst:fa:16:3e:11:00:01,mod_vlan_vid:1,resubmit(,40)',
    'table=4,priority=5,dl_vlan=102,dl_dst=fa:16:3f:00:00:11 actions=mod_dl_dst:fa:16:3e:12:00:01,mod_vlan_vid:3,resubmit(,40)',
  ]);
  // Table 1 (tunnel DVR) only for the VXLAN network's port.
  assert.deepEqual(flows(c1, 'br-int', 1), [
    'table=1,priority=20,dl_vlan=2,dl_dst=fa:16:3e:00:01:40 actions=mod_dl_src:fa:16:3e:0a:00:01,resubmit(,60)',
    'table=1,priority=1 actions=drop',
  ]);
});

test('the router sends VLAN neighbours and the SNAT default route over int-br-vlan, VXLAN ones over patch-tun', () => {
  const c2 = nodeConfig(TOPO, 'C2');
  const t41 = flows(c2, 'br-int', 41);
  assert.ok(t41.includes('table=41,priority=100,ip,dl_vlan=2,nw_dst=10.0.11.10 actions=mod_dl_dst:fa:16:3e:00:11:10,output:2'), t41.join('\n'));
  assert.ok(t41.includes('table=41,priority=100,ip,dl_vlan=3,nw_dst=10.0.1.40 actions=mod_dl_dst:fa:16:3e:00:01:40,output:1'), t41.join('\n'));
  assert.ok(flows(c2, 'br-int', 40).includes(
    'table=40,priority=200,ip,dl_vlan=1,dl_dst=fa:16:3e:12:00:01 actions=dec_ttl,mod_dl_src:fa:16:3e:12:00:01,mod_dl_dst:fa:16:3e:12:00:02,output:2'));
});

test('NN takes SNAT frames for the sg- MAC from the physical bridge with the VID, above the DVR-MAC entry', () => {
  const nn = flows(nodeConfig(TOPO, 'NN'), 'br-int', 0);
  assert.ok(nn.includes('table=0,priority=6,in_port=2,dl_vlan=102,dl_dst=fa:16:3e:12:00:02 actions=mod_vlan_vid:2,resubmit(,45)'), nn.join('\n'));
});

test('a flat network for VMs: untagged on the wire (strip_vlan out, vlan_tci=0 in)', () => {
  const text = TEXT.replace('{ name: V2, network_type: vlan, physical_network: physnet1, segmentation_id: 102 }',
    '{ name: V2, network_type: flat, physical_network: physnet1 }');
  const c2 = nodeConfig(parseTopology('flat.yaml', text), 'C2');
  assert.ok(flows(c2, 'br-vlan', 2).includes('table=2,priority=4,in_port=1,dl_vlan=1 actions=strip_vlan,NORMAL'));
  assert.ok(flows(c2, 'br-int', 0).includes('table=0,priority=3,in_port=2,vlan_tci=0x0000/0x1fff actions=mod_vlan_vid:1,resubmit(,60)'));
  assert.ok(flows(c2, 'br-int', 2).includes(
    'table=2,priority=20,vlan_tci=0x0000/0x1fff,dl_dst=fa:16:3e:00:12:30 actions=mod_dl_src:fa:16:3e:12:00:01,mod_vlan_vid:1,resubmit(,60)'));
});

test('a node without a mapping for a needed physical network is a ConfigError naming the need', () => {
  const text = TEXT.replace('bridge_mappings: [physnet1:br-vlan, external:br-ex]\n    physical_interfaces: { br-vlan: phys1, br-ex: ext1 }\n    network_vlan_ranges: [physnet1:100:199]\n  - name: C2',
    'bridge_mappings: [external:br-ex]\n    physical_interfaces: { br-ex: ext1 }\n  - name: C2');
  assert.throws(() => nodeConfig(parseTopology('vlan.yaml', text), 'C1'),
    { message: 'vlan.yaml:12: nodes[C1].bridge_mappings: needs a mapping for physical network "physnet1" (for a port on vlan network V1)' });
});
