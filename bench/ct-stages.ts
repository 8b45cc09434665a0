/**
 * Where scenarios (f) and (g) of bench/inmem.ts spend their time, stage by stage and pass by
 * pass (issue 12: the recirculation passes of ct). Not part of `npm run bench`: run by hand,
 *   node dist/bench/ct-stages.js            (BENCH_ONLY=f or g, BENCH_MS per measurement)
 *
 * Two measurements per scenario:
 *  1. Batch-size fit: wall time per batch for batches of 8, 16, 24 and 32 frames (interleaved,
 *     medians), fitted to fixed + n * per-frame: what a batch costs whatever its size, and
 *     what each frame adds.
 *  2. Stage table: every stage function of dpif/stages.ts and Datapath's upcall wrapped by a
 *     timer (performance.now around the call), attributed to the pass it ran in (the input
 *     pass, or the recirculation pass at its depth); the timer's own cost, measured on an
 *     empty function, is subtracted per call. The wrappers slow the whole (inlining across
 *     them is lost), so read the table for shares, the fit for totals.
 * The scenarios are bench/inmem.ts's, built by bench/scenarios.ts; caseF, caseG and runBatches
 * are exported for A/B scripts that load two builds into one process.
 */
import { Datapath } from '../src/dpif/datapath';
import * as stages from '../src/dpif/stages';
import { BATCH, nextBatch, Setup, setupF, setupG } from './scenarios';

const MS = Number(process.env.BENCH_MS ?? 300);

/** A scenario of bench/scenarios.ts under its name. */
export interface Case extends Setup { readonly name: string }

export function caseF(): Case {
  return { name: 'f', ...setupF() };
}

export function caseG(): Case {
  return { name: 'g', ...setupG() };
}

export function runBatches(c: Case, nBatches: number, n: number): void {
  for (let k = 0; k < nBatches; k++) c.dp.processBatch(nextBatch(c, k, n), n);
}

function median(a: number[]): number {
  const s = a.slice().sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** ns per batch of n frames, over about MS ms. */
function timeBatches(c: Case, n: number): number {
  const nb = Math.max(64, Math.round(MS * 200 / n)) & ~1;
  const t0 = process.hrtime.bigint();
  runBatches(c, nb, n);
  return Number(process.hrtime.bigint() - t0) / nb;
}

function fit(c: Case): void {
  const sizes = [8, 16, 24, 32];
  const res = new Map<number, number[]>(sizes.map((n) => [n, []]));
  for (const n of sizes) timeBatches(c, n); // warm
  for (let r = 0; r < 5; r++) for (const n of sizes) (res.get(n) as number[]).push(timeBatches(c, n));
  const xs = sizes, ys = sizes.map((n) => median(res.get(n) as number[]));
  const mx = xs.reduce((s, x) => s + x, 0) / xs.length, my = ys.reduce((s, y) => s + y, 0) / ys.length;
  let sxy = 0, sxx = 0;
  for (let k = 0; k < xs.length; k++) { sxy += (xs[k] - mx) * (ys[k] - my); sxx += (xs[k] - mx) ** 2; }
  const slope = sxy / sxx, icpt = my - slope * mx;
  console.log(`${c.name}: ns/batch by size ${sizes.map((n, k) => `${n}:${ys[k].toFixed(0)}`).join(' ')}` +
    ` -> fixed ${icpt.toFixed(0)} ns/batch + ${slope.toFixed(1)} ns/frame (32-frame batch ${(ys[3] / 32).toFixed(1)} ns/frame)`);
}

// ---- stage table ------------------------------------------------------------------------------

const NAMES: string[] = [];
const PASSES = ['in', 'rc1', 'rc2', 'rc3', 'rc4', 'rc5', 'rc6'];
const acc = new Float64Array(64 * PASSES.length);
/** Per (pass, stage) the time of each call of the current measurement (medians: preemption on a shared machine hits a few calls hard). */
const SAMPLES = 20000;
const samples: Float64Array[] = [];
const nSamples = new Int32Array(64 * PASSES.length);
let pass = 0;
let timerCost = 0;
let whole = 0;

type Fn = (...args: never[]) => unknown;

function timed<F extends Fn>(name: string, fn: F): F {
  const id = NAMES.length;
  NAMES.push(name);
  const w = function (this: unknown, ...args: never[]): unknown {
    const t0 = performance.now();
    const r = fn.apply(this, args);
    const dt = (performance.now() - t0) * 1e6 - timerCost, x = pass * 64 + id;
    acc[x] += dt;
    if (nSamples[x] < SAMPLES) samples[x][nSamples[x]++] = dt;
    return r;
  };
  return w as unknown as F;
}

function wrapAll(): void {
  for (let x = 0; x < 64 * PASSES.length; x++) samples.push(new Float64Array(SAMPLES));
  const s = stages as unknown as Record<string, Fn>;
  for (const name of ['selectAll', 'countRx', 'extract', 'hash', 'emcLookup', 'dpclsLookup', 'execute', 'flush', 'stats',
    'selectRecirculated', 'reparse', 'takeQueuedCt', 'conntrack']) s[name] = timed(name, s[name]);
  const proto = Datapath.prototype as unknown as Record<string, Fn>;
  proto.upcall = timed('upcall', proto.upcall);
  const runPass = proto.runPass, runRecircPass = proto.runRecircPass, processBatch = proto.processBatch;
  proto.runPass = function (this: unknown, ...a: never[]): unknown { pass = 0; return runPass.apply(this, a); };
  proto.runRecircPass = function (this: unknown, ...a: never[]): unknown { pass++; return runRecircPass.apply(this, a); };
  proto.processBatch = function (this: unknown, ...a: never[]): unknown {
    pass = 0;
    const t0 = performance.now();
    const r = processBatch.apply(this, a);
    whole += (performance.now() - t0) * 1e6 - timerCost;
    return r;
  };
}

function calibrateTimer(): void {
  const noop = (x: number): number => x + 1;
  const f = timed('noop', noop as unknown as Fn) as unknown as (x: number) => number;
  for (let k = 0; k < 2e6; k++) f(k);
  acc.fill(0);
  for (let k = 0; k < 2e6; k++) f(k);
  timerCost = acc[NAMES.indexOf('noop')] / 2e6;
  acc.fill(0);
  nSamples.fill(0);
}

/** Per stage ns per batch at batch size n, medians of 5 runs. */
function stageRun(c: Case, n: number): { per: Float64Array; whole: number; rc: number } {
  const nb = 20000;
  const runs: Float64Array[] = [], wholes: number[] = [];
  const rc0 = c.dp.nRecirculated, p0 = c.dp.nPackets;
  for (let r = 0; r < 5; r++) {
    acc.fill(0); whole = 0; nSamples.fill(0);
    runBatches(c, nb, n);
    // Per stage the median call, times its calls per batch.
    runs.push(acc.map((_v, x) => nSamples[x] === 0 ? 0 : median(Array.from(samples[x].subarray(0, nSamples[x]))) * nSamples[x] / nb));
    wholes.push(whole / nb);
  }
  const per = new Float64Array(acc.length);
  for (let x = 0; x < acc.length; x++) per[x] = median(runs.map((a) => a[x]));
  return { per, whole: median(wholes), rc: (c.dp.nRecirculated - rc0) / (c.dp.nPackets - p0) };
}

function table(c: Case): void {
  runBatches(c, 20000, BATCH);
  const s8 = stageRun(c, 8), s32 = stageRun(c, 32);
  console.log(`${c.name}: stage table, timer cost ${timerCost.toFixed(0)} ns/call subtracted; fit of 8- and 32-frame batches:`);
  console.log('  pass stage              ns/batch@32  ns/frame@32   fixed ns/batch  + ns/frame');
  const rows: [string, number, number, number][] = [];
  for (let x = 0; x < acc.length; x++) {
    const a = s8.per[x], b = s32.per[x];
    if (a === 0 && b === 0) continue;
    const slope = (b - a) / 24;
    rows.push([`${PASSES[Math.floor(x / 64)]} ${NAMES[x % 64]}`, b, b - 32 * slope, slope]);
  }
  let sum = 0;
  for (const [k, b, f, sl] of rows.sort((x, y) => y[1] - x[1])) {
    sum += b;
    console.log(`  ${k.padEnd(24)} ${b.toFixed(0).padStart(6)} ${(b / 32).toFixed(1).padStart(10)} ${f.toFixed(0).padStart(14)} ${sl.toFixed(1).padStart(10)}`);
  }
  console.log(`  ${'sum of stages'.padEnd(24)} ${sum.toFixed(0).padStart(6)}; processBatch ${s32.whole.toFixed(0)} ns/batch@32, ` +
    `${s8.whole.toFixed(0)}@8 (the rest: driver, ct sweep, clock, wrappers)`);
  console.log(`  recirculations per input frame: ${s32.rc.toFixed(2)}`);
}

function main(): void {
  const only = process.env.BENCH_ONLY ?? 'f,g';
  const cases = [['f', caseF], ['g', caseG]].filter(([n]) => only.split(',').includes(n as string))
    .map(([, mk]) => (mk as () => Case)());
  if (process.env.STAGES === 'loop') { // for --cpu-prof: 32-frame batches for BENCH_MS each
    for (const c of cases) { const t0 = Date.now(); while (Date.now() - t0 < MS) runBatches(c, 1000, BATCH); }
    return;
  }
  if (process.env.STAGES !== 'only') for (const c of cases) fit(c);
  if (process.env.STAGES === 'no') return;
  wrapAll();
  calibrateTimer();
  for (const c of cases) table(c);
}

if (require.main === module) main();
