/**
 * The same packet walks as ovs-walks.test.ts, run through flowd's own slow path (ofproto
 * Bridge + BridgeView + Ofproto, traced with ofproto/trace.ts), on the generated NodeConfig of
 * each node. flowd's tunnel ports are real tunnel ports, so the datapath actions also show the
 * tunnel metadata: tun_id (the destination network's VNI) and the underlay addresses.
 * The nodes run the OVS firewall driver (the default): a walk from or to a VM port passes its
 * conntrack zone, so it has a pass per ct() recirculation (as ofproto/trace shows them).
 * Walks where flowd's pipeline and Open vSwitch still disagree are marked todo, with the
 * difference in the reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ofproto } from '../../src/ofproto/ofproto';
import { traceFields } from '../../src/ofproto/trace';
import { parseTopology } from '../../src/dvr/topology';
import { nodeConfig } from '../../src/dvr/node-config';
import { ofprotoOfNode } from '../helpers/node-ofproto';

const DIR = path.join(__dirname, '../../../examples/topologies');

interface Node { op: Ofproto; dp: (name: string) => number }
const cache = new Map<string, Node>();

/** The node's generated bridges in a flowd Ofproto (the reference plus VM3 on C1, network B). */
function node(file: string, name: string): Node {
  const key = `${file}/${name}`;
  const have = cache.get(key);
  if (have) return have;
  const text = fs.readFileSync(path.join(DIR, file), 'utf8').replace('floating_ips:',
    '  - { name: VM3, mac: fa:16:3e:00:02:30, network: B, fixed_ips: [10.0.2.30],\n' +
    '      binding:host_id: C1, device: vm3-host }\nfloating_ips:');
  const cfg = nodeConfig(parseTopology(file, text), name);
  const op = ofprotoOfNode(cfg);
  const dp = (portName: string): number => {
    const d = op.dpPorts().find((x) => x.port.name === portName);
    if (d === undefined) throw new Error(`no dp port ${portName}`);
    return d.dpPort;
  };
  const n = { op, dp };
  cache.set(key, n);
  return n;
}

/**
 * The datapath actions of each pass of the walk: the first, then one per ct(table=N)
 * recirculation, resumed as ofproto/trace does without --ct-next (ct_state new|trk: the VM ports
 * pass the OVS firewall, whose ct() recirculates). Recirculation ids read `recirc(N)`: they
 * number the frozen states of an Ofproto that earlier walks share.
 */
function dpActions(n: Node, bridge: string, fields: string): string[] {
  return [...traceFields(n.op, bridge, fields, 0).text.matchAll(/^Datapath actions: (.*)$/gm)]
    .map((m) => m[1].replace(/recirc\(0x[0-9a-f]+\)/g, 'recirc(N)'));
}

/** The egress firewall's first pass from a VM port on network A (C1) or B (C2): local VLAN 1 = zone 1. */
const CT1 = 'ct(zone=1),recirc(N)';
const VM1 = 'fa:16:3e:00:01:10';
const VM2 = 'fa:16:3e:00:02:20';
const GW_A = 'fa:16:3e:0a:00:01';
const GW_B = 'fa:16:3e:0b:00:01';
const icmp = (src: string, dst: string, ipSrc: string, ipDst: string, ttl: number, type = 8): string =>
  `dl_src=${src},dl_dst=${dst},icmp,nw_src=${ipSrc},nw_dst=${ipDst},nw_ttl=${ttl},icmp_type=${type}`;
const tunnel = (vni: number, src: string, dst: string): string =>
  `set(tunnel(tun_id=0x${vni.toString(16)},src=${src},dst=${dst},flags(df|key)))`;

test('flowd: VM1 -> VM2 leaves C1 with tun_id 1002 to 192.168.100.12, src DVR MAC of C1, TTL 63', () => {
  const c1 = node('reference.yaml', 'C1');
  assert.deepEqual(dpActions(c1, 'br-int', `in_port=10,${icmp(VM1, GW_A, '10.0.1.10', '10.0.2.20', 64)}`),
    [CT1, `ct(commit,zone=1),${tunnel(1002, '192.168.100.11', '192.168.100.12')},set(eth(src=fa:16:3f:00:00:11,dst=${VM2})),set(ipv4(ttl=63)),${c1.dp('vxlan-c0a8640c')}`]);
});

test('flowd: arriving on C2 with tun_id 1002 from DVR MAC of C1, delivered to VM2 from gwB', () => {
  const c2 = node('reference.yaml', 'C2');
  assert.deepEqual(dpActions(c2, 'br-tun', `in_port=2,tun_id=0x3ea,${icmp('fa:16:3f:00:00:11', VM2, '10.0.1.10', '10.0.2.20', 63)}`),
    [`set(eth(src=${GW_B})),ct(zone=1),recirc(N)`, `ct(commit,zone=1),${c2.dp('vm2-host')}`]);
});

test('flowd: the reply is routed on C2 and leaves with tun_id 1001, src DVR MAC of C2; C1 delivers it from gwA', () => {
  const c2 = node('reference.yaml', 'C2');
  assert.deepEqual(dpActions(c2, 'br-int', `in_port=10,${icmp(VM2, GW_B, '10.0.2.20', '10.0.1.10', 64, 0)}`),
    [CT1, `ct(commit,zone=1),${tunnel(1001, '192.168.100.12', '192.168.100.11')},set(eth(src=fa:16:3f:00:00:12,dst=${VM1})),set(ipv4(ttl=63)),${c2.dp('vxlan-c0a8640b')}`]);
  const c1 = node('reference.yaml', 'C1');
  assert.deepEqual(dpActions(c1, 'br-tun', `in_port=2,tun_id=0x3e9,${icmp('fa:16:3f:00:00:12', VM1, '10.0.2.20', '10.0.1.10', 63, 0)}`),
    [`set(eth(src=${GW_A})),ct(zone=1),recirc(N)`, `ct(commit,zone=1),${c1.dp('vm1-host')}`]);
});

test('flowd: ARP for the gateway is answered locally', () => {
  const c1 = node('reference.yaml', 'C1');
  assert.deepEqual(dpActions(c1, 'br-int', `in_port=10,dl_src=${VM1},dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_op=1,arp_spa=10.0.1.10,arp_tpa=10.0.1.1,arp_sha=${VM1}`),
    [`set(eth(src=${GW_A},dst=${VM1})),set(arp(sip=10.0.1.1,tip=10.0.1.10,op=2,sha=${GW_A},tha=${VM1})),${c1.dp('vm1-host')}`]);
});

test('flowd: same-node routing VM1 -> VM3 stays on C1', () => {
  const c1 = node('reference.yaml', 'C1');
  assert.deepEqual(dpActions(c1, 'br-int', `in_port=10,${icmp(VM1, GW_A, '10.0.1.10', '10.0.2.30', 64)}`),
    // Egress in network A's zone (1), then ingress to VM3 in network B's zone (2).
    [CT1, `ct(commit,zone=1),set(eth(src=${GW_B},dst=fa:16:3e:00:02:30)),set(ipv4(ttl=63)),ct(zone=2),recirc(N)`,
      `ct(commit,zone=2),${c1.dp('vm3-host')}`]);
});

test('flowd: SNAT path VM2 -> 203.0.113.1 goes to NN with tun_id 1002 as DVR MAC of C2 -> sg-B', () => {
  const c2 = node('reference.yaml', 'C2');
  assert.deepEqual(dpActions(c2, 'br-int', `in_port=10,${icmp(VM2, GW_B, '10.0.2.20', '203.0.113.1', 64)}`),
    [CT1, `ct(commit,zone=1),${tunnel(1002, '192.168.100.12', '192.168.100.13')},set(eth(src=fa:16:3f:00:00:12,dst=fa:16:3e:0b:00:02)),set(ipv4(ttl=63)),${c2.dp('vxlan-c0a8640d')}`]);
});

test('flowd: GRE variant VM1 -> VM2 leaves on gre-c0a8640c with key 1002 and is delivered on C2', () => {
  const c1 = node('reference-gre.yaml', 'C1');
  assert.deepEqual(dpActions(c1, 'br-int', `in_port=10,${icmp(VM1, GW_A, '10.0.1.10', '10.0.2.20', 64)}`),
    [CT1, `ct(commit,zone=1),${tunnel(1002, '192.168.100.11', '192.168.100.12')},set(eth(src=fa:16:3f:00:00:11,dst=${VM2})),set(ipv4(ttl=63)),${c1.dp('gre-c0a8640c')}`]);
  const c2 = node('reference-gre.yaml', 'C2');
  assert.deepEqual(dpActions(c2, 'br-tun', `in_port=2,tun_id=0x3ea,${icmp('fa:16:3f:00:00:11', VM2, '10.0.1.10', '10.0.2.20', 63)}`),
    [`set(eth(src=${GW_B})),ct(zone=1),recirc(N)`, `ct(commit,zone=1),${c2.dp('vm2-host')}`]);
});

test('flowd: ICMP echo to a router IP is answered (OVS: set(icmp(type=0,code=0)) too)', () => {
  const c1 = node('reference.yaml', 'C1');
  assert.deepEqual(dpActions(c1, 'br-int', `in_port=10,${icmp(VM1, GW_A, '10.0.1.10', '10.0.2.1', 64)}`),
    [CT1, `ct(commit,zone=1),set(eth(src=${GW_A},dst=${VM1})),set(ipv4(src=10.0.2.1,dst=10.0.1.10)),set(icmp(type=0,code=0)),${c1.dp('vm1-host')}`]);
});

test('flowd: ARP for a remote port (sg-A) is answered by br-tun table 21 and not flooded to tunnels', () => {
  const c1 = node('reference.yaml', 'C1');
  const a = dpActions(c1, 'br-int', `in_port=10,dl_src=${VM1},dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_op=1,arp_spa=10.0.1.10,arp_tpa=10.0.1.2,arp_sha=${VM1}`).join(' | ');
  assert.ok(!a.includes('set(tunnel('), a);
  assert.ok(a.includes('set(arp(sip=10.0.1.2,tip=10.0.1.10,op=2,sha=fa:16:3e:0a:00:02'), a);
});

test('flowd: TTL 1 routed by C1 becomes ICMP time exceeded from the gateway, back out the VM port', () => {
  const c1 = node('reference.yaml', 'C1');
  assert.deepEqual(dpActions(c1, 'br-int', `in_port=10,${icmp(VM1, GW_A, '10.0.1.10', '10.0.2.20', 1)}`),
    [CT1, `ct(commit,zone=1),icmp_error(type=11,code=0,src=10.0.1.1,mac=${GW_A}),${c1.dp('vm1-host')}`]);
});
