/**
 * The EMC's lookup policy (dpif/emc.ts): the probe picks the faster mode by the times it
 * measured, `flowctl stats` (dump.ts formatPerf) shows it, and whatever the mode, and however
 * often it flips, every frame goes where its own key sends it (fast-check: runs of frames whose
 * keys differ in one word from their neighbours', so a cache or a run check that took a
 * neighbour's flow sends a frame to the wrong port).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Datapath } from '../../src/dpif/datapath';
import { EMC_ALWAYS } from '../../src/dpif/emc';
import { perfStats } from '../../src/dpif/dump';
import { UpcallResult, Upcaller } from '../../src/dpif/upcall';
import { PacketBatch } from '../../src/netdev/batch';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { KEY_WORDS, PACKET_WORDS, W_IN_PORT, W_TUN_DST, W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC } from '../../src/packet/flowkey-layout';
import { buildTcp4Frame } from '../../src/packet/tcp';
import { MemNetdev, TestRule, toHex } from './helpers';

const IN_PORT = 1;

/** A UDP frame and variants, each differing from it in one key word (or its protocol). */
function variants(): Uint8Array[] {
  const base = buildTcp4Frame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1000, dport: 2000, flags: 0x10 });
  const v: Uint8Array[] = [base];
  const edit = (f: (x: Uint8Array) => void) => { const x = Uint8Array.from(base); f(x); v.push(x); };
  edit((x) => { x[29] ^= 1; });          // nw_src
  edit((x) => { x[33] ^= 1; });          // nw_dst
  edit((x) => { x[35] ^= 1; });          // tp_src
  edit((x) => { x[37] ^= 1; });          // tp_dst
  edit((x) => { x[47] ^= 0x08; });       // TCP flags (PSH)
  edit((x) => { x[11] ^= 1; });          // dl_src
  edit((x) => { x[5] ^= 1; });           // dl_dst
  edit((x) => { x[15] ^= 0x04; });       // IP TOS
  return v;
}

const FRAMES = variants();

/**
 * Sends each variant to its own port (2 + its index), with a megaflow mask exact on the packet
 * words: every variant is a megaflow of its own.
 */
class PerKeyUpcaller implements Upcaller {
  private readonly keys: Uint32Array;
  readonly rule = new TestRule(new Uint32Array(KEY_WORDS), new Uint32Array(KEY_WORDS), 0, []);
  constructor() {
    this.keys = new Uint32Array(FRAMES.length * KEY_WORDS);
    const offs = new Uint16Array(OFFS_WORDS);
    FRAMES.forEach((f, v) => extractKey(f, 0, f.length, IN_PORT, this.keys, v * KEY_WORDS, offs, 0));
  }
  upcall(keys: Uint32Array, base: number): UpcallResult | null {
    const mask = new Uint32Array(KEY_WORDS);
    for (let w = 0; w < PACKET_WORDS; w++) mask[w] = 0xffffffff;
    for (const w of [W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC, W_TUN_DST]) mask[w] = 0;
    for (let v = 0; v < FRAMES.length; v++) {
      let eq = keys[base + W_IN_PORT] === IN_PORT;
      for (let w = 0; eq && w < PACKET_WORDS; w++) if (mask[w] !== 0 && keys[base + w] !== this.keys[v * KEY_WORDS + w]) eq = false;
      if (eq) return { actions: [{ kind: 'output', port: 2 + v }], mask, rules: [this.rule], cacheable: true };
    }
    return { actions: [], mask, rules: [this.rule], cacheable: true };
  }
  revalidate(keys: Uint32Array, base: number): UpcallResult | null { return this.upcall(keys, base); }
}

function world(): { dp: Datapath; out: MemNetdev[] } {
  const dp = new Datapath({ upcaller: new PerKeyUpcaller(), emcInsertInvProb: 1, nowMs: () => 0 });
  dp.addPort(IN_PORT, new MemNetdev('in'));
  const out = FRAMES.map((_, v) => new MemNetdev(`v${v}`, v % 2 === 0));
  out.forEach((nd, v) => dp.addPort(2 + v, nd));
  return { dp, out };
}

function send(dp: Datapath, vs: readonly number[]): void {
  const b = new PacketBatch(Math.max(vs.length, 1));
  for (const v of vs) { const i = b.append(FRAMES[v]); b.inPort[i] = IN_PORT; }
  dp.processBatch(b, vs.length);
}

test('the probe bypasses the EMC when the lookups were faster without it, and looks it up again when not', () => {
  const { dp } = world();
  const emc = dp.emc;
  emc.lookupPolicy = { runFrames: 64, probeFrames: 32, marginPct: 5, maxHitPct: 101, fillFrames: 64 };
  // A pass's lookups "take" 10 ms with the EMC and 1 ms without (the clock advances per read).
  let t = 0, withEmc = 10, without = 1;
  emc.clock = () => (t += emc.bypassing ? without : withEmc);
  const run = [0, 0, 0, 1, 1, 2, 3, 3];
  for (let k = 0; k < 16; k++) send(dp, run); // 128 frames: run (64), probe with (32), probe without (32)
  assert.equal(emc.bypassing, true);
  assert.equal(emc.nBypasses, 1);
  let stats = perfStats(dp);
  assert.match(stats, /- EMC bypassed: +32 +\( 25\.0 %, 1 runs; last probe 1250000\.0 ns\/pkt with at \d+ % hits, 125000\.0 without\)/);
  for (let k = 0; k < 8; k++) send(dp, run); // the bypassed run
  assert.match(perfStats(dp), /- EMC bypassed: +96 /);
  const hits = dp.nEmcHits;
  // Now the EMC is the faster: after the next probe it stays looked up.
  withEmc = 1; without = 10;
  for (let k = 0; k < 8; k++) send(dp, run);
  assert.equal(emc.bypassing, false);
  assert.ok(dp.nEmcHits > hits, 'the EMC hits again');
  stats = perfStats(dp);
  assert.match(stats, /- EMC bypassed: +128 +\( 50\.0 %, 1 runs; last probe 125000\.0 ns\/pkt with at 100 % hits, 1250000\.0 without\)/);
  assert.match(stats, /avg\. subtable lookups per megaflow lookup: 1\.00/);
});

test('the probe keeps an EMC that hits maxHitPct % or more even when the lookups timed faster without it', () => {
  const { dp } = world();
  const emc = dp.emc;
  emc.lookupPolicy = { runFrames: 64, probeFrames: 32, marginPct: 5, maxHitPct: 50, fillFrames: 64 };
  let t = 0;
  emc.clock = () => (t += emc.bypassing ? 1 : 10);
  const run = [0, 0, 0, 1, 1, 2, 3, 3]; // after the first batch, every frame hits the EMC
  for (let k = 0; k < 40; k++) send(dp, run);
  assert.equal(emc.nBypasses, 0);
  assert.match(perfStats(dp), /last probe 1250000\.0 ns\/pkt with at 100 % hits, 125000\.0 without/);
});

test('a bypassed run offers misses to the EMC only in its last fillFrames frames, so the probe after it sees them', () => {
  const { dp } = world();
  const emc = dp.emc;
  emc.lookupPolicy = { runFrames: 64, probeFrames: 32, marginPct: 5, maxHitPct: 101, fillFrames: 16 };
  let t = 0;
  emc.clock = () => (t += emc.bypassing ? 1 : 10); // always faster without: every probe bypasses
  const run = [0, 1, 2, 3, 4, 5, 6, 7]; // 8 frames a batch, each its own megaflow
  for (let k = 0; k < 16; k++) send(dp, run); // run (64), probe with (32), probe without (32)
  assert.equal(emc.bypassing, true);
  // The bypassed run after a change of mode is 2 * probeFrames = 64 frames: 8 batches.
  emc.flush();
  const serials = dp.megaflows.serial;
  for (let k = 0; k < 6; k++) {
    send(dp, run);
    assert.equal(emc.countLive(serials), 0, `batch ${k} of the run (${8 * k + 8} of 64 frames) offers nothing`);
  }
  send(dp, run); // frames 49-56: the last 16 start
  assert.equal(emc.countLive(serials), run.length, 'the last 16 frames insert (insertion 1/1)');
  send(dp, run); // the run's end
  const hits = dp.nEmcHits;
  send(dp, run); // the probe with the EMC
  assert.equal(dp.nEmcHits - hits, run.length, 'the probe looks the EMC up and finds what the run\'s end inserted');
});

test('EMC_ALWAYS never bypasses; the EMC off (insertion 0) always does', () => {
  const a = world();
  a.dp.emc.lookupPolicy = EMC_ALWAYS;
  a.dp.emc.clock = () => { throw new Error('EMC_ALWAYS never times a pass'); };
  for (let k = 0; k < 17000; k++) send(a.dp, [0, 1, 2, 3]); // past one run of 65536 frames
  assert.equal(a.dp.emc.nBypassed, 0);
  const off = new Datapath({ upcaller: new PerKeyUpcaller(), emcInsertInvProb: 0 });
  off.addPort(IN_PORT, new MemNetdev('in'));
  FRAMES.forEach((_, v) => off.addPort(2 + v, new MemNetdev(`v${v}`)));
  for (let k = 0; k < 10; k++) send(off, [0, 1, 2, 3]);
  assert.equal(off.emc.nBypassed, 40);
  assert.equal(off.nEmcHits, 0);
});

test('every frame goes to its own key\'s port whichever mode the policy picks and however often it flips', () => {
  const run = fc.record({ v: fc.integer({ min: 0, max: FRAMES.length - 1 }), n: fc.integer({ min: 1, max: 5 }) });
  const batch = fc.array(run, { minLength: 1, maxLength: 10 }).map((rs) => rs.flatMap((r) => new Array<number>(r.n).fill(r.v)).slice(0, 32));
  let bypassed = 0, hits = 0;
  fc.assert(fc.property(fc.array(batch, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 40 }),
    fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 40 }), fc.integer(), (batches, runFrames, probeFrames, fillFrames, seed) => {
      const { dp, out } = world();
      dp.emc.lookupPolicy = { runFrames, probeFrames, marginPct: 0, maxHitPct: 101, fillFrames };
      let x = seed | 1, t = 0;
      dp.emc.clock = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (t += (x >>> 0) % 7); }; // random pass times
      const want: string[][] = FRAMES.map(() => []);
      for (const vs of batches) {
        send(dp, vs);
        for (const v of vs) want[v].push(toHex(FRAMES[v]));
      }
      out.forEach((nd, v) => assert.deepEqual(nd.sent.map(toHex), want[v], `port of variant ${v}`));
      bypassed += dp.emc.nBypassed;
      hits += dp.nEmcHits;
    }), { numRuns: Number(process.env.FASTCHECK_RUNS ?? 200) });
  assert.ok(bypassed > 0 && hits > 0, `both modes ran (bypassed ${bypassed} frames, ${hits} EMC hits)`);
});
