/**
 * Differential test against Open vSwitch itself (issue 4 "Done when"): the same flows go into a
 * private ovs-vswitchd (dummy datapath, test/helpers/ovs-oracle.ts) and into flowd; for many
 * packets `ovs-appctl ofproto/trace` and flowd's trace must agree on the final flow and on the
 * ports the packet leaves by (in order), and on the datapath actions once ports are named.
 *
 * Deliberate differences, normalised here and documented in src/ofproto/xlate.ts:
 * - OVS sends the dec_ttl exception to the controller (`userspace(...)` action); flowd drops it
 *   (counted as ttl_exceeded). userspace(...) (packet-ins) is removed from both lists.
 * - OVS bridges have a LOCAL port (the bridge's internal interface) that FLOOD and NORMAL
 *   reach; flowd's bridges have none, so outputs to LOCAL are removed from OVS's list.
 * - After a patch port OVS restores the packet to what it was before the crossing (e.g. a
 *   push_vlan right after the peer's pop_vlan); flowd diffs against the packet as it is, so its
 *   lists can be shorter. Lists are therefore compared by simulating them: the packet each
 *   output sends (fields set, VLAN stack) must be the same, in the same order.
 * - Tunnel ports are `dummy` here (OVS's native tunnelling needs routes and ARP); flowd's
 *   tunnel encapsulation metadata is covered by test/ofproto/xlate.test.ts.
 * - Equal-priority overlapping rules are undefined in OVS: random sets use distinct priorities.
 * - FLOOD/ALL/NORMAL flood in OVS's port hash order; flowd floods in ofport order. Where the
 *   flows flood, outputs are compared as multisets and the action lists are not compared.
 *
 * Skipped, with the reason, when Open vSwitch is not installed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Bridge, BridgePort } from '../../src/ofproto/bridge';
import { Ofproto } from '../../src/ofproto/ofproto';
import { BridgeView } from '../../src/ofproto/bridge-view';
import { traceFields, formatFlowKey, keyFromFields, packetMask } from '../../src/ofproto/trace';
import { formatDpActions } from '../../src/dpif/dp-actions';
import { xlate } from '../../src/ofproto/xlate';
import { dumpFlows } from '../../src/ofproto/dump';
import { KEY_WORDS } from '../../src/packet/flowkey-layout';
import { OvsOracle, OvsPort, ovsUnavailableReason } from '../helpers/ovs-oracle';
import { arbFlowSet, arbPacket, N_PORTS } from '../helpers/random-flows';

const skip = ovsUnavailableReason();
let oracle: OvsOracle | null = null;
function ovs(): OvsOracle {
  if (oracle === null) oracle = OvsOracle.start();
  return oracle;
}
after(() => { oracle?.stop(); });

/** Splits a datapath action list at top-level commas. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0, cur = '';
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) { out.push(cur); cur = ''; } else cur += c;
  }
  if (cur !== '') out.push(cur);
  return out;
}

/** OVS's datapath actions with ports named, LOCAL outputs and userspace() removed. */
function ovsActions(text: string, o: OvsOracle): string[] {
  if (text === 'drop') return [];
  const dp = o.dpPorts();
  const out: string[] = [];
  for (const a of splitTop(text)) {
    if (a.startsWith('userspace(')) continue;
    if (/^\d+$/.test(a)) {
      const p = dp.get(Number(a));
      if (p === undefined) throw new Error(`unknown OVS dp port ${a}`);
      if (p.ofport === 65534) continue;
      out.push(`out:${p.name}`);
    } else out.push(a);
  }
  return out;
}

function flowdActions(text: string, of: Ofproto): string[] {
  if (text === 'drop') return [];
  return splitTop(text).filter((a) => !a.startsWith('userspace(')) // packet-ins: compared by test/control/openflow/async.test.ts
    .map((a) => (/^\d+$/.test(a) ? `out:${of.dpPortInfo(Number(a))?.port.name}` : a));
}

/**
 * Runs a datapath action list (ports already named) on a symbolic packet and returns what each
 * output sends: the fields set so far and the VLAN stack. Two lists that put the same packets
 * on the same ports agree here even when one has redundant steps (OVS restores the packet with
 * push_vlan after a patch port; flowd diffs against the packet as it is).
 */
const PACKET_TO_DP: Readonly<Record<string, string>> = {
  dl_src: 'eth.src', dl_dst: 'eth.dst', nw_src: 'ipv4.src', nw_dst: 'ipv4.dst', nw_ttl: 'ipv4.ttl',
  arp_spa: 'arp.sip', arp_tpa: 'arp.tip', arp_op: 'arp.op', arp_sha: 'arp.sha', arp_tha: 'arp.tha',
  tcp_src: 'tcp.src', tcp_dst: 'tcp.dst', udp_src: 'udp.src', udp_dst: 'udp.dst',
};

function simulate(actions: string[], packet: string): string[] {
  const orig = new Map<string, string>();
  let vid = '', pcp = '0';
  for (const kv of packet.split(',')) {
    const [k, v] = kv.split('=');
    if (PACKET_TO_DP[k] !== undefined) orig.set(PACKET_TO_DP[k], v);
    if (k === 'dl_vlan') vid = v;
    if (k === 'dl_vlan_pcp') pcp = v;
  }
  const fields = new Map<string, string>();
  const vlans: string[] = vid === '' ? [] : [`vid=${vid},pcp=${pcp}`];
  const sent: string[] = [];
  for (const a of actions) {
    if (a.startsWith('out:')) {
      // A field set back to the packet's own value is no change.
      const changed = [...fields].filter(([k, v]) => orig.get(k) !== v).sort();
      sent.push(`${a}{${changed.map(([k, v]) => `${k}=${v}`).join(',')}|vlan=${vlans.join('/')}}`);
    } else if (a === 'pop_vlan') vlans.pop();
    else if (a.startsWith('push_vlan(')) vlans.push(a.slice(10, -1));
    else {
      const m = /^set\((\w+)\((.*)\)\)$/.exec(a);
      if (m === null) { sent.push(`?${a}`); continue; }
      for (const kv of m[2].split(',')) {
        const [k, v] = kv.split('=');
        if (k.startsWith('flags')) continue;
        fields.set(`${m[1]}.${k}`, v.replace(/\/0x[0-9a-f]+$/, ''));
      }
    }
  }
  return sent;
}

/** Drops trailing rewrites (they change nothing once nothing is output after them). */
function trimTail(a: string[]): string[] {
  let n = a.length;
  while (n > 0 && !a[n - 1].startsWith('out:')) n--;
  return a.slice(0, n);
}

interface BridgeDef { name: string; ports: (BridgePort & OvsPort)[]; flows: string }

function loadBoth(defs: BridgeDef[], o: OvsOracle, first: boolean): Ofproto {
  const of = new Ofproto();
  for (const d of defs) {
    if (first) o.addBridge(d.name, d.ports.map((p) => ({
      name: p.name, ofport: p.ofport, type: p.kind === 'patch' ? 'patch' : 'dummy', peer: p.peerPort, tag: p.tag,
    })));
    o.replaceFlows(d.name, d.flows);
    const b = new Bridge(d.name, 0, { defaultFlow: false });
    for (const p of d.ports) b.addPort({ name: p.name, ofport: p.ofport, kind: p.kind, tag: p.tag, peerBridge: p.peerBridge, peerPort: p.peerPort });
    b.addFlows(d.flows, 0);
    of.addBridge(new BridgeView(b));
  }
  return of;
}

/** How much the comparisons exercised (so a vacuous pass shows). */
const seen = { outputs: 0, rewrites: 0, exactLists: 0, finalChanged: 0 };
const seenPorts = new Set<string>();

interface Mismatch { bridge: string; packet: string; what: string; ovs: string; flowd: string; flows: string }

/** Traces `packet` in both; returns the differences (empty when they agree). */
function compare(o: OvsOracle, of: Ofproto, bridge: string, packet: string, flows: string): Mismatch[] {
  const t = o.trace(bridge, packet);
  const f = traceFields(of, bridge, packet, 0);
  const out: Mismatch[] = [];
  const oa = trimTail(ovsActions(t.datapathActions, o));
  const fa = trimTail(flowdActions(formatDpActions(f.result.actions), of));
  const floods = /FLOOD|ALL|NORMAL/.test(flows);
  const outs = (a: string[]): string => {
    const o2 = a.filter((x) => x.startsWith('out:'));
    return (floods ? o2.sort() : o2).join(',');
  };
  if (fa.some((x) => x.startsWith('out:'))) seen.outputs++;
  for (const x of fa) if (x.startsWith('out:')) seenPorts.add(x.slice(4));
  if (fa.some((x) => !x.startsWith('out:'))) seen.rewrites++;
  if (t.finalFlow !== 'unchanged') seen.finalChanged++;
  if (outs(oa) !== outs(fa)) out.push({ bridge, packet, what: 'output ports', ovs: outs(oa), flowd: outs(fa), flows });
  else {
    const so = simulate(oa, packet), sf = simulate(fa, packet);
    if (floods) { so.sort(); sf.sort(); }
    if (so.join(' ') !== sf.join(' ')) {
      out.push({ bridge, packet, what: 'packets sent', ovs: `${oa.join(',')}\n    ${so.join(' ')}`, flowd: `${fa.join(',')}\n    ${sf.join(' ')}`, flows });
    } else if (!floods && oa.join(',') === fa.join(',')) seen.exactLists++;
  }
  // Final flow: compare as keys over the packet's fields (text layout may differ in details).
  const br = of.bridges.get(bridge)!;
  const ovsFinalText = t.finalFlow === 'unchanged' ? packet : t.finalFlow.replace(/,?vlan_tci1=0x[0-9a-f]+/, '');
  const ovsKey = keyFromFields(ovsFinalText, br);
  // Fields either side has (registers set by one side only must show as a difference).
  const mask = packetMask(f.result.finalKey);
  const mask2 = packetMask(ovsKey);
  for (let w = 0; w < KEY_WORDS; w++) mask[w] |= mask2[w];
  let same = true;
  for (let w = 0; w < KEY_WORDS; w++) if (((ovsKey[w] ^ f.result.finalKey[w]) & mask[w]) !== 0) same = false;
  if (!same) out.push({ bridge, packet, what: 'final flow', ovs: t.finalFlow, flowd: formatFlowKey(f.result.finalKey), flows });
  return out;
}

function report(ms: Mismatch[]): string {
  return ms.slice(0, 5).map((m) => `${m.what} differ for ${m.bridge} ${m.packet}\n  ovs:   ${m.ovs}\n  flowd: ${m.flowd}\n  flows:\n${m.flows}`).join('\n\n');
}

test('random flow sets: flowd agrees with OVS on final flow and outputs', { skip: skip ?? false }, () => {
  const o = ovs();
  const sets = fc.sample(arbFlowSet({ distinctPriorities: true, maxFlows: 12 }), { seed: 4242, numRuns: 30 });
  const packets = fc.sample(arbPacket, { seed: 777, numRuns: 16 });
  const ports: (BridgePort & OvsPort)[] = [];
  for (let i = 1; i <= N_PORTS; i++) ports.push({ name: `p${i}`, ofport: i, kind: 'dummy' });
  const mismatches: Mismatch[] = [];
  let n = 0;
  sets.forEach((flows, i) => {
    const text = flows.join('\n');
    const of = loadBoth([{ name: 'br0', ports, flows: text }], o, i === 0);
    for (const p of packets) { mismatches.push(...compare(o, of, 'br0', p, text)); n++; }
  });
  assert.equal(n, 30 * 16);
  assert.equal(mismatches.length, 0, report(mismatches));
  // The sample must exercise outputs, rewrites and exact action lists, not only drops.
  assert.ok(seen.outputs > n / 4 && seen.rewrites > n / 20 && seen.exactLists > n / 4 && seen.finalChanged > n / 10,
    JSON.stringify(seen));
  console.log(JSON.stringify(seen));
});

// ---- Neutron-style br-int + br-tun of node C1 (../shared/dvr-reference.md) ---------------------

const GW_A = 'fa:16:3e:0a:00:01', GW_B = 'fa:16:3e:0b:00:01';
const VM1 = 'fa:16:3e:00:01:10', VM2 = 'fa:16:3e:00:02:20', VM3 = 'fa:16:3e:00:01:30';
const DVR1 = 'fa:16:3f:00:00:11', DVR2 = 'fa:16:3f:00:00:12', DVR3 = 'fa:16:3f:00:00:13';
const LEARN = 'learn(table=20,hard_timeout=300,priority=1,cookie=0x8f,NXM_OF_VLAN_TCI[0..11],' +
  'NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],' +
  'output:OXM_OF_IN_PORT[])';

const BR_INT_FLOWS = `
table=0,priority=65535,dl_vlan=4095,actions=drop
table=0,priority=2,in_port=1,dl_src=${DVR2},actions=goto_table:1
table=0,priority=2,in_port=1,dl_src=${DVR3},actions=goto_table:1
table=0,priority=5,in_port=1,dl_dst=${DVR1},actions=goto_table:3
table=0,priority=0,actions=goto_table:60
table=1,priority=20,dl_vlan=1,dl_dst=${VM1},actions=mod_dl_src:${GW_A},goto_table:60
table=1,priority=20,dl_vlan=1,dl_dst=${VM3},actions=mod_dl_src:${GW_A},goto_table:60
table=1,priority=1,actions=drop
table=3,priority=5,dl_vlan=1,dl_dst=${DVR1},actions=mod_dl_dst:${GW_A},goto_table:60
table=3,priority=1,actions=drop
table=60,priority=20,dl_vlan=1,dl_dst=${VM1},actions=strip_vlan,output:5
table=60,priority=20,dl_vlan=1,dl_dst=${VM3},actions=strip_vlan,output:6
table=60,priority=1,actions=NORMAL`;

const BR_TUN_FLOWS = `
table=0,priority=1,in_port=1,actions=goto_table:1
table=0,priority=1,in_port=2,actions=goto_table:4
table=0,priority=1,in_port=3,actions=goto_table:4
table=0,priority=0,actions=drop
table=1,priority=2,dl_vlan=1,dl_dst=${GW_A},actions=drop
table=1,priority=2,dl_vlan=2,dl_dst=${GW_B},actions=drop
table=1,priority=1,dl_vlan=1,dl_src=${GW_A},actions=mod_dl_src:${DVR1},goto_table:2
table=1,priority=1,dl_vlan=2,dl_src=${GW_B},actions=mod_dl_src:${DVR1},goto_table:2
table=1,priority=0,actions=goto_table:2
table=2,priority=1,arp,dl_dst=ff:ff:ff:ff:ff:ff,actions=goto_table:21
table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=goto_table:20
table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=goto_table:22
table=4,priority=1,tun_id=0x3e9,actions=mod_vlan_vid:1,goto_table:9
table=4,priority=1,tun_id=0x3ea,actions=mod_vlan_vid:2,goto_table:9
table=4,priority=0,actions=drop
table=9,priority=1,dl_src=${DVR2},actions=output:1
table=9,priority=1,dl_src=${DVR3},actions=output:1
table=9,priority=0,actions=goto_table:10
table=10,priority=1,actions=${LEARN},output:1
table=20,priority=2,dl_vlan=2,dl_dst=${VM2},actions=strip_vlan,load:0x3ea->NXM_NX_TUN_ID[],output:2
table=20,priority=0,actions=goto_table:22
table=21,priority=1,arp,dl_vlan=2,arp_tpa=10.0.2.20,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:${VM2},load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163e000220->NXM_NX_ARP_SHA[],load:0xa000214->NXM_OF_ARP_SPA[],IN_PORT
table=21,priority=0,actions=goto_table:22
table=22,priority=3,arp,dl_vlan=1,arp_tpa=10.0.1.1,actions=drop
table=22,priority=1,dl_vlan=1,actions=strip_vlan,load:0x3e9->NXM_NX_TUN_ID[],output:2,output:3
table=22,priority=1,dl_vlan=2,actions=strip_vlan,load:0x3ea->NXM_NX_TUN_ID[],output:2,output:3
table=22,priority=0,actions=drop`;

const NEUTRON: BridgeDef[] = [
  { name: 'br-int', flows: BR_INT_FLOWS, ports: [
    { name: 'patch-tun', ofport: 1, kind: 'patch', peerBridge: 'br-tun', peerPort: 'patch-int' },
    { name: 'tapvm1', ofport: 5, kind: 'dummy', tag: 1 }, { name: 'tapvm3', ofport: 6, kind: 'dummy', tag: 1 },
    { name: 'qr-b', ofport: 7, kind: 'dummy', tag: 2 }] },
  { name: 'br-tun', flows: BR_TUN_FLOWS, ports: [
    { name: 'patch-int', ofport: 1, kind: 'patch', peerBridge: 'br-int', peerPort: 'patch-tun' },
    { name: 'vxlan-c0a8640c', ofport: 2, kind: 'dummy' }, { name: 'vxlan-c0a8640d', ofport: 3, kind: 'dummy' }] },
];

const arbNeutronPacket = fc.record({
  where: fc.constantFrom('br-int:5', 'br-int:6', 'br-int:7', 'br-tun:2', 'br-tun:3'),
  tunId: fc.constantFrom('0x3e9', '0x3ea', '0x3eb'),
  src: fc.constantFrom(VM1, VM2, VM3, GW_A, GW_B, DVR2, DVR3),
  dst: fc.constantFrom(VM1, VM2, VM3, GW_A, GW_B, DVR1, 'ff:ff:ff:ff:ff:ff'),
  arp: fc.boolean(),
  tpa: fc.constantFrom('10.0.1.1', '10.0.2.20', '10.0.1.10'),
}).map((p) => {
  const [br, port] = p.where.split(':');
  const f = [p.arp ? 'arp' : 'icmp', `in_port=${port}`];
  if (br === 'br-tun') f.push(`tun_id=${p.tunId}`);
  f.push(`dl_src=${p.src}`, `dl_dst=${p.arp ? 'ff:ff:ff:ff:ff:ff' : p.dst}`);
  if (p.arp) f.push('arp_op=1', `arp_spa=10.0.1.10`, `arp_tpa=${p.tpa}`, `arp_sha=${p.src}`);
  else f.push('nw_src=10.0.1.10', 'nw_dst=10.0.2.20', 'nw_ttl=64', 'icmp_type=8');
  return { bridge: br, packet: f.join(',') };
});

test('Neutron br-int + br-tun (patch ports, NORMAL with access tags, learn, ARP responder) agree with OVS',
  { skip: skip ?? false }, () => {
    const o = ovs();
    const of = loadBoth(NEUTRON, o, true);
    const mismatches: Mismatch[] = [];
    const packets = fc.sample(arbNeutronPacket, { seed: 99, numRuns: 150 });
    seenPorts.clear();
    for (const p of packets) mismatches.push(...compare(o, of, p.bridge, p.packet, BR_INT_FLOWS + BR_TUN_FLOWS));
    assert.equal(mismatches.length, 0, report(mismatches));
    // Every kind of path was taken: to VMs, to the router port, out of both tunnels.
    assert.deepEqual([...seenPorts].sort(), ['qr-b', 'tapvm1', 'tapvm3', 'vxlan-c0a8640c', 'vxlan-c0a8640d']);
  });

test('learn (Neutron br-tun table 10) installs the same flow as OVS, dump-flows text and all',
  { skip: skip ?? false }, () => {
    const o = ovs();
    const flows = `table=0,priority=1,in_port=2,actions=mod_vlan_vid:2,resubmit(,10)
table=10,priority=1,actions=${LEARN},output:1`;
    const ports: (BridgePort & OvsPort)[] = [{ name: 'l-int', ofport: 1, kind: 'dummy' }, { name: 'l-vx', ofport: 2, kind: 'dummy' }];
    o.addBridge('br-learn', ports);
    o.addFlows('br-learn', flows);
    const pkt = `ip,in_port=2,tun_id=0x3ea,dl_src=${VM2},dl_dst=${VM1}`;
    // -generate runs the packet for real, so OVS learns.
    o.appctl(['ofproto/trace', 'br-learn', pkt, '-generate']);
    const ovsLine = o.dumpFlows('br-learn').split('\n').find((l) => l.includes(' table=20, '));
    const b = new Bridge('br-learn', 0, { defaultFlow: false });
    for (const p of ports) b.addPort(p);
    b.addFlows(flows, 0);
    const view = new BridgeView(b);
    const of = new Ofproto();
    of.addBridge(view);
    const r = xlate({ ofproto: of, bridge: view, key: keyFromFields(pkt, view), packetBytes: 60, nowMs: 0, sideEffects: true });
    assert.equal(r.nLearned, 1);
    const ours = dumpFlows(b, 0, { tableId: 20 });
    assert.equal(ours.length, 1);
    const strip = (l: string): string => l.replace(/duration=[0-9.]+s, /, '').trim();
    assert.equal(strip(ours[0]), strip(ovsLine ?? '(none)'));
  });

// Each case on a bridge of its own: OVS removes a deleted rule from its classifier only after an
// RCU grace period, so right after a del-flows the old rules' subtables may still be there, in
// their old order, and a tie would then go to the rule of the subtable made first for the case
// before (seen once under load: OVS out:t3 where a fresh bridge gives out:t2).
test('equal-priority overlaps: flowd picks the earliest inserted rule, as OVS does in practice', { skip: skip ?? false }, () => {
  const o = ovs();
  const pkt = 'tcp,in_port=1,nw_src=10.0.0.1,tcp_dst=80';
  const cases = [
    'priority=5,tcp,tp_dst=80,actions=output:2\npriority=5,ip,nw_src=10.0.0.1,actions=output:3',
    'priority=5,ip,nw_src=10.0.0.1,actions=output:2\npriority=5,tcp,tp_dst=80,actions=output:3',
    'priority=5,in_port=1,actions=output:2\npriority=5,tcp,tp_dst=80,actions=output:3',
    // The later rule's subtable exists first (made by a lower-priority rule).
    'priority=1,tcp,tp_dst=81,actions=drop\npriority=5,ip,nw_src=10.0.0.1,actions=output:2\npriority=5,tcp,tp_dst=80,actions=output:3',
  ];
  cases.forEach((flows, i) => {
    const name = `br-tie${i}`;
    const ports: (BridgePort & OvsPort)[] = [1, 2, 3].map((n) => ({ name: `tie${i}-${n}`, ofport: n, kind: 'dummy' }));
    const of = loadBoth([{ name, ports, flows }], o, true);
    assert.deepEqual(compare(o, of, name, pkt, flows), []);
    assert.equal(formatDpActions(traceFields(of, name, pkt, 0).result.actions), '2');
  });
});
