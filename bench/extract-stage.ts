/**
 * The extract stage alone (dpif/stages.ts selectAll + extract, or selectAll + packet/flowkey.ts
 * extractCommon) over the batches of bench/inmem.ts's scenarios, all in one process so the
 * stage is trained on every kind of batch as in `npm run bench`. Not part of `npm run bench`:
 * a measuring tool for issue 12's extract work (flowkey.ts extractCommon's header has figures).
 *   node --expose-gc dist/bench/extract-stage.js
 * EXTRACT_ONLY=a,b,... picks scenarios; EXTRACT_MODE=stage (default) | common | select (the
 * selectAll loop alone, to subtract); EXTRACT_REPS (15) interleaved repetitions of
 * EXTRACT_ITERS (3000) batches each. Prints CPU ns per frame, min and median.
 * Each scenario's first 32 batches are copied once (bench/scenarios.ts nextBatch: restored,
 * decapsulated) and extracted again and again: extract reads frames and writes only the batch
 * state, so the copies stay as they were.
 */
import { BatchState } from '../src/dpif/batch-state';
import { extract, selectAll } from '../src/dpif/stages';
import { extractCommon } from '../src/packet/flowkey';
import { PacketBatch } from '../src/netdev/batch';
import { Datapath } from '../src/dpif/datapath';
import { BATCH, nextBatch, Setup, setupA, setupB, setupC, setupD, setupF, setupG } from './scenarios';

const ONLY = (process.env.EXTRACT_ONLY ?? 'a,b,c,d,f,g').split(',');
const MODE = process.env.EXTRACT_MODE ?? 'stage';
const REPS = Number(process.env.EXTRACT_REPS ?? 15);
const ITERS = Number(process.env.EXTRACT_ITERS ?? 3000);

const SETUPS: Record<string, () => Setup> = {
  a: () => setupA(), b: () => setupB(), c: () => setupC(), d: () => setupD(100), f: () => setupF(), g: () => setupG(),
};

interface Case { readonly name: string; readonly dp: Datapath; readonly batches: PacketBatch[] }

function copyOf(src: PacketBatch): PacketBatch {
  const b = new PacketBatch(src.capacity, src.slotBytes, src.vnet !== null);
  b.buf.set(src.buf);
  b.off.set(src.off); b.len.set(src.len); b.inPort.set(src.inPort);
  b.tunIdHi.set(src.tunIdHi); b.tunIdLo.set(src.tunIdLo); b.tunSrc.set(src.tunSrc); b.tunDst.set(src.tunDst);
  if (src.vnet !== null && b.vnet !== null) b.vnet.set(src.vnet);
  return b;
}

function run(c: Case, st: BatchState, iters: number): number {
  const ports = c.dp.ports, drop = c.dp.dropStop, bs = c.batches;
  let x = 0;
  for (let k = 0; k < iters; k++) {
    const b = bs[k % bs.length];
    const n = selectAll(st, b, BATCH, ports);
    if (MODE === 'stage') x += extract(st, b, n, null, drop, ports);
    else if (MODE === 'common') {
      x += extractCommon(b.view, b.off, b.len, st.live, n, st.keys, st.offs, st.other, st.sameKey, st.hashes, b, st.plainPort);
    } else x += n;
  }
  return x;
}

function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

function main(): void {
  const cases: Case[] = ONLY.map((name) => {
    const s = SETUPS[name]();
    const batches: PacketBatch[] = [];
    for (let k = 0; k < 32; k++) batches.push(copyOf(nextBatch(s, k)));
    return { name, dp: s.dp, batches };
  });
  const st = new BatchState();
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let w = 0; w < 5; w++) for (const c of cases) run(c, st, ITERS);
  const res = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (let r = 0; r < REPS; r++) {
    for (const c of cases) {
      if (gc) gc();
      const t0 = cpuNs();
      run(c, st, ITERS);
      (res.get(c.name) as number[]).push((cpuNs() - t0) / (ITERS * BATCH));
    }
  }
  const median = (a: number[]): number => a.slice().sort((x, y) => x - y)[a.length >> 1];
  console.log(`extract (${MODE}), CPU ns/frame over ${REPS} repetitions: ` + cases.map((c) => {
    const a = res.get(c.name) as number[];
    return `(${c.name}) min ${Math.min(...a).toFixed(1)} med ${median(a).toFixed(1)}`;
  }).join(' | '));
}

main();
