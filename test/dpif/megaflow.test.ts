import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MegaflowCache } from '../../src/dpif/megaflow';
import {
  KEY_WORDS, W_DL_DST_HI, W_DL_DST_LO, W_IN_PORT, W_NW_DST, W_NW_SRC, W_TP, W_VLAN_DLTYPE,
} from '../../src/packet/flowkey-layout';

function mask(words: [number, number][]): Uint32Array {
  const m = new Uint32Array(KEY_WORDS);
  for (const [w, v] of words) m[w] = v;
  return m;
}

test('megaflow matches every key inside its mask and none outside', () => {
  const mf = new MegaflowCache<string>(100);
  const k = new Uint32Array(KEY_WORDS);
  k[W_IN_PORT] = 1; k[W_NW_DST] = 0x0a000105; k[W_DL_DST_LO] = 0xdeadbeef;
  const id = mf.install(k, 0, mask([[W_IN_PORT, 0xffffffff], [W_NW_DST, 0xffffff00]]), 'a', 0);
  assert.ok(id >= 0);
  const q = Uint32Array.from(k);
  q[W_DL_DST_LO] = 1; q[W_NW_DST] = 0x0a0001ff;
  assert.equal(mf.lookup(q, 0), id);
  q[W_NW_DST] = 0x0a000205;
  assert.equal(mf.lookup(q, 0), -1);
  q[W_NW_DST] = 0x0a000105; q[W_IN_PORT] = 2;
  assert.equal(mf.lookup(q, 0), -1);
  assert.equal(mf.payload[id], 'a');
});

test('removing a megaflow bumps its serial and frees the id; an emptied subtable comes back', () => {
  const mf = new MegaflowCache<number>(10);
  const k = new Uint32Array(KEY_WORDS); k[W_IN_PORT] = 3;
  const m = mask([[W_IN_PORT, 0xffffffff]]);
  const id = mf.install(k, 0, m, 1, 0);
  const s = mf.serial[id];
  mf.remove(id);
  assert.equal(mf.serial[id], s + 1);
  assert.equal(mf.lookup(k, 0), -1);
  assert.equal(mf.ranked.length, 0);
  const id2 = mf.install(k, 0, m, 2, 0);
  assert.equal(mf.lookup(k, 0), id2);
  assert.equal(mf.ranked.length, 1);
});

test('installing an identical megaflow replaces the payload; the flow limit is honoured', () => {
  const mf = new MegaflowCache<number>(3, 1);
  const k = new Uint32Array(KEY_WORDS);
  const m = mask([[W_IN_PORT, 0xffffffff]]);
  const a = mf.install(k, 0, m, 1, 0);
  assert.equal(mf.install(k, 0, m, 2, 0), a);
  assert.equal(mf.payload[a], 2);
  k[W_IN_PORT] = 1; assert.ok(mf.install(k, 0, m, 3, 0) >= 0);
  k[W_IN_PORT] = 2; assert.ok(mf.install(k, 0, m, 4, 0) >= 0);
  k[W_IN_PORT] = 5; assert.equal(mf.install(k, 0, m, 5, 0), -1);
  assert.equal(mf.nFlows, 3);
});

test('rank() orders subtables by hits', () => {
  const mf = new MegaflowCache<number>(10);
  const k = new Uint32Array(KEY_WORDS); k[W_IN_PORT] = 1; k[W_VLAN_DLTYPE] = 0x0800;
  mf.install(k, 0, mask([[W_IN_PORT, 0xffffffff]]), 1, 0);
  k[W_IN_PORT] = 2;
  mf.install(k, 0, mask([[W_VLAN_DLTYPE, 0xffff], [W_IN_PORT, 0xffffffff]]), 2, 0);
  for (let i = 0; i < 10; i++) mf.lookup(k, 0);
  mf.rank();
  assert.equal(mf.ranked[0].mask[W_VLAN_DLTYPE], 0xffff);
});

test('property: lookup agrees with a linear scan over random masks, installs and removals', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ m: fc.integer({ min: 0, max: 3 }), k: fc.integer({ min: 0, max: 15 }), del: fc.boolean() }),
      { maxLength: 60 }),
    fc.array(fc.integer({ min: 0, max: 15 }), { maxLength: 40 }),
    (ops, probes) => {
      const masks = [mask([[W_IN_PORT, 0xf]]), mask([[W_IN_PORT, 0x3], [W_NW_DST, 0xff]]),
                     mask([[W_NW_DST, 0xf]]), mask([[W_IN_PORT, 0xc]])];
      const mf = new MegaflowCache<number>(1000, 2);
      const keyFor = (x: number) => { const k = new Uint32Array(KEY_WORDS); k[W_IN_PORT] = x; k[W_NW_DST] = x * 17; return k; };
      for (const op of ops) {
        const k = keyFor(op.k);
        const id = mf.install(k, 0, masks[op.m], op.k, 0);
        if (op.del) mf.remove(id);
      }
      for (const p of probes) {
        const k = keyFor(p);
        const got = mf.lookup(k, 0);
        let any = -1;
        for (const id of mf.liveIds()) {
          const st = mf.subtables[mf.subtableOf[id]];
          let ok = true;
          for (let w = 0; w < KEY_WORDS; w++) if (((k[w] & st.mask[w]) ^ mf.value[id * KEY_WORDS + w]) !== 0) ok = false;
          if (ok) any = id;
        }
        assert.equal(got >= 0, any >= 0);
        if (got >= 0) assert.equal(mf.live[got], 1);
      }
    }), { numRuns: 300 });
});

test('keys with bit 31 set (192.168.x.x tunnel endpoints, 0xfa16... MACs) hit their megaflow', () => {
  // `k & m` is a signed int32 in JS; compared with !== against a Uint32Array value it never
  // matched when bit 31 was set, and every packet of such a flow upcalled again.
  const mf = new MegaflowCache<string>(10);
  const k = new Uint32Array(KEY_WORDS);
  k[W_IN_PORT] = 3; k[W_NW_DST] = 0xc0a8640c; k[W_DL_DST_LO] = 0xfa163e00;
  const m = mask([[W_IN_PORT, 0xffffffff], [W_NW_DST, 0xffffffff], [W_DL_DST_LO, 0xffffffff]]);
  const id = mf.install(k, 0, m, 'a', 0);
  assert.equal(mf.install(k, 0, m, 'b', 0), id);
  assert.equal(mf.lookup(k, 0), id);
  assert.equal(mf.nFlows, 1);
});

test('property: lookupBatch agrees with lookup, for masks of 0 to 6 words (both batch searches)', () => {
  const WORDS = [W_IN_PORT, W_DL_DST_LO, W_VLAN_DLTYPE, W_NW_DST, W_NW_SRC, W_TP];
  fc.assert(fc.property(
    fc.array(fc.record({ m: fc.integer({ min: 0, max: 6 }), k: fc.integer({ min: 0, max: 31 }), del: fc.boolean() }),
      { maxLength: 80 }),
    fc.array(fc.integer({ min: 0, max: 31 }), { minLength: 1, maxLength: 64 }),
    (ops, probes) => {
      // Mask n keeps the low bits of words WORDS[0, n) (n = 0: the empty mask, every key).
      const masks = [0, 1, 2, 3, 4, 5, 6].map((n) => mask(WORDS.slice(0, n).map((w, j) => [w, j === 3 ? 0x80000003 : 0x3])));
      const mf = new MegaflowCache<number>(1000, 2);
      const keyFor = (x: number, keys = new Uint32Array(KEY_WORDS), base = 0) => {
        WORDS.forEach((w, j) => { keys[base + w] = (x >>> j) & 1 ? (j === 3 ? 0x80000001 : 1) : 0; });
        keys[base + W_DL_DST_HI] = x; // outside every mask
        return keys;
      };
      for (const op of ops) {
        const id = mf.install(keyFor(op.k), 0, masks[op.m], op.k, 0);
        if (op.del && id >= 0) mf.remove(id);
      }
      const keys = new Uint32Array(probes.length * KEY_WORDS);
      probes.forEach((p, i) => keyFor(p, keys, i * KEY_WORDS));
      const idx = Uint16Array.from(probes.map((_, i) => i)), out = new Int32Array(probes.length).fill(-1);
      const left = mf.lookupBatch(keys, idx, probes.length, out);
      const missed = new Set(Array.from(idx.subarray(0, left)));
      probes.forEach((_, i) => {
        const one = mf.lookup(keys, i * KEY_WORDS);
        // Overlapping megaflows may both match; each answer must be a live megaflow matching the key.
        assert.equal(missed.has(i), one < 0, `probe ${i}`);
        if (one < 0) return;
        const id = out[i];
        assert.equal(mf.live[id], 1);
        const st = mf.subtables[mf.subtableOf[id]];
        for (let w = 0; w < KEY_WORDS; w++) assert.equal(((keys[i * KEY_WORDS + w] & st.mask[w]) ^ mf.value[id * KEY_WORDS + w]), 0);
      });
    }), { numRuns: 300 });
});
