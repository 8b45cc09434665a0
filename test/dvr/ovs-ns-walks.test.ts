/**
 * The north-south walks of dvr-reference.md ("SNAT", "Floating IP", "Expected on the wire")
 * executed by Open vSwitch on the generated flows (dummy datapath, test/helpers/ovs-oracle.ts).
 *
 * Conntrack steps: ofproto/trace follows ct(table=T) into the recirculation with the state
 * given by --ct-next, but does not rewrite addresses for nat (it cannot know the mapping), so
 * the de-NATed half of the SNAT reply is traced as a second packet: the recirculation id the
 * first trace printed, ct_state=est|trk, the router's zone, and the inner destination.
 * Tunnel ports are dummy ports: the VNI is read from the trace's br-tun steps. The nodes run
 * the OVS firewall driver (the default): a walk from or to a VM port also passes the port's
 * conntrack zone (its network's local VLAN), one more pass each.
 * Skipped when Open vSwitch is not installed.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ovsUnavailableReason, parseOvsTrace } from '../helpers/ovs-oracle';
import { parseTopology, Topology } from '../../src/dvr/topology';
import { nodeConfig } from '../../src/dvr/node-config';
import { routerZones } from '../../src/dvr/ns-plan';
import { DvrOracleNode, DvrOracles } from '../helpers/dvr-oracle';

const DIR = path.join(__dirname, '../../../examples/topologies');
const skip = ovsUnavailableReason() ?? false;
const REF_TEXT = fs.readFileSync(path.join(DIR, 'reference.yaml'), 'utf8');
const REF = parseTopology('reference.yaml', REF_TEXT);
/** C2 as dvr_no_external with VM2's floating IP 203.0.113.60, served centrally by NN. */
const CENTRAL = parseTopology('central.yaml', REF_TEXT
  .replace(/(name: C2\n\s+agent_mode:) dvr/, '$1 dvr_no_external')
  .replace(/floating_ips:\n/, 'floating_ips:\n  - { ip: 203.0.113.60, port: VM2 }\n'));
const ZONE = routerZones(REF).get('R')!;

type Node = DvrOracleNode;
const oracles = new DvrOracles();
const node = (t: Topology, key: string, name: string): Node => oracles.node(t, key, name);

after(() => oracles.stopAll());

/** ofproto/trace with extra arguments (--ct-next). */
function trace(n: Node, bridge: string, flow: string, ...extra: string[]): { raw: string; dp: string; passes: string[] } {
  const raw = n.o.appctl(['ofproto/trace', bridge, flow, ...extra]);
  const all = [...raw.matchAll(/^Datapath actions: (.*)$/gm)].map((m) => m[1].trim());
  return { raw, dp: all[0] ?? '', passes: parseOvsTrace(raw).datapathPasses };
}

/** The br-tun steps of a trace: "load:0x3ea->NXM_NX_TUN_ID[]" then "output:N". */
function tunnelOutput(raw: string): string {
  const tun = raw.slice(raw.indexOf('bridge("br-tun")'));
  const m = /load:(0x[0-9a-f]+)->NXM_NX_TUN_ID\[\]\s+output:(\d+)/.exec(tun);
  return m ? `tun_id=${m[1]},output:${m[2]}` : '';
}

/** Sorts the trailing run of output ports (br-ex floods to ext1 and its local port in hash order). */
function sortTail(dp: string): string {
  const parts = dp.split(',');
  let k = parts.length;
  while (k > 0 && /^\d+$/.test(parts[k - 1])) k--;
  return [...parts.slice(0, k), ...parts.slice(k).map(Number).sort((a, b) => a - b).map(String)].join(',');
}


/** The firewall's conntrack pass on network A (C1) or B (C2): local VLAN 1 = zone 1. */
const CT1 = 'ct(zone=1),recirc(N)';
const VM1 = 'fa:16:3e:00:01:10';
const VM2 = 'fa:16:3e:00:02:20';
const GW_A = 'fa:16:3e:0a:00:01';
const GW_B = 'fa:16:3e:0b:00:01';
const SG_B = 'fa:16:3e:0b:00:02';
const QG = 'fa:16:3e:ee:00:10';
const FG_C1 = 'fa:16:3e:ee:00:11';
const UP = '52:54:00:ff:00:01';
const icmp = (src: string, dst: string, ipSrc: string, ipDst: string, ttl: number, type = 8): string =>
  `dl_src=${src},dl_dst=${dst},icmp,nw_src=${ipSrc},nw_dst=${ipDst},nw_ttl=${ttl},icmp_type=${type}`;
/** External frames enter at br-int's int-br-ex (port 2) as br-ex's NORMAL hands them over. */
const whoHas = (tpa: string): string =>
  `in_port=2,vlan_tci=0,dl_src=${UP},dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_op=1,arp_spa=203.0.113.1,arp_tpa=${tpa},arp_sha=${UP}`;

test('SNAT out, C2: VM2 -> 203.0.113.1 leaves for NN as DVR MAC of C2 -> sg-B MAC, TTL 63, VNI 1002', { skip }, () => {
  const c2 = node(REF, 'C2', 'C2');
  const tr = trace(c2, 'br-int', `in_port=10,${icmp(VM2, GW_B, '10.0.2.20', '203.0.113.1', 64)}`);
  assert.deepEqual(tr.passes, [CT1, `ct(commit,zone=1),set(eth(src=fa:16:3f:00:00:12,dst=${SG_B})),set(ipv4(ttl=63)),${c2.dp('vxlan-c0a8640d')}`]);
  assert.equal(tunnelOutput(tr.raw), 'tun_id=0x3ea,output:3');
});

test('SNAT out, NN: committed in the router zone with nat(src=203.0.113.10), out ext1 untagged from the qg MAC to the upstream MAC, TTL kept at 63', { skip }, () => {
  const nn = node(REF, 'NN', 'NN');
  const tr = trace(nn, 'br-tun', `in_port=3,tun_id=0x3ea,${icmp('fa:16:3f:00:00:12', SG_B, '10.0.2.20', '203.0.113.1', 63)}`);
  // br-ex floods to ext1 (and its own local port) until it has learned the upstream MAC.
  assert.equal(sortTail(tr.dp), sortTail(`push_vlan(vid=2,pcp=0),ct(commit,zone=${ZONE},nat(src=203.0.113.10)),set(eth(src=${QG},dst=${UP})),pop_vlan,${nn.dp('br-ex')},${nn.dp('ext1')}`));
  assert.ok(!tr.dp.includes('ttl'), 'no second TTL decrement on NN');
});

test('SNAT back, NN: the reply to 203.0.113.10 goes to conntrack (nat) and, de-NATed, straight to VM2 from the sg-B MAC with VNI 1002, TTL 63', { skip }, () => {
  const nn = node(REF, 'NN', 'NN');
  const first = trace(nn, 'br-int', `in_port=2,vlan_tci=0,${icmp(UP, QG, '203.0.113.1', '203.0.113.10', 64, 0)}`, '--ct-next', 'trk,est');
  const m = new RegExp(`^push_vlan\\(vid=3,pcp=0\\),ct\\(zone=${ZONE},nat\\),recirc\\((0x[0-9a-f]+)\\)$`).exec(first.dp);
  assert.ok(m, `conntrack with nat, then recirculation: ${first.dp}`);
  const second = trace(nn, 'br-int', `recirc_id=${m[1]},ct_state=est|trk,ct_zone=${ZONE},in_port=2,dl_vlan=3,` +
    icmp(UP, QG, '203.0.113.1', '10.0.2.20', 64, 0));
  assert.equal(second.dp, `set(eth(src=${SG_B},dst=${VM2})),set(ipv4(ttl=63)),pop_vlan,${nn.dp('vxlan-c0a8640c')}`);
  assert.equal(tunnelOutput(second.raw), 'tun_id=0x3ea,output:3');
  // A packet conntrack did not de-NAT (new, still for the gateway IP) goes nowhere.
  const stray = trace(nn, 'br-int', `recirc_id=${m[1]},ct_state=new|trk,ct_zone=${ZONE},in_port=2,dl_vlan=3,` +
    icmp(UP, QG, '203.0.113.1', '203.0.113.10', 64, 8));
  assert.equal(stray.dp, 'drop');
});

test('SNAT back, C2: the reply from the sg-B MAC reaches VM2 unchanged (the VM sees the sg MAC)', { skip }, () => {
  const c2 = node(REF, 'C2', 'C2');
  // A reply: VM2's egress committed the connection, so conntrack finds it established.
  const tr = trace(c2, 'br-tun', `in_port=3,tun_id=0x3ea,${icmp(SG_B, VM2, '203.0.113.1', '10.0.2.20', 63, 0)}`, '--ct-next', 'trk,est');
  assert.deepEqual(tr.passes, [CT1, `${c2.dp('vm2-host')}`]);
});

test('ARP on the external network: NN answers who-has 203.0.113.10 with the qg MAC, back out ext1', { skip }, () => {
  const nn = node(REF, 'NN', 'NN');
  const tr = trace(nn, 'br-int', whoHas('203.0.113.10'));
  assert.equal(sortTail(tr.dp), sortTail(`set(eth(src=${QG},dst=${UP})),set(arp(sip=203.0.113.10,tip=203.0.113.1,op=2,sha=${QG},tha=${UP})),${nn.dp('br-ex')},${nn.dp('ext1')}`));
});

test('floating IP ARP: only C1 answers who-has 203.0.113.50 (with its fg MAC); NN stays silent', { skip }, () => {
  const c1 = node(REF, 'C1', 'C1');
  const tr = trace(c1, 'br-int', whoHas('203.0.113.50'));
  assert.equal(sortTail(tr.dp), sortTail(`set(eth(src=${FG_C1},dst=${UP})),set(arp(sip=203.0.113.50,tip=203.0.113.1,op=2,sha=${FG_C1},tha=${UP})),${c1.dp('br-ex')},${c1.dp('ext1')}`));
  const nn = node(REF, 'NN', 'NN');
  const nnTr = trace(nn, 'br-int', whoHas('203.0.113.50'));
  // NORMAL only floods the request to OVS's own br-int local port: no reply, nothing out ext1.
  assert.equal(nnTr.dp, `push_vlan(vid=3,pcp=0),${nn.dp('br-int')}`, 'NN does not answer');
  assert.equal(nodeConfig(REF, 'C2').bridges.some((b) => b.name === 'br-ex'), false, 'C2 has no external bridge at all');
});

test('floating IP in, C1: 203.0.113.1 -> 203.0.113.50 is DNATed to 10.0.1.10 and reaches VM1 from gwA, TTL 63', { skip }, () => {
  const c1 = node(REF, 'C1', 'C1');
  const tr = trace(c1, 'br-int', `in_port=2,vlan_tci=0,${icmp(UP, FG_C1, '203.0.113.1', '203.0.113.50', 64)}`);
  // A new connection from outside: reference.yaml's default group accepts ICMP from anywhere.
  assert.deepEqual(tr.passes, [`set(eth(src=${GW_A},dst=${VM1})),set(ipv4(dst=10.0.1.10,ttl=63)),${CT1}`, `ct(commit,zone=1),${c1.dp('vm1-host')}`]);
});

test('floating IP out, C1: VM1 -> 203.0.113.1 is SNATed to 203.0.113.50 and leaves C1 from its fg MAC, never a tunnel', { skip }, () => {
  const c1 = node(REF, 'C1', 'C1');
  const tr = trace(c1, 'br-int', `in_port=10,${icmp(VM1, GW_A, '10.0.1.10', '203.0.113.1', 64, 0)}`);
  assert.equal(tr.passes.length, 2, tr.passes.join(' | '));
  assert.equal(tr.passes[0], CT1);
  assert.equal(sortTail(tr.passes[1]), sortTail(`ct(commit,zone=1),set(eth(src=${FG_C1},dst=${UP})),set(ipv4(src=203.0.113.50,ttl=63)),${c1.dp('br-ex')},${c1.dp('ext1')}`));
  assert.ok(!tr.raw.includes('bridge("br-tun")'), 'nothing goes to NN');
});

test('a VM without floating IP on C1 (VM3) still takes the SNAT path to NN', { skip }, () => {
  const t = parseTopology('vm3.yaml', REF_TEXT.replace('floating_ips:',
    '  - { name: VM3, mac: fa:16:3e:00:01:30, network: A, fixed_ips: [10.0.1.30], binding:host_id: C1, device: vm3-host }\nfloating_ips:'));
  const c1 = node(t, 'vm3-C1', 'C1');
  const tr = trace(c1, 'br-int', `in_port=11,${icmp('fa:16:3e:00:01:30', GW_A, '10.0.1.30', '203.0.113.1', 64)}`);
  assert.deepEqual(tr.passes, [CT1, `ct(commit,zone=1),set(eth(src=fa:16:3f:00:00:11,dst=fa:16:3e:0a:00:02)),set(ipv4(ttl=63)),${c1.dp('vxlan-c0a8640d')}`]);
  assert.equal(tunnelOutput(tr.raw), 'tun_id=0x3e9,output:3');
});

test('dvr_no_external: NN serves VM2\'s floating IP 203.0.113.60 (ARP with the qg MAC, DNAT to C2 over VNI 1002, SNAT without conntrack)', { skip }, () => {
  const nn = node(CENTRAL, 'central-NN', 'NN');
  const arp = trace(nn, 'br-int', whoHas('203.0.113.60'));
  assert.ok(arp.dp.includes(`set(arp(sip=203.0.113.60,tip=203.0.113.1,op=2,sha=${QG},tha=${UP}))`), arp.dp);
  const inb = trace(nn, 'br-int', `in_port=2,vlan_tci=0,${icmp(UP, QG, '203.0.113.1', '203.0.113.60', 64)}`);
  assert.equal(inb.dp, `set(eth(src=${SG_B},dst=${VM2})),set(ipv4(dst=10.0.2.20,ttl=63)),${nn.dp('vxlan-c0a8640c')}`);
  assert.equal(tunnelOutput(inb.raw), 'tun_id=0x3ea,output:3');
  const out = trace(nn, 'br-tun', `in_port=3,tun_id=0x3ea,${icmp('fa:16:3f:00:00:12', SG_B, '10.0.2.20', '203.0.113.1', 63, 0)}`);
  assert.equal(sortTail(out.dp), sortTail(`set(eth(src=${QG},dst=${UP})),set(ipv4(src=203.0.113.60)),${nn.dp('br-ex')},${nn.dp('ext1')}`));
  const c2 = node(CENTRAL, 'central-C2', 'C2');
  assert.equal(c2.cfg.bridges.some((b) => b.name === 'br-ex'), false, 'a dvr_no_external node has no external bridge');
  const fromVm = trace(c2, 'br-int', `in_port=10,${icmp(VM2, GW_B, '10.0.2.20', '203.0.113.1', 64)}`);
  assert.deepEqual(fromVm.passes, [CT1, `ct(commit,zone=1),set(eth(src=fa:16:3f:00:00:12,dst=${SG_B})),set(ipv4(ttl=63)),${c2.dp('vxlan-c0a8640d')}`]);
});
