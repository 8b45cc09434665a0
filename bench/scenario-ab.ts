/**
 * In-process A/B of any scenario of bench/scenarios.ts ((a) (b) (c) (d) (f) (g), as
 * bench/inmem.ts builds them; (d) with EMC insertion 1/100) between two builds (issue 12): the
 * figure that resolves a change to one stage, and checks it does not slow the other scenarios.
 * (It replaces bench/ct-ab.ts, the same method for (f) and (g) only, built from ct-stages.ts's
 * cases; the notes' figures before 2026-12-05 21:40 UTC name that one.) Both builds' compiled
 * trees are loaded into one node process (each its own modules, so V8 compiles each apart),
 * the scenario is built once per build (its dist/bench/scenarios.js) and the two run in
 * interleaved slices of batches; the figure is the median over the slices of the time ratio
 * B/A. Load from other processes hits both builds of a slice alike, which is why this resolves
 * differences of 1-2 % that `npm run bench` on a shared machine cannot (its runs of one build
 * move by 10 % and more). Loading first or second biases a build by 2-5 %, so each pair runs
 * in two processes, A first then B first, and the pair's figure is the geometric mean of
 * B/A and 1 / (A/B). Not part of `npm run bench`: run by hand,
 *   node --expose-gc dist/bench/scenario-ab.js DIR_A DIR_B [a|b|c|d|f|g] [pairs]
 * where DIR_A and DIR_B are checkouts with dist/ built (e.g. /work/wt/base and this one).
 * Environment: SLICES (1500), NB (batches per slice, 200).
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';

type Scenarios = typeof import('./scenarios');
type Setup = ReturnType<Scenarios['setupA']>;

/** Scenario `which` of build `m`. */
function setup(m: Scenarios, which: string): Setup {
  switch (which) {
    case 'a': return m.setupA();
    case 'b': return m.setupB();
    case 'c': return m.setupC();
    case 'd': return m.setupD(100);
    case 'f': return m.setupF();
    case 'g': return m.setupG();
  }
  throw new Error(`scenario-ab: no scenario ${which}`);
}

function runBatches(m: Scenarios, s: Setup, nBatches: number): void {
  for (let k = 0; k < nBatches; k++) s.dp.processBatch(m.nextBatch(s, k, 32), 32);
}

const SLICES = Number(process.env.SLICES ?? 1500);
const NB = Number(process.env.NB ?? 200);

function median(a: number[]): number {
  const s = a.slice().sort((x, y) => x - y);
  return s[s.length >> 1];
}

/** One process's measurement: the median B/A of interleaved slices (A and B in turn first). */
function measure(dirA: string, dirB: string, which: string): number {
  const req = createRequire(__filename);
  const load = (dir: string): Scenarios => req(path.resolve(dir, 'dist/bench/scenarios.js')) as Scenarios;
  const a = load(dirA), b = load(dirB);
  const ca = setup(a, which), cb = setup(b, which);
  for (let w = 0; w < 20; w++) { runBatches(a, ca, NB); runBatches(b, cb, NB); }
  const time = (m: Scenarios, c: Setup): number => {
    const t0 = process.hrtime.bigint();
    runBatches(m, c, NB);
    return Number(process.hrtime.bigint() - t0);
  };
  const ratios: number[] = [];
  for (let s = 0; s < SLICES; s++) {
    let ta: number, tb: number;
    if ((s & 1) === 0) { ta = time(a, ca); tb = time(b, cb); } else { tb = time(b, cb); ta = time(a, ca); }
    ratios.push(tb / ta);
  }
  return median(ratios);
}

function main(): void {
  const [dirA, dirB, which = 'f', pairs = '3'] = process.argv.slice(2);
  if (process.env.CT_AB_CHILD === '1') {
    console.log(measure(dirA, dirB, which).toFixed(4));
    return;
  }
  if (dirA === undefined || dirB === undefined) throw new Error('usage: scenario-ab.js DIR_A DIR_B [a|b|c|d|f|g] [pairs]');
  const child = (x: string, y: string): number => Number(execFileSync(process.execPath,
    ['--expose-gc', __filename, x, y, which], { env: { ...process.env, CT_AB_CHILD: '1' } }).toString());
  const figures: number[] = [];
  for (let r = 0; r < Number(pairs); r++) {
    const ab = child(dirA, dirB), ba = child(dirB, dirA);
    const f = Math.sqrt(ab / ba);
    figures.push(f);
    console.log(`(${which}) pair ${r + 1}: B/A ${ab.toFixed(3)} (A first), A/B ${ba.toFixed(3)} (B first) -> ${f.toFixed(3)}`);
  }
  console.log(`(${which}) median over ${figures.length} pairs: B/A ${median(figures).toFixed(3)}`);
}

main();
