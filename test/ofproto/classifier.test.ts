/**
 * Classifier behaviour: highest priority wins, equal priorities go to the earliest inserted rule,
 * identical rules replace each other, and the un-wildcarded mask is sufficient (every key that
 * agrees on it gets the same rule) and staged (a subtable missed in L2 does not read L3/L4 bits).
 * A fast-check property compares the tuple-space search with a brute-force linear scan.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Classifier } from '../../src/ofproto/classifier';
import type { ClassifierRule, Match } from '../../src/ofproto/types';
import {
  KEY_WORDS, W_IN_PORT, W_DL_DST_LO, W_VLAN_DLTYPE, W_NW_SRC, W_NW_DST, W_TP, W_REG0,
} from '../../src/packet/flowkey-layout';

interface TRule extends ClassifierRule { readonly name: string }

function mkMatch(fields: [number, number, number][]): Match {
  const value = new Uint32Array(KEY_WORDS), mask = new Uint32Array(KEY_WORDS);
  for (const [w, v, m] of fields) { mask[w] = m >>> 0; value[w] = (v & m) >>> 0; }
  return { value, mask };
}
function mkKey(fields: [number, number][]): Uint32Array {
  const k = new Uint32Array(KEY_WORDS);
  for (const [w, v] of fields) k[w] = v >>> 0;
  return k;
}
function matches(m: Match, k: Uint32Array): boolean {
  for (let w = 0; w < KEY_WORDS; w++) if (((k[w] & m.mask[w]) >>> 0) !== m.value[w]) return false;
  return true;
}

test('highest priority wins, and an empty classifier misses', () => {
  const c = new Classifier<TRule>();
  const key = mkKey([[W_IN_PORT, 1], [W_NW_SRC, 0x0a000001]]);
  assert.equal(c.lookup(key, 0, null), undefined);
  c.insert({ name: 'low', priority: 1, match: mkMatch([]) });
  c.insert({ name: 'port', priority: 10, match: mkMatch([[W_IN_PORT, 1, 0xffffffff]]) });
  c.insert({ name: 'net', priority: 20, match: mkMatch([[W_NW_SRC, 0x0a000000, 0xff000000]]) });
  assert.equal(c.lookup(key, 0, null)?.name, 'net');
  assert.equal(c.lookup(mkKey([[W_IN_PORT, 1]]), 0, null)?.name, 'port');
  assert.equal(c.lookup(mkKey([[W_IN_PORT, 2]]), 0, null)?.name, 'low');
  assert.equal(c.size, 3);
  assert.equal(c.nSubtables, 3);
});

test('values with bit 31 set (broadcast MAC, high IPs) match exactly', () => {
  const c = new Classifier<TRule>();
  c.insert({ name: 'bcast', priority: 1, match: mkMatch([[W_DL_DST_LO, 0xffffffff, 0xffffffff], [W_NW_DST, 0xc0a80001, 0xffffffff]]) });
  c.insert({ name: 'any', priority: 0, match: mkMatch([]) });
  assert.equal(c.lookup(mkKey([[W_DL_DST_LO, 0xffffffff], [W_NW_DST, 0xc0a80001]]), 0, null)?.name, 'bcast');
  assert.equal(c.lookup(mkKey([[W_DL_DST_LO, 0xfffffffe], [W_NW_DST, 0xc0a80001]]), 0, null)?.name, 'any');
});

test('equal priority overlap: the earliest inserted rule wins', () => {
  const c = new Classifier<TRule>();
  c.insert({ name: 'first', priority: 5, match: mkMatch([[W_TP, 80, 0xffff]]) });
  c.insert({ name: 'second', priority: 5, match: mkMatch([[W_IN_PORT, 3, 0xffffffff]]) });
  assert.equal(c.lookup(mkKey([[W_IN_PORT, 3], [W_TP, 80]]), 0, null)?.name, 'first');
  const c2 = new Classifier<TRule>();
  c2.insert({ name: 'second', priority: 5, match: mkMatch([[W_IN_PORT, 3, 0xffffffff]]) });
  c2.insert({ name: 'first', priority: 5, match: mkMatch([[W_TP, 80, 0xffff]]) });
  assert.equal(c2.lookup(mkKey([[W_IN_PORT, 3], [W_TP, 80]]), 0, null)?.name, 'second');
});

test('insert of an identical match+priority replaces and returns the old rule; remove by identity', () => {
  const c = new Classifier<TRule>();
  const a: TRule = { name: 'a', priority: 7, match: mkMatch([[W_IN_PORT, 1, 0xffffffff]]) };
  const b: TRule = { name: 'b', priority: 7, match: mkMatch([[W_IN_PORT, 1, 0xffffffff]]) };
  assert.equal(c.insert(a), undefined);
  assert.equal(c.insert(b), a);
  assert.equal(c.size, 1);
  assert.equal(c.findExact(a.match, 7), b);
  assert.equal(c.findExact(a.match, 8), undefined);
  assert.equal(c.remove(a), false);
  assert.equal(c.remove(b), true);
  assert.equal(c.size, 0);
  assert.equal(c.nSubtables, 0);
  assert.equal(c.lookup(mkKey([[W_IN_PORT, 1]]), 0, null), undefined);
});

test('staged lookup: a subtable missed at in_port un-wildcards only in_port, not nw_src/tp', () => {
  const c = new Classifier<TRule>();
  c.insert({ name: 'r', priority: 10,
    match: mkMatch([[W_IN_PORT, 1, 0xffffffff], [W_NW_SRC, 0x0a000001, 0xffffffff], [W_TP, 80, 0xffff]]) });
  const wc = new Uint32Array(KEY_WORDS);
  assert.equal(c.lookup(mkKey([[W_IN_PORT, 2], [W_NW_SRC, 0x0a000001], [W_TP, 80]]), 0, wc), undefined);
  const expect = new Uint32Array(KEY_WORDS);
  expect[W_IN_PORT] = 0xffffffff;
  assert.deepEqual(wc, expect);
  // Hit: the whole mask is un-wildcarded.
  wc.fill(0);
  assert.equal(c.lookup(mkKey([[W_IN_PORT, 1], [W_NW_SRC, 0x0a000001], [W_TP, 80]]), 0, wc)?.name, 'r');
  expect[W_NW_SRC] = 0xffffffff; expect[W_TP] = 0xffff;
  assert.deepEqual(wc, expect);
});

test('prefix trie: a /16 rule missed by an address un-wildcards only the bits up to the divergence', () => {
  const c = new Classifier<TRule>();
  c.insert({ name: 'net', priority: 10, match: mkMatch([[W_VLAN_DLTYPE, 0x0800, 0xffff], [W_NW_DST, 0x0a010000, 0xffff0000]]) });
  c.insert({ name: 'any', priority: 0, match: mkMatch([]) });
  const wc = new Uint32Array(KEY_WORDS);
  assert.equal(c.lookup(mkKey([[W_VLAN_DLTYPE, 0x0800], [W_NW_DST, 0xc0a80101]]), 0, wc)?.name, 'any');
  assert.equal(wc[W_NW_DST], 0x80000000);        // 192.x differs from 10.x in the first bit
  assert.equal(wc[W_VLAN_DLTYPE], 0xffff);        // the L2 stage was looked at
  wc.fill(0);
  assert.equal(c.lookup(mkKey([[W_VLAN_DLTYPE, 0x0800], [W_NW_DST, 0x0a020304]]), 0, wc)?.name, 'any');
  assert.equal(wc[W_NW_DST], 0xfffe0000);         // 10.2 leaves 10.1 at bit 14: 15 bits
  wc.fill(0);
  assert.equal(c.lookup(mkKey([[W_VLAN_DLTYPE, 0x0800], [W_NW_DST, 0x0a01ff01]]), 0, wc)?.name, 'net');
  assert.equal(wc[W_NW_DST], 0xffff0000);
});

test('priority early exit: a lower subtable is not looked at once a better rule matched', () => {
  const c = new Classifier<TRule>();
  c.insert({ name: 'hi', priority: 100, match: mkMatch([[W_IN_PORT, 1, 0xffffffff]]) });
  c.insert({ name: 'lo', priority: 1, match: mkMatch([[W_TP, 80, 0xffff]]) });
  const wc = new Uint32Array(KEY_WORDS);
  assert.equal(c.lookup(mkKey([[W_IN_PORT, 1], [W_TP, 80]]), 0, wc)?.name, 'hi');
  assert.equal(wc[W_TP], 0);
  assert.equal(wc[W_IN_PORT], 0xffffffff);
});

test('lookup reads a key at a base offset inside a batch of keys', () => {
  const c = new Classifier<TRule>();
  c.insert({ name: 'r', priority: 1, match: mkMatch([[W_REG0 + 3, 9, 0xff]]) });
  const keys = new Uint32Array(KEY_WORDS * 3);
  keys[2 * KEY_WORDS + W_REG0 + 3] = 0x109;
  assert.equal(c.lookup(keys, 0, null), undefined);
  assert.equal(c.lookup(keys, 2 * KEY_WORDS, null)?.name, 'r');
});

// ---- property: tuple space search == linear scan, and the wildcards are sufficient ----------

const FIELDS: { w: number; masks: number[]; values: number[] }[] = [
  { w: W_IN_PORT, masks: [0xffffffff], values: [1, 2, 3] },
  { w: W_DL_DST_LO, masks: [0xffffffff, 0x81000000], values: [0x81000000, 0xffffffff, 0x01000002] },
  { w: W_VLAN_DLTYPE, masks: [0xffff, 0x1fff0000, 0x1fffffff], values: [0x0800, 0x10010800, 0x10020806] },
  { w: W_NW_SRC, masks: [0xffffffff, 0xffffff00, 0xff000000], values: [0x0a000001, 0xc0a80101, 0xc0a80001] },
  { w: W_NW_DST, masks: [0xffffffff, 0xffff0000], values: [0x0a000002, 0x0a010002] },
  { w: W_TP, masks: [0xffff, 0xffff0000, 0xff00], values: [0x00500050, 0x00350050, 0x00500035] },
  { w: W_REG0, masks: [0xffffffff, 0x0f], values: [0, 5, 0x15] },
];

const arbMatchFields = fc.array(
  fc.record({ f: fc.nat(FIELDS.length - 1), m: fc.nat(2), v: fc.nat(2) }), { maxLength: 4 });
const arbRule = fc.record({ priority: fc.integer({ min: 0, max: 6 }), fields: arbMatchFields });
const arbKey = fc.array(fc.nat(2), { minLength: FIELDS.length, maxLength: FIELDS.length });
const arbOps = fc.array(fc.oneof(
  { weight: 4, arbitrary: arbRule.map((r) => ({ op: 'add' as const, r })) },
  { weight: 1, arbitrary: fc.nat(50).map((i) => ({ op: 'del' as const, i })) }), { minLength: 1, maxLength: 40 });

function ruleFrom(spec: { priority: number; fields: { f: number; m: number; v: number }[] }, n: number): TRule {
  const fields: [number, number, number][] = spec.fields.map((x) => {
    const F = FIELDS[x.f];
    return [F.w, F.values[x.v % F.values.length], F.masks[x.m % F.masks.length]];
  });
  return { name: `r${n}`, priority: spec.priority, match: mkMatch(fields) };
}
function keyFrom(spec: number[]): Uint32Array {
  return mkKey(FIELDS.map((F, i) => [F.w, F.values[spec[i] % F.values.length]]));
}
function sameMatch(a: Match, b: Match): boolean {
  for (let w = 0; w < KEY_WORDS; w++) if (a.mask[w] !== b.mask[w] || a.value[w] !== b.value[w]) return false;
  return true;
}

test('property: classifier agrees with a linear scan and its wildcards are sufficient', () => {
  fc.assert(fc.property(arbOps, fc.array(arbKey, { minLength: 1, maxLength: 8 }), fc.array(fc.integer(), { minLength: KEY_WORDS, maxLength: KEY_WORDS }),
    (ops, keySpecs, noise) => {
      const c = new Classifier<TRule>();
      const list: TRule[] = []; // insertion order, replacements in place
      let n = 0;
      for (const o of ops) {
        if (o.op === 'add') {
          const r = ruleFrom(o.r, n++);
          const j = list.findIndex((x) => x.priority === r.priority && sameMatch(x.match, r.match));
          const old = c.insert(r);
          if (j >= 0) { assert.equal(old, list[j]); list[j] = r; } else { assert.equal(old, undefined); list.push(r); }
        } else if (list.length > 0) {
          const r = list[o.i % list.length];
          assert.equal(c.remove(r), true);
          list.splice(list.indexOf(r), 1);
        }
      }
      assert.equal(c.size, list.length);
      for (const ks of keySpecs) {
        const key = keyFrom(ks);
        let want: TRule | undefined;
        for (const r of list) if (matches(r.match, key) && (want === undefined || r.priority > want.priority)) want = r;
        const wc = new Uint32Array(KEY_WORDS);
        const got = c.lookup(key, 0, wc);
        assert.equal(got?.name, want?.name);
        // Any key agreeing on the wc bits gets the same rule.
        const k2 = new Uint32Array(KEY_WORDS);
        for (let w = 0; w < KEY_WORDS; w++) k2[w] = ((key[w] & wc[w]) | (noise[w] & ~wc[w])) >>> 0;
        assert.equal(c.lookup(k2, 0, null)?.name, want?.name);
        // Also a key whose wildcarded bits come from another drawn key (more likely to hit rules).
        const other = keyFrom(keySpecs[(keySpecs.indexOf(ks) + 1) % keySpecs.length]);
        for (let w = 0; w < KEY_WORDS; w++) k2[w] = ((key[w] & wc[w]) | (other[w] & ~wc[w])) >>> 0;
        assert.equal(c.lookup(k2, 0, null)?.name, want?.name);
      }
    }), { numRuns: 400 });
});
