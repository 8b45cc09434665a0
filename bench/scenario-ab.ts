/**
 * In-process A/B of the scenarios of bench/inmem.ts between two builds (issue 12): the figure
 * that resolves a change to one stage, and checks it does not slow the other scenarios. Both
 * builds' compiled trees load into one node process (each its own modules, so V8 compiles each
 * apart), each builds its own scenario (bench/scenarios.ts; (d) with EMC insertion 1/100, so
 * the EMC's lookup policy bypasses it), warms it up, and the two run in interleaved slices of
 * batches; the figure is the median over the slices of the time ratio B/A:
 *   whole:   Datapath.processBatch, what `npm run bench` times ((e) with its caches flushed
 *            whenever its ring starts over: every frame an upcall, as inmem.ts runs it);
 *   lookups: (d) only, selectAll + extract + emcLookup + dpclsLookup (dpif/stages.ts) over the
 *            ring, the part of a pass the megaflow lookup is in, with extract's cache misses as
 *            they are in the pipeline (the frames of (d) are 51 MB of batches, out of every cache).
 * Load from other processes hits both builds of a slice alike, which is why this resolves
 * differences of 1-2 % that `npm run bench` on a shared machine cannot (its runs of one build
 * move by 10 % and more). Loading first or second biases a build by 2-5 %, so each pair runs
 * in two processes, A first then B first, and the pair's figure is the geometric mean of B/A
 * and 1 / (A/B). Not part of `npm run bench`: run by hand,
 *   node --expose-gc dist/bench/scenario-ab.js DIR_A DIR_B [pairs] [d,a,b,c,e,f,g]
 * where DIR_A and DIR_B are checkouts with dist/ built (e.g. /work/wt/base and this one).
 * Environment: SLICES (600), NB (batches per slice, 100).
 * (One tool for what bench/ct-ab.ts ((f), (g)) and bench/dpcls-ab.ts ((d)) measured before
 * 2026-12-05 22:00 UTC; the notes' figures of that day name them.)
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';

type Scenarios = typeof import('./scenarios');
type Stages = typeof import('../src/dpif/stages');
type BatchStateMod = typeof import('../src/dpif/batch-state');

const SLICES = Number(process.env.SLICES ?? 600);
const NB = Number(process.env.NB ?? 100);
const BATCH = 32;

function median(a: number[]): number {
  const s = a.slice().sort((x, y) => x - y);
  return s[s.length >> 1];
}

/** One build's scenario: `lookups(n)` ((d) only) and `whole(n)` run n batches and return wall ns. */
interface Build { lookups(n: number): number; whole(n: number): number }

function setupOf(S: Scenarios, name: string): import('./scenarios').Setup {
  switch (name) {
    case 'a': return S.setupA();
    case 'b': return S.setupB();
    case 'c': return S.setupC();
    case 'd': return S.setupD(100);
    case 'e': return S.setupE();
    case 'f': return S.setupF();
    case 'g': return S.setupG();
    default: throw new Error(`scenario-ab: no scenario ${name} (a, b, c, d, e, f, g)`);
  }
}

function load(dir: string, name: string): Build {
  const req = createRequire(__filename);
  const S = req(path.resolve(dir, 'dist/bench/scenarios.js')) as Scenarios;
  const { selectAll, extract, emcLookup, dpclsLookup } = req(path.resolve(dir, 'dist/src/dpif/stages.js')) as Stages;
  const { BatchState } = req(path.resolve(dir, 'dist/src/dpif/batch-state.js')) as BatchStateMod;
  const s = setupOf(S, name);
  const dp = s.dp, ring = s.rings[0].batches, ports = dp.ports, mf = dp.megaflows, emc = dp.emc;
  const st = new BatchState();
  let r = 0, w = 0;
  const flushes = name === 'e';
  // A few thousand batches (d: the whole ring four times): every megaflow installed, the EMC's
  // policy settled (for (d), on bypassing).
  for (let k = 0; k < Math.max(4 * ring.length, 4000); k++) dp.processBatch(S.nextBatch(s, k), BATCH);
  return {
    lookups(n: number): number {
      const t0 = process.hrtime.bigint();
      for (let k = 0; k < n; k++) {
        const b = ring[r];
        r = r + 1 === ring.length ? 0 : r + 1;
        ports.setInput(b);
        let c = selectAll(st, b, BATCH, ports);
        c = extract(st, b, c, null, dp.dropStop, ports);
        const m = emcLookup(emc, mf, st, c);
        if (dpclsLookup(mf, emc, st, m) !== 0) throw new Error(`${dir}: a megaflow miss after warm-up`);
      }
      return Number(process.hrtime.bigint() - t0);
    },
    whole(n: number): number {
      const t0 = process.hrtime.bigint();
      for (let k = 0; k < n; k++) {
        if (flushes && w % ring.length === 0) dp.flushCaches(); // (e): every frame an upcall, as bench/inmem.ts runs it
        dp.processBatch(S.nextBatch(s, w++), BATCH);
      }
      return Number(process.hrtime.bigint() - t0);
    },
  };
}

/** One process's measurement: median B/A of interleaved slices (A and B in turn first), per figure. */
function measure(dirA: string, dirB: string, name: string): [number, number] {
  const a = load(dirA, name), b = load(dirB, name);
  const withLookups = name === 'd';
  for (let k = 0; k < 20; k++) { if (withLookups) { a.lookups(NB); b.lookups(NB); } a.whole(NB); b.whole(NB); }
  const lookups: number[] = [], whole: number[] = [];
  for (let s = 0; s < SLICES; s++) {
    const first = (s & 1) === 0 ? a : b, second = first === a ? b : a;
    if (withLookups) {
      const l1 = first.lookups(NB), l2 = second.lookups(NB);
      lookups.push(first === a ? l2 / l1 : l1 / l2);
    }
    const w1 = first.whole(NB), w2 = second.whole(NB);
    whole.push(first === a ? w2 / w1 : w1 / w2);
  }
  return [withLookups ? median(lookups) : NaN, median(whole)];
}

function main(): void {
  const [dirA, dirB, pairs = '3', names = 'd'] = process.argv.slice(2);
  if (dirA === undefined || dirB === undefined) throw new Error('usage: scenario-ab.js DIR_A DIR_B [pairs] [d,a,b,c,e,f,g]');
  if (process.env.SCENARIO_AB_CHILD !== undefined) {
    console.log(measure(dirA, dirB, process.env.SCENARIO_AB_CHILD).map((x) => x.toFixed(4)).join(' '));
    return;
  }
  for (const name of names.split(',')) {
    const child = (x: string, y: string): number[] => execFileSync(process.execPath,
      ['--expose-gc', __filename, x, y], { env: { ...process.env, SCENARIO_AB_CHILD: name } }).toString().trim().split(' ').map(Number);
    const fl: number[] = [], fw: number[] = [];
    for (let p = 0; p < Number(pairs); p++) {
      const ab = child(dirA, dirB), ba = child(dirB, dirA);
      const l = Math.sqrt(ab[0] / ba[0]), w = Math.sqrt(ab[1] / ba[1]);
      fl.push(l); fw.push(w);
      const lookups = name === 'd' ? `lookups B/A ${ab[0].toFixed(3)} (A first), A/B ${ba[0].toFixed(3)} (B first) -> ${l.toFixed(3)}; ` : '';
      console.log(`(${name}) pair ${p + 1}: ${lookups}processBatch ${ab[1].toFixed(3)}, ${ba[1].toFixed(3)} -> ${w.toFixed(3)}`);
    }
    console.log(`(${name}) median over ${fw.length} pairs: ${name === 'd' ? `lookups B/A ${median(fl).toFixed(3)}, ` : ''}processBatch B/A ${median(fw).toFixed(3)}`);
  }
}

main();
