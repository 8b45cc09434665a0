/**
 * Where a batch's time goes in bench/inmem.ts scenarios (a) and (d): the stages of
 * Datapath.processBatch run as growing prefixes over the same ring of batches (extract; then
 * + emcLookup; + dpclsLookup; + execute and flush; + stats), each prefix timed over the whole
 * ring, and processBatch itself. A stage's cost is its prefix's time minus the one before; the
 * driver's (processBatch's own work: clock, revalidation and sweep checks, countRx, runAll,
 * the pass setup) is processBatch minus the longest prefix. Prefixes, rather than one stage
 * repeated over one batch, keep each stage's memory behaviour (d's cache misses) as it is in
 * the pipeline.
 *
 * Run: node --expose-gc dist/bench/stage-harness.js (HARNESS_REPS, 31 by default; HARNESS_ONLY=a|d).
 * Prints CPU ns per frame, the fastest of interleaved repetitions, and the bench's yardstick.
 * Not part of `npm run bench`: a measuring tool for the hot path's own work (issue 12).
 *
 * Measured (2026-12-05, this 2-core machine shared with other sessions at load 4.5-5.5; CPU ns
 * per frame, the fastest of 31; two runs each, main at ea3bda8 -> issue 12's p12v branch):
 *                          (a) L2 exact hit             (d) 100k flows, EMC 1/100
 *   extract                28.8 28.8 -> 28.2 29.1       49.0 49.5 -> 52.9 51.1  (frames and columns out of cache)
 *   emcLookup               5.5  5.9 ->  5.9  5.8        1.8 -3.2 ->  0.2  3.7  (d: bypassed)
 *   dpclsLookup             0.3  0.4 ->  0.3  0.3       26.5 26.9 -> 26.1 29.0
 *   execute, flush          6.9  7.3 ->  5.5  5.8       19.9 21.6 -> 14.7 12.7  (runs of one program)
 *   stats                   0.3  0.3 ->  0.2  0.4        7.7  0.3 ->  4.4  8.8
 *   driver (rest)           8.6  7.0 ->  9.5  6.9       11.4 20.9 -> 13.0  2.7
 *   processBatch           50.3 49.7 -> 49.7 48.3      116.3 116.0 -> 111.3 107.9
 * (a)'s fixed cost per batch, from processBatch over 8-, 16- and 32-frame batches (the fastest
 * of 41, fitted to fixed + n * per-frame): 140-210 ns before and after (4-7 ns per frame of a
 * full batch; one Date.now is 55 ns of it), against 44-52 ns per frame.
 */
import { Datapath } from '../src/dpif/datapath';
import { copyFrame, wordsOf } from '../src/dpif/ports';
import { BatchState } from '../src/dpif/batch-state';
import { RunCtx } from '../src/dpif/compile';
import { dpclsLookup, emcLookup, execute, extract, flush, selectAll, stats } from '../src/dpif/stages';
import { PacketBatch, HEADROOM } from '../src/netdev/batch';
import { BATCH, setupA, setupD, SinkNetdev } from './scenarios';

const REPS = Number(process.env.HARNESS_REPS ?? 31);

/** A scenario's datapath and its batches (bench/scenarios.ts; neither rewrites its frames). */
interface Case { readonly name: string; readonly dp: Datapath; readonly batches: PacketBatch[] }

function caseA(): Case {
  const s = setupA();
  return { name: 'a', dp: s.dp, batches: s.rings[0].batches };
}

function caseD(): Case {
  const s = setupD(100);
  return { name: 'd', dp: s.dp, batches: s.rings[0].batches };
}

/** The datapath's private parts a prefix needs (read once, outside the timed loops). */
interface Inside { readonly ctx: RunCtx; batchNo: number }

/** Runs stages [0, depth] of a pass over every batch of the case; depth 5: processBatch. */
function runPrefix(c: Case, st: BatchState, depth: number, nBatches: number): void {
  const dp = c.dp, inside = dp as unknown as Inside, bs = c.batches, ports = dp.ports;
  const mf = dp.megaflows, emc = dp.emc, now = Date.now();
  let r = 0;
  for (let k = 0; k < nBatches; k++) {
    const b = bs[r];
    r = r + 1 === bs.length ? 0 : r + 1;
    if (depth === 5) { dp.processBatch(b, BATCH); continue; }
    const bn = ++inside.batchNo;
    ports.batchNo = bn;
    ports.setInput(b);
    let n = selectAll(st, b, BATCH, ports);
    n = extract(st, b, n, null, dp.dropStop, ports);
    if (depth === 0) continue;
    const nEmcMiss = emcLookup(emc, mf, st, n);
    if (depth === 1) { emc.lookupsEnd(); continue; }
    const nMiss = dpclsLookup(mf, emc, st, nEmcMiss);
    if (nMiss !== 0) throw new Error(`${c.name}: ${nMiss} misses after warm-up`);
    if (depth === 2) continue;
    execute(st, b, n, bn, ports, inside.ctx, dp.dropAction);
    flush(ports);
    if (depth === 3) { st.nTouched = 0; continue; }
    stats(st, mf, now);
  }
}

function yardstick(batches: PacketBatch[], nBatches: number, out: PacketBatch, sink: SinkNetdev): void {
  const out32 = wordsOf(out.buf);
  let r = 0;
  for (let k = 0; k < nBatches; k++) {
    const b = batches[r];
    r = r + 1 === batches.length ? 0 : r + 1;
    const in32 = b.words;
    for (let i = 0; i < BATCH; i++) {
      const o = i * out.slotBytes + HEADROOM;
      copyFrame(out.buf, out32, o, b.buf, in32, b.off[i], b.len[i]);
      out.off[i] = o; out.len[i] = b.len[i];
    }
    sink.send(out, BATCH);
  }
}

/** CPU time of the process (ns): time the scheduler gives other processes is not counted. */
function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/**
 * The fastest repetition: on a machine shared with other work, the slices others' processes
 * disturbed are slower, never faster, so the minimum of many short ones is the stablest figure.
 */
function fastest(a: number[]): number {
  return Math.min(...a);
}

const NAMES = ['extract', '+ emcLookup', '+ dpclsLookup', '+ execute, flush', '+ stats', 'processBatch'];

function main(): void {
  const only = process.env.HARNESS_ONLY;
  const cases = [caseA, caseD].filter((f) => only === undefined || f.name.endsWith(only.toUpperCase())).map((f) => f());
  const st = new BatchState();
  const yOut = new PacketBatch(BATCH), ySink = new SinkNetdev('y');
  const gc = (globalThis as { gc?: () => void }).gc;
  const nFor = (c: Case): number => (c.name === 'a' ? 4000 : 3125); // about 10-20 ms each (d: the whole ring)
  for (const c of cases) for (let d = 5; d >= 0; d--) runPrefix(c, st, d, 10 * nFor(c)); // warm up; fill the caches
  const res = new Map<string, number[]>();
  const put = (k: string, ns: number) => { const l = res.get(k) ?? []; l.push(ns); res.set(k, l); };
  for (let rep = 0; rep < REPS; rep++) {
    if (gc) gc();
    let t0 = cpuNs();
    yardstick(cases[0].batches, 20000, yOut, ySink);
    put('y', (cpuNs() - t0) / (20000 * BATCH));
    for (const c of cases) {
      for (let d = 0; d <= 5; d++) {
        if (gc) gc();
        const n = nFor(c);
        t0 = cpuNs();
        runPrefix(c, st, d, n);
        put(`${c.name}${d}`, (cpuNs() - t0) / (n * BATCH));
      }
    }
  }
  const y = fastest(res.get('y') as number[]);
  console.log(`yardstick ${y.toFixed(1)} ns/frame; ${REPS} interleaved repetitions, fastest, ns/frame (x yardstick)`);
  for (const c of cases) {
    console.log(`(${c.name})  prefix             total     stage`);
    let prev = 0;
    for (let d = 0; d <= 5; d++) {
      const t = fastest(res.get(`${c.name}${d}`) as number[]);
      const label = d === 5 ? 'driver (rest)' : NAMES[d];
      console.log(`  ${NAMES[d].padEnd(18)} ${t.toFixed(1).padStart(7)} ${(t / y).toFixed(2).padStart(6)}x  ${label.padEnd(16)} ${(t - prev).toFixed(1).padStart(6)}`);
      prev = t;
    }
  }
}

main();
