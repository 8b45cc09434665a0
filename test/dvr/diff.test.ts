/**
 * diffNodeConfigs (issue 7 item 2): a topology change yields only the flows and ports that
 * changed, per bridge; everything else is left alone. The previous config is passed to
 * nodeConfig so local VLANs and port numbers stay put. The nodes run the OVS firewall driver
 * (the default): a VM port brings its firewall flows, and its default group's members.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseTopology } from '../../src/dvr/topology';
import { nodeConfig } from '../../src/dvr/node-config';
import { BridgeDiff, diffNodeConfigs } from '../../src/dvr/diff';

const REF = fs.readFileSync(path.join(__dirname, '../../../examples/topologies/reference.yaml'), 'utf8');
const OLD = parseTopology('old.yaml', REF);

/** The reference with NN as the only DHCP agent (C2 then holds nothing but VM2). */
const ONE_AGENT = REF.replace('dhcp_agent: true', 'dhcp_agent: false').replace('dhcp_agents_per_network: 2', 'dhcp_agents_per_network: 1');

function change(node: string, text: string, oldText = REF): BridgeDiff[] {
  const before = nodeConfig(oldText === REF ? OLD : parseTopology('old.yaml', oldText), node);
  return diffNodeConfigs(before, nodeConfig(parseTopology('new.yaml', text), node, before));
}

function summary(ds: BridgeDiff[]): string[] {
  return ds.map((d) => `${d.bridge} ${d.state} +${d.addFlows.length} ~${d.modifyFlows.length} -${d.deleteFlows.length}` +
    ` ports +[${d.addPorts.map((p) => `${p.name}=${p.ofport}`).join(' ')}] ~[${d.modifyPorts.map((p) => p.name).join(' ')}] -[${d.removePorts.map((p) => p.name).join(' ')}]`);
}

test('an unchanged topology gives an empty diff on every node', () => {
  for (const n of ['C1', 'C2', 'NN']) assert.deepEqual(change(n, REF), []);
});

test('a port added on C2 (network A): C2 gets the port, its DVR flows and its firewall; C1 only l2pop, a neighbour and a member', () => {
  const text = REF.replace('floating_ips:', '  - { name: VM4, mac: fa:16:3e:00:01:40, network: A, fixed_ips: [10.0.1.40],\n' +
    '      binding:host_id: C2, device: vm4-host }\nfloating_ips:');
  const c2 = change('C2', text);
  assert.deepEqual(summary(c2), ['br-int changed +71 ~0 -0 ports +[vm4-host=13] ~[] -[]']);
  // 11 and 12 are C2's DHCP ports (networks A and B).
  assert.equal(c2[0].addPorts[0].tag, 2, 'network A is VLAN 2 on C2');
  // The flows that do not match on the port (in_port=13 or reg5=13: its firewall tables, its
  // router intercepts in table 94): delivery to it, and the default group's new member.
  assert.deepEqual(c2[0].addFlows.map((f) => f.text).filter((t) => !/(in_port|reg5)=13[, ]/.test(t)), [
    'table=1,priority=20,dl_vlan=2,dl_dst=fa:16:3e:00:01:40 actions=mod_dl_src:fa:16:3e:0a:00:01,resubmit(,60)',
    'table=41,priority=100,ip,dl_vlan=2,nw_dst=10.0.1.40 actions=mod_dl_dst:fa:16:3e:00:01:40,resubmit(,60)',
    'table=60,priority=90,dl_vlan=2,dl_dst=fa:16:3e:00:01:40 actions=set_field:13->reg5,set_field:2->reg6,strip_vlan,ct_clear,resubmit(,81)',
    'table=60,priority=20,dl_vlan=2,dl_dst=fa:16:3e:00:01:40 actions=strip_vlan,output:13',
    'table=73,priority=100,reg6=2,dl_dst=fa:16:3e:00:01:40 actions=set_field:13->reg5,resubmit(,81)',
    // VM2 (network B, VLAN 1) accepts from the new member of its default group...
    'table=82,priority=70,ct_state=+est-rel-rpl,ip,reg6=1,nw_src=10.0.1.40 actions=conjunction(1007866000,1/2)',
    'table=82,priority=70,ct_state=+new-est,ip,reg6=1,nw_src=10.0.1.40 actions=conjunction(1007866001,1/2)',
    // ...and network A has its first filtered port on C2: the group's members, VM4 included.
    'table=82,priority=70,ct_state=+est-rel-rpl,ip,reg6=2,nw_src=10.0.1.10 actions=conjunction(1007866000,1/2)',
    'table=82,priority=70,ct_state=+new-est,ip,reg6=2,nw_src=10.0.1.10 actions=conjunction(1007866001,1/2)',
    'table=82,priority=70,ct_state=+est-rel-rpl,ip,reg6=2,nw_src=10.0.2.20 actions=conjunction(1007866000,1/2)',
    'table=82,priority=70,ct_state=+new-est,ip,reg6=2,nw_src=10.0.2.20 actions=conjunction(1007866001,1/2)',
    'table=82,priority=70,ct_state=+est-rel-rpl,ip,reg6=2,nw_src=10.0.1.40 actions=conjunction(1007866000,1/2)',
    'table=82,priority=70,ct_state=+new-est,ip,reg6=2,nw_src=10.0.1.40 actions=conjunction(1007866001,1/2)',
  ]);
  const own = c2[0].addFlows.map((f) => f.text).filter((t) => /(in_port|reg5)=13[, ]/.test(t));
  assert.ok(own.includes('table=94,priority=11,reg5=13,arp,arp_tpa=10.0.1.1 actions=mod_vlan_vid:2,resubmit(,40)'), own.join('\n'));
  assert.ok(own.includes('table=94,priority=10,reg5=13,dl_dst=fa:16:3e:0a:00:01 actions=mod_vlan_vid:2,resubmit(,40)'), own.join('\n'));
  assert.ok(own.includes('table=60,priority=100,in_port=13,vlan_tci=0x0000/0x1fff actions=set_field:13->reg5,set_field:2->reg6,resubmit(,71)'), own.join('\n'));
  const c1 = change('C1', text);
  assert.deepEqual(summary(c1), ['br-int changed +3 ~0 -0 ports +[] ~[] -[]', 'br-tun changed +2 ~0 -0 ports +[] ~[] -[]']);
  assert.deepEqual(c1[0].addFlows.map((f) => f.text), [
    'table=41,priority=100,ip,dl_vlan=1,nw_dst=10.0.1.40 actions=mod_dl_dst:fa:16:3e:00:01:40,output:1',
    // VM1 (network A, VLAN 1 on C1) accepts from the new member of its default group.
    'table=82,priority=70,ct_state=+est-rel-rpl,ip,reg6=1,nw_src=10.0.1.40 actions=conjunction(1007866000,1/2)',
    'table=82,priority=70,ct_state=+new-est,ip,reg6=1,nw_src=10.0.1.40 actions=conjunction(1007866001,1/2)',
  ]);
  assert.equal(c1[1].addFlows[0].text,
    'table=20,priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:01:40 actions=strip_vlan,load:0x3e9->NXM_NX_TUN_ID[],output:2');
});

test('a port moved C2 -> C1: C1 delivers VM2 locally, C2 drops its tunnels, NN retargets', () => {
  const text = ONE_AGENT.replace('binding:host_id: C2, device: vm2-host', 'binding:host_id: C1, device: vm2-host');
  const change1 = (node: string): BridgeDiff[] => change(node, text, ONE_AGENT);
  const c1 = change1('C1');
  assert.deepEqual(summary(c1), [
    'br-int changed +66 ~1 -0 ports +[vm2-host=11] ~[] -[]',
    'br-tun changed +0 ~2 -3 ports +[] ~[] -[vxlan-c0a8640c]',
  ]);
  assert.deepEqual(c1[0].modifyFlows.map((f) => f.text), [
    'table=41,priority=100,ip,dl_vlan=2,nw_dst=10.0.2.20 actions=mod_dl_dst:fa:16:3e:00:02:20,resubmit(,60)',
  ]);
  // Besides the port's own flows (in_port=11, reg5=11): delivery to it, and the default
  // group's members for network B, which has its first filtered port on C1.
  assert.deepEqual(c1[0].addFlows.map((f) => f.text).filter((t) => !/(in_port|reg5)=11[, ]/.test(t)), [
    'table=1,priority=20,dl_vlan=2,dl_dst=fa:16:3e:00:02:20 actions=mod_dl_src:fa:16:3e:0b:00:01,resubmit(,60)',
    'table=60,priority=90,dl_vlan=2,dl_dst=fa:16:3e:00:02:20 actions=set_field:11->reg5,set_field:2->reg6,strip_vlan,ct_clear,resubmit(,81)',
    'table=60,priority=20,dl_vlan=2,dl_dst=fa:16:3e:00:02:20 actions=strip_vlan,output:11',
    'table=73,priority=100,reg6=2,dl_dst=fa:16:3e:00:02:20 actions=set_field:11->reg5,resubmit(,81)',
    'table=82,priority=70,ct_state=+est-rel-rpl,ip,reg6=2,nw_src=10.0.1.10 actions=conjunction(1007866000,1/2)',
    'table=82,priority=70,ct_state=+new-est,ip,reg6=2,nw_src=10.0.1.10 actions=conjunction(1007866001,1/2)',
    'table=82,priority=70,ct_state=+est-rel-rpl,ip,reg6=2,nw_src=10.0.2.20 actions=conjunction(1007866000,1/2)',
    'table=82,priority=70,ct_state=+new-est,ip,reg6=2,nw_src=10.0.2.20 actions=conjunction(1007866001,1/2)',
  ]);
  assert.deepEqual(c1[1].deleteFlows.map((f) => f.text.split(' ')[0]), [
    'table=0,priority=1,in_port=2',
    'table=20,priority=2,dl_vlan=2,dl_dst=fa:16:3e:00:02:20',
    'table=21,priority=1,arp,dl_vlan=2,arp_tpa=10.0.2.20',
  ]);
  assert.deepEqual(summary(change1('C2')), [
    'br-int changed +0 ~0 -92 ports +[] ~[] -[vm2-host]', // incl. NN's DHCP ports' neighbours and l2pop, and VM2's firewall
    'br-tun changed +0 ~0 -22 ports +[] ~[] -[vxlan-c0a8640b vxlan-c0a8640d]',
  ]);
  assert.deepEqual(summary(change1('NN')), ['br-tun changed +0 ~3 -1 ports +[] ~[] -[vxlan-c0a8640c]']);
});

test('a port moved off a DHCP host: C2 keeps its tunnels and its DHCP ports', () => {
  const text = REF.replace('binding:host_id: C2, device: vm2-host', 'binding:host_id: C1, device: vm2-host');
  const d = change('C2', text);
  assert.deepEqual(d.map((b) => `${b.bridge} -[${b.removePorts.map((p) => p.name).join(' ')}]`), ['br-int -[vm2-host]', 'br-tun -[]']);
  assert.deepEqual(nodeConfig(parseTopology('new.yaml', text), 'C2').bridges[0].ports.map((p) => p.name),
    ['patch-tun', 'dhcp-A', 'dhcp-B']);
});

test('a subnet added to the router: new VLAN is the lowest free, existing VLANs and flows untouched', () => {
  const text = REF
    .replace('  - { name: public, network_type: flat', '  - { name: C, network_type: vxlan, segmentation_id: 1003 }\n  - { name: public, network_type: flat')
    .replace('  - { name: public-v4,', '  - { name: C-v4, network: C, cidr: 10.0.3.0/24, gateway_ip: 10.0.3.1 }\n  - { name: public-v4,')
    .replace('    external_gateway:', '      - { subnet: C-v4, mac: fa:16:3e:0c:00:01 }\n    external_gateway:');
  const before = nodeConfig(OLD, 'C1');
  const after = nodeConfig(parseTopology('new.yaml', text), 'C1', before);
  assert.deepEqual([...after.localVlans], [['A', 1], ['B', 2], ['public', 3], ['C', 4]]);
  const d = diffNodeConfigs(before, after);
  assert.deepEqual(summary(d), ['br-int changed +22 ~0 -0 ports +[] ~[] -[]', 'br-tun changed +9 ~0 -0 ports +[] ~[] -[]']);
  // +2 and +4 of those are the DHCP ports of C (on NN and C2): neighbours, l2pop and ARP responder.
  assert.ok(d[1].addFlows.some((f) => f.text === 'table=4,priority=1,tun_id=0x3eb actions=mod_vlan_vid:4,resubmit(,9)'));
  // Without the previous config the file order would renumber public to 4: the reason to pass it.
  assert.deepEqual([...nodeConfig(parseTopology('new.yaml', text), 'C1').localVlans], [['A', 1], ['B', 2], ['C', 3], ['public', 4]]);
});

test('a bridge that disappears is reported removed with all its ports and flows', () => {
  const text = REF.replace('  - { ip: 203.0.113.50, port: VM1 }\n', '').replace('floating_ips:\n', '');
  const d = change('C1', text);
  const ex = d.find((x) => x.bridge === 'br-ex')!;
  assert.equal(ex.state, 'removed');
  assert.deepEqual(ex.removePorts.map((p) => p.name), ['phy-br-ex', 'ext1']);
  assert.equal(ex.deleteFlows.length, 9); // the 6 of Neutron's physical bridge (tables 0-3) and the 3 of the floating IP's MTU check
  const brInt = d.find((x) => x.bridge === 'br-int')!;
  assert.deepEqual(brInt.removePorts.map((p) => p.name), ['int-br-ex']);
});
