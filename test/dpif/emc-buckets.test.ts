/**
 * The EMC stage's two halves (dpif/stages.ts emcProbe, dpif/emc.ts bucketsOf and lookupFrom):
 * the buckets of the frames leading a batch with keys of their own are read first, each giving
 * the slot whose hash word is the frame's (or none), and each frame's lookup then starts there.
 * Every frame must still get its own key's flow: when its entry is in the bucket's second slot,
 * when the first slot holds another key with the same hash (a collision), when neither slot
 * holds it (a miss), and for frames after the leading ones (looked up from the bucket's start).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchState, FlowPayload } from '../../src/dpif/batch-state';
import { compileActions } from '../../src/dpif/compile';
import { Datapath } from '../../src/dpif/datapath';
import { Emc, EMC_ALWAYS } from '../../src/dpif/emc';
import { MegaflowCache } from '../../src/dpif/megaflow';
import { emcLookup } from '../../src/dpif/stages';
import { KEY_WORDS, W_IN_PORT, W_VLAN_DLTYPE } from '../../src/packet/flowkey-layout';

/** An IPv4 key of flow `v` (its word 14, the L4 ports, tells flows apart). */
function keyOf(v: number): Uint32Array {
  const k = new Uint32Array(KEY_WORDS);
  k[W_IN_PORT] = 1;
  k[7] = 0x3e000110; k[W_VLAN_DLTYPE] = 0x0800; k[11] = 0x0a00010a; k[12] = 0x0a000214; k[14] = 0x04d20000 + v;
  return k;
}

/** A megaflow cache of `n` exact megaflows (flow v's key -> megaflow id v), each with a payload of its own. */
function cacheOf(n: number): MegaflowCache<FlowPayload> {
  const dp = new Datapath({ upcaller: { upcall: () => null, revalidate: () => null } });
  const program = compileActions([{ kind: 'output', port: 2 }], { ports: dp.ports, tunnelHeader: () => null });
  const mf = new MegaflowCache<FlowPayload>();
  const mask = new Uint32Array(KEY_WORDS).fill(0xffffffff);
  for (let v = 0; v < n; v++) {
    const pl = new FlowPayload(program, [], null);
    const id = mf.install(keyOf(v), 0, mask, pl, 0);
    assert.equal(id, v);
    pl.id = id;
    pl.serial = mf.serial[id];
  }
  return mf;
}

/** Runs emcLookup over frames of flows `vs` with cache hashes `hs`; returns each frame's flow id (-1: miss). */
function lookUp(emc: Emc, mf: MegaflowCache<FlowPayload>, vs: number[], hs: number[], same: number[]): number[] {
  const st = new BatchState();
  vs.forEach((v, i) => {
    st.keys.set(keyOf(v), i * KEY_WORDS);
    st.cacheHash[i] = hs[i] >>> 0;
    st.sameKey[i] = same[i];
    st.live[i] = i;
  });
  const nMiss = emcLookup(emc, mf, st, vs.length);
  const missed = new Set(Array.from(st.miss.subarray(0, nMiss)));
  return vs.map((_, i) => (missed.has(i) ? -1 : st.payloads[i]?.id ?? -2));
}

/** An EMC of 8 slots (4 buckets of 2) that always inserts and is always looked up. */
function smallEmc(): Emc {
  const emc = new Emc(8, 1);
  emc.lookupPolicy = EMC_ALWAYS;
  return emc;
}

test('a frame whose entry is in its bucket\'s second slot, or behind another key of its hash, gets its own flow', () => {
  const mf = cacheOf(8);
  const emc = smallEmc();
  const H = 0x10; // bucket 0
  // Flows 0 and 1 share hash H: bucket 0 holds both, flow 0 in the first slot.
  emc.maybeInsert(keyOf(0), 0, H, 0, mf.serial);
  emc.maybeInsert(keyOf(1), 0, H, 1, mf.serial);
  // Flow 2 alone in bucket 1's second slot: its first holds flow 3 with another hash.
  emc.maybeInsert(keyOf(3), 0, 0x2, 3, mf.serial);
  emc.maybeInsert(keyOf(2), 0, 0x3, 2, mf.serial);
  assert.deepEqual(lookUp(emc, mf, [1, 2, 0, 3], [H, 0x3, H, 0x2], [-1, -1, -1, -1]), [1, 2, 0, 3]);
  // A frame with H and a key in neither slot: a miss, not flow 0's or 1's answer.
  assert.deepEqual(lookUp(emc, mf, [5, 1], [H, H], [-1, -1]), [-1, 1]);
  // Past the leading frames (after a frame marked equal to the one before it, whose answer it
  // takes), frames are looked up from their bucket's first slot: the same answers.
  assert.deepEqual(lookUp(emc, mf, [0, 0, 1, 2, 5, 3], [H, H, H, 0x3, H, 0x2], [-1, 0, -1, -1, -1, -1]), [0, 0, 1, 2, -1, 3]);
});

test('many distinct frames in a batch: each gets its own flow, as whole lookups one by one give', () => {
  const N = 200;
  const mf = cacheOf(N);
  const emc = new Emc(64, 1); // more flows than slots: buckets hold other keys, hashes collide
  emc.lookupPolicy = EMC_ALWAYS;
  const hashOf = (v: number): number => Math.imul(v, 0x9e3779b1) & 0x3ff;
  for (let v = 0; v < N; v += 3) emc.maybeInsert(keyOf(v), 0, hashOf(v), v, mf.serial);
  const vs = Array.from({ length: 32 }, (_, i) => (i * 37) % N);
  const want = vs.map((v) => emc.lookup(keyOf(v), 0, hashOf(v), mf.serial));
  assert.ok(want.filter((f) => f >= 0).length >= 4, 'the batch has hits');
  assert.ok(want.filter((f) => f < 0).length >= 4, 'the batch has misses');
  want.forEach((f, i) => assert.ok(f < 0 || f === vs[i], 'a whole lookup returned another key\'s flow'));
  assert.deepEqual(lookUp(emc, mf, vs, vs.map(hashOf), vs.map(() => -1)), want);
});
