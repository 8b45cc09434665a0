/**
 * In-process A/B of the extract stage (dpif/stages.ts selectAll + extract) between two builds,
 * as bench/scenario-ab.ts does for whole batches: both builds' compiled trees load
 * into one process, each extracts its own copies of the first 32 batches of bench/inmem.ts's
 * scenarios, and the two run in interleaved slices; the figure per scenario is the median over
 * the slices of the time ratio B/A. Load from other processes hits both builds of a slice
 * alike. Which build loads and runs first biases it, so the measurement runs twice, A first
 * then B first, in two processes, and prints the geometric mean of the two medians.
 *   node dist/bench/extract-ab.js DIR_A DIR_B [a,b,c,d,f,g]
 * DIR_A and DIR_B: checkouts with dist/ built (e.g. /work/wt/base and this one). Environment:
 * SLICES (400), NB (batches per slice, 200). Not part of `npm run bench`.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';

type Scenarios = typeof import('./scenarios');
type Stages = typeof import('../src/dpif/stages');
type BatchStateMod = typeof import('../src/dpif/batch-state');
type BatchMod = typeof import('../src/netdev/batch');
type PacketBatch = import('../src/netdev/batch').PacketBatch;

const SLICES = Number(process.env.SLICES ?? 400);
const NB = Number(process.env.NB ?? 200);

/** One build's extract over `name`'s batches, NB of them; returns wall ns. */
type Runner = (name: string) => number;

function load(dir: string, names: string[]): Runner {
  const req = createRequire(__filename);
  const S = req(path.resolve(dir, 'dist/bench/scenarios.js')) as Scenarios;
  const { selectAll, extract } = req(path.resolve(dir, 'dist/src/dpif/stages.js')) as Stages;
  const { BatchState } = req(path.resolve(dir, 'dist/src/dpif/batch-state.js')) as BatchStateMod;
  const { PacketBatch: Batch } = req(path.resolve(dir, 'dist/src/netdev/batch.js')) as BatchMod;
  const copyOf = (src: PacketBatch): PacketBatch => {
    const b = new Batch(src.capacity, src.slotBytes, src.vnet !== null);
    b.buf.set(src.buf);
    b.off.set(src.off); b.len.set(src.len); b.inPort.set(src.inPort);
    b.tunIdHi.set(src.tunIdHi); b.tunIdLo.set(src.tunIdLo); b.tunSrc.set(src.tunSrc); b.tunDst.set(src.tunDst);
    return b;
  };
  const setups: Record<string, () => ReturnType<Scenarios['setupA']>> = {
    a: () => S.setupA(), b: () => S.setupB(), c: () => S.setupC(), d: () => S.setupD(100), f: () => S.setupF(), g: () => S.setupG(),
  };
  const st = new BatchState();
  const cases = new Map(names.map((n) => {
    const s = setups[n]();
    const batches: PacketBatch[] = [];
    for (let k = 0; k < 32; k++) batches.push(copyOf(S.nextBatch(s, k)));
    return [n, { dp: s.dp, batches }] as const;
  }));
  return (name: string): number => {
    const c = cases.get(name);
    if (c === undefined) throw new Error(`no scenario ${name}`);
    const ports = c.dp.ports, drop = c.dp.dropStop;
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < NB; k++) {
      const b = c.batches[k & 31];
      extract(st, b, selectAll(st, b, 32, ports), null, drop, ports);
    }
    return Number(process.hrtime.bigint() - t0);
  };
}

function median(a: number[]): number {
  return a.slice().sort((x, y) => x - y)[a.length >> 1];
}

/** One process: per scenario, the median B/A over the slices, and A's and B's median ns/frame. */
function measure(dirA: string, dirB: string, names: string[], aFirst: boolean): Record<string, number[]> {
  let ra: Runner, rb: Runner;
  if (aFirst) { ra = load(dirA, names); rb = load(dirB, names); } else { rb = load(dirB, names); ra = load(dirA, names); }
  for (let w = 0; w < 10; w++) for (const n of names) { ra(n); rb(n); }
  const ratio = new Map<string, number[]>(names.map((n) => [n, []]));
  const nsA = new Map<string, number[]>(names.map((n) => [n, []]));
  const nsB = new Map<string, number[]>(names.map((n) => [n, []]));
  for (let i = 0; i < SLICES; i++) {
    for (const n of names) {
      let ta: number, tb: number;
      if (aFirst) { ta = ra(n); tb = rb(n); } else { tb = rb(n); ta = ra(n); }
      (ratio.get(n) as number[]).push(tb / ta);
      (nsA.get(n) as number[]).push(ta / (NB * 32));
      (nsB.get(n) as number[]).push(tb / (NB * 32));
    }
  }
  const out: Record<string, number[]> = {};
  for (const n of names) {
    out[n] = [median(ratio.get(n) as number[]), median(nsA.get(n) as number[]), median(nsB.get(n) as number[])];
  }
  return out;
}

function main(): void {
  const [dirA, dirB, only, child] = process.argv.slice(2);
  if (dirA === undefined || dirB === undefined) throw new Error('usage: extract-ab.js DIR_A DIR_B [a,b,c,d,f,g]');
  const names = (only ?? 'a,b,c,d,f,g').split(',');
  if (child !== undefined) {
    console.log(JSON.stringify(measure(dirA, dirB, names, child === 'A')));
    return;
  }
  const run = (first: string): Record<string, number[]> =>
    JSON.parse(execFileSync(process.execPath, [__filename, dirA, dirB, names.join(','), first]).toString()) as Record<string, number[]>;
  const x = run('A'), y = run('B');
  for (const n of names) {
    console.log(`(${n}) extract B/A ${x[n][0].toFixed(3)} (A first), ${y[n][0].toFixed(3)} (B first) -> ` +
      `${Math.sqrt(x[n][0] * y[n][0]).toFixed(3)}; wall ns/frame A ${x[n][1].toFixed(1)}, ${y[n][1].toFixed(1)}, ` +
      `B ${x[n][2].toFixed(1)}, ${y[n][2].toFixed(1)}`);
  }
}

main();
