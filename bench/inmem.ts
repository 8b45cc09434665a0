/**
 * In-memory benchmark of the fast path (`npm run bench`): 64-byte frames, no I/O, one core.
 *
 * Scenarios (issue 5, item 7), each batch 32 frames (OVS's NETDEV_MAX_BURST):
 *  (a) L2 forward, exact-match hit: one flow, in_port -> output.
 *  (b) Neutron-like br-int -> br-tun egress ending in VXLAN encap: the composed datapath actions
 *      of a routed east-west frame (set eth src=DVR MAC/dst=VM MAC, ttl 63, set_tunnel VNI,
 *      output to the VXLAN port), 1k flows (VMs x peers), precomputed tunnel header.
 *  (c) VXLAN decap -> br-int delivery: outer frames, decapVxlan (dpif/tunnel-header.ts, standing
 *      in for the VXLAN netdev) then set eth src=gw MAC and output to the VM port; 1k flows.
 *  (d) 100k distinct flows (distinct IPv4 source, one megaflow per destination MAC): megaflow
 *      hits with the exact-match cache thrashing; run with EMC insertion 1/100 (default), and
 *      for the record 1/1 and 1/20 and EMC off.
 *  (e) Upcall rate against 10k rules in ofproto's classifier (ofproto/classifier.ts): every
 *      packet a new megaflow; caches flushed between repetitions.
 * Yardstick: a plain JS loop that copies the same frames into an output batch with the same copy
 * routine the datapath uses (dpif/ports.ts copyFrame, 32-bit words); each figure is printed with
 * its ratio to the yardstick.
 * Every repetition runs all scenarios in turn (interleaved), and the medians are reported.
 * Until ofproto/xlate.ts is wired into the daemon, (a)-(d) use a fixed-answer upcaller (the
 * cache-hit path does not call the slow path at all) and (e) calls the classifier directly.
 */
import { Datapath } from '../src/dpif/datapath';
import { DpAction } from '../src/dpif/dp-actions';
import { UpcallResult, Upcaller, StatsRule } from '../src/dpif/upcall';
import { copyFrame, wordsOf } from '../src/dpif/ports';
import { decapVxlan, TunnelDesc, buildTunnelHeader, encapFill } from '../src/dpif/tunnel-header';
import { PacketBatch, HEADROOM } from '../src/netdev/batch';
import { Netdev, NetdevStats } from '../src/netdev/netdev';
import {
  KEY_WORDS, W_DL_DST_HI, W_DL_DST_LO, W_DL_SRC_HI, W_DL_SRC_LO, W_IN_PORT, W_NW_DST, W_NW_MISC,
  W_TUN_ID_LO, W_VLAN_DLTYPE,
} from '../src/packet/flowkey-layout';
import { ipv4SetChecksum } from '../src/packet/checksum';
import { Classifier } from '../src/ofproto/classifier';
import { ClassifierRule, Match } from '../src/ofproto/types';

const BATCH = 32;
const REPS = Number(process.env.BENCH_REPS ?? 5);
const TARGET_MS = Number(process.env.BENCH_MS ?? 400);

class SinkNetdev implements Netdev {
  readonly kind = 'internal';
  nPackets = 0;
  constructor(readonly name: string) {}
  recv(): number { return 0; }
  send(_b: PacketBatch, count: number): number { this.nPackets += count; return count; }
  stats(_o: NetdevStats): void { /* none */ }
  close(): void { /* none */ }
}

class FixedRule implements StatsRule { nPackets = 0; nBytes = 0; lastUsedMs = 0; }

/** Answers every upcall with the same actions and mask. */
class FixedUpcaller implements Upcaller {
  readonly rule = new FixedRule();
  constructor(readonly actions: DpAction[], readonly mask: Uint32Array) {}
  upcall(): UpcallResult { return { actions: this.actions, mask: this.mask, rules: [this.rule], cacheable: true }; }
  revalidate(): UpcallResult { return this.upcall(); }
}

function maskOf(words: [number, number][]): Uint32Array {
  const m = new Uint32Array(KEY_WORDS);
  for (const [w, v] of words) m[w] |= v;
  return m;
}

/** Ethernet/IPv4/UDP, 64 bytes. */
function frame64(dstMac: number, srcMac: number, srcIp: number, dstIp: number): Uint8Array {
  const f = new Uint8Array(64);
  const mac = (o: number, m: number) => {
    const hi = Math.floor(m / 2 ** 32), lo = m >>> 0;
    f[o] = hi >>> 8; f[o + 1] = hi & 255; f[o + 2] = lo >>> 24; f[o + 3] = (lo >>> 16) & 255; f[o + 4] = (lo >>> 8) & 255; f[o + 5] = lo & 255;
  };
  mac(0, dstMac); mac(6, srcMac);
  f[12] = 8; f[13] = 0;
  const ip = 14;
  f[ip] = 0x45; f[ip + 3] = 50; f[ip + 6] = 0x40; f[ip + 8] = 64; f[ip + 9] = 17;
  for (let k = 0; k < 4; k++) { f[ip + 12 + k] = (srcIp >>> (24 - 8 * k)) & 255; f[ip + 16 + k] = (dstIp >>> (24 - 8 * k)) & 255; }
  ipv4SetChecksum(f, ip);
  f[34] = 0x03; f[35] = 0xe8; f[36] = 0x07; f[37] = 0xd0; f[38] = 0; f[39] = 30;
  return f;
}

/** A ring of prebuilt batches the scenario cycles through (frames are restored per batch). */
class Ring {
  readonly batches: PacketBatch[] = [];
  readonly off0: Uint32Array[] = [];
  readonly len0: Uint32Array[] = [];
  next = 0;
  constructor(frames: Uint8Array[], inPort: number, slotBytes = 512) {
    for (let s = 0; s < frames.length; s += BATCH) {
      const b = new PacketBatch(BATCH, slotBytes);
      for (let k = 0; k < BATCH; k++) { const i = b.append(frames[(s + k) % frames.length]); b.inPort[i] = inPort; }
      this.batches.push(b);
      this.off0.push(Uint32Array.from(b.off));
      this.len0.push(Uint32Array.from(b.len));
    }
  }
  /** The next batch with its frames where recv would have put them. */
  take(): PacketBatch {
    const k = this.next;
    this.next = k + 1 === this.batches.length ? 0 : k + 1;
    const b = this.batches[k];
    b.off.set(this.off0[k]);
    b.len.set(this.len0[k]);
    return b;
  }
}

interface Scenario {
  readonly name: string;
  readonly label: string;
  /** Runs `nBatches` batches; returns packets processed. */
  run(nBatches: number): number;
  /** Per-repetition reset (e: flush caches). */
  reset?(): void;
  unit?: 'pkt' | 'upcall';
}

const DVR_MAC_C1 = 0xfa163f000011, GW_B = 0xfa163e0b0001, VM2 = 0xfa163e000220;
const VXLAN_DESC: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c,
  srcMac: 0x525400000011, nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };

function scenarioA(): Scenario {
  const up = new FixedUpcaller([{ kind: 'output', port: 2 }], maskOf([[W_IN_PORT, 0xffffffff]]));
  const dp = new Datapath({ upcaller: up });
  dp.addPort(1, new SinkNetdev('p1')); dp.addPort(2, new SinkNetdev('p2'));
  const ring = new Ring([frame64(0x020000000002, 0x020000000001, 0x0a000101, 0x0a000102)], 1);
  return { name: 'a', label: '(a) L2 forward, exact hit', run(n) {
    for (let k = 0; k < n; k++) dp.processBatch(ring.take(), BATCH);
    return n * BATCH;
  } };
}

function scenarioB(): Scenario {
  const actions: DpAction[] = [
    { kind: 'set_eth', src: DVR_MAC_C1, dst: VM2 },
    { kind: 'set_ipv4', src: -1, dst: -1, tos: -1, tosMask: 0, ttl: 63 },
    { kind: 'set_tunnel', tunIdHi: 0, tunIdLo: 1002, src: 0xc0a8640b, dst: 0xc0a8640c },
    { kind: 'output', port: 9 },
  ];
  const mask = maskOf([[W_IN_PORT, 0xffffffff], [W_DL_SRC_HI, 0xffff], [W_DL_SRC_LO, 0xffffffff],
    [W_DL_DST_HI, 0xffff], [W_DL_DST_LO, 0xffffffff], [W_VLAN_DLTYPE, 0xffffffff], [W_NW_DST, 0xffffffff],
    [W_NW_MISC, 0x0000ff01]]);
  const dp = new Datapath({ upcaller: new FixedUpcaller(actions, mask) });
  dp.addPort(1, new SinkNetdev('vm1')); dp.addPort(9, new SinkNetdev('vxlan-c0a8640c'), VXLAN_DESC);
  const frames: Uint8Array[] = [];
  for (let k = 0; k < 1024; k++) frames.push(frame64(0xfa163e0a0001, 0xfa163e000100 + (k & 31), 0x0a000100 + (k & 31), 0x0a000200 + (k >>> 5)));
  const ring = new Ring(frames, 1);
  return { name: 'b', label: '(b) br-int -> br-tun, VXLAN encap', run(n) {
    for (let k = 0; k < n; k++) dp.processBatch(ring.take(), BATCH);
    return n * BATCH;
  } };
}

function scenarioC(): Scenario {
  const actions: DpAction[] = [{ kind: 'set_eth', src: GW_B, dst: -1 }, { kind: 'output', port: 2 }];
  const mask = maskOf([[W_IN_PORT, 0xffffffff], [W_TUN_ID_LO, 0xffffffff], [W_DL_SRC_HI, 0xffff], [W_DL_SRC_LO, 0xffffffff],
    [W_DL_DST_HI, 0xffff], [W_DL_DST_LO, 0xffffffff], [W_VLAN_DLTYPE, 0xffffffff]]);
  const dp = new Datapath({ upcaller: new FixedUpcaller(actions, mask) });
  dp.addPort(9, new SinkNetdev('vxlan-c0a8640b'), VXLAN_DESC); dp.addPort(2, new SinkNetdev('vm2'));
  const frames: Uint8Array[] = [];
  const hdr = buildTunnelHeader(VXLAN_DESC, 1002);
  for (let k = 0; k < 1024; k++) {
    const inner = frame64(VM2 - (k & 31), DVR_MAC_C1 + (k >>> 5), 0x0a000100 + (k >>> 5), 0x0a000214);
    const outer = new Uint8Array(64 + 50 + 50);
    outer.set(inner, 50);
    const o = encapFill(outer, 50, 64, hdr, k * 2654435761);
    frames.push(outer.subarray(o, o + 114));
  }
  const ring = new Ring(frames, 9);
  return { name: 'c', label: '(c) VXLAN decap -> br-int delivery', run(n) {
    for (let k = 0; k < n; k++) {
      const b = ring.take();
      for (let i = 0; i < BATCH; i++) decapVxlan(b, i);
      dp.processBatch(b, BATCH);
    }
    return n * BATCH;
  } };
}

function scenarioD(insertInvProb: number): Scenario {
  const mask = maskOf([[W_IN_PORT, 0xffffffff], [W_DL_DST_HI, 0xffff], [W_DL_DST_LO, 0xffffffff]]);
  const dp = new Datapath({ upcaller: new FixedUpcaller([{ kind: 'output', port: 2 }], mask), emcInsertInvProb: insertInvProb });
  dp.addPort(1, new SinkNetdev('p1')); dp.addPort(2, new SinkNetdev('p2'));
  const frames: Uint8Array[] = [];
  for (let k = 0; k < 100000; k++) frames.push(frame64(0x020000000000 + (k & 15), 0x020000000001, 0x0a000000 + k, 0x0a100001));
  // Shuffle so consecutive batches do not share flows.
  let x = 12345;
  for (let k = frames.length - 1; k > 0; k--) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; const j = x % (k + 1); const t = frames[k]; frames[k] = frames[j]; frames[j] = t; }
  const ring = new Ring(frames, 1, 256);
  const tag = insertInvProb === 0 ? 'EMC off' : `EMC insert 1/${insertInvProb}`;
  return { name: `d${insertInvProb}`, label: `(d) 100k flows, ${tag}`, run(n) {
    for (let k = 0; k < n; k++) dp.processBatch(ring.take(), BATCH);
    return n * BATCH;
  } };
}

interface BRule extends ClassifierRule { readonly port: number; nPackets: number; nBytes: number; lastUsedMs: number }

/** Upcaller over the real classifier with 10k rules (dl_dst exact per VM, plus subnets). */
class ClassifierUpcaller implements Upcaller {
  readonly cls = new Classifier<BRule>();
  /** Reused: the datapath copies the mask into its subtable and keeps no reference. */
  private readonly wc = new Uint32Array(KEY_WORDS);
  upcall(keys: Uint32Array, base: number): UpcallResult | null {
    const wc = this.wc;
    wc.fill(0);
    const r = this.cls.lookup(keys, base, wc);
    wc[W_IN_PORT] = 0xffffffff;
    const actions: DpAction[] = r === undefined ? [] : [{ kind: 'output', port: r.port }];
    return { actions, mask: wc, rules: r === undefined ? [] : [r], cacheable: true };
  }
  revalidate(keys: Uint32Array, base: number): UpcallResult | null { return this.upcall(keys, base); }
}

function scenarioE(): Scenario {
  const up = new ClassifierUpcaller();
  const mk = (words: [number, number, number][], priority: number, port: number): BRule => {
    const value = new Uint32Array(KEY_WORDS), mask = new Uint32Array(KEY_WORDS);
    for (const [w, v, m] of words) { value[w] = v & m; mask[w] = m; }
    const match: Match = { value, mask };
    return { match, priority, port, nPackets: 0, nBytes: 0, lastUsedMs: 0 };
  };
  for (let k = 0; k < 9000; k++) up.cls.insert(mk([[W_DL_DST_HI, 0x0200, 0xffff], [W_DL_DST_LO, 0x10000 + k, 0xffffffff]], 100, 2));
  for (let k = 0; k < 999; k++) up.cls.insert(mk([[W_VLAN_DLTYPE, 0x0800, 0xffff], [W_NW_DST, 0x0b000000 + (k << 8), 0xffffff00]], 50, 3));
  up.cls.insert(mk([], 0, 4));
  const dp = new Datapath({ upcaller: up, maxUpcallsPerBatch: BATCH });
  dp.addPort(1, new SinkNetdev('p1')); dp.addPort(2, new SinkNetdev('p2')); dp.addPort(3, new SinkNetdev('p3')); dp.addPort(4, new SinkNetdev('p4'));
  const frames: Uint8Array[] = [];
  for (let k = 0; k < 8192; k++) frames.push(frame64(0x020000010000 + k, 0x020000000001, 0x0a000001, 0x0b000000 + ((k % 999) << 8) + 1));
  const ring = new Ring(frames, 1);
  return { name: 'e', label: '(e) upcalls vs 10k rules', unit: 'upcall', reset() { dp.flushCaches(); ring.next = 0; }, run(n) {
    const before = dp.nUpcalls;
    for (let k = 0; k < n; k++) {
      if (ring.next === 0) dp.flushCaches();
      dp.processBatch(ring.take(), BATCH);
    }
    return dp.nUpcalls - before;
  } };
}

function yardstick(): Scenario {
  const ring = new Ring([frame64(0x020000000002, 0x020000000001, 0x0a000101, 0x0a000102)], 1);
  const out = new PacketBatch(BATCH);
  const out32 = wordsOf(out.buf);
  const in32 = wordsOf(ring.batches[0].buf);
  const sink = new SinkNetdev('y');
  return { name: 'y', label: 'yardstick: plain JS copy loop', run(n) {
    for (let k = 0; k < n; k++) {
      const b = ring.take();
      for (let i = 0; i < BATCH; i++) {
        const o = i * out.slotBytes + HEADROOM;
        copyFrame(out.buf, out32, o, b.buf, in32, b.off[i], b.len[i]);
        out.off[i] = o; out.len[i] = b.len[i];
      }
      sink.send(out, BATCH);
    }
    return n * BATCH;
  } };
}

/** Runs `s` for about TARGET_MS; returns ns per unit. */
function measure(s: Scenario, batchesPerMs: Map<string, number>): number {
  const guess = batchesPerMs.get(s.name) ?? 50;
  const nBatches = Math.max(16, Math.round(guess * TARGET_MS));
  if (s.reset) s.reset();
  const t0 = process.hrtime.bigint();
  const units = s.run(nBatches);
  const ns = Number(process.hrtime.bigint() - t0);
  batchesPerMs.set(s.name, nBatches / (ns / 1e6));
  return ns / Math.max(1, units);
}

function median(a: number[]): number {
  const b = a.slice().sort((x, y) => x - y);
  return b.length % 2 ? b[(b.length - 1) / 2] : (b[b.length / 2 - 1] + b[b.length / 2]) / 2;
}

function main(): void {
  const t0 = Date.now();
  const only = process.env.BENCH_ONLY; // e.g. "a" or "d100" for profiling one scenario
  const all: [string, () => Scenario][] = [['y', yardstick], ['a', scenarioA], ['b', scenarioB], ['c', scenarioC],
    ['d100', () => scenarioD(100)], ['d20', () => scenarioD(20)], ['d1', () => scenarioD(1)], ['d0', () => scenarioD(0)],
    ['e', scenarioE]];
  const scenarios = all.filter(([n]) => !only || n === only || n === 'y').map(([, make]) => make());
  const rate = new Map<string, number>();
  const results = new Map<string, number[]>();
  for (const s of scenarios) { s.run(200); measure(s, rate); } // warm up (JIT, caches)
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let r = 0; r < REPS; r++) {
    for (const s of scenarios) {
      if (gc) gc();
      const ns = measure(s, rate);
      const l = results.get(s.name) ?? [];
      l.push(ns);
      results.set(s.name, l);
    }
  }
  const y = median(results.get('y') as number[]);
  const targets: Record<string, string> = { a: '<= 60 ns', b: '<= 150 ns', c: '<= 150 ns', d100: '<= 300 ns', e: '>= 200k/s' };
  console.log(`flowd in-memory bench: ${BATCH}-frame batches of 64-byte frames, ${REPS} interleaved repetitions, medians`);
  console.log('scenario                               ns/unit      Mpps   x yardstick  target');
  for (const s of scenarios) {
    const ns = median(results.get(s.name) as number[]);
    const perS = 1e9 / ns;
    const rateText = s.unit === 'upcall' ? `${(perS / 1000).toFixed(0)}k upcalls/s` : `${(perS / 1e6).toFixed(2)}`;
    console.log(`${s.label.padEnd(38)} ${ns.toFixed(1).padStart(8)}  ${rateText.padStart(8)}  ${(ns / y).toFixed(2).padStart(10)}  ${targets[s.name] ?? ''}`);
  }
  console.log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main();
