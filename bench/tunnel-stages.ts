/**
 * Per-stage costs of the in-memory bench's tunnel scenarios (bench/inmem.ts (b) VXLAN encap and
 * (c) VXLAN decap, with (a) as the reference), for issue 12: the same datapath, frames and
 * restoring rings as inmem.ts (frame64, Ring, neutronBridges and (a)'s upcaller are copies of
 * inmem.ts's, which runs its main on import: keep them in step by hand), but the stages of one
 * pass (dpif/datapath.ts runPass and lookupAndRun) called here one by one with a clock read
 * between them, so each stage's share of a frame's cost shows. An empty stage measures what the
 * clock reads cost in the loop; it is subtracted from every stage. What processBatch costs
 * beyond the sum of the stages is the driver's own bookkeeping.
 *
 * Run by hand (not in npm run bench): node --expose-gc dist/bench/tunnel-stages.js
 * (STAGES_ONLY=a,b,c, STAGES_REPS, STAGES_BATCHES). Prints ns per frame per stage, medians and
 * minimums over the repetitions (the minimums move least on a shared machine). STAGES_HOT=1
 * times execute + flush alone over one batch in cache (CPU time); STAGES_RINGS=1 compares the
 * 32 rotating receive buffers with one reused buffer; STAGES_WARM=1 touches each frame's
 * headroom line in take().
 *
 * Figures (2026-12-05, this 2-core machine at load ~5, minimums of 9 repetitions, medians of 3
 * runs; yardstick 23.5 ns), ns per frame:
 *   stage                 (a)   (b)   (c)
 *   take (restore)          1    27    42    (b)/(c) restore 64/114-byte frames (recv's copy)
 *   decap (decapVxlan)      -     -     9
 *   extract                29    34    35    1k flows: a hash per frame (sameKey: one for (a))
 *   emcLookup               6    32    31    1k flows: a probe and key compare per frame
 *   execute                 6    38    13    (b): set_eth, TTL, VXLAN header; (c): set_eth
 *   the other stages        5     7     8    countRx, selectAll, dpcls, flush, stats
 *   processBatch loop      52   145   143
 * (b)'s execute + flush with its batch in cache (STAGES_HOT): 35 ns, of which set_eth 5, the TTL
 * step 8, the header's word stores 8, the UDP source port 2, the rest 12 ((a)'s whole execute
 * + flush, the run's bookkeeping and the gather, is 7). One reused receive buffer instead of 32
 * (STAGES_RINGS) takes about 5 ns off (b) and (c).
 */
import { Datapath } from '../src/dpif/datapath';
import { copyFrame, PortTable, wordsOf } from '../src/dpif/ports';
import { decapVxlan, TunnelDesc, buildTunnelHeader, encapFill } from '../src/dpif/tunnel-header';
import { PacketBatch, HEADROOM } from '../src/netdev/batch';
import { Netdev, NetdevStats } from '../src/netdev/netdev';
import { ipv4SetChecksum } from '../src/packet/checksum';
import { Bridge } from '../src/ofproto/bridge';
import { BridgeView, Ofproto, TunnelEnds, XlateBridge } from '../src/ofproto/ofproto';
import { OfprotoUpcaller } from '../src/ofproto/upcall';
import { BatchState, FlowPayload } from '../src/dpif/batch-state';
import { countRx, dpclsLookup, emcLookup, execute, extract, flush, selectAll, stats } from '../src/dpif/stages';
import { RunCtx } from '../src/dpif/compile';
import { Emc } from '../src/dpif/emc';
import { MegaflowCache } from '../src/dpif/megaflow';
import { UpcallResult, Upcaller, StatsRule } from '../src/dpif/upcall';
import { KEY_WORDS, W_IN_PORT } from '../src/packet/flowkey-layout';

const BATCH = 32;
const REPS = Number(process.env.STAGES_REPS ?? 7);
const N_BATCHES = Number(process.env.STAGES_BATCHES ?? 20000);
/** STAGES_WARM=1: take() also writes a word of each frame's headroom line (is encap's cost that line's miss?). */
const WARM_HEADROOM = process.env.STAGES_WARM === '1';

class SinkNetdev implements Netdev {
  readonly kind = 'internal';
  readonly txFromInput = true;
  nPackets = 0;
  constructor(readonly name: string) {}
  recv(): number { return 0; }
  send(_b: PacketBatch, count: number): number { this.nPackets += count; return count; }
  stats(_o: NetdevStats): void { /* none */ }
  close(): void { /* none */ }
}

/** inmem.ts frame64: Ethernet/IPv4/UDP, 64 bytes. */
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

/** inmem.ts Ring with restore. */
class Ring {
  readonly batches: PacketBatch[] = [];
  readonly off0: Uint32Array[] = [];
  readonly len0: Uint32Array[] = [];
  next = 0;
  private readonly pristine: Uint8Array[] = [];
  private readonly words: (Uint32Array | null)[] = [];
  private readonly pristineWords: (Uint32Array | null)[] = [];
  /**
   * oneBuffer: take() copies each batch's pristine frames into one batch buffer, reused for
   * every batch, as a port's recv fills the one batch its poll loop passes (control/switch.ts
   * poll), instead of restoring 32 batch buffers in turn (1 MB of destinations, as inmem.ts does).
   */
  constructor(frames: Uint8Array[], inPort: number, readonly restore = true, readonly oneBuffer = false) {
    for (let s = 0; s < frames.length; s += BATCH) {
      const b = new PacketBatch(BATCH, 512);
      for (let k = 0; k < BATCH; k++) { const i = b.append(frames[(s + k) % frames.length]); b.inPort[i] = inPort; }
      this.batches.push(b);
      this.off0.push(Uint32Array.from(b.off));
      this.len0.push(Uint32Array.from(b.len));
      const copy = b.buf.slice();
      this.pristine.push(copy);
      this.words.push(wordsOf(b.buf));
      this.pristineWords.push(wordsOf(copy));
    }
  }
  take(): PacketBatch {
    const k = this.next;
    this.next = k + 1 === this.batches.length ? 0 : k + 1;
    const b = this.batches[this.oneBuffer ? 0 : k];
    b.off.set(this.off0[k]);
    b.len.set(this.len0[k]);
    if (!this.restore) return b;
    const p = this.pristine[k];
    const w = this.words[this.oneBuffer ? 0 : k] as Uint32Array;
    for (let i = 0; i < b.count; i++) {
      copyFrame(b.buf, w, b.off[i], p, this.pristineWords[k], b.off[i], b.len[i]);
      if (WARM_HEADROOM) w[(b.off[i] - 16) >>> 2] = 0;
    }
    return b;
  }
}

const VM2 = 0xfa163e000220;
const VXLAN_DESC: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c,
  srcMac: 0x525400000011, nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };
const TUNNEL_ENDS = new Map<string, TunnelEnds>([['vxlan-c0a8640c', { localIp: 0xc0a8640b, remoteIp: 0xc0a8640c }]]);

/** inmem.ts neutronBridges. */
function neutronBridges(): { brInt: Bridge; brTun: Bridge } {
  const brInt = new Bridge('br-int', 0, { defaultFlow: false });
  brInt.addPort({ name: 'vm1', ofport: 1, kind: 'tap', tag: 1 });
  brInt.addPort({ name: 'patch-tun', ofport: 2, kind: 'patch', peerBridge: 'br-tun', peerPort: 'patch-int' });
  brInt.addPort({ name: 'vm2', ofport: 3, kind: 'tap', tag: 2 });
  brInt.addFlows([
    'table=0,priority=10,in_port=1,actions=mod_vlan_vid:1,resubmit(,60)',
    'table=60,priority=4,dl_vlan=1,dl_dst=fa:16:3e:0a:00:01,ip,nw_dst=10.0.2.0/24,actions=mod_dl_src:fa:16:3e:0b:00:01,mod_dl_dst:fa:16:3e:00:02:20,dec_ttl,mod_vlan_vid:2,output:2',
    'table=0,priority=2,in_port=2,dl_src=fa:16:3f:00:00:12,actions=resubmit(,1)',
    'table=1,priority=20,dl_vlan=2,dl_dst=fa:16:3e:00:02:20,actions=mod_dl_src:fa:16:3e:0b:00:01,resubmit(,60)',
    'table=60,priority=20,dl_vlan=2,dl_dst=fa:16:3e:00:02:20,actions=strip_vlan,output:3',
  ].join('\n'), 0);
  const brTun = new Bridge('br-tun', 0, { defaultFlow: false });
  brTun.addPort({ name: 'patch-int', ofport: 1, kind: 'patch', peerBridge: 'br-int', peerPort: 'patch-tun' });
  brTun.addPort({ name: 'vxlan-c0a8640c', ofport: 2, kind: 'vxlan' });
  brTun.addFlows([
    'table=0,priority=1,in_port=1,actions=resubmit(,1)',
    'table=0,priority=1,in_port=2,actions=resubmit(,4)',
    'table=1,priority=1,dl_vlan=2,dl_src=fa:16:3e:0b:00:01,actions=mod_dl_src:fa:16:3f:00:00:11,resubmit(,2)',
    'table=1,priority=0,actions=resubmit(,2)',
    'table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,20)',
    'table=20,priority=2,dl_vlan=2,dl_dst=fa:16:3e:00:02:20,actions=strip_vlan,set_tunnel:1002,output:2',
    'table=4,priority=1,tun_id=1002,actions=mod_vlan_vid:2,resubmit(,9)',
    'table=9,priority=1,dl_src=fa:16:3f:00:00:12,actions=output:1',
  ].join('\n'), 0);
  return { brInt, brTun };
}

/** The datapath's private parts the stages need (the driver's view of itself). */
interface DriverParts {
  readonly st: BatchState;
  readonly ctx: RunCtx;
  readonly megaflows: MegaflowCache<FlowPayload>;
  readonly emc: Emc;
  readonly ports: PortTable;
  startPass(batch: PacketBatch): number;
  upcall(batch: PacketBatch, count: number, nMiss: number, now: number): number;
}

interface Setup { dp: Datapath; ring: Ring; decap: boolean; frames: Uint8Array[]; inPort: number }

class FixedRule implements StatsRule { nPackets = 0; nBytes = 0; lastUsedMs = 0; }

/** inmem.ts (a): every upcall answers output:2 with a mask of in_port alone. */
class FixedUpcaller implements Upcaller {
  readonly rule = new FixedRule();
  readonly mask = new Uint32Array(KEY_WORDS);
  constructor() { this.mask[W_IN_PORT] = 0xffffffff; }
  upcall(): UpcallResult { return { actions: [{ kind: 'output', port: 2 }], mask: this.mask, rules: [this.rule], cacheable: true }; }
  revalidate(): UpcallResult { return this.upcall(); }
}

/** inmem.ts (a), the reference: one flow, frames not restored (nothing rewrites them). */
function setupA(): Setup {
  const dp = new Datapath({ upcaller: new FixedUpcaller() });
  dp.addPort(1, new SinkNetdev('p1')); dp.addPort(2, new SinkNetdev('p2'));
  const frames = [frame64(0x020000000002, 0x020000000001, 0x0a000101, 0x0a000102)];
  return { dp, ring: new Ring(frames, 1, false), decap: false, frames, inPort: 1 };
}

function setup(decap: boolean): Setup {
  const { brInt, brTun } = neutronBridges();
  const ofp = new Ofproto();
  ofp.addBridge(new BridgeView(brInt, new Map()));
  ofp.addBridge(new BridgeView(brTun, TUNNEL_ENDS));
  let dp: Datapath | null = null;
  const up = new OfprotoUpcaller(ofp, Date.now, () => dp?.rulesChanged());
  dp = new Datapath({ upcaller: up, maxUpcallsPerBatch: 64 });
  for (const info of ofp.dpPorts()) dp.addPort(info.dpPort, new SinkNetdev(info.port.name), info.port.kind === 'tunnel' ? VXLAN_DESC : null);
  const dpOf = (br: string, ofport: number) => ofp.dpPort(ofp.bridges.get(br) as XlateBridge, ofport);
  const frames: Uint8Array[] = [];
  if (!decap) {
    for (let k = 0; k < 1024; k++) frames.push(frame64(0xfa163e0a0001, 0xfa163e000110, 0x0a00010a, 0x0a000214));
    for (let k = 0; k < 1024; k++) { frames[k][37] = k & 0xff; frames[k][36] = 0x20 | (k >>> 8); }
    return { dp, ring: new Ring(frames, dpOf('br-int', 1)), decap, frames, inPort: dpOf('br-int', 1) };
  }
  const hdr = buildTunnelHeader({ ...VXLAN_DESC, localIp: 0xc0a8640c, remoteIp: 0xc0a8640b }, 1002);
  for (let k = 0; k < 1024; k++) {
    const inner = frame64(VM2, 0xfa163f000012, 0x0a00010a, 0x0a000214);
    inner[37] = k & 0xff; inner[36] = 0x20 | (k >>> 8);
    const outer = new Uint8Array(64 + 50 + 50);
    outer.set(inner, 50);
    const o = encapFill(outer, 50, 64, hdr, k * 2654435761);
    frames.push(outer.subarray(o, o + 114));
  }
  return { dp, ring: new Ring(frames, dpOf('br-tun', 2)), decap, frames, inPort: dpOf('br-tun', 2) };
}

const STAGES = ['(empty: clock reads)', 'take', 'decap', 'countRx', 'startPass+selectAll', 'extract', 'emcLookup', 'dpclsLookup', 'upcall',
  'execute', 'flush', 'stats'] as const;

/** Runs n batches stage by stage, adding each stage's ns to acc. */
function staged(s: Setup, n: number, acc: Float64Array): void {
  const d = s.dp as unknown as DriverParts;
  const st = d.st, ports = d.ports, mf = d.megaflows, emc = d.emc, ctx = d.ctx, dropAction = s.dp.dropAction;
  const now = Date.now();
  for (let k = 0; k < n; k++) {
    let t = performance.now(), u = 0;
    u = performance.now(); acc[0] += u - t; t = u;
    const b = s.ring.take();
    u = performance.now(); acc[1] += u - t; t = u;
    if (s.decap) for (let i = 0; i < BATCH; i++) decapVxlan(b, i);
    u = performance.now(); acc[2] += u - t; t = u;
    countRx(ports, b, BATCH);
    u = performance.now(); acc[3] += u - t; t = u;
    const bn = d.startPass(b);
    st.nRecirc = 0;
    let c = selectAll(st, b, BATCH, ports);
    u = performance.now(); acc[4] += u - t; t = u;
    c = extract(st, b, c, null, s.dp.dropStop, ports);
    u = performance.now(); acc[5] += u - t; t = u;
    const nEmcMiss = emcLookup(emc, mf, st, c);
    u = performance.now(); acc[6] += u - t; t = u;
    const nMiss = dpclsLookup(mf, emc, st, nEmcMiss);
    u = performance.now(); acc[7] += u - t; t = u;
    c = d.upcall(b, c, nMiss, now);
    u = performance.now(); acc[8] += u - t; t = u;
    execute(st, b, c, bn, ports, ctx, dropAction);
    u = performance.now(); acc[9] += u - t; t = u;
    flush(ports);
    u = performance.now(); acc[10] += u - t; t = u;
    stats(st, mf, now);
    u = performance.now(); acc[11] += u - t;
  }
}

/**
 * STAGES_HOT=1: the execute and flush stages alone, run again and again over one batch whose
 * earlier stages ran once (their rewrites set fixed values, so a frame rewritten again comes
 * out the same): the instructions' cost with the batch in cache, in CPU time. ns per frame.
 */
function executeHot(s: Setup, n: number): number {
  const d = s.dp as unknown as DriverParts;
  const st = d.st, ports = d.ports, mf = d.megaflows, emc = d.emc, ctx = d.ctx, dropAction = s.dp.dropAction;
  const b = s.ring.take();
  if (s.decap) for (let i = 0; i < BATCH; i++) decapVxlan(b, i);
  const bn = d.startPass(b);
  st.nRecirc = 0;
  let c = selectAll(st, b, BATCH, ports);
  c = extract(st, b, c, null, s.dp.dropStop, ports);
  c = d.upcall(b, c, dpclsLookup(mf, emc, st, emcLookup(emc, mf, st, c)), Date.now());
  const u0 = process.cpuUsage();
  for (let k = 0; k < n; k++) {
    execute(st, b, c, k === 0 ? bn : d.startPass(b), ports, ctx, dropAction);
    flush(ports);
  }
  const u = process.cpuUsage(u0);
  stats(st, mf, Date.now());
  return (u.user + u.system) * 1000 / (n * BATCH);
}

/** n batches through processBatch, as inmem.ts runs them; ns per frame. */
function whole(s: Setup, n: number): number {
  const t0 = performance.now();
  for (let k = 0; k < n; k++) {
    const b = s.ring.take();
    if (s.decap) for (let i = 0; i < BATCH; i++) decapVxlan(b, i);
    s.dp.processBatch(b, BATCH);
  }
  return (performance.now() - t0) * 1e6 / (n * BATCH);
}

/** The clock's cost per read (ns): subtracted from every stage. */
function clockNs(): number {
  const n = 200000;
  let x = 0;
  const t0 = performance.now();
  for (let k = 0; k < n; k++) x += performance.now();
  const ns = (performance.now() - t0) * 1e6 / n;
  return x > 0 ? ns : 0;
}

/** inmem.ts yardstick: the word copy of 32 frames into an output batch; ns per frame. */
function yardstick(n: number): number {
  const ring = new Ring([frame64(0x020000000002, 0x020000000001, 0x0a000101, 0x0a000102)], 1, false);
  const out = new PacketBatch(BATCH);
  const out32 = wordsOf(out.buf);
  const src = ring.batches[0], in32 = wordsOf(src.buf);
  const t0 = performance.now();
  for (let k = 0; k < n; k++) {
    const b = ring.take();
    for (let i = 0; i < BATCH; i++) {
      const o = i * out.slotBytes + HEADROOM;
      copyFrame(out.buf, out32, o, b.buf, in32, b.off[i], b.len[i]);
      out.off[i] = o; out.len[i] = b.len[i];
    }
  }
  return (performance.now() - t0) * 1e6 / (n * BATCH);
}

function min(a: number[]): number {
  return Math.min(...a);
}

function median(a: number[]): number {
  const b = a.slice().sort((x, y) => x - y);
  return b.length % 2 ? b[(b.length - 1) / 2] : (b[b.length / 2 - 1] + b[b.length / 2]) / 2;
}

function main(): void {
  const only = process.env.STAGES_ONLY ?? 'a,b,c';
  const setups: [string, Setup][] = [];
  if (only.includes('a')) setups.push(['a', setupA()]);
  if (only.includes('b')) setups.push(['b', setup(false)]);
  if (only.includes('c')) setups.push(['c', setup(true)]);
  for (const [, s] of setups) { whole(s, N_BATCHES); staged(s, N_BATCHES, new Float64Array(STAGES.length)); }
  if (process.env.STAGES_RINGS === '1') { // the 32 rotating buffers against one reused buffer, alternating
    for (const [name, s] of setups) {
      if (name === 'a') continue;
      const one: Setup = { ...s, ring: new Ring(s.frames, s.inPort, true, true) };
      whole(one, N_BATCHES);
      const r32: number[] = [], r1: number[] = [];
      for (let k = 0; k < REPS; k++) { r32.push(whole(s, N_BATCHES)); r1.push(whole(one, N_BATCHES)); }
      console.log(`(${name}) processBatch loop: 32 buffers ${median(r32).toFixed(1)} ns/frame (min ${min(r32).toFixed(1)}), one buffer ${median(r1).toFixed(1)} (min ${min(r1).toFixed(1)})`);
    }
    return;
  }
  if (process.env.STAGES_HOT === '1') {
    for (const [name, s] of setups) {
      executeHot(s, N_BATCHES);
      const r: number[] = [];
      for (let k = 0; k < REPS; k++) r.push(executeHot(s, N_BATCHES * 5));
      console.log(`(${name}) execute+flush, hot: median ${median(r).toFixed(1)} ns/frame, min ${min(r).toFixed(1)}`);
    }
    return;
  }
  const clk = clockNs();
  const ys: number[] = [];
  const per = new Map<string, { stages: number[][]; whole: number[] }>();
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let r = 0; r < REPS; r++) {
    if (gc) gc();
    ys.push(yardstick(N_BATCHES));
    for (const [name, s] of setups) {
      const e = per.get(name) ?? { stages: STAGES.map(() => []), whole: [] };
      if (gc) gc();
      e.whole.push(whole(s, N_BATCHES));
      const acc = new Float64Array(STAGES.length);
      if (gc) gc();
      staged(s, N_BATCHES, acc);
      // Each stage less the empty stage's time: what two clock reads cost in this loop.
      const empty = acc[0] * 1e6 / (N_BATCHES * BATCH);
      for (let k = 0; k < STAGES.length; k++) e.stages[k].push(k === 0 ? empty : acc[k] * 1e6 / (N_BATCHES * BATCH) - empty);
      per.set(name, e);
    }
  }
  const y = median(ys);
  console.log(`clock read ${clk.toFixed(1)} ns (${(clk / BATCH).toFixed(2)} ns/frame; each stage has the empty stage's time subtracted); yardstick ${y.toFixed(1)} ns/frame`);
  for (const [name, e] of per) {
    const w = median(e.whole);
    let sum = -median(e.stages[0]);
    console.log(`(${name}) processBatch loop ${w.toFixed(1)} ns/frame = ${(w / y).toFixed(2)}x (min ${min(e.whole).toFixed(1)}, yardstick min ${min(ys).toFixed(1)})`);
    for (let k = 0; k < STAGES.length; k++) {
      const m = median(e.stages[k]);
      sum += m;
      console.log(`  ${STAGES[k].padEnd(22)} ${m.toFixed(1).padStart(7)} ns  ${(m / y).toFixed(2).padStart(5)}x  (min ${min(e.stages[k]).toFixed(1)})`);
    }
    console.log(`  ${'sum of stages'.padEnd(22)} ${sum.toFixed(1).padStart(7)} ns  ${(sum / y).toFixed(2).padStart(5)}x; driver rest ${(w - sum).toFixed(1)} ns`);
  }
}

main();
