/**
 * Per-stage costs of the in-memory bench's tunnel scenarios (bench/inmem.ts (b) VXLAN encap and
 * (c) VXLAN decap, with (a) as the reference), for issue 12: the same datapath, frames and
 * restoring rings as inmem.ts (bench/scenarios.ts builds them for both), but the stages of one
 * pass (dpif/datapath.ts runPass and lookupAndRun) called here one by one with a clock read
 * between them, so each stage's share of a frame's cost shows. An empty stage measures what the
 * clock reads cost in the loop; it is subtracted from every stage. What processBatch costs
 * beyond the sum of the stages is the driver's own bookkeeping.
 *
 * Run by hand (not in npm run bench): node --expose-gc dist/bench/tunnel-stages.js
 * (STAGES_ONLY=a,b,c, STAGES_REPS, STAGES_BATCHES). Prints ns per frame per stage, medians and
 * minimums over the repetitions (the minimums move least on a shared machine). STAGES_HOT=1
 * times execute + flush alone over one batch in cache (CPU time); STAGES_RINGS=1 compares the
 * 32 rotating receive buffers with one reused buffer.
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
import { decapVxlan } from '../src/dpif/tunnel-header';
import { PacketBatch, HEADROOM } from '../src/netdev/batch';
import { BatchState, FlowPayload } from '../src/dpif/batch-state';
import { countRx, dpclsLookup, emcLookup, execute, extract, flush, selectAll, stats } from '../src/dpif/stages';
import { RunCtx } from '../src/dpif/compile';
import { Emc } from '../src/dpif/emc';
import { MegaflowCache } from '../src/dpif/megaflow';
import { BATCH, frame64, Ring, setupA, setupB, setupC } from './scenarios';

const REPS = Number(process.env.STAGES_REPS ?? 7);
const N_BATCHES = Number(process.env.STAGES_BATCHES ?? 20000);

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

/** A scenario as the stages see it: its datapath, its one ring, and whether its frames are decapsulated. */
interface Setup { readonly dp: Datapath; readonly ring: Ring; readonly decap: boolean }

/** bench/scenarios.ts's (a), (b) or (c), with its ring. */
function stagesOf(s: { dp: Datapath; rings: readonly Ring[]; decap: boolean }): Setup {
  return { dp: s.dp, ring: s.rings[0], decap: s.decap };
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
  const ring = new Ring([frame64(0x020000000002, 0x020000000001, 0x0a000101, 0x0a000102)], 1);
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
  if (only.includes('a')) setups.push(['a', stagesOf(setupA())]);
  if (only.includes('b')) setups.push(['b', stagesOf(setupB())]);
  if (only.includes('c')) setups.push(['c', stagesOf(setupC())]);
  for (const [, s] of setups) { whole(s, N_BATCHES); staged(s, N_BATCHES, new Float64Array(STAGES.length)); }
  if (process.env.STAGES_RINGS === '1') { // the 32 rotating buffers against one reused buffer, alternating
    for (const [name, s] of setups) {
      if (name === 'a') continue;
      const r = s.ring, one: Setup = { ...s, ring: new Ring(r.frames, r.inPort, r.slotBytes, true, true) };
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
