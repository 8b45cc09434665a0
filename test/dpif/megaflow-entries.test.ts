/**
 * The megaflow subtables' entries (dpif/megaflow.ts: hash, id and masked words side by side in
 * Subtable.ents, home slot from the hash's top bits): masks of any words and bits (word 0, the
 * last key word, bit 31 alone, whole words, 1 to 8 words so both batch searches), megaflows
 * installed and removed until tables grow, fill with deleted slots and shrink, and keys that
 * differ only in their high or only in their low bits. Every answer is checked against a scan
 * of the live megaflows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MegaflowCache, Subtable } from '../../src/dpif/megaflow';
import { KEY_WORDS, W_IN_PORT, W_NW_DST } from '../../src/packet/flowkey-layout';

/** The live megaflow a scan finds for the key at `base`, or -1 (one at most: the tests' megaflows never overlap). */
function scan(mf: MegaflowCache<number>, keys: Uint32Array, base: number): number[] {
  const found: number[] = [];
  for (const id of mf.liveIds()) {
    const st = mf.subtables[mf.subtableOf[id]];
    let ok = true;
    for (let w = 0; w < KEY_WORDS; w++) if (((keys[base + w] & st.mask[w]) ^ mf.value[id * KEY_WORDS + w]) !== 0) ok = false;
    if (ok) found.push(id);
  }
  return found;
}

/** How far the entries of `st` lie from their home slots, at most (linear probing's longest walk). */
function longestWalk(st: Subtable): number {
  let most = 0;
  for (let s = 0; s <= st.slotMask; s++) {
    const e = s * st.stride;
    if (st.ents[e + 1] < 0) continue; // E_ID: empty or deleted
    most = Math.max(most, (s - st.home(st.ents[e])) & st.slotMask);
  }
  return most;
}

const maskArb = fc.uniqueArray(fc.record({
  w: fc.oneof(fc.constant(0), fc.constant(KEY_WORDS - 1), fc.integer({ min: 0, max: KEY_WORDS - 1 })),
  bits: fc.oneof(fc.constant(0xffffffff), fc.constant(0x80000000), fc.constant(1), fc.integer({ min: 1, max: 0xffffffff })),
}), { minLength: 1, maxLength: 8, selector: (x) => x.w });

test('property: lookupBatch and lookup find exactly the live megaflow a scan finds, for masks of any words and bits, through growth, deletion and shrinking', () => {
  fc.assert(fc.property(
    fc.array(maskArb, { minLength: 1, maxLength: 3 }),
    fc.array(fc.record({ m: fc.nat(), k: fc.nat({ max: 199 }), del: fc.nat({ max: 9 }) }), { minLength: 1, maxLength: 300 }),
    fc.array(fc.nat({ max: 199 }), { minLength: 1, maxLength: 64 }),
    fc.integer(),
    (maskSpecs, ops, probes, seed) => {
      const masks = maskSpecs.map((spec) => {
        const m = new Uint32Array(KEY_WORDS);
        for (const { w, bits } of spec) m[w] = bits;
        return m;
      });
      // Key x: every word a mix of x and the seed, so keys differ in high and low bits alike.
      const keyFor = (x: number, out: Uint32Array, base: number): void => {
        for (let w = 0; w < KEY_WORDS; w++) out[base + w] = Math.imul(x + 1, 0x9e3779b1 ^ Math.imul(w + 1, seed | 1)) >>> 0;
      };
      const mf = new MegaflowCache<number>(1000, 2);
      const k = new Uint32Array(KEY_WORDS);
      for (const op of ops) {
        const m = masks[op.m % masks.length];
        keyFor(op.k, k, 0);
        // One mask per key value (keys of different masks may still overlap: the scan allows it).
        const id = mf.install(k, 0, m, op.k, 0);
        if (op.del < 6 && id >= 0) mf.remove(id); // most removed: tables fill with deleted slots, then shrink
      }
      const n = probes.length;
      const keys = new Uint32Array(n * KEY_WORDS);
      probes.forEach((p, i) => keyFor(p, keys, i * KEY_WORDS));
      const idx = Uint16Array.from(probes.map((_, i) => i)), out = new Int32Array(n).fill(7);
      const nLeft = mf.lookupBatch(keys, idx, n, out);
      const missed = new Set(Array.from(idx.subarray(0, nLeft)));
      for (let i = 0; i < n; i++) {
        const any = scan(mf, keys, i * KEY_WORDS);
        const one = mf.lookup(keys, i * KEY_WORDS);
        assert.equal(one >= 0, any.length > 0, `lookup, probe ${i}`);
        assert.equal(!missed.has(i), any.length > 0, `lookupBatch, probe ${i}`);
        if (one >= 0) assert.ok(any.includes(one), `lookup, probe ${i}`);
        if (any.length > 0) assert.ok(any.includes(out[i]), `lookupBatch, probe ${i}`);
        else assert.equal(out[i], -1);
      }
    }), { numRuns: 200 });
});

test('keys that differ only in their top bits, or only in their low bits, spread over the table', () => {
  // Home slots come from the hash's top bits; with the low bits (which a multiply fills only
  // from the low bits of its operand) keys differing in their top 12 bits would share one slot.
  for (const [bits, of] of [[0xfff00000, (j: number) => j << 20], [0x00000fff, (j: number) => j]] as const) {
    for (const nWords of [2, 6]) { // searchSmall's subtables and searchAny's
      const m = new Uint32Array(KEY_WORDS);
      const words = [W_IN_PORT, W_NW_DST, 20, 30, 40, KEY_WORDS - 1].slice(0, nWords);
      for (const w of words) m[w] = bits;
      const mf = new MegaflowCache<number>(10000);
      const k = new Uint32Array(KEY_WORDS);
      for (let j = 0; j < 4096; j++) {
        k[W_NW_DST] = of(j) >>> 0;
        assert.ok(mf.install(k, 0, m, j, 0) >= 0);
      }
      const st = mf.subtables[0];
      assert.ok(longestWalk(st) < 48, `${bits.toString(16)}, ${nWords} words: longest walk ${longestWalk(st)} slots of ${st.slotMask + 1}`);
      for (let j = 0; j < 4096; j++) {
        k[W_NW_DST] = of(j) >>> 0;
        assert.equal(mf.payload[mf.lookup(k, 0)], j);
      }
    }
  }
});

test('an entry whose masked words are all zero is found; empty and deleted slots (zero words too) never match', () => {
  const m = new Uint32Array(KEY_WORDS);
  m[W_IN_PORT] = 0xffffffff; m[W_NW_DST] = 0xffffff00;
  const mf = new MegaflowCache<number>(100);
  const zero = new Uint32Array(KEY_WORDS); // in_port 0, nw_dst 0.0.0.0/24: its masked words are all 0
  const out = new Int32Array(1);
  const id = mf.install(zero, 0, m, 1, 0);
  assert.equal(mf.lookup(zero, 0), id);
  assert.equal(mf.lookupBatch(zero, Uint16Array.of(0), 1, out), 0);
  assert.equal(out[0], id);
  const other = new Uint32Array(KEY_WORDS);
  other[W_IN_PORT] = 5;
  assert.ok(mf.install(other, 0, m, 2, 0) >= 0); // keeps the subtable live
  mf.remove(id); // its slot is deleted, with its words left in place
  assert.equal(mf.lookup(zero, 0), -1);
  assert.equal(mf.lookupBatch(zero, Uint16Array.of(0), 1, out), 1);
  assert.equal(out[0], -1);
});
