/**
 * The firewall's generated br-int (issue 13) executed by Open vSwitch and by flowd, on random
 * packets across conntrack states (ofproto/trace --ct-next; flowd resumes each ct(table=T)
 * recirculation the same way, with the same ct_state).
 *
 * - examples/topologies/security-groups.yaml as written (remote groups: conjunctions) is
 *   loaded into OVS and must give the same outputs as the same topology with every remote
 *   group written out as /32 prefixes of its members (no conjunctions): conjunctions select
 *   exactly the members.
 * - Both topologies give the same outputs in flowd (its classifier's conjunctive matches) and
 *   in OVS, packet by packet.
 * Packets: from each local VM port (own, allowed-pair and spoofed sources; ARP; DHCP; tcp/udp
 * ports in and out of the rules' ranges; routed and same-network destinations) and from the
 * tunnel bridge to each local VM (member and non-member sources), with new, established,
 * established-reply, related and invalid conntrack states. Skipped without Open vSwitch.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ovsUnavailableReason } from '../helpers/ovs-oracle';
import { DvrOracleNode, DvrOracles } from '../helpers/dvr-oracle';
import { parseTopology, Topology } from '../../src/dvr/topology';
import { nodeConfig } from '../../src/dvr/node-config';
import { Ofproto } from '../../src/ofproto/ofproto';
import { formatTraceNodes, keyFromFields } from '../../src/ofproto/trace';
import { ruleCookie } from '../../src/dvr/firewall-rules';
import { DROP_COOKIE } from '../../src/dvr/firewall-flows';
import { xlate } from '../../src/ofproto/xlate';
import { RecircTable, recircTableOf } from '../../src/ofproto/recirc';
import { W_CT_MARK, W_CT_STATE, W_CT_ZONE, W_IN_PORT, W_RECIRC_ID } from '../../src/packet/flowkey-layout';
import { ofprotoOfNode } from '../helpers/node-ofproto';
import { rng } from '../helpers/rng';

const FILE = path.join(__dirname, '../../../examples/topologies/security-groups.yaml');
const TEXT = fs.readFileSync(FILE, 'utf8');
const skip = ovsUnavailableReason() ?? false;

/** The same topology with remote groups written out as their members' /32 prefixes. */
function expanded(): Topology {
  const rule = '      - { direction: ingress, ethertype: IPv4, protocol: tcp, port_range_min: 5000, port_range_max: 5000,\n          remote_group: web }\n';
  assert.ok(TEXT.includes(rule));
  const members = ['10.0.1.10', '10.0.1.11', '10.0.1.40', '10.0.1.100'];
  const rules = members.map((ip) => `      - { direction: ingress, ethertype: IPv4, protocol: tcp, port_range_min: 5000, port_range_max: 5000, remote_ip_prefix: ${ip}/32 }\n`).join('');
  // OTHER1's implicit default group: egress anywhere, ingress from its only member (its IPv6
  // ingress rule has no IPv6 member, so it accepts nothing and is left out).
  const other = '  - { name: OTHER1, project: other,';
  assert.ok(TEXT.includes(other));
  const text = TEXT.replace(rule, rules).replace(other, '  - { name: OTHER1, project: other, security_groups: [dflt],')
    .replace('\nports:\n', '\n  - { name: dflt, project: other, rules: [{ direction: egress }, { direction: egress, ethertype: IPv6 },\n' +
      '      { direction: ingress, remote_ip_prefix: 10.0.3.10/32 }] }\nports:\n');
  return parseTopology('expanded.yaml', text);
}

const CT_STATES = ['trk,new', 'trk,est', 'trk,est,rpl', 'trk,rel', 'trk,inv'];
const CT_BITS: Record<string, number> = { new: 0x01, est: 0x02, rel: 0x04, rpl: 0x08, inv: 0x10, trk: 0x20 };

interface Probe { fields: string; ct: string }

/** Random packets for `node` of `t` (see the header). */
function probes(t: Topology, node: string, n: number, seed: number): Probe[] {
  const rnd = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const cfg = nodeConfig(t, node);
  const local = cfg.plan.localPorts;
  const gw: Record<string, string> = { A: 'fa:16:3e:0a:00:01', B: 'fa:16:3e:0b:00:01' };
  const sources = ['10.0.1.10', '10.0.1.11', '10.0.1.30', '10.0.1.40', '10.0.1.100', '10.0.2.20', '10.0.2.21', '10.0.3.10', '10.0.7.7', '203.0.113.1'];
  const out: Probe[] = [];
  for (let i = 0; i < n; i++) {
    const lp = pick(local);
    const ip = lp.port.fixedIps[0].ip;
    // OVS wants the L3 fields before the L4 ones: l4(l3) = "proto,L3,ports".
    const l4 = (l3: string): string => {
      const proto = pick(['tcp', 'tcp', 'udp', 'icmp']);
      if (proto === 'icmp') return `icmp,${l3},icmp_type=${pick([8, 0, 3])},icmp_code=0`;
      return `${proto},${l3},${proto}_src=${pick([68, 67, 40000, 80])},${proto}_dst=${pick([80, 81, 5000, 5001, 67, 68, 22])}`;
    };
    let fields: string;
    if (rnd() < 0.5) {
      // From the VM.
      const mac = rnd() < 0.8 ? lp.port.mac : pick(['fa:16:3e:00:01:11', 'fa:16:3e:99:99:99']);
      const src = rnd() < 0.7 ? ip : pick(['10.0.1.100', '10.0.1.11', '0.0.0.0', '10.0.9.9']);
      const others = t.ports.filter((p) => p.network === lp.port.network && p.name !== lp.port.name);
      const routed = gw[lp.port.network] !== undefined && rnd() < 0.5;
      const dstPort = pick(t.ports.filter((p) => p.name !== lp.port.name));
      const dl = routed ? gw[lp.port.network] : (others.length > 0 ? pick(others).mac : 'ff:ff:ff:ff:ff:ff');
      const dstIp = routed ? dstPort.fixedIps[0].ip : (others.length > 0 ? others[0].fixedIps[0].ip : '10.0.1.250');
      if (rnd() < 0.15) {
        fields = `in_port=${lp.ofport},dl_src=${mac},dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_op=${pick([1, 2])},arp_spa=${src},arp_tpa=${dstIp},arp_sha=${mac}`;
      } else {
        fields = `in_port=${lp.ofport},dl_src=${mac},dl_dst=${dl},${l4(`nw_src=${src},nw_dst=${dstIp},nw_ttl=64`)}`;
      }
    } else {
      // From the tunnel bridge, on the VM's network.
      fields = `in_port=1,dl_vlan=${lp.lv},dl_src=fa:16:3e:77:77:77,dl_dst=${lp.port.mac},${l4(`nw_src=${pick(sources)},nw_dst=${ip},nw_ttl=63`)}`;
    }
    out.push({ fields, ct: pick(CT_STATES) });
  }
  return out;
}

/** Removes parenthesised parts, then keeps the plain numbers: the datapath output ports. */
function outputPorts(actions: string): number[] {
  let s = actions;
  for (let prev = ''; prev !== s;) { prev = s; s = s.replace(/\([^()]*\)/g, ''); }
  return s.split(',').filter((x) => /^\d+$/.test(x)).map(Number);
}

function ovsOutputs(n: DvrOracleNode, p: Probe): string {
  const raw = n.o.appctl(['ofproto/trace', 'br-int', p.fields, '--ct-next', p.ct, '--ct-next', p.ct, '--ct-next', p.ct]);
  const ports = new Map<number, string>();
  for (const [dp, v] of n.o.dpPorts()) ports.set(dp, v.name);
  const bridges = new Set(n.cfg.bridges.map((b) => b.name));
  const names: string[] = [];
  for (const m of raw.matchAll(/^Datapath actions: (.*)$/gm)) {
    for (const dp of outputPorts(m[1])) {
      const name = ports.get(dp) ?? `dp${dp}`;
      // OVS floods to each bridge's own internal port too; flowd's bridges have none.
      if (!bridges.has(name)) names.push(name);
    }
  }
  return names.sort().join(' ') || 'drop';
}

/** flowd's generated bridges of `node` in an Ofproto (as flowd-walks.test.ts builds them). */
function flowdNode(t: Topology, node: string): Ofproto {
  const cfg = nodeConfig(t, node);
  const op = ofprotoOfNode(cfg);
  return op;
}

/** flowd's outputs, each ct(table=T) resumed with ct_state `p.ct` (as --ct-next does). */
function flowdOutputs(op: Ofproto, p: Probe): string {
  return flowdRun(op, p).outputs;
}

/** flowd's outputs and trace text over every pass. */
function flowdRun(op: Ofproto, p: Probe): { outputs: string; trace: string } {
  const lines: string[] = [];
  const names = new Map(op.dpPorts().map((d) => [d.dpPort, d.port.name]));
  const state = p.ct.split(',').reduce((a, f) => a | CT_BITS[f], 0);
  const out: string[] = [];
  const br = op.bridges.get('br-int')!;
  let r = xlate({ ofproto: op, bridge: br, key: keyFromFields(p.fields, br), packetBytes: 0, nowMs: 0, sideEffects: false, trace: true });
  for (let pass = 0; pass < 4; pass++) {
    formatTraceNodes(r.trace ?? [], 0, lines);
    let next: { id: number; zone: number } | null = null;
    for (const a of r.actions) {
      if (a.kind === 'output') out.push(names.get(a.port) ?? `dp${a.port}`);
      if (a.kind === 'ct' && a.recircId !== 0) next = { id: a.recircId, zone: a.zone };
    }
    if (next === null) break;
    const st = recircTableOf(op).get(next.id)!;
    const key = r.finalKey.slice();
    RecircTable.thaw(st, key);
    key[W_IN_PORT] = st.inPort;
    key[W_RECIRC_ID] = next.id;
    key[W_CT_STATE] = state;
    key[W_CT_ZONE] = next.zone;
    key[W_CT_MARK] = 0;
    r = xlate({ ofproto: op, bridge: st.bridge, key, packetBytes: 0, nowMs: 0, sideEffects: false, tableId: st.tableId, trace: true });
  }
  return { outputs: out.sort().join(' ') || 'drop', trace: lines.join('\n') };
}

test('flowd trace names the rule that accepted a packet (its cookie) and why the firewall dropped one', () => {
  const t = parseTopology(FILE, TEXT);
  const op = flowdNode(t, 'C1');
  const web = t.securityGroups.find((g) => g.name === 'web')!;
  const http = { fields: 'in_port=1,dl_vlan=1,dl_src=fa:16:3e:77:77:77,dl_dst=fa:16:3e:00:01:10,tcp,nw_src=203.0.113.1,nw_dst=10.0.1.10,tcp_dst=80', ct: 'trk,new' };
  const ok = flowdRun(op, http);
  assert.equal(ok.outputs, 'web1-host');
  assert.ok(ok.trace.includes(`cookie ${ruleCookie(web, web.rules[0])}`), ok.trace);
  const ssh = flowdRun(op, { ...http, fields: http.fields.replace('tcp_dst=80', 'tcp_dst=22') });
  assert.equal(ssh.outputs, 'drop');
  assert.ok(ssh.trace.includes(`cookie ${DROP_COOKIE.noRule}`), ssh.trace);
  const spoof = flowdRun(op, { fields: 'in_port=10,dl_src=fa:16:3e:00:01:10,dl_dst=fa:16:3e:0a:00:01,tcp,nw_src=10.0.1.99,nw_dst=10.0.2.20,tcp_dst=80', ct: 'trk,new' });
  assert.equal(spoof.outputs, 'drop');
  assert.ok(spoof.trace.includes(`cookie ${DROP_COOKIE.spoofed}`), spoof.trace);
});

const oracles = new DvrOracles();
after(() => oracles.stopAll());

for (const [node, seed] of [['C1', 13], ['C2', 1313]] as const) {
  test(`firewall on ${node}: flowd = OVS, with conjunctions and with remote groups written out, 200 random packets x ct states`, { skip }, () => {
    const conj = parseTopology(FILE, TEXT);
    const flat = expanded();
    const oc = oracles.node(conj, `conj-${node}`, node);
    const of = oracles.node(flat, `flat-${node}`, node);
    assert.ok(oc.cfg.bridges[0].flows.some((f) => f.text.includes('conjunction(')), 'the written topology uses conjunctions');
    const fc = flowdNode(conj, node);
    const ff = flowdNode(flat, node);
    const ps = probes(conj, node, 200, seed);
    const seen = new Set<string>();
    for (const p of ps) {
      const a = ovsOutputs(oc, p);
      const b = ovsOutputs(of, p);
      assert.equal(a, b, `OVS, conjunctions vs expanded rules: ${p.fields} --ct-next ${p.ct}`);
      assert.equal(flowdOutputs(fc, p), a, `flowd vs OVS, conjunctions: ${p.fields} --ct-next ${p.ct}`);
      assert.equal(flowdOutputs(ff, p), b, `flowd vs OVS, expanded rules: ${p.fields} --ct-next ${p.ct}`);
      seen.add(a === 'drop' ? 'drop' : 'out');
    }
    assert.deepEqual([...seen].sort(), ['drop', 'out'], 'packets both pass and drop');
  });
}
