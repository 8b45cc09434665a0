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
import { DpAction } from '../src/dpif/dp-actions';
import { UpcallResult, Upcaller, StatsRule } from '../src/dpif/upcall';
import { copyFrame, wordsOf } from '../src/dpif/ports';
import { BatchState } from '../src/dpif/batch-state';
import { RunCtx } from '../src/dpif/compile';
import { dpclsLookup, emcLookup, execute, extract, flush, selectAll, stats } from '../src/dpif/stages';
import { PacketBatch, HEADROOM } from '../src/netdev/batch';
import { Netdev, NetdevStats } from '../src/netdev/netdev';
import { KEY_WORDS, W_DL_DST_HI, W_DL_DST_LO, W_IN_PORT } from '../src/packet/flowkey-layout';
import { ipv4SetChecksum } from '../src/packet/checksum';

const BATCH = 32;
const REPS = Number(process.env.HARNESS_REPS ?? 31);

class Sink implements Netdev {
  readonly kind = 'internal';
  readonly txFromInput = true;
  nPackets = 0;
  constructor(readonly name: string) {}
  recv(): number { return 0; }
  send(_b: PacketBatch, count: number): number { this.nPackets += count; return count; }
  stats(_o: NetdevStats): void { /* none */ }
  close(): void { /* none */ }
}

class Rule implements StatsRule { nPackets = 0; nBytes = 0; lastUsedMs = 0; }

class Fixed implements Upcaller {
  readonly rule = new Rule();
  constructor(readonly actions: DpAction[], readonly mask: Uint32Array) {}
  upcall(): UpcallResult { return { actions: this.actions, mask: this.mask, rules: [this.rule], cacheable: true }; }
  revalidate(): UpcallResult { return this.upcall(); }
}

function frame64(dstMac: number, srcMac: number, srcIp: number, dstIp: number): Uint8Array {
  const f = new Uint8Array(64);
  const dv = new DataView(f.buffer);
  dv.setUint16(0, Math.floor(dstMac / 2 ** 32)); dv.setUint32(2, dstMac >>> 0);
  dv.setUint16(6, Math.floor(srcMac / 2 ** 32)); dv.setUint32(8, srcMac >>> 0);
  dv.setUint16(12, 0x0800);
  f.set([0x45, 0, 0, 50, 0, 0, 0x40, 0, 64, 17], 14);
  dv.setUint32(26, srcIp); dv.setUint32(30, dstIp);
  ipv4SetChecksum(f, 14);
  dv.setUint16(34, 1000); dv.setUint16(36, 2000); dv.setUint16(38, 30);
  return f;
}

function ring(frames: Uint8Array[], inPort: number, slotBytes: number): PacketBatch[] {
  const out: PacketBatch[] = [];
  for (let s = 0; s < frames.length; s += BATCH) {
    const b = new PacketBatch(BATCH, slotBytes);
    for (let k = 0; k < BATCH; k++) { const i = b.append(frames[(s + k) % frames.length]); b.inPort[i] = inPort; }
    out.push(b);
  }
  return out;
}

function maskOf(words: [number, number][]): Uint32Array {
  const m = new Uint32Array(KEY_WORDS);
  for (const [w, v] of words) m[w] |= v;
  return m;
}

interface Case { readonly name: string; readonly dp: Datapath; readonly batches: PacketBatch[] }

function caseA(): Case {
  const dp = new Datapath({ upcaller: new Fixed([{ kind: 'output', port: 2 }], maskOf([[W_IN_PORT, 0xffffffff]])) });
  dp.addPort(1, new Sink('p1')); dp.addPort(2, new Sink('p2'));
  return { name: 'a', dp, batches: ring([frame64(0x020000000002, 0x020000000001, 0x0a000101, 0x0a000102)], 1, 512) };
}

function caseD(): Case {
  const mask = maskOf([[W_IN_PORT, 0xffffffff], [W_DL_DST_HI, 0xffff], [W_DL_DST_LO, 0xffffffff]]);
  const dp = new Datapath({ upcaller: new Fixed([{ kind: 'output', port: 2 }], mask), emcInsertInvProb: 100 });
  dp.addPort(1, new Sink('p1')); dp.addPort(2, new Sink('p2'));
  const frames: Uint8Array[] = [];
  for (let k = 0; k < 100000; k++) frames.push(frame64(0x020000000000 + (k & 15), 0x020000000001, 0x0a000000 + k, 0x0a100001));
  let x = 12345;
  for (let k = frames.length - 1; k > 0; k--) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; const j = x % (k + 1); const t = frames[k]; frames[k] = frames[j]; frames[j] = t; }
  return { name: 'd', dp, batches: ring(frames, 1, 256) };
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

function yardstick(batches: PacketBatch[], nBatches: number, out: PacketBatch, sink: Sink): void {
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
  const yOut = new PacketBatch(BATCH), ySink = new Sink('y');
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
