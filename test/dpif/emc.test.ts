import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Emc, EMC_KEY_WORDS } from '../../src/dpif/emc';
import {
  KEY_WORDS, W_CT_MARK, W_CT_STATE, W_CT_ZONE, W_IPV6_DST, W_METADATA_LO, W_RECIRC_ID, W_REG0, W_VLAN_DLTYPE,
} from '../../src/packet/flowkey-layout';
import { hashKeyWords } from '../../src/dpif/flow-hash';

function keyOf(n: number): Uint32Array {
  const k = new Uint32Array(KEY_WORDS);
  k[0] = 1; k[7] = n; k[11] = 0x0a000000 + n;
  return k;
}

test('a forced collision in a 2-slot EMC never returns the wrong flow', () => {
  const emc = new Emc(2, 1);
  const serials = new Uint32Array(1000);
  // Same hash for every key: the worst case, every key lands in the one bucket.
  const H = 0x12345678;
  for (let n = 0; n < 500; n++) {
    emc.maybeInsert(keyOf(n), 0, H, n, serials);
    for (let m = 0; m < 500; m++) {
      const f = emc.lookup(keyOf(m), 0, H, serials);
      assert.ok(f === -1 || f === m, `key ${m} returned flow ${f}`);
    }
    assert.equal(emc.lookup(keyOf(n), 0, H, serials), n);
  }
});

test('EMC keeps two colliding keys of one bucket side by side', () => {
  const emc = new Emc(2, 1);
  const serials = new Uint32Array(4);
  emc.maybeInsert(keyOf(1), 0, 7, 1, serials);
  emc.maybeInsert(keyOf(2), 0, 7, 2, serials);
  assert.equal(emc.lookup(keyOf(1), 0, 7, serials), 1);
  assert.equal(emc.lookup(keyOf(2), 0, 7, serials), 2);
  assert.equal(emc.lookup(keyOf(3), 0, 7, serials), -1);
});

test('EMC entry of a deleted megaflow (serial bumped) misses; flush kills all in O(1)', () => {
  const emc = new Emc(64, 1);
  const serials = new Uint32Array(4);
  const k = keyOf(9);
  const h = hashKeyWords(k, 0, EMC_KEY_WORDS, 1);
  emc.maybeInsert(k, 0, h, 3, serials);
  assert.equal(emc.lookup(k, 0, h, serials), 3);
  serials[3]++;
  assert.equal(emc.lookup(k, 0, h, serials), -1);
  emc.maybeInsert(k, 0, h, 3, serials);
  assert.equal(emc.lookup(k, 0, h, serials), 3);
  emc.flush();
  assert.equal(emc.lookup(k, 0, h, serials), -1);
  assert.equal(emc.countLive(serials), 0);
});

test('EMC compares the packet words and the ct words: IPv6 address, ct_state and ct_mark differences miss; metadata and registers are not compared', () => {
  const emc = new Emc(64, 1);
  const serials = new Uint32Array(2);
  const k = keyOf(1);
  k[W_VLAN_DLTYPE] = 0x86dd; // IPv6: the address words take part in the compare
  k[W_RECIRC_ID] = 3; k[W_CT_STATE] = 0x22; k[W_CT_MARK] = 7;
  emc.maybeInsert(k, 0, 5, 1, serials);
  assert.equal(emc.lookup(k, 0, 5, serials), 1);
  for (const w of [W_RECIRC_ID, W_IPV6_DST + 3, W_CT_STATE, W_CT_ZONE, W_CT_MARK]) {
    const k2 = Uint32Array.from(k); k2[w] ^= 1;
    assert.equal(emc.lookup(k2, 0, 5, serials), -1, `word ${w}`);
  }
  // Words after the ct words are zero in every key the datapath looks up: not compared.
  const k3 = Uint32Array.from(k); k3[W_METADATA_LO] ^= 1; k3[W_REG0] ^= 1;
  assert.equal(emc.lookup(k3, 0, 5, serials), 1);
  // An IPv4 key: the (zero) IPv6 words are skipped, the ct words are still compared.
  const v4 = keyOf(2);
  emc.maybeInsert(v4, 0, 9, 1, serials);
  const v4b = Uint32Array.from(v4); v4b[W_CT_STATE] = 0x21;
  assert.equal(emc.lookup(v4b, 0, 9, serials), -1);
});

test('probabilistic insertion: 1/100 inserts about 1% of distinct offered keys', () => {
  const emc = new Emc(1 << 16, 100);
  const serials = new Uint32Array(1);
  const k = new Uint32Array(KEY_WORDS);
  for (let n = 0; n < 100000; n++) {
    k[7] = n;
    emc.maybeInsert(k, 0, hashKeyWords(k, 0, EMC_KEY_WORDS, 1), 0, serials);
  }
  assert.ok(emc.nInserts > 700 && emc.nInserts < 1300, `inserted ${emc.nInserts}`);
});

test('IPv6 keys that differ only in an address word are different entries', () => {
  const emc = new Emc(64, 1);
  const serials = new Uint32Array(4);
  const a = new Uint32Array(KEY_WORDS); a[10] = 0x86dd; a[20] = 0x20010db8; a[27] = 1;
  const b = Uint32Array.from(a); b[27] = 2;
  emc.maybeInsert(a, 0, 9, 1, serials);
  assert.equal(emc.lookup(a, 0, 9, serials), 1);
  assert.equal(emc.lookup(b, 0, 9, serials), -1);
});

test('EMC entries hold their words in a slot, a context and a tail: every compared word still tells two keys apart, and entryKey gives the key back in key order', () => {
  const emc = new Emc(64, 1);
  const serials = new Uint32Array(2);
  const k = new Uint32Array(KEY_WORDS);
  for (let w = 0; w < EMC_KEY_WORDS; w++) k[w] = 0x1000 + w;
  k[W_VLAN_DLTYPE] = 0x86dd; // not IPv4: every word [0, EMC_KEY_WORDS) takes part in the compare
  const h = 5;
  emc.maybeInsert(k, 0, h, 1, serials);
  assert.equal(emc.lookup(k, 0, h, serials), 1);
  for (let w = 0; w < EMC_KEY_WORDS; w++) {
    const d = Uint32Array.from(k);
    d[w] ^= 0x80000000;
    assert.equal(emc.lookup(d, 0, h, serials), -1, `keys differing only in word ${w} were taken as equal`);
  }
  let slot = -1;
  emc.forEachLive(serials, (s) => { slot = s; });
  const out = new Uint32Array(EMC_KEY_WORDS);
  emc.entryKey(slot, out);
  assert.deepEqual(out, k.subarray(0, EMC_KEY_WORDS));
});

test('an IPv4 entry dumps a zero tail, also in a slot where an IPv6 entry with address words lived', () => {
  const emc = new Emc(2, 1);
  const serials = new Uint32Array(4);
  const H = 0x40000000; // bucket 0, first choice slot 0 (h >>> 31 = 0)
  const v6 = keyOf(1);
  v6[W_VLAN_DLTYPE] = 0x86dd;
  v6[W_IPV6_DST] = 0x20010db8; v6[W_IPV6_DST + 3] = 7;
  emc.maybeInsert(v6, 0, H, 1, serials);
  const out = new Uint32Array(EMC_KEY_WORDS);
  const slotOf = (flow: number): number => { let s = -1; emc.forEachLive(serials, (slot, f) => { if (f === flow) s = slot; }); return s; };
  emc.entryKey(slotOf(1), out);
  assert.deepEqual(Array.from(out), Array.from(v6.subarray(0, EMC_KEY_WORDS)), 'the IPv6 entry, tail and all');
  serials[1]++; // its megaflow is gone: slot 0 is free again
  const v4 = keyOf(2);
  v4[W_VLAN_DLTYPE] = 0x0800;
  emc.maybeInsert(v4, 0, H, 2, serials);
  assert.equal(slotOf(2), 0, 'the IPv4 entry took slot 0, the IPv6 one\'s');
  emc.entryKey(0, out);
  assert.deepEqual(Array.from(out), Array.from(v4.subarray(0, EMC_KEY_WORDS)), 'the IPv4 entry, its tail zero');
  assert.equal(emc.lookup(v4, 0, H, serials), 2);
  assert.equal(emc.lookup(v6, 0, H, serials), -1);
});
