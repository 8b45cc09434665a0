/**
 * MegaflowCache.lookupBatch with a separate list for what it leaves (stages.ts megaflowHits
 * passes state.miss and state.missLeft): the input list stays as it was, every slot gets its
 * flow or -1 (stale ids from an earlier pass included), and the misses are listed in order,
 * through any number of subtables (searchSmall and searchAny both), and with no subtable at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MegaflowCache } from '../../src/dpif/megaflow';
import { KEY_WORDS, W_DL_DST_HI, W_DL_DST_LO, W_IN_PORT, W_NW_DST, W_NW_SRC, W_TP, W_VLAN_DLTYPE } from '../../src/packet/flowkey-layout';

const WORDS = [W_IN_PORT, W_DL_DST_LO, W_VLAN_DLTYPE, W_NW_DST, W_NW_SRC, W_TP];

function mask(nWords: number): Uint32Array {
  const m = new Uint32Array(KEY_WORDS);
  WORDS.slice(0, nWords).forEach((w) => { m[w] = 0x3; });
  return m;
}

function keyFor(x: number, keys: Uint32Array, base: number): void {
  WORDS.forEach((w, j) => { keys[base + w] = (x >>> j) & 1; });
  keys[base + W_DL_DST_HI] = x; // outside every mask
}

test('property: lookupBatch into a separate list keeps the input, answers every slot, lists the misses in order', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ m: fc.integer({ min: 0, max: 6 }), k: fc.integer({ min: 0, max: 63 }) }), { maxLength: 40 }),
    fc.array(fc.integer({ min: 0, max: 63 }), { minLength: 1, maxLength: 64 }),
    fc.array(fc.integer({ min: 0, max: 63 }), { maxLength: 64 }),
    (ops, probes, order) => {
      const mf = new MegaflowCache<number>(1000, 2);
      const k = new Uint32Array(KEY_WORDS);
      for (const op of ops) { keyFor(op.k, k, 0); mf.install(k, 0, mask(op.m), op.k, 0); }
      const n = probes.length;
      const keys = new Uint32Array(n * KEY_WORDS);
      probes.forEach((p, i) => keyFor(p, keys, i * KEY_WORDS));
      // The slots in some order of their own (not 0, 1, 2, ...): the misses keep it.
      const slots = probes.map((_, i) => i);
      order.forEach((o, j) => { const a = j % n, b = o % n; [slots[a], slots[b]] = [slots[b], slots[a]]; });
      const idx = Uint16Array.from(slots), before = Uint16Array.from(idx);
      const left = new Uint16Array(n).fill(0xffff);
      const out = new Int32Array(n).fill(12345); // stale ids of an earlier pass
      const nLeft = mf.lookupBatch(keys, idx, n, out, left);
      assert.deepEqual(idx, before);
      const expectMissed = slots.filter((i) => mf.lookup(keys, i * KEY_WORDS) < 0);
      assert.deepEqual(Array.from(left.subarray(0, nLeft)), expectMissed);
      for (const i of slots) {
        if (expectMissed.includes(i)) { assert.equal(out[i], -1, `slot ${i}`); continue; }
        const id = out[i];
        assert.equal(mf.live[id], 1, `slot ${i}`);
        const st = mf.subtables[mf.subtableOf[id]];
        for (let w = 0; w < KEY_WORDS; w++) assert.equal(((keys[i * KEY_WORDS + w] & st.mask[w]) ^ mf.value[id * KEY_WORDS + w]), 0);
      }
    }), { numRuns: 300 });
});

test('lookupBatch with no subtable: every slot a miss, -1, listed in order', () => {
  const mf = new MegaflowCache<number>(10);
  const keys = new Uint32Array(3 * KEY_WORDS);
  const idx = Uint16Array.of(2, 0, 1), left = new Uint16Array(3), out = Int32Array.of(7, 7, 7);
  assert.equal(mf.lookupBatch(keys, idx, 3, out, left), 3);
  assert.deepEqual(Array.from(left), [2, 0, 1]);
  assert.deepEqual(Array.from(out), [-1, -1, -1]);
  assert.deepEqual(Array.from(idx), [2, 0, 1]);
});
