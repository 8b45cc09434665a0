/**
 * VLAN walks of examples/topologies/vlan.yaml (issue 17 item 2), each run twice on the same
 * generated flows: by Open vSwitch (private ovs-vswitchd, dummy datapath, ofproto/trace;
 * test/helpers/ovs-oracle.ts) and by flowd's own slow path (ofproto Bridge + Ofproto,
 * ofproto/trace.ts). Their datapath actions must be the same, with datapath port numbers turned
 * into port names (the two number ports differently) and flood outputs sorted; each walk also
 * states what must be in them (the VID on the wire, the DVR MAC as source), so a walk that both
 * get wrong the same way still fails. Tunnel outputs differ in form (flowd prints the tunnel
 * metadata, OVS's dummy ports cannot), so the VLAN -> VXLAN walk compares the Ethernet part.
 *
 * Local VLANs in vlan.yaml: C1 V1=1 A=2 V2=3; C2 V2=1 V1=2 A=3; NN V1=1 V2=2 A=3. They are
 * also the conntrack zones of the OVS firewall (the default driver) that VM ports pass.
 * Skipped (OVS half) when Open vSwitch is not installed.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ovsUnavailableReason } from '../helpers/ovs-oracle';
import { DvrOracles } from '../helpers/dvr-oracle';
import { Ofproto } from '../../src/ofproto/ofproto';
import { traceFields } from '../../src/ofproto/trace';
import { parseTopology, Topology } from '../../src/dvr/topology';
import { nodeConfig } from '../../src/dvr/node-config';
import { ofprotoOfNode } from '../helpers/node-ofproto';

const FILE = path.join(__dirname, '../../../examples/topologies/vlan.yaml');
const TEXT = fs.readFileSync(FILE, 'utf8');
/** vlan.yaml, and the same with V2 a flat network on physnet1 (untagged on the wire). */
const TOPOS: Record<string, Topology> = {
  vlan: parseTopology('vlan.yaml', TEXT),
  flat: parseTopology('flat.yaml', TEXT.replace('{ name: V2, network_type: vlan, physical_network: physnet1, segmentation_id: 102 }',
    '{ name: V2, network_type: flat, physical_network: physnet1 }')),
};
const skip = ovsUnavailableReason() ?? false;
const oracles = new DvrOracles();
after(() => oracles.stopAll());

const VM1 = 'fa:16:3e:00:11:10';
const VM2 = 'fa:16:3e:00:11:20';
const VM3 = 'fa:16:3e:00:12:30';
const VM4 = 'fa:16:3e:00:01:40';
const GW_V1 = 'fa:16:3e:11:00:01';
const GW_V2 = 'fa:16:3e:12:00:01';
const GW_A = 'fa:16:3e:0a:00:01';
const SG_V2 = 'fa:16:3e:12:00:02';
const DVR = { C1: 'fa:16:3f:00:00:11', C2: 'fa:16:3f:00:00:12', NN: 'fa:16:3f:00:00:13' };
const icmp = (src: string, dst: string, ipSrc: string, ipDst: string, ttl: number, type = 8): string =>
  `dl_src=${src},dl_dst=${dst},icmp,nw_src=${ipSrc},nw_dst=${ipDst},nw_ttl=${ttl},icmp_type=${type}`;

interface FlowdNode { op: Ofproto; names: Map<number, string> }

function topoOf(node: string): [Topology, string] {
  const k = node.indexOf(':');
  return k < 0 ? [TOPOS.vlan, node] : [TOPOS[node.slice(0, k)], node.slice(k + 1)];
}
const flowdNodes = new Map<string, FlowdNode>();

/** The node's generated bridges in flowd's Ofproto; `node` is "C1" (vlan.yaml) or "flat:C1". */
function flowdNode(node: string): FlowdNode {
  const have = flowdNodes.get(node);
  if (have) return have;
  const [topo, name] = topoOf(node);
  const cfg = nodeConfig(topo, name);
  const op = ofprotoOfNode(cfg);
  const n = { op, names: new Map(op.dpPorts().map((d) => [d.dpPort, d.port.name])) };
  flowdNodes.set(node, n);
  return n;
}

/** Datapath actions split at the commas outside parentheses. */
function actionList(dp: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < dp.length; i++) {
    if (dp[i] === '(') depth++;
    else if (dp[i] === ')') depth--;
    else if (dp[i] === ',' && depth === 0) { out.push(dp.slice(start, i)); start = i + 1; }
  }
  out.push(dp.slice(start));
  return out;
}

/** Steps after the last output change nothing anyone sees: removed. */
function trimTail(parts: string[]): void {
  while (parts.length > 1 && (parts[parts.length - 1] === 'pop_vlan' || parts[parts.length - 1].includes('('))) parts.pop();
}

/** Datapath actions with port numbers as names and a trailing run of outputs sorted. */
function named(dp: string, names: (n: number) => string): string {
  const parts = actionList(dp).map((p) => (/^\d+$/.test(p) ? names(Number(p)) : p));
  trimTail(parts);
  let k = parts.length;
  while (k > 0 && /^[a-z][\w.-]*$/.test(parts[k - 1]) && parts[k - 1] !== 'pop_vlan') k--;
  return [...parts.slice(0, k), ...parts.slice(k).sort()].join(',');
}

/**
 * Each pass of a walk (the first, then one per ct() recirculation, resumed as trk|new: the VM
 * ports pass the OVS firewall), normalized by `one`, joined by " | ". The recirculation reads
 * `recirc(N)` (ids number each daemon's frozen states) and counts as an output for `one`, so
 * the ct() before it is kept.
 */
function passes(dps: readonly string[], one: (dp: string) => string): string {
  return dps.map((d) => one(d.replace(/recirc\((0x[0-9a-f]+|N)\)/g, 'recirc_N')).replace(/recirc_N/g, 'recirc(N)')).join(' | ');
}

function flowdActions(node: string, bridge: string, fields: string): string {
  const n = flowdNode(node);
  const dps = [...traceFields(n.op, bridge, fields, 0).text.matchAll(/^Datapath actions: (.*)$/gm)].map((m) => m[1]);
  return passes(dps, (d) => named(d, (p) => n.names.get(p) ?? `?${p}`));
}

/**
 * OVS's bridges have a LOCAL port each (named like the bridge) that NORMAL floods to; flowd's
 * have none. Outputs to them, and the VLAN steps left with no output after them, are removed.
 */
function withoutLocal(dp: string, bridges: readonly string[]): string {
  const parts = actionList(dp).filter((p) => !bridges.includes(p));
  // A tag pushed only for the LOCAL port and popped right after is no step at all.
  for (let i = 0; i + 1 < parts.length; i++) {
    if (parts[i].startsWith('push_vlan(') && parts[i + 1] === 'pop_vlan') { parts.splice(i, 2); i = Math.max(-1, i - 2); }
  }
  trimTail(parts);
  return parts.length === 0 || (parts.length === 1 && parts[0].includes('(')) ? 'drop' : parts.join(',');
}

function ovsActions(node: string, bridge: string, fields: string): string {
  const [topo, name] = topoOf(node);
  const n = oracles.node(topo, node, name);
  const ports = n.o.dpPorts();
  return passes(n.o.trace(bridge, fields).datapathPasses,
    (d) => withoutLocal(named(d, (p) => ports.get(p)?.name ?? `?${p}`), n.cfg.bridges.map((b) => b.name)));
}

/** Both run the walk; they agree, and the common result is returned. */
function both(node: string, bridge: string, fields: string): string {
  const f = flowdActions(node, bridge, fields);
  const o = ovsActions(node, bridge, fields);
  assert.equal(f, o, `flowd and Open vSwitch differ on ${node} ${bridge} ${fields}`);
  return f;
}

const wireIn = (vid: number, fields: string): string => `in_port=2,dl_vlan=${vid},${fields}`;

test('VLAN, same network across nodes: VM1 (C1) -> VM2 (C2) leaves phys1 with VID 101 (not local VLAN 1)', { skip }, () => {
  const out = both('C1', 'br-int', `in_port=10,${icmp(VM1, VM2, '10.0.11.10', '10.0.11.20', 64)}`);
  assert.equal(out, 'ct(zone=1),recirc(N) | ct(commit,zone=1),push_vlan(vid=101,pcp=0),phys1');
  // C2 has V1 as local VLAN 2: the wire's 101 is translated and VM2 gets the frame untagged.
  assert.equal(both('C2', 'br-vlan', wireIn(101, icmp(VM1, VM2, '10.0.11.10', '10.0.11.20', 64))),
    'pop_vlan,ct(zone=2),recirc(N) | ct(commit,zone=2),vm2-host');
});

test('VLAN broadcast (ARP for VM2) stays within VID 101 and is flooded only to V1 ports on C2', { skip }, () => {
  const arp = `dl_src=${VM1},dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_op=1,arp_spa=10.0.11.10,arp_tpa=10.0.11.20,arp_sha=${VM1}`;
  assert.equal(both('C1', 'br-int', `in_port=10,${arp}`), 'push_vlan(vid=101,pcp=0),phys1');
  assert.equal(both('C2', 'br-vlan', wireIn(101, arp)), 'pop_vlan,vm2-host');
});

test('routed VLAN -> VLAN across nodes: VM1 (C1, V1) -> VM3 (C2, V2) as DVR MAC of C1 with VID 102; C2 restores gwV2', { skip }, () => {
  assert.equal(both('C1', 'br-int', `in_port=10,${icmp(VM1, GW_V1, '10.0.11.10', '10.0.12.30', 64)}`),
    `ct(zone=1),recirc(N) | ct(commit,zone=1),set(eth(src=${DVR.C1},dst=${VM3})),set(ipv4(ttl=63)),push_vlan(vid=102,pcp=0),phys1`);
  assert.equal(both('C2', 'br-vlan', wireIn(102, icmp(DVR.C1, VM3, '10.0.11.10', '10.0.12.30', 63))),
    `set(eth(src=${GW_V2})),pop_vlan,ct(zone=1),recirc(N) | ct(commit,zone=1),vm3-host`);
});

test('routed VXLAN -> VLAN across nodes: VM4 (C1, A) -> VM2 (C2, V1) as DVR MAC of C1 with VID 101; C2 restores gwV1', { skip }, () => {
  assert.equal(both('C1', 'br-int', `in_port=11,${icmp(VM4, GW_A, '10.0.1.40', '10.0.11.20', 64)}`),
    `ct(zone=2),recirc(N) | ct(commit,zone=2),set(eth(src=${DVR.C1},dst=${VM2})),set(ipv4(ttl=63)),push_vlan(vid=101,pcp=0),phys1`);
  assert.equal(both('C2', 'br-vlan', wireIn(101, icmp(DVR.C1, VM2, '10.0.1.40', '10.0.11.20', 63))),
    `set(eth(src=${GW_V1})),pop_vlan,ct(zone=2),recirc(N) | ct(commit,zone=2),vm2-host`);
});

test('routed VLAN -> VXLAN across nodes: VM2 (C2, V1) -> VM4 (C1, A) leaves vxlan-c0a8640b as DVR MAC of C2; C1 restores gwA', { skip }, () => {
  const fields = `in_port=11,${icmp(VM2, GW_V1, '10.0.11.20', '10.0.1.40', 64)}`;
  const f = flowdActions('C2', 'br-int', fields);
  assert.equal(f, `ct(zone=2),recirc(N) | ct(commit,zone=2),set(tunnel(tun_id=0x3e9,src=192.168.100.12,dst=192.168.100.11,flags(df|key))),set(eth(src=${DVR.C2},dst=${VM4})),set(ipv4(ttl=63)),vxlan-c0a8640b`);
  const o = ovsActions('C2', 'br-int', fields);
  assert.equal(o, `ct(zone=2),recirc(N) | ct(commit,zone=2),set(eth(src=${DVR.C2},dst=${VM4})),set(ipv4(ttl=63)),vxlan-c0a8640b`);
  const oIn = ovsActions('C1', 'br-tun', `in_port=2,tun_id=0x3e9,${icmp(DVR.C2, VM4, '10.0.11.20', '10.0.1.40', 63)}`);
  assert.equal(oIn, `set(eth(src=${GW_A})),ct(zone=2),recirc(N) | ct(commit,zone=2),vm4-host`);
  assert.equal(flowdActions('C1', 'br-tun', `in_port=2,tun_id=0x3e9,${icmp(DVR.C2, VM4, '10.0.11.20', '10.0.1.40', 63)}`), oIn);
});

test('ARP for the gateway 10.0.11.1 is answered locally, nothing reaches phys1', { skip }, () => {
  const out = both('C1', 'br-int', `in_port=10,dl_src=${VM1},dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_op=1,arp_spa=10.0.11.10,arp_tpa=10.0.11.1,arp_sha=${VM1}`);
  assert.equal(out, `set(eth(src=${GW_V1},dst=${VM1})),set(arp(sip=10.0.11.1,tip=10.0.11.10,op=2,sha=${GW_V1},tha=${VM1})),vm1-host`);
});

test('SNAT from a VLAN network: VM3 (C2, V2) -> 203.0.113.1 goes to sg-V2 on NN as DVR MAC of C2 with VID 102', { skip }, () => {
  assert.equal(both('C2', 'br-int', `in_port=10,${icmp(VM3, GW_V2, '10.0.12.30', '203.0.113.1', 64)}`),
    `ct(zone=1),recirc(N) | ct(commit,zone=1),set(eth(src=${DVR.C2},dst=${SG_V2})),set(ipv4(ttl=63)),push_vlan(vid=102,pcp=0),phys1`);
  // NN: VID 102 -> its local VLAN 2, into SNAT, out of ext1 as qg -> upstream.
  const fields = wireIn(102, icmp(DVR.C2, SG_V2, '10.0.12.30', '203.0.113.1', 63));
  const ct = 'pop_vlan,push_vlan(vid=2,pcp=0),ct(commit,zone=42165,nat(src=203.0.113.10))';
  assert.equal(both('NN', 'br-vlan', fields), `${ct},set(eth(src=fa:16:3e:ee:00:10,dst=52:54:00:ff:00:01)),pop_vlan,ext1`);
});

test('the wire never sees a local VLAN: a frame with an unknown VID, or untagged, from phys1 is dropped by br-int', { skip }, () => {
  assert.equal(both('C1', 'br-vlan', wireIn(1, icmp(VM2, VM1, '10.0.11.20', '10.0.11.10', 64))), 'drop');
  assert.equal(both('C1', 'br-vlan', `in_port=2,${icmp(VM2, VM1, '10.0.11.20', '10.0.11.10', 64)}`), 'drop');
});

test('flat network for VMs (V2 flat on physnet1): routed VM1 (C1, V1) -> VM3 (C2, V2) leaves untagged as DVR MAC of C1; C2 restores gwV2', { skip }, () => {
  assert.equal(both('flat:C1', 'br-int', `in_port=10,${icmp(VM1, GW_V1, '10.0.11.10', '10.0.12.30', 64)}`),
    `ct(zone=1),recirc(N) | ct(commit,zone=1),set(eth(src=${DVR.C1},dst=${VM3})),set(ipv4(ttl=63)),phys1`);
  assert.equal(both('flat:C2', 'br-vlan', `in_port=2,${icmp(DVR.C1, VM3, '10.0.11.10', '10.0.12.30', 63)}`),
    `set(eth(src=${GW_V2})),ct(zone=1),recirc(N) | ct(commit,zone=1),vm3-host`);
  // Switched on the flat network: VM3 -> an unknown MAC floods untagged out of phys1 only.
  assert.equal(both('flat:C2', 'br-int', `in_port=10,${icmp(VM3, 'fa:16:3e:00:12:99', '10.0.12.30', '10.0.12.99', 64)}`),
    'ct(zone=1),recirc(N) | ct(commit,zone=1),phys1');
});
