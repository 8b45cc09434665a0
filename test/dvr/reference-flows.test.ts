/**
 * The reference topology of dvr-reference.md, generated per node: local VLANs, bridges, port
 * numbers, tunnel port names, and the literal text of the key flows of br-tun and br-int on
 * C1 and C2 (issue 7 items 2 and 3).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { loadTopology, parseTopology } from '../../src/dvr/topology';
import { DvrNodeConfig, nodeConfig } from '../../src/dvr/node-config';

const DIR = path.join(__dirname, '../../../examples/topologies');
const REF = loadTopology(path.join(DIR, 'reference.yaml'));

function flowsOf(c: DvrNodeConfig, bridge: string, table: number): string[] {
  const b = c.bridges.find((x) => x.name === bridge);
  assert.ok(b, `no bridge ${bridge}`);
  return b.flows.map((f) => f.text).filter((t) => t.startsWith(`table=${table},`));
}

function portsOf(c: DvrNodeConfig, bridge: string): string[] {
  const b = c.bridges.find((x) => x.name === bridge)!;
  return b.ports.map((p) => `${p.name}=${p.ofport}:${p.kind}${p.tag ? `:tag${p.tag}` : ''}${p.peer ? `:peer=${p.peer}` : ''}${p.remoteIp ? `:${p.localIp}->${p.remoteIp}:key=${p.key}:dst_port=${p.dstPort}` : ''}`);
}

test('local VLANs: C1 A=1 B=2, C2 B=1 A=2, NN A=1 B=2 (external network next where needed)', () => {
  assert.deepEqual([...nodeConfig(REF, 'C1').localVlans], [['A', 1], ['B', 2], ['public', 3]]);
  assert.deepEqual([...nodeConfig(REF, 'C2').localVlans], [['B', 1], ['A', 2]]);
  assert.deepEqual([...nodeConfig(REF, 'NN').localVlans], [['A', 1], ['B', 2], ['public', 3]]);
});

test('bridges and ports: patch pairs, VM access ports, one vxlan port per remote node', () => {
  const c1 = nodeConfig(REF, 'C1');
  assert.equal(c1.node, 'C1');
  assert.deepEqual(c1.bridges.map((b) => b.name), ['br-int', 'br-tun', 'br-ex']);
  assert.deepEqual(portsOf(c1, 'br-int'), ['patch-tun=1:patch:peer=patch-int', 'int-br-ex=2:patch:peer=phy-br-ex', 'vm1-host=10:afpacket:tag1']);
  assert.deepEqual(portsOf(c1, 'br-tun'), [
    'patch-int=1:patch:peer=patch-tun',
    'vxlan-c0a8640c=2:vxlan:192.168.100.11->192.168.100.12:key=flow:dst_port=4789',
    'vxlan-c0a8640d=3:vxlan:192.168.100.11->192.168.100.13:key=flow:dst_port=4789',
  ]);
  assert.deepEqual(portsOf(c1, 'br-ex'), ['phy-br-ex=1:patch:peer=int-br-ex', 'ext1=2:afpacket']);
  const c2 = nodeConfig(REF, 'C2');
  assert.deepEqual(c2.bridges.map((b) => b.name), ['br-int', 'br-tun'], 'C2 has no floating IP: no br-ex');
  assert.deepEqual(portsOf(c2, 'br-tun').slice(1).map((p) => p.split('=')[0]), ['vxlan-c0a8640b', 'vxlan-c0a8640d']);
  assert.deepEqual(c2.bridges[1].flows[0], { text: 'table=0,priority=1,in_port=1 actions=resubmit(,1)', file: '<generated:C2:br-tun>', line: 1 });
});

test('C1 br-tun tables 1, 4, 9, 10 (DVR MAC rewrite, VNI to VLAN, DVR sources, learning)', () => {
  const c1 = nodeConfig(REF, 'C1');
  assert.deepEqual(flowsOf(c1, 'br-tun', 1), [
    'table=1,priority=2,dl_vlan=1,dl_dst=fa:16:3e:0a:00:01 actions=drop',
    'table=1,priority=2,dl_vlan=2,dl_dst=fa:16:3e:0b:00:01 actions=drop',
    'table=1,priority=1,dl_vlan=1,dl_src=fa:16:3e:0a:00:01 actions=mod_dl_src:fa:16:3f:00:00:11,resubmit(,2)',
    'table=1,priority=1,dl_vlan=2,dl_src=fa:16:3e:0b:00:01 actions=mod_dl_src:fa:16:3f:00:00:11,resubmit(,2)',
    'table=1,priority=0 actions=resubmit(,2)',
  ]);
  assert.deepEqual(flowsOf(c1, 'br-tun', 4), [
    'table=4,priority=1,tun_id=0x3e9 actions=mod_vlan_vid:1,resubmit(,9)',
    'table=4,priority=1,tun_id=0x3ea actions=mod_vlan_vid:2,resubmit(,9)',
    'table=4,priority=0 actions=drop',
  ]);
  assert.deepEqual(flowsOf(c1, 'br-tun', 9), [
    'table=9,priority=1,dl_src=fa:16:3f:00:00:12 actions=output:1',
    'table=9,priority=1,dl_src=fa:16:3f:00:00:13 actions=output:1',
    'table=9,priority=0 actions=resubmit(,10)',
  ]);
  assert.deepEqual(flowsOf(c1, 'br-tun', 10), [
    'table=10,priority=1 actions=learn(table=20,hard_timeout=300,priority=1,NXM_OF_VLAN_TCI[0..11],' +
    'NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],' +
    'output:OXM_OF_IN_PORT[]),output:1',
  ]);
});

test('C1 br-tun tables 20, 21, 22 (l2 population, ARP responder, flooding, gateway ARP drop)', () => {
  const c1 = nodeConfig(REF, 'C1');
  assert.deepEqual(flowsOf(c1, 'br-tun', 20), [
    'table=20,priority=2,dl_vlan=2,dl_dst=fa:16:3e:00:02:20 actions=strip_vlan,load:0x3ea->NXM_NX_TUN_ID[],output:2',
    // The DHCP ports (Neutron's l2pop covers them like VM ports): A and B on C2 (port 2), on NN (port 3).
    'table=20,priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:2b:8a actions=strip_vlan,load:0x3e9->NXM_NX_TUN_ID[],output:2',
    'table=20,priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:ea:3b actions=strip_vlan,load:0x3e9->NXM_NX_TUN_ID[],output:3',
    'table=20,priority=2,dl_vlan=2,dl_dst=fa:16:3e:00:29:f7 actions=strip_vlan,load:0x3ea->NXM_NX_TUN_ID[],output:2',
    'table=20,priority=2,dl_vlan=2,dl_dst=fa:16:3e:00:eb:ce actions=strip_vlan,load:0x3ea->NXM_NX_TUN_ID[],output:3',
    'table=20,priority=2,dl_vlan=1,dl_dst=fa:16:3e:0a:00:02 actions=strip_vlan,load:0x3e9->NXM_NX_TUN_ID[],output:3',
    'table=20,priority=2,dl_vlan=2,dl_dst=fa:16:3e:0b:00:02 actions=strip_vlan,load:0x3ea->NXM_NX_TUN_ID[],output:3',
    'table=20,priority=0 actions=resubmit(,22)',
  ]);
  const t21 = flowsOf(c1, 'br-tun', 21);
  assert.equal(t21[0],
    'table=21,priority=1,arp,dl_vlan=2,arp_tpa=10.0.2.20 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],' +
    'mod_dl_src:fa:16:3e:00:02:20,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],' +
    'move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163e000220->NXM_NX_ARP_SHA[],load:0xa000214->NXM_OF_ARP_SPA[],in_port');
  assert.equal(t21.length, 8, 'VM2, the four DHCP ports and the two SNAT ports, then the default');
  assert.equal(t21[1].split(' ')[0], 'table=21,priority=1,arp,dl_vlan=1,arp_tpa=10.0.1.3', 'the DHCP port of A on C2: first free address of the pool');
  assert.ok(t21[1].includes('mod_dl_src:fa:16:3e:00:2b:8a,'));
  assert.equal(t21[7], 'table=21,priority=0 actions=resubmit(,22)');
  assert.deepEqual(flowsOf(c1, 'br-tun', 22), [
    'table=22,priority=3,arp,dl_vlan=1,arp_tpa=10.0.1.1 actions=drop',
    'table=22,priority=3,arp,dl_vlan=2,arp_tpa=10.0.2.1 actions=drop',
    'table=22,priority=1,dl_vlan=1 actions=strip_vlan,load:0x3e9->NXM_NX_TUN_ID[],output:2,output:3',
    'table=22,priority=1,dl_vlan=2 actions=strip_vlan,load:0x3ea->NXM_NX_TUN_ID[],output:2,output:3',
    'table=22,priority=0 actions=drop',
  ]);
});

test('C1 br-int tables 0, 1, 60, 94 (VM ports pass the OVS firewall, the default driver)', () => {
  const c1 = nodeConfig(REF, 'C1');
  assert.deepEqual(flowsOf(c1, 'br-int', 0), [
    'table=0,priority=65535,dl_vlan=4095 actions=drop',
    'table=0,priority=5,in_port=1,dl_dst=fa:16:3f:00:00:11 actions=resubmit(,3)',
    'table=0,priority=3,in_port=2,vlan_tci=0x0000/0x1fff actions=mod_vlan_vid:3,resubmit(,50)',
    'table=0,priority=2,in_port=1,dl_src=fa:16:3f:00:00:12 actions=resubmit(,1)',
    'table=0,priority=2,in_port=1,dl_src=fa:16:3f:00:00:13 actions=resubmit(,1)',
    'table=0,priority=2,in_port=2 actions=drop',
    'table=0,priority=0 actions=resubmit(,60)',
  ]);
  assert.deepEqual(flowsOf(c1, 'br-int', 1), [
    'table=1,priority=20,dl_vlan=1,dl_dst=fa:16:3e:00:01:10 actions=mod_dl_src:fa:16:3e:0a:00:01,resubmit(,60)',
    'table=1,priority=1 actions=drop',
  ]);
  assert.deepEqual(flowsOf(c1, 'br-int', 60), [
    'table=60,priority=100,in_port=10,vlan_tci=0x0000/0x1fff actions=set_field:10->reg5,set_field:1->reg6,resubmit(,71)',
    'table=60,priority=90,dl_vlan=1,dl_dst=fa:16:3e:00:01:10 actions=set_field:10->reg5,set_field:1->reg6,strip_vlan,ct_clear,resubmit(,81)',
    'table=60,priority=20,dl_vlan=1,dl_dst=fa:16:3e:00:01:10 actions=strip_vlan,output:10',
    'table=60,priority=1 actions=NORMAL',
  ]);
  // The router's intercepts for VM1 come after its egress filter (table 0's in_port=10 with noop).
  assert.deepEqual(flowsOf(c1, 'br-int', 94), [
    'table=94,priority=11,reg5=10,arp,arp_tpa=10.0.1.1 actions=mod_vlan_vid:1,resubmit(,40)',
    'table=94,priority=10,reg5=10,dl_dst=fa:16:3e:0a:00:01 actions=mod_vlan_vid:1,resubmit(,40)',
    'table=94,priority=1 actions=NORMAL',
  ]);
});

test('C1 br-int tables 0 and 60 with firewall_driver noop: the router intercepts in table 0, no filter', () => {
  const noop = parseTopology('noop.yaml', fs.readFileSync(path.join(DIR, 'reference.yaml'), 'utf8')
    .replace(/(agent_mode: dvr\n)/, '$1    firewall_driver: noop\n'));
  const c1 = nodeConfig(noop, 'C1');
  assert.deepEqual(flowsOf(c1, 'br-int', 0).slice(0, 3), [
    'table=0,priority=65535,dl_vlan=4095 actions=drop',
    'table=0,priority=11,in_port=10,arp,arp_tpa=10.0.1.1 actions=mod_vlan_vid:1,resubmit(,40)',
    'table=0,priority=10,in_port=10,dl_dst=fa:16:3e:0a:00:01 actions=mod_vlan_vid:1,resubmit(,40)',
  ]);
  assert.deepEqual(flowsOf(c1, 'br-int', 60), [
    'table=60,priority=20,dl_vlan=1,dl_dst=fa:16:3e:00:01:10 actions=strip_vlan,output:10',
    'table=60,priority=1 actions=NORMAL',
  ]);
  assert.deepEqual(flowsOf(c1, 'br-int', 94), []);
});

test('C2 br-tun tables 1, 4, 9, 20, 22 and br-int tables 0, 1, 60, 94 use C2 VLANs (B=1, A=2)', () => {
  const c2 = nodeConfig(REF, 'C2');
  assert.deepEqual(flowsOf(c2, 'br-tun', 1), [
    'table=1,priority=2,dl_vlan=2,dl_dst=fa:16:3e:0a:00:01 actions=drop',
    'table=1,priority=2,dl_vlan=1,dl_dst=fa:16:3e:0b:00:01 actions=drop',
    'table=1,priority=1,dl_vlan=2,dl_src=fa:16:3e:0a:00:01 actions=mod_dl_src:fa:16:3f:00:00:12,resubmit(,2)',
    'table=1,priority=1,dl_vlan=1,dl_src=fa:16:3e:0b:00:01 actions=mod_dl_src:fa:16:3f:00:00:12,resubmit(,2)',
    'table=1,priority=0 actions=resubmit(,2)',
  ]);
  assert.deepEqual(flowsOf(c2, 'br-tun', 4), [
    'table=4,priority=1,tun_id=0x3ea actions=mod_vlan_vid:1,resubmit(,9)',
    'table=4,priority=1,tun_id=0x3e9 actions=mod_vlan_vid:2,resubmit(,9)',
    'table=4,priority=0 actions=drop',
  ]);
  assert.deepEqual(flowsOf(c2, 'br-tun', 9), [
    'table=9,priority=1,dl_src=fa:16:3f:00:00:11 actions=output:1',
    'table=9,priority=1,dl_src=fa:16:3f:00:00:13 actions=output:1',
    'table=9,priority=0 actions=resubmit(,10)',
  ]);
  assert.equal(flowsOf(c2, 'br-tun', 20)[0],
    'table=20,priority=2,dl_vlan=2,dl_dst=fa:16:3e:00:01:10 actions=strip_vlan,load:0x3e9->NXM_NX_TUN_ID[],output:2');
  assert.deepEqual(flowsOf(c2, 'br-tun', 21).map((t) => t.split(' ')[0]), [
    'table=21,priority=1,arp,dl_vlan=2,arp_tpa=10.0.1.10',
    'table=21,priority=1,arp,dl_vlan=2,arp_tpa=10.0.1.4',
    'table=21,priority=1,arp,dl_vlan=1,arp_tpa=10.0.2.4',
    'table=21,priority=1,arp,dl_vlan=2,arp_tpa=10.0.1.2',
    'table=21,priority=1,arp,dl_vlan=1,arp_tpa=10.0.2.2',
    'table=21,priority=0',
  ]);
  assert.deepEqual(flowsOf(c2, 'br-tun', 22).slice(0, 2), [
    'table=22,priority=3,arp,dl_vlan=2,arp_tpa=10.0.1.1 actions=drop',
    'table=22,priority=3,arp,dl_vlan=1,arp_tpa=10.0.2.1 actions=drop',
  ]);
  assert.deepEqual(flowsOf(c2, 'br-int', 0), [
    'table=0,priority=65535,dl_vlan=4095 actions=drop',
    'table=0,priority=5,in_port=1,dl_dst=fa:16:3f:00:00:12 actions=resubmit(,3)',
    'table=0,priority=2,in_port=1,dl_src=fa:16:3f:00:00:11 actions=resubmit(,1)',
    'table=0,priority=2,in_port=1,dl_src=fa:16:3f:00:00:13 actions=resubmit(,1)',
    'table=0,priority=0 actions=resubmit(,60)',
  ]);
  assert.deepEqual(flowsOf(c2, 'br-int', 1), [
    'table=1,priority=20,dl_vlan=1,dl_dst=fa:16:3e:00:02:20 actions=mod_dl_src:fa:16:3e:0b:00:01,resubmit(,60)',
    'table=1,priority=20,dl_vlan=2,dl_dst=fa:16:3e:00:2b:8a actions=mod_dl_src:fa:16:3e:0a:00:01,resubmit(,60)',
    'table=1,priority=20,dl_vlan=1,dl_dst=fa:16:3e:00:29:f7 actions=mod_dl_src:fa:16:3e:0b:00:01,resubmit(,60)',
    'table=1,priority=1 actions=drop',
  ]);
  assert.deepEqual(flowsOf(c2, 'br-int', 60), [
    // C2's DHCP ports (11 on A, 12 on B) are trusted (73: not filtered); VM2 (10) is filtered.
    'table=60,priority=100,in_port=11,vlan_tci=0x0000/0x1fff actions=set_field:11->reg5,set_field:2->reg6,resubmit(,73)',
    'table=60,priority=100,in_port=12,vlan_tci=0x0000/0x1fff actions=set_field:12->reg5,set_field:1->reg6,resubmit(,73)',
    'table=60,priority=100,in_port=10,vlan_tci=0x0000/0x1fff actions=set_field:10->reg5,set_field:1->reg6,resubmit(,71)',
    'table=60,priority=90,dl_vlan=1,dl_dst=fa:16:3e:00:02:20 actions=set_field:10->reg5,set_field:1->reg6,strip_vlan,ct_clear,resubmit(,81)',
    'table=60,priority=20,dl_vlan=1,dl_dst=fa:16:3e:00:02:20 actions=strip_vlan,output:10',
    'table=60,priority=20,dl_vlan=2,dl_dst=fa:16:3e:00:2b:8a actions=strip_vlan,output:11',
    'table=60,priority=20,dl_vlan=1,dl_dst=fa:16:3e:00:29:f7 actions=strip_vlan,output:12',
    'table=60,priority=1 actions=NORMAL',
  ]);
  // The DHCP ports reach the router like VM ports, after table 60.
  assert.deepEqual(flowsOf(c2, 'br-int', 94), [
    'table=94,priority=11,reg5=10,arp,arp_tpa=10.0.2.1 actions=mod_vlan_vid:1,resubmit(,40)',
    'table=94,priority=11,reg5=11,arp,arp_tpa=10.0.1.1 actions=mod_vlan_vid:2,resubmit(,40)',
    'table=94,priority=11,reg5=12,arp,arp_tpa=10.0.2.1 actions=mod_vlan_vid:1,resubmit(,40)',
    'table=94,priority=10,reg5=10,dl_dst=fa:16:3e:0b:00:01 actions=mod_vlan_vid:1,resubmit(,40)',
    'table=94,priority=10,reg5=11,dl_dst=fa:16:3e:0a:00:01 actions=mod_vlan_vid:2,resubmit(,40)',
    'table=94,priority=10,reg5=12,dl_dst=fa:16:3e:0b:00:01 actions=mod_vlan_vid:1,resubmit(,40)',
    'table=94,priority=1 actions=NORMAL',
  ]);
});

test('C1 router tables: longest prefix first, gateway MAC as source, neighbour MAC from the topology', () => {
  const c1 = nodeConfig(REF, 'C1');
  const t40 = flowsOf(c1, 'br-int', 40);
  assert.ok(t40.includes('table=40,priority=248,ip,dl_vlan=1,dl_dst=fa:16:3e:0a:00:01,nw_dst=10.0.2.0/24 actions=dec_ttl,mod_dl_src:fa:16:3e:0b:00:01,mod_vlan_vid:2,resubmit(,41)'));
  assert.ok(t40.includes('table=40,priority=300,ip,dl_vlan=1,dl_dst=fa:16:3e:0a:00:01,nw_ttl=1 actions=strip_vlan,note:66.64.01.0b.00.0a.00.01.01.fa.16.3e.0a.00.01'));
  assert.ok(t40.includes('table=40,priority=200,ip,dl_vlan=1,dl_dst=fa:16:3e:0a:00:01 actions=dec_ttl,mod_dl_src:fa:16:3e:0a:00:01,mod_dl_dst:fa:16:3e:0a:00:02,output:1'), 'default route to the SNAT port');
  assert.deepEqual(flowsOf(c1, 'br-int', 41), [
    'table=41,priority=100,ip,dl_vlan=1,nw_dst=10.0.1.10 actions=mod_dl_dst:fa:16:3e:00:01:10,resubmit(,60)',
    'table=41,priority=100,ip,dl_vlan=1,nw_dst=10.0.1.3 actions=mod_dl_dst:fa:16:3e:00:2b:8a,output:1',
    'table=41,priority=100,ip,dl_vlan=1,nw_dst=10.0.1.4 actions=mod_dl_dst:fa:16:3e:00:ea:3b,output:1',
    'table=41,priority=100,ip,dl_vlan=2,nw_dst=10.0.2.20 actions=mod_dl_dst:fa:16:3e:00:02:20,output:1',
    'table=41,priority=100,ip,dl_vlan=2,nw_dst=10.0.2.3 actions=mod_dl_dst:fa:16:3e:00:29:f7,output:1',
    'table=41,priority=100,ip,dl_vlan=2,nw_dst=10.0.2.4 actions=mod_dl_dst:fa:16:3e:00:eb:ce,output:1',
    'table=41,priority=0 actions=drop',
  ]);
  const nn = nodeConfig(REF, 'NN');
  assert.ok(flowsOf(nn, 'br-int', 40).includes('table=40,priority=200,ip,dl_vlan=1,dl_dst=fa:16:3e:0a:00:01 actions=dec_ttl,resubmit(,45)'), 'SNAT host hands the default route to table 45');
});

test('GRE variant: gre- ports, ingress table 3, key = segmentation id', () => {
  const gre = loadTopology(path.join(DIR, 'reference-gre.yaml'));
  const c1 = nodeConfig(gre, 'C1');
  assert.deepEqual(portsOf(c1, 'br-tun').slice(1), [
    'gre-c0a8640c=2:gre:192.168.100.11->192.168.100.12:key=flow:dst_port=0',
    'gre-c0a8640d=3:gre:192.168.100.11->192.168.100.13:key=flow:dst_port=0',
  ]);
  assert.deepEqual(flowsOf(c1, 'br-tun', 0).slice(1, 3), [
    'table=0,priority=1,in_port=2 actions=resubmit(,3)',
    'table=0,priority=1,in_port=3 actions=resubmit(,3)',
  ]);
  assert.deepEqual(flowsOf(c1, 'br-tun', 3), [
    'table=3,priority=1,tun_id=0x3e9 actions=mod_vlan_vid:1,resubmit(,9)',
    'table=3,priority=1,tun_id=0x3ea actions=mod_vlan_vid:2,resubmit(,9)',
    'table=3,priority=0 actions=drop',
  ]);
  assert.deepEqual(flowsOf(c1, 'br-tun', 4), ['table=4,priority=0 actions=drop']);
});

test('unknown node is a ConfigError naming the nodes', () => {
  assert.throws(() => nodeConfig(REF, 'C9'), /unknown node "C9" \(topology has C1, C2, NN\)/);
});

test('a VM on the flat external network gets the physical bridge; without a mapping it is a ConfigError', () => {
  const text = fs.readFileSync(path.join(DIR, 'reference.yaml'), 'utf8').replace('floating_ips:',
    '  - { name: PUB, mac: fa:16:3e:ee:00:99, network: public, fixed_ips: [203.0.113.99],\n' +
    '      binding:host_id: C2, device: pub-host }\nfloating_ips:');
  const c2 = nodeConfig(parseTopology('ref.yaml', text), 'C2');
  assert.deepEqual([...c2.localVlans], [['B', 1], ['public', 2], ['A', 3]]);
  assert.deepEqual(c2.bridges.map((b) => b.name), ['br-int', 'br-tun', 'br-ex']);
  assert.ok(c2.bridges[2].flows.some((f) => f.text === 'table=2,priority=4,in_port=1,dl_vlan=2 actions=strip_vlan,NORMAL'));
  const noMap = text.replace(/(name: C2[\s\S]*?)    bridge_mappings: \[external:br-ex\]\n    physical_interfaces: \{ br-ex: ext1 \}\n/, '$1');
  assert.throws(() => nodeConfig(parseTopology('ref.yaml', noMap), 'C2'),
    { message: 'ref.yaml:14: nodes[C2].bridge_mappings: needs a mapping for physical network "external" (for a port on flat network public)' });
});
