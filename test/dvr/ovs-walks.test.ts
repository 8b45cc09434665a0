/**
 * The generated flows executed by Open vSwitch itself: each node's bridges are built in a
 * private ovs-vswitchd (dummy datapath, test/helpers/ovs-oracle.ts) with the generated port
 * numbers, every generated flow is loaded with ovs-ofctl add-flows (so OVS parses each one),
 * and ofproto/trace follows the packet walks of dvr-reference.md. This shows the flows do DVR
 * as OVS executes them, independent of flowd's own pipeline.
 *
 * Tunnel ports are dummy ports here, so the VNI is read from the trace's br-tun steps
 * (load:0x3ea->NXM_NX_TUN_ID[] right before the output), and the rest from the datapath
 * actions (MAC rewrites, TTL, output port). The nodes run the OVS firewall driver (the
 * default), so a walk from or to a VM port has a pass per ct() recirculation, each resumed as
 * ofproto/trace does by default (trk|new). Skipped when Open vSwitch is not installed.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ovsUnavailableReason } from '../helpers/ovs-oracle';
import { parseTopology, Topology } from '../../src/dvr/topology';
import { DvrOracleNode, DvrOracles } from '../helpers/dvr-oracle';

const DIR = path.join(__dirname, '../../../examples/topologies');
const skip = ovsUnavailableReason() ?? false;

/** The reference plus VM3 on C1, network B, for same-node routing. */
function topo(file: string): Topology {
  const text = fs.readFileSync(path.join(DIR, file), 'utf8').replace('floating_ips:',
    '  - { name: VM3, mac: fa:16:3e:00:02:30, network: B, fixed_ips: [10.0.2.30],\n' +
    '      binding:host_id: C1, device: vm3-host }\nfloating_ips:');
  return parseTopology(file, text);
}

type Node = DvrOracleNode;
const oracles = new DvrOracles();
const node = (t: Topology, key: string, name: string): Node => oracles.node(t, key, name);

after(() => oracles.stopAll());

/** The firewall's conntrack pass on network A (C1) or B (C2): local VLAN 1 = zone 1. */
const CT1 = 'ct(zone=1),recirc(N)';
const VM1 = 'fa:16:3e:00:01:10';
const VM2 = 'fa:16:3e:00:02:20';
const VM3 = 'fa:16:3e:00:02:30';
const GW_A = 'fa:16:3e:0a:00:01';
const GW_B = 'fa:16:3e:0b:00:01';
const icmp = (src: string, dst: string, ipSrc: string, ipDst: string, ttl: number, type = 8): string =>
  `dl_src=${src},dl_dst=${dst},icmp,nw_src=${ipSrc},nw_dst=${ipDst},nw_ttl=${ttl},icmp_type=${type}`;

/** The br-tun steps of a trace: "load:0x3ea->NXM_NX_TUN_ID[]" then "output:N". */
function tunnelOutput(raw: string): string {
  const tun = raw.slice(raw.indexOf('bridge("br-tun")'));
  const m = /load:(0x[0-9a-f]+)->NXM_NX_TUN_ID\[\]\s+output:(\d+)/.exec(tun);
  return m ? `tun_id=${m[1]},output:${m[2]}` : '';
}

test('VM1 -> VM2 from C1: routed on C1, out vxlan-c0a8640c with tun_id 1002, src DVR MAC of C1, TTL 63', { skip }, () => {
  const c1 = node(topo('reference.yaml'), 'C1', 'C1');
  const tr = c1.o.trace('br-int', `in_port=10,${icmp(VM1, GW_A, '10.0.1.10', '10.0.2.20', 64)}`);
  assert.deepEqual(tr.datapathPasses, [CT1, `ct(commit,zone=1),set(eth(src=fa:16:3f:00:00:11,dst=${VM2})),set(ipv4(ttl=63)),${c1.dp('vxlan-c0a8640c')}`]);
  assert.equal(tunnelOutput(tr.raw), 'tun_id=0x3ea,output:2');
  assert.equal(tunnelOutput(tr.raw), `tun_id=0x${(1002).toString(16)},output:${c1.cfg.bridges[1].ports.find((p) => p.name === 'vxlan-c0a8640c')!.ofport}`);
});

test('VM1 -> VM2 arriving on C2 (tun_id 1002, src DVR MAC of C1): delivered to VM2 from gwB', { skip }, () => {
  const c2 = node(topo('reference.yaml'), 'C2', 'C2');
  const tr = c2.o.trace('br-tun', `in_port=2,tun_id=0x3ea,${icmp('fa:16:3f:00:00:11', VM2, '10.0.1.10', '10.0.2.20', 63)}`);
  assert.deepEqual(tr.datapathPasses, [`set(eth(src=${GW_B})),${CT1}`, `ct(commit,zone=1),${c2.dp('vm2-host')}`]);
  assert.ok(!tr.raw.includes('learn('), 'a DVR-routed frame is not learned (table 9)');
});

test('the reply VM2 -> VM1 is routed on C2 and leaves with tun_id 1001 and src DVR MAC of C2', { skip }, () => {
  const c2 = node(topo('reference.yaml'), 'C2', 'C2');
  const tr = c2.o.trace('br-int', `in_port=10,${icmp(VM2, GW_B, '10.0.2.20', '10.0.1.10', 64, 0)}`);
  assert.deepEqual(tr.datapathPasses, [CT1, `ct(commit,zone=1),set(eth(src=fa:16:3f:00:00:12,dst=${VM1})),set(ipv4(ttl=63)),${c2.dp('vxlan-c0a8640b')}`]);
  assert.equal(tunnelOutput(tr.raw), 'tun_id=0x3e9,output:2');
  const c1 = node(topo('reference.yaml'), 'C1', 'C1');
  const back = c1.o.trace('br-tun', `in_port=2,tun_id=0x3e9,${icmp('fa:16:3f:00:00:12', VM1, '10.0.2.20', '10.0.1.10', 63, 0)}`);
  assert.deepEqual(back.datapathPasses, [`set(eth(src=${GW_A})),${CT1}`, `ct(commit,zone=1),${c1.dp('vm1-host')}`]);
});

test('ARP for the gateway 10.0.1.1 is answered locally and never reaches br-tun', { skip }, () => {
  const c1 = node(topo('reference.yaml'), 'C1', 'C1');
  const tr = c1.o.trace('br-int', `in_port=10,dl_src=${VM1},dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_op=1,arp_spa=10.0.1.10,arp_tpa=10.0.1.1,arp_sha=${VM1}`);
  assert.equal(tr.datapathActions,
    `set(eth(src=${GW_A},dst=${VM1})),set(arp(sip=10.0.1.1,tip=10.0.1.10,op=2,sha=${GW_A},tha=${VM1})),${c1.dp('vm1-host')}`);
  assert.ok(!tr.raw.includes('bridge("br-tun")'));
});

test('same-node routing VM1 -> VM3 on C1 is delivered locally from gwB and never reaches br-tun', { skip }, () => {
  const c1 = node(topo('reference.yaml'), 'C1', 'C1');
  const tr = c1.o.trace('br-int', `in_port=10,${icmp(VM1, GW_A, '10.0.1.10', '10.0.2.30', 64)}`);
  // Egress in network A's zone (1), then ingress to VM3 in network B's zone (2).
  assert.deepEqual(tr.datapathPasses, [CT1, `ct(commit,zone=1),set(eth(src=${GW_B},dst=${VM3})),set(ipv4(ttl=63)),ct(zone=2),recirc(N)`,
    `ct(commit,zone=2),${c1.dp('vm3-host')}`]);
  assert.ok(!tr.raw.includes('bridge("br-tun")'));
});

test('ICMP echo to a router interface IP is answered by the router on the node', { skip }, () => {
  const c1 = node(topo('reference.yaml'), 'C1', 'C1');
  const tr = c1.o.trace('br-int', `in_port=10,${icmp(VM1, GW_A, '10.0.1.10', '10.0.2.1', 64)}`);
  assert.deepEqual(tr.datapathPasses,
    [CT1, `ct(commit,zone=1),set(eth(src=${GW_A},dst=${VM1})),set(ipv4(src=10.0.2.1,dst=10.0.1.10)),set(icmp(type=0,code=0)),${c1.dp('vm1-host')}`]);
});

test('TTL 1 stops at the time-exceeded note (OVS drops it; flowd generates the ICMP)', { skip }, () => {
  const c1 = node(topo('reference.yaml'), 'C1', 'C1');
  const tr = c1.o.trace('br-int', `in_port=10,${icmp(VM1, GW_A, '10.0.1.10', '10.0.2.20', 1)}`);
  // The egress filter commits the connection; the note outputs nothing.
  assert.deepEqual(tr.datapathPasses, [CT1, 'ct(commit,zone=1)']);
  assert.match(tr.raw, /note:66\.64\.01\.0b\.00\.0a\.00\.01\.01\.fa\.16\.3e\.0a\.00\.01/);
});

test('ARP for a remote port (sg-A on NN) is answered by br-tun table 21, not sent to a tunnel', { skip }, () => {
  const c1 = node(topo('reference.yaml'), 'C1', 'C1');
  const tr = c1.o.trace('br-int', `in_port=10,dl_src=${VM1},dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_op=1,arp_spa=10.0.1.10,arp_tpa=10.0.1.2,arp_sha=${VM1}`);
  // NORMAL also floods the request to br-int's own internal port, in an order OVS picks.
  assert.match(tr.datapathActions, new RegExp(
    `set\\(eth\\(src=fa:16:3e:0a:00:02,dst=${VM1}\\)\\),set\\(arp\\(sip=10.0.1.2,tip=10.0.1.10,op=2,sha=fa:16:3e:0a:00:02,tha=${VM1}\\)\\),(pop_vlan,)?${c1.dp('vm1-host')}(,|$)`));
  for (const t of ['vxlan-c0a8640c', 'vxlan-c0a8640d']) {
    assert.ok(!tr.datapathActions.split(/[,()]/).includes(String(c1.dp(t))), `nothing to ${t}: ${tr.datapathActions}`);
  }
});

test('SNAT path VM2 -> 203.0.113.1 leaves C2 for NN as DVR MAC of C2 -> sg-B MAC, TTL 63, tun_id 1002', { skip }, () => {
  const c2 = node(topo('reference.yaml'), 'C2', 'C2');
  const tr = c2.o.trace('br-int', `in_port=10,${icmp(VM2, GW_B, '10.0.2.20', '203.0.113.1', 64)}`);
  assert.deepEqual(tr.datapathPasses, [CT1, `ct(commit,zone=1),set(eth(src=fa:16:3f:00:00:12,dst=fa:16:3e:0b:00:02)),set(ipv4(ttl=63)),${c2.dp('vxlan-c0a8640d')}`]);
  assert.equal(tunnelOutput(tr.raw), 'tun_id=0x3ea,output:3');
});

test('GRE variant: VM1 -> VM2 leaves C1 on gre-c0a8640c with key 1002 and enters C2 through table 3', { skip }, () => {
  const t = topo('reference-gre.yaml');
  const c1 = node(t, 'gre-C1', 'C1');
  const tr = c1.o.trace('br-int', `in_port=10,${icmp(VM1, GW_A, '10.0.1.10', '10.0.2.20', 64)}`);
  assert.deepEqual(tr.datapathPasses, [CT1, `ct(commit,zone=1),set(eth(src=fa:16:3f:00:00:11,dst=${VM2})),set(ipv4(ttl=63)),${c1.dp('gre-c0a8640c')}`]);
  assert.equal(tunnelOutput(tr.raw), 'tun_id=0x3ea,output:2');
  const c2 = node(t, 'gre-C2', 'C2');
  const rx = c2.o.trace('br-tun', `in_port=2,tun_id=0x3ea,${icmp('fa:16:3f:00:00:11', VM2, '10.0.1.10', '10.0.2.20', 63)}`);
  assert.match(rx.raw, /\n 3\. tun_id=0x3ea, priority 1/);
  assert.deepEqual(rx.datapathPasses, [`set(eth(src=${GW_B})),${CT1}`, `ct(commit,zone=1),${c2.dp('vm2-host')}`]);
});
