/**
 * Random OpenFlow rule sets and packets (fast-check arbitraries) for the megaflow property test
 * and the differential test against Open vSwitch. Flows are ovs-ofctl text, so the same set
 * loads into OVS (ovs-ofctl add-flows) and into flowd (flow-syntax.ts).
 *
 * Values are drawn from small pools so rules overlap and packets hit them. Priorities are
 * drawn with or without ties: `distinctPriorities` gives every rule of a table its own priority,
 * because OVS leaves equal-priority overlaps undefined (the differential test needs a defined
 * answer; the property test also draws ties).
 */
import fc from 'fast-check';
import { Bridge } from '../../src/ofproto/bridge';
import { Ofproto } from '../../src/ofproto/ofproto';
import { BridgeView } from '../../src/ofproto/bridge-view';

const MACS = ['fa:16:3e:00:00:01', 'fa:16:3e:00:00:02', 'fa:16:3e:00:00:03', 'ff:ff:ff:ff:ff:ff'];
const IPS = ['10.0.1.10', '10.0.1.11', '10.0.2.20', '192.168.7.1'];
const NETS = ['10.0.0.0/8', '10.0.1.0/24', '10.0.2.0/24', '10.0.1.10/32', '0.0.0.0/1'];
const TPS = [22, 53, 80, 8080];

export const N_PORTS = 4;
export const N_TABLES_USED = 4;

export interface FlowSetOptions {
  readonly distinctPriorities: boolean;
  readonly maxFlows: number;
}

/** `arb` with probability `pct`/100, else null. */
function maybe<T>(arb: fc.Arbitrary<T>, pct: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: 100 - pct, arbitrary: fc.constant(null) }, { weight: pct, arbitrary: arb });
}

const arbMatchItems = fc.record({
  inPort: maybe(fc.integer({ min: 1, max: N_PORTS }), 35),
  dlSrc: maybe(fc.constantFrom(...MACS.slice(0, 3)), 25),
  dlDstMcast: maybe(fc.boolean(), 15),
  dlDst: maybe(fc.constantFrom(...MACS), 25),
  vlan: maybe(fc.constantFrom('dl_vlan=5', 'dl_vlan=6', 'vlan_tci=0x0000/0x1000', 'vlan_tci=0x1000/0x1000'), 25),
  proto: fc.constantFrom('', '', '', 'ip', 'tcp', 'udp', 'arp', 'icmp'),
  nwSrc: maybe(fc.constantFrom(...NETS), 35),
  nwDst: maybe(fc.constantFrom(...NETS), 35),
  tpDst: maybe(fc.constantFrom(...TPS), 35),
  ttl: maybe(fc.constantFrom(1, 64), 15),
  reg0: maybe(fc.integer({ min: 0, max: 2 }), 15),
});

function matchText(m: {
  inPort: number | null; dlSrc: string | null; dlDstMcast: boolean | null; dlDst: string | null;
  vlan: string | null; proto: string; nwSrc: string | null; nwDst: string | null;
  tpDst: number | null; ttl: number | null; reg0: number | null;
}): string {
  const p: string[] = [];
  if (m.inPort !== null) p.push(`in_port=${m.inPort}`);
  if (m.dlSrc !== null) p.push(`dl_src=${m.dlSrc}`);
  if (m.dlDstMcast !== null) p.push(`dl_dst=${m.dlDstMcast ? '01' : '00'}:00:00:00:00:00/01:00:00:00:00:00`);
  else if (m.dlDst !== null) p.push(`dl_dst=${m.dlDst}`);
  if (m.vlan !== null) p.push(m.vlan);
  if (m.proto !== '') p.push(m.proto);
  if (m.proto === 'arp') {
    if (m.nwDst !== null) p.push(`arp_tpa=${m.nwDst}`);
  } else if (m.proto !== '') {
    if (m.nwSrc !== null) p.push(`nw_src=${m.nwSrc}`);
    if (m.nwDst !== null) p.push(`nw_dst=${m.nwDst}`);
    if (m.ttl !== null) p.push(`nw_ttl=${m.ttl}`);
    if ((m.proto === 'tcp' || m.proto === 'udp') && m.tpDst !== null) p.push(`tp_dst=${m.tpDst}`);
  }
  if (m.reg0 !== null) p.push(`reg0=${m.reg0}`);
  return p.join(',');
}

type ActGen = (table: number, proto: string) => string;
const arbAction: fc.Arbitrary<ActGen> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: N_PORTS }).map((n) => () => `output:${n}`) },
  { weight: 1, arbitrary: fc.constant(() => 'in_port') },
  { weight: 1, arbitrary: fc.constant(() => 'FLOOD') },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: N_TABLES_USED - 1 }).map((t) => () => `resubmit(,${t})`) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: N_PORTS }).map((p) => () => `resubmit(${p},${N_TABLES_USED - 1})`) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 2 }).map((v) => () => `set_field:${v}->reg0`) },
  { weight: 2, arbitrary: fc.constantFrom(...MACS.slice(0, 3)).map((m) => () => `mod_dl_src:${m}`) },
  { weight: 1, arbitrary: fc.constantFrom(...MACS.slice(0, 3)).map((m) => () => `set_field:${m}->eth_dst`) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 7 }).map((v) => () => `mod_vlan_vid:${v}`) },
  { weight: 2, arbitrary: fc.constant(() => 'strip_vlan') },
  { weight: 1, arbitrary: fc.constant(() => 'move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]') },
  { weight: 1, arbitrary: fc.constant(() => 'move:NXM_NX_REG0[0..1]->NXM_OF_VLAN_TCI[0..1]') },
  { weight: 2, arbitrary: fc.constantFrom(...IPS).map((ip) => (_t: number, proto: string) => (proto !== '' && proto !== 'arp' ? `mod_nw_dst:${ip}` : 'note:01')) },
  { weight: 2, arbitrary: fc.constant((_t: number, proto: string) => (proto !== '' && proto !== 'arp' ? 'dec_ttl' : 'note:02')) },
  { weight: 1, arbitrary: fc.constantFrom(...TPS).map((tp) => (_t: number, proto: string) => (proto === 'tcp' || proto === 'udp' ? `mod_tp_dst:${tp}` : 'note:03')) },
);

const arbFlow = fc.record({
  table: fc.integer({ min: 0, max: N_TABLES_USED - 1 }),
  priority: fc.integer({ min: 0, max: 40 }),
  match: arbMatchItems,
  actions: fc.array(arbAction, { minLength: 1, maxLength: 4 }),
  gotoNext: fc.boolean(),
});

/** A flows file (one ovs-ofctl flow per line). */
export function arbFlowSet(opts: FlowSetOptions): fc.Arbitrary<string[]> {
  const arbFallback = fc.array(fc.option(fc.array(arbAction, { minLength: 1, maxLength: 3 })),
    { minLength: N_TABLES_USED, maxLength: N_TABLES_USED });
  return fc.tuple(fc.array(arbFlow, { minLength: 1, maxLength: opts.maxFlows }), arbFallback).map(([fl, fb]) => {
    const used = new Set<string>();
    const out: string[] = [];
    for (const f of fl) {
      let prio = f.priority;
      if (opts.distinctPriorities) {
        while (used.has(`${f.table}/${prio}`)) prio++;
        used.add(`${f.table}/${prio}`);
      }
      const acts = f.actions.map((g) => g(f.table, f.match.proto));
      if (f.gotoNext && f.table < N_TABLES_USED - 1) acts.push(`goto_table:${f.table + 1}`);
      const m = matchText(f.match);
      out.push(`table=${f.table},priority=${prio}${m ? `,${m}` : ''},actions=${acts.length ? acts.join(',') : 'drop'}`);
    }
    // A catch-all per table (priority 0, never tied: drawn priorities go up from 0 only when
    // distinct, so skip 0 there) gives most packets somewhere to go.
    for (let t = 0; t < N_TABLES_USED; t++) {
      const acts = fb[t];
      if (acts === null || (opts.distinctPriorities && used.has(`${t}/0`))) continue;
      out.push(`table=${t},priority=0,actions=${acts.map((g) => g(t, '')).join(',')}`);
    }
    return out;
  });
}

/** A packet as ovs-appctl ofproto/trace flow fields. */
export const arbPacket: fc.Arbitrary<string> = fc.record({
  inPort: fc.integer({ min: 1, max: N_PORTS }),
  dlSrc: fc.constantFrom(...MACS.slice(0, 3)),
  dlDst: fc.constantFrom(...MACS),
  vlan: fc.constantFrom(0, 0, 5, 6),
  pcp: fc.constantFrom(0, 0, 3),
  proto: fc.constantFrom('tcp', 'udp', 'icmp', 'arp', 'ip'),
  nwSrc: fc.constantFrom(...IPS),
  nwDst: fc.constantFrom(...IPS),
  ttl: fc.constantFrom(0, 1, 2, 64),
  tpSrc: fc.constantFrom(...TPS),
  tpDst: fc.constantFrom(...TPS),
}).map((p) => {
  // The protocol shorthand goes first: OVS checks prerequisites as it reads the items.
  const f = [p.proto === 'ip' ? 'ip,nw_proto=47' : p.proto, `in_port=${p.inPort}`];
  if (p.vlan) f.push(`dl_vlan=${p.vlan}`, `dl_vlan_pcp=${p.pcp}`);
  f.push(`dl_src=${p.dlSrc}`, `dl_dst=${p.dlDst}`);
  if (p.proto === 'arp') {
    f.push(`arp_spa=${p.nwSrc}`, `arp_tpa=${p.nwDst}`, 'arp_op=1', `arp_sha=${p.dlSrc}`);
  } else {
    f.push(`nw_src=${p.nwSrc}`, `nw_dst=${p.nwDst}`, `nw_ttl=${p.ttl}`);
    // OVS's exact-flow parser takes tp_src as tcp_src: name the L4 fields by protocol.
    if (p.proto === 'tcp' || p.proto === 'udp') f.push(`${p.proto}_src=${p.tpSrc}`, `${p.proto}_dst=${p.tpDst}`);
    if (p.proto === 'icmp') f.push('icmp_type=8', 'icmp_code=0');
  }
  return f.join(',');
});

/** Bridge br0 with ports p1..pN_PORTS (ofports 1..N_PORTS) and `flows`, in an Ofproto of its own. */
export function bridgeOfFlows(flows: string[]): { o: Ofproto; br: BridgeView } {
  const b = new Bridge('br0', 0, { defaultFlow: false });
  for (let i = 1; i <= N_PORTS; i++) b.addPort({ name: `p${i}`, ofport: i, kind: 'dummy' });
  b.addFlows(flows.join('\n'), 0);
  const br = new BridgeView(b);
  const o = new Ofproto();
  o.addBridge(br);
  return { o, br };
}
