/**
 * The fast path (EMC + megaflows + compiled programs) and the slow path (xlate +
 * applyDpActions per packet, no caches) give byte-identical frames on the same ports, in the same
 * order, and the same rule counters, for random rules and packets over two patched bridges
 * (br-int -> br-tun ending in VXLAN), across rule adds/deletes, learn, NORMAL MAC learning and
 * hard timeouts between (and within) batches, and through conntrack: ct(table=3,zone,nat)
 * recirculation with SNAT committed on the way out and replies de-NATed on the way back. The
 * slow path recirculates as the datapath does, a pass per depth (each frame's ct runs when its
 * program reaches the ct action, the recirculated copy runs after every frame of the pass).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Datapath } from '../../src/dpif/datapath';
import { PacketBatch } from '../../src/netdev/batch';
import { Bridge } from '../../src/ofproto/bridge';
import { Ofproto } from '../../src/ofproto/ofproto';
import { BridgeView } from '../../src/ofproto/bridge-view';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { isDrop } from '../../src/packet/stop';
import {
  KEY_WORDS, W_IN_PORT, W_TUN_DST, W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC,
} from '../../src/packet/flowkey-layout';
import { ipv4SetChecksum, l4SetChecksum4 } from '../../src/packet/checksum';
import { ingressHash } from '../../src/dpif/flow-hash';
import { buildTunnelHeader, encapFill, TunnelDesc } from '../../src/dpif/tunnel-header';
import { OfprotoUpcaller } from '../../src/ofproto/upcall';
import { MemNetdev, toHex } from './helpers';
import { Conntrack, CT_DROP } from '../../src/dpif/conntrack';
import { applyDpActions } from '../../src/dpif/dp-actions';
import { recircTableOf, RecircTable } from '../../src/ofproto/recirc';
import { xlate } from '../../src/ofproto/xlate';
import { W_CT_MARK, W_CT_STATE, W_CT_ZONE, W_RECIRC_ID } from '../../src/packet/flowkey-layout';
import { dumpCache, perfStats } from '../../src/dpif/dump';

const LOCAL_IP = 0xc0a8640b, REMOTE_IP = 0xc0a8640c;
const DESC: TunnelDesc = { kind: 'vxlan', localIp: LOCAL_IP, remoteIp: REMOTE_IP, srcMac: 0x525400000011,
  nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };
const MACS = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', 'ff:ff:ff:ff:ff:ff'];
const IPS = ['10.0.0.1', '10.0.0.2', '10.0.1.5'];
const LEARN = 'learn(table=2,hard_timeout=2,priority=5,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[])';

interface World {
  ofp: Ofproto;
  bridges: Bridge[];
  /** dp port -> frames (hex) in output order */
  out: Map<number, string[]>;
  dp: Datapath | null;
  tunnelDp: number;
  /** The slow path's conntrack (the fast one is the datapath's). */
  ct: Conntrack;
}

/** `fromInput`: the fast path's ports take the input batch itself when they can (ports.ts emitLast). */
function makeWorld(fast: boolean, clock: { now: number }, fromInput = false): World {
  const brInt = new Bridge('br-int', 0, { defaultFlow: true });
  brInt.addPort({ name: 'p1', ofport: 1, kind: 'afpacket' });
  brInt.addPort({ name: 'p2', ofport: 2, kind: 'afpacket' });
  brInt.addPort({ name: 'p3', ofport: 3, kind: 'afpacket', tag: 5 });
  brInt.addPort({ name: 'patch-tun', ofport: 4, kind: 'patch', peerBridge: 'br-tun', peerPort: 'patch-int' });
  const brTun = new Bridge('br-tun', 0, { defaultFlow: false });
  brTun.addPort({ name: 'patch-int', ofport: 1, kind: 'patch', peerBridge: 'br-int', peerPort: 'patch-tun' });
  brTun.addPort({ name: 'vx', ofport: 2, kind: 'vxlan' });
  const ofp = new Ofproto();
  ofp.addBridge(new BridgeView(brInt));
  ofp.addBridge(new BridgeView(brTun, new Map([['vx', { localIp: LOCAL_IP, remoteIp: REMOTE_IP }]])));
  const w: World = { ofp, bridges: [brInt, brTun], out: new Map(), dp: null, tunnelDp: ofp.dpPort(ofp.bridges.get('br-tun')!, 2),
    ct: new Conntrack({ capacity: 256 }) };
  if (fast) {
    let dp: Datapath | null = null;
    const up = new OfprotoUpcaller(ofp, () => clock.now, () => dp?.destinationsChanged());
    dp = new Datapath({ upcaller: up, emcInsertInvProb: 2, maxUpcallsPerBatch: 256, nowMs: () => clock.now,
      conntrack: { capacity: 256 } });
    // The EMC's lookup policy (emc.ts) flips every few frames, its probe clock a deterministic
    // sequence of pass times: passes run with the EMC looked up and bypassed.
    let x = 1, t = 0;
    dp.emc.lookupPolicy = { runFrames: 9, probeFrames: 5, marginPct: 0, maxHitPct: 101, fillFrames: 3 };
    dp.emc.clock = () => { x = (x * 5 + 3) % 16; return (t += x); };
    for (const info of ofp.dpPorts()) {
      dp.addPort(info.dpPort, new MemNetdev(info.port.name, fromInput), info.port.kind === 'tunnel' ? DESC : null);
    }
    for (const b of w.bridges) b.onRulesChanged(() => dp?.rulesChanged());
    w.dp = dp;
  }
  return w;
}

/**
 * `reply`: the answer to a packet of ours: from IPS[nwDst] (its port tpDst) to port 12345 of the
 * SNAT address NAT_IP, so conntrack de-NATs it, or (`direct`) of the sender itself.
 */
interface Pkt {
  inPort: number; src: number; dst: number; nwDst: number; proto: number; vlan: boolean; tpDst: number; reply: boolean;
  /** The IPv4 source, IPS[nwSrc], chosen apart from the MAC source, so a batch holds frames that differ in it alone. */
  nwSrc: number;
  /** A reply straight to the source (no SNAT in between). */
  direct?: boolean;
}
const NAT_IP = '10.9.0.1';

/**
 * proto 1 is an ICMP echo request (a reply when `reply`) whose id is tpDst: echoes of two ids
 * have equal flow keys (the key holds type and code) but are two connections, so frames with
 * equal keys in one batch can get different answers from conntrack.
 */
function frameOf(p: Pkt): Uint8Array {
  const mac = (s: string) => s.split(':').map((x) => parseInt(x, 16));
  const ip = (s: string) => s.split('.').map(Number);
  const l4len = p.proto === 6 ? 20 : 8;
  const tag = p.vlan ? [0x81, 0x00, 0x00, 0x05] : [];
  const f = Uint8Array.from([...mac(MACS[p.dst]), ...mac(MACS[p.src]), ...tag, 0x08, 0x00,
    0x45, 0, 0, 20 + l4len + 4, 0, 1, 0, 0, 64, p.proto, 0, 0,
    ...ip(p.reply ? IPS[p.nwDst] : IPS[p.nwSrc]), ...ip(p.reply ? (p.direct ? IPS[p.nwSrc] : NAT_IP) : IPS[p.nwDst]),
    ...new Array(l4len + 4).fill(0)]);
  const l3 = 14 + tag.length, l4 = l3 + 20;
  const sport = p.reply ? p.tpDst : 12345, dport = p.reply ? 12345 : p.tpDst;
  if (p.proto === 1) { f[l4] = p.reply ? 0 : 8; f[l4 + 4] = p.tpDst >>> 8; f[l4 + 5] = p.tpDst & 0xff; f[l4 + 7] = 1; }
  else { f[l4] = sport >>> 8; f[l4 + 1] = sport & 0xff; f[l4 + 2] = dport >>> 8; f[l4 + 3] = dport & 0xff; }
  if (p.proto === 17) { f[l4 + 5] = 12; } else if (p.proto === 6) { f[l4 + 12] = 0x50; f[l4 + 13] = p.reply ? 0x12 : 0x02; }
  f[l4 + l4len] = 0xde; f[l4 + l4len + 1] = 0xad;
  ipv4SetChecksum(f, l3);
  l4SetChecksum4(f, l3, l4, l4len + 4, p.proto);
  return f;
}

const pktArb: fc.Arbitrary<Pkt> = fc.record({
  inPort: fc.integer({ min: 0, max: 3 }), src: fc.integer({ min: 0, max: 2 }), dst: fc.integer({ min: 0, max: 3 }),
  nwDst: fc.integer({ min: 0, max: 2 }), proto: fc.constantFrom(6, 17, 1), vlan: fc.boolean(),
  tpDst: fc.constantFrom(53, 80), reply: fc.boolean(), nwSrc: fc.integer({ min: 0, max: 2 }),
});

const intMatch = fc.record({
  inPort: fc.option(fc.integer({ min: 1, max: 3 })), dlDst: fc.option(fc.integer({ min: 0, max: 3 })),
  dlSrc: fc.option(fc.integer({ min: 0, max: 2 })), l3: fc.constantFrom('', 'ip', 'udp', 'tcp'),
  nwDst: fc.option(fc.constantFrom('10.0.0.2', '10.0.0.0/24', '10.0.1.5')), tpDst: fc.option(fc.constantFrom(53, 80)),
  nwSrc: fc.option(fc.constantFrom('10.0.0.1', '10.0.1.0/24')), vlan: fc.option(fc.constantFrom(5, 0xffff)),
}).map((m) => {
  const parts: string[] = [];
  if (m.inPort !== null) parts.push(`in_port=${m.inPort}`);
  if (m.dlDst !== null) parts.push(`dl_dst=${MACS[m.dlDst]}`);
  if (m.dlSrc !== null) parts.push(`dl_src=${MACS[m.dlSrc]}`);
  if (m.vlan !== null) parts.push(`dl_vlan=${m.vlan}`);
  if (m.l3 !== '') {
    parts.push(m.l3);
    if (m.nwDst !== null) parts.push(`nw_dst=${m.nwDst}`);
    if (m.nwSrc !== null) parts.push(`nw_src=${m.nwSrc}`);
    if (m.l3 !== 'ip' && m.tpDst !== null) parts.push(`tp_dst=${m.tpDst}`);
  }
  return { text: parts.join(','), l3: m.l3 };
});

const actArb = (l3: string) => fc.array(fc.constantFrom(
  'output:1', 'output:2', 'output:3', 'output:4', 'NORMAL', 'mod_dl_src:02:00:00:00:00:09', 'mod_dl_dst:02:00:00:00:00:02',
  'mod_vlan_vid:7', 'strip_vlan', 'resubmit(,1)', 'resubmit(,2)', 'in_port', LEARN,
  ...(l3 !== '' ? ['dec_ttl', 'mod_nw_dst:10.0.0.9', 'mod_nw_src:10.9.9.9', 'mod_nw_tos:8'] : []),
  ...(l3 === 'udp' || l3 === 'tcp' ? ['mod_tp_dst:99', 'mod_tp_src:7'] : [])), { minLength: 1, maxLength: 4 })
  .map((a) => a.join(','));

/**
 * What the first ct's list holds around it (before, after), so the datapath forks the frame
 * every way (compile.ts markInPlace, runProgram): nothing (the frame recirculates in its slot
 * with its key), an output after (in its slot too), rewrites before whose key words the program
 * keeps in step (VLAN tag pushed, changed or stripped, MACs, TTL, TOS, addresses: in its slot,
 * no second parse), a port rewritten before (in its slot, parsed again), a MAC rewritten after
 * (a copy recirculates).
 */
const CT_FORKS: readonly (readonly [string, string])[] = [
  ['', ''], ['', ',output:3'], ['mod_vlan_vid:5,', ''], ['', ',mod_dl_dst:02:00:00:00:00:98,output:3'],
  ['strip_vlan,', ''], ['mod_dl_src:02:00:00:00:00:09,dec_ttl,', ''], ['mod_nw_tos:8,mod_nw_src:10.9.9.8,mod_vlan_vid:5,', ''],
  ['mod_tp_dst:99,', ''], ['strip_vlan,mod_dl_dst:02:00:00:00:00:01,mod_vlan_vid:7,', ',output:3'],
];

/**
 * An SNAT router in br-int's tables 0 and 3 (as dvr/ builds one): every IP packet goes through
 * ct(table=3,zone,nat); new connections from p1 are committed with SNAT to NAT_IP and leave on
 * p2; established ones pass both ways (replies de-NATed by the first ct's nat). Or, without
 * nat, a stateful firewall whose established packets from p1 leave on p3, so a frame that
 * took the flow of another ct_state shows on the wrong port.
 */
const ctArb: fc.Arbitrary<Op> = fc.record({ prio: fc.integer({ min: 41, max: 45 }), zone: fc.constantFrom(3, 7), udp: fc.boolean(),
  nat: fc.boolean(), fork: fc.constantFrom(...CT_FORKS) })
  .map((r) => ({ kind: 'ct' as const, rules: [
    `table=0,priority=${r.prio},${r.udp ? 'udp' : 'ip'},ct_state=-trk,actions=${r.fork[0]}ct(table=3,zone=${r.zone}${r.nat ? ',nat' : ''})${r.fork[1]}`,
    `table=3,priority=10,ct_state=+trk+new,in_port=1,ip,actions=ct(commit,zone=${r.zone}${r.nat ? `,nat(src=${NAT_IP})` : ''}),output:2`,
    `table=3,priority=10,ct_state=+trk+est,in_port=1,ip,actions=output:${r.nat ? 2 : 3}`,
    `table=3,priority=10,ct_state=+trk+est,in_port=2,ip,actions=output:1`,
    `table=3,priority=5,ct_state=+trk+inv,ip,actions=output:3`,
  ] }));

type Op =
  | { kind: 'batch'; pkts: Pkt[] }
  | { kind: 'ct'; rules: string[] }
  /**
   * A conversation through the SNAT router: p out of p1, its reply in on p2, p twice more; then
   * p, the same to the other tp_dst, and p again in one batch (for an ICMP echo: the same flow
   * key, another connection, so frames of one key get different ct answers).
   */
  | { kind: 'conv'; pkt: Pkt }
  | { kind: 'add'; bridge: number; text: string }
  | { kind: 'del'; bridge: number; text: string }
  | { kind: 'tick'; ms: number };

const addArb: fc.Arbitrary<Op> = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 40 }), intMatch, fc.boolean())
  .chain(([table, prio, m, hard]) => actArb(m.l3).map((acts) => ({
    kind: 'add' as const, bridge: 0,
    text: `table=${table},priority=${prio},${hard ? 'hard_timeout=1,' : ''}${m.text}${m.text ? ',' : ''}actions=${acts}`,
  })));
const tunAdd: fc.Arbitrary<Op> = fc.record({ prio: fc.integer({ min: 1, max: 9 }), dst: fc.integer({ min: 0, max: 3 }),
  vni: fc.constantFrom(1001, 1002), strip: fc.boolean() })
  .map((r) => ({ kind: 'add' as const, bridge: 1,
    text: `table=0,priority=${r.prio},in_port=1,dl_dst=${MACS[r.dst]},actions=${r.strip ? 'strip_vlan,' : ''}set_tunnel:${r.vni},output:2` }));
/**
 * A batch of near-neighbours: each frame is the one before with one field changed, or the same
 * again, so frames that differ in a single field (an IPv4 address, a port, a MAC) meet in
 * consecutive slots, where the datapath's run checks (BatchState.sameKey) must tell them apart.
 */
const PKT_FIELDS = ['nwSrc', 'nwDst', 'tpDst', 'src', 'dst', 'proto', 'vlan', 'inPort', 'same'] as const;
const runBatchArb: fc.Arbitrary<Op> = fc.tuple(pktArb, fc.array(fc.tuple(fc.constantFrom(...PKT_FIELDS), pktArb), { minLength: 1, maxLength: 11 }))
  .map(([first, steps]) => {
    const pkts: Pkt[] = [first];
    for (const [field, other] of steps) {
      const prev = pkts[pkts.length - 1];
      pkts.push(field === 'same' ? { ...prev } : { ...prev, [field]: other[field] });
    }
    return { kind: 'batch' as const, pkts };
  });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.array(pktArb, { minLength: 1, maxLength: 12 }).map((pkts) => ({ kind: 'batch' as const, pkts })), weight: 5 },
  { arbitrary: runBatchArb, weight: 5 },
  { arbitrary: addArb, weight: 4 },
  { arbitrary: tunAdd, weight: 1 },
  { arbitrary: intMatch.map((m) => ({ kind: 'del' as const, bridge: 0, text: m.text })), weight: 1 },
  { arbitrary: fc.integer({ min: 100, max: 1500 }).map((ms) => ({ kind: 'tick' as const, ms })), weight: 1 },
  { arbitrary: ctArb, weight: 2 },
  { arbitrary: pktArb.map((p) => ({ kind: 'conv' as const, pkt: { ...p, inPort: 0, reply: false, vlan: false } })), weight: 2 },
);

function dpPortsOf(w: World): number[] { return w.ofp.dpPorts().map((i) => i.dpPort).filter((p) => p <= 4); }

/** A frame of the slow path's pass: bytes, dp in_port, and what recirculation gave it. */
interface SlowItem { frame: Uint8Array; dpIn: number; rid: number; ctState: number; ctZone: number; ctMark: number }

function runSlow(w: World, pkts: Pkt[], now: number): void {
  const key = new Uint32Array(KEY_WORDS);
  const offs = new Uint16Array(OFFS_WORDS);
  const ins = dpPortsOf(w);
  let pass: SlowItem[] = pkts.map((p) => ({ frame: frameOf(p), dpIn: ins[p.inPort % ins.length], rid: 0, ctState: 0, ctZone: 0, ctMark: 0 }));
  while (pass.length > 0) {
    const next: SlowItem[] = [];
    for (const it of pass) {
      const b = new PacketBatch(1);
      b.append(it.frame);
      b.inPort[0] = it.dpIn;
      const stop = extractKey(b.buf, b.off[0], b.len[0], it.dpIn, key, 0, offs, 0);
      if (isDrop(stop)) continue;
      key[W_TUN_ID_HI] = 0; key[W_TUN_ID_LO] = 0; key[W_TUN_SRC] = 0; key[W_TUN_DST] = 0;
      const hash = ingressHash(key, 0);
      const info = w.ofp.dpPortInfo(it.dpIn)!;
      key[W_IN_PORT] = info.port.ofport;
      const emit = (port: number, bb: PacketBatch, slot: number): void => {
        let bytes = bb.frame(slot).slice();
        if (port === w.tunnelDp) {
          const buf = new Uint8Array(bytes.length + 64);
          buf.set(bytes, 64);
          const o = encapFill(buf, 64, bytes.length, buildTunnelHeader(DESC, bb.tunIdLo[slot]), hash);
          bytes = buf.slice(o);
        }
        const l = w.out.get(port) ?? [];
        l.push(toHex(bytes));
        w.out.set(port, l);
      };
      // A recirculated frame resumes the translation ct(table=T) froze.
      let bridge = info.bridge, tableId = 0;
      if (it.rid !== 0) {
        key[W_RECIRC_ID] = it.rid; key[W_CT_STATE] = it.ctState; key[W_CT_ZONE] = it.ctZone; key[W_CT_MARK] = it.ctMark;
        const fz = recircTableOf(w.ofp).get(it.rid)!;
        key[W_IN_PORT] = fz.inPort;
        RecircTable.thaw(fz, key, 0);
        bridge = fz.bridge; tableId = fz.tableId;
      }
      const r = xlate({ ofproto: w.ofp, bridge, key, packetBytes: b.len[0], nowMs: now, sideEffects: true, tableId });
      applyDpActions(r.actions, b, 0, emit, (a, bb, slot) => {
        if (a.kind !== 'ct') return true;
        const mark = a.markValue ?? 0, mask = a.markMask ?? 0;
        if (a.recircId === 0) {
          return w.ct.execute(bb.buf, bb.off[slot], bb.len[slot], a.zone, a.commit, a.nat ?? null, mark, mask, now) !== CT_DROP;
        }
        const copy = bb.frame(slot).slice();
        const st = w.ct.execute(copy, 0, copy.length, a.zone, a.commit, a.nat ?? null, mark, mask, now);
        if (st !== CT_DROP) next.push({ frame: copy, dpIn: it.dpIn, rid: a.recircId, ctState: st, ctZone: a.zone & 0xffff, ctMark: w.ct.mark });
        return true;
      });
    }
    pass = next;
  }
}

function runFast(w: World, pkts: Pkt[]): void {
  const dp = w.dp!;
  const b = new PacketBatch(256);
  const ins = dpPortsOf(w);
  for (const p of pkts) { const i = b.append(frameOf(p)); b.inPort[i] = ins[p.inPort % ins.length]; }
  dp.processBatch(b, b.count);
  for (const port of dp.ports.list) {
    const nd = port.netdev as MemNetdev;
    if (nd.sent.length === 0) continue;
    const l = w.out.get(port.portNo) ?? [];
    for (const f of nd.sent) l.push(toHex(f));
    nd.sent.length = 0;
    w.out.set(port.portNo, l);
  }
}

function apply(w: World, op: Op, clock: { now: number }): void {
  const br = w.bridges[op.kind === 'add' || op.kind === 'del' ? op.bridge : 0];
  try {
    if (op.kind === 'ct') br.addFlows(op.rules.join('\n'), clock.now);
    else if (op.kind === 'add') br.addFlow(op.text, clock.now);
    else if (op.kind === 'del') br.delFlows(op.text === '' ? undefined : op.text, false);
  } catch (e) {
    if ((e as { code?: string }).code !== 'E_FLOW_SYNTAX') throw e;
  }
}

function counters(w: World): string[] {
  return w.bridges.flatMap((b) => b.allRules().map((r) => `${b.name} t${r.tableId} p${r.priority} n=${r.nPackets} b=${r.nBytes}`)).sort();
}

let nFramesCompared = 0;
const seen = { cacheHits: 0, upcalls: 0, tunnelFrames: 0, revalidations: 0, recirculated: 0, snatOut: 0, deNatReplies: 0, inputSends: 0,
  emcHits: 0, emcBypassed: 0 };

/** Counts SNATed frames (source NAT_IP) and de-NATed replies (to port 12345, not to NAT_IP). */
function countNat(frames: readonly string[]): void {
  for (const hex of frames) {
    const f = Buffer.from(hex, 'hex');
    const l3 = f.readUInt16BE(12) === 0x8100 ? 18 : 14;
    if (f.length < l3 + 24 || f.readUInt16BE(l3 - 2) !== 0x0800) continue;
    const src = f.readUInt32BE(l3 + 12), dst = f.readUInt32BE(l3 + 16), dport = f.readUInt16BE(l3 + 22);
    if (src === 0x0a090001) seen.snatOut++;
    if (dport === 12345 && dst !== 0x0a090001) seen.deNatReplies++;
  }
}

function check(ops: Op[], fromInput: boolean): void {
    const clockF = { now: 1000 }, clockS = { now: 1000 };
    const F = makeWorld(true, clockF, fromInput), S = makeWorld(false, clockS);
    for (const op of ops) {
      if (op.kind === 'tick') {
        clockF.now += op.ms; clockS.now += op.ms;
        for (const b of F.bridges) b.expire(clockF.now);
        for (const b of S.bridges) b.expire(clockS.now);
        continue;
      }
      if (op.kind === 'batch' || op.kind === 'conv') {
        const batches = op.kind === 'batch' ? [op.pkts]
          : [[op.pkt], [{ ...op.pkt, inPort: 1, reply: true }], [op.pkt, op.pkt], [{ ...op.pkt, inPort: 1, reply: true, direct: true }], [op.pkt],
            [op.pkt, { ...op.pkt, tpDst: op.pkt.tpDst === 53 ? 80 : 53 }, op.pkt]];
        for (const pkts of batches) {
          runFast(F, pkts);
          if (process.env.FASTPATH_DEBUG) console.log(dumpCache(F.dp!), perfStats(F.dp!));
          runSlow(S, pkts, clockS.now);
        }
        continue;
      }
      apply(F, op, clockF);
      apply(S, op, clockS);
    }
    const ports = new Set([...F.out.keys(), ...S.out.keys()]);
    for (const p of ports) {
      assert.deepEqual(F.out.get(p) ?? [], S.out.get(p) ?? [], `port ${p}`);
      nFramesCompared += (S.out.get(p) ?? []).length;
    }
    assert.deepEqual(counters(F), counters(S));
    const dp = F.dp!;
    seen.cacheHits += dp.nEmcHits + dp.nMegaflowHits;
    seen.emcHits += dp.nEmcHits;
    seen.emcBypassed += dp.emc.nBypassed;
    seen.upcalls += dp.nUpcalls;
    seen.revalidations += dp.nRevalidatedOut;
    seen.tunnelFrames += (F.out.get(F.tunnelDp) ?? []).length;
    seen.recirculated += dp.nRecirculated;
    seen.inputSends += dp.ports.nInputSends;
    for (const p of ports) if (p !== F.tunnelDp) countNat(F.out.get(p) ?? []);
}

test('property: fast path == slow path, frames byte for byte and rule counters, across rule changes, learn, NORMAL, timeouts and ct/SNAT recirculation', () => {
  if (process.env.FASTPATH_CASE) { check(JSON.parse(process.env.FASTPATH_CASE) as Op[], process.env.FASTPATH_FROM_INPUT === '1'); return; }
  // fromInput: half the runs give the fast path ports that may be sent the input batch itself.
  fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 14 }), fc.boolean(), (ops, fromInput) => {
    check(ops, fromInput);
  }), { numRuns: Number(process.env.FASTCHECK_RUNS ?? 300) });
  assert.ok(nFramesCompared > 100, `only ${nFramesCompared} frames compared`);
  // The run must have exercised what it claims to: cache hits, VXLAN output, revalidation,
  // recirculation through conntrack, SNAT on the way out and de-NAT on the way back.
  assert.ok(seen.cacheHits > 100 && seen.tunnelFrames > 10 && seen.revalidations > 10, JSON.stringify(seen));
  assert.ok(seen.emcHits > 10 && seen.emcBypassed > 10, JSON.stringify(seen));
  assert.ok(seen.recirculated > 50 && seen.snatOut > 10 && seen.deNatReplies > 5, JSON.stringify(seen));
  // ... and output batches that were the input batch itself.
  assert.ok(seen.inputSends > 20, JSON.stringify(seen));
  if (process.env.FASTPATH_DEBUG) console.log(JSON.stringify({ nFramesCompared, ...seen }));
});

test('learn: a megaflow revalidated after its own frame learned credits that frame to the rules of its translation', () => {
  // Found by the property above (seed -1346063703): the second frame's learn makes its own
  // megaflow's re-translation hit the learned rule (same drop program, so the megaflow stays);
  // the frame was translated before its learn and must not credit that rule.
  const learn = 'table=0,priority=1,actions=resubmit(,2),learn(table=2,hard_timeout=2,priority=5,' +
    'NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[])';
  const pkt = { inPort: 0, dst: 0, nwDst: 0, proto: 6, vlan: false, tpDst: 53, reply: false };
  check(JSON.parse(JSON.stringify([{ kind: 'add', bridge: 0, text: learn },
    { kind: 'batch', pkts: [{ ...pkt, src: 1, nwSrc: 1 }, { ...pkt, src: 0, nwSrc: 0 }] }])) as Op[], false);
});

test('learn: a megaflow a revalidation keeps does what its new translation does, not what its first upcall did', () => {
  // Found by the property above (seed 2128982010): the first frame's megaflow came from NORMAL
  // (drop: its destination was learned on its own port; the upcall learned its source); a rule
  // with a learn action then takes NORMAL's place with the same mask and program (drop), so the
  // revalidation kept the megaflow, and its next frame repeated NORMAL's learning instead of
  // learning the flow, which the slow path's translation of that frame did (rule t2 p5 missing).
  const rule = 'table=0,priority=7,in_port=2,dl_dst=02:00:00:00:00:02,dl_vlan=65535,actions=' + LEARN;
  const pkt = { inPort: 1, src: 1, dst: 1, nwDst: 0, proto: 6, vlan: false, tpDst: 53, reply: false, nwSrc: 0 };
  check(JSON.parse(JSON.stringify([{ kind: 'batch', pkts: [pkt] }, { kind: 'add', bridge: 0, text: rule },
    { kind: 'batch', pkts: [pkt] }])) as Op[], false);
});
