/**
 * The EMC's context table (dpif/emc.ts): an entry holds the id of its context words (in_port,
 * recirc_id, the tunnel words, the ct words) instead of the words, and its ARP/IPv6 words apart
 * from its slot. A lookup must still never return another key's flow: not when keys differ only
 * in a context word or only in an ARP/IPv6 word, and not after the context table fills and starts
 * afresh (its ids are given again).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Emc, EMC_KEY_WORDS } from '../../src/dpif/emc';
import {
  KEY_WORDS, PACKET_WORDS, W_ARP_SHA_HI, W_CT_MARK, W_CT_STATE, W_CT_ZONE, W_IN_PORT, W_RECIRC_ID, W_TUN_DST,
  W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC, W_VLAN_DLTYPE,
} from '../../src/packet/flowkey-layout';

const CONTEXT_WORDS = [W_IN_PORT, W_RECIRC_ID, W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC, W_TUN_DST, W_CT_STATE, W_CT_ZONE, W_CT_MARK];

/** An IPv4 key with every context word set (so that each can be changed alone). */
function ipv4Key(): Uint32Array {
  const k = new Uint32Array(KEY_WORDS);
  for (const w of CONTEXT_WORDS) k[w] = 0x100 + w;
  k[7] = 0x3e000110; k[W_VLAN_DLTYPE] = 0x0800; k[11] = 0x0a00010a; k[12] = 0x0a000214; k[14] = 0x04d22000;
  return k;
}

test('keys that differ only in one context word are different entries, each hit returning its own flow (one bucket, same hash)', () => {
  const emc = new Emc(2, 1);
  const serials = new Uint32Array(16);
  const H = 0x2468ace;
  const base = ipv4Key();
  emc.maybeInsert(base, 0, H, 0, serials);
  for (const [n, w] of CONTEXT_WORDS.entries()) {
    const k = Uint32Array.from(base); k[w] ^= 0x40000;
    assert.equal(emc.lookup(k, 0, H, serials), -1, `a key differing only in word ${w} took the other key's entry`);
    // Side by side in the bucket with the base key: each finds its own.
    emc.maybeInsert(k, 0, H, n + 1, serials);
    assert.equal(emc.lookup(k, 0, H, serials), n + 1, `word ${w}`);
    emc.maybeInsert(base, 0, H, 0, serials);
    assert.equal(emc.lookup(base, 0, H, serials), 0, `word ${w}`);
    assert.equal(emc.lookup(k, 0, H, serials), n + 1, `word ${w}: the base key's insert evicted the other slot`);
  }
});

test('ARP and IPv6 keys that differ only in one ARP/IPv6 word are different entries', () => {
  for (const ethertype of [0x0806, 0x86dd]) {
    const emc = new Emc(64, 1);
    const serials = new Uint32Array(2);
    const k = ipv4Key();
    k[W_VLAN_DLTYPE] = ethertype;
    for (let w = W_ARP_SHA_HI; w < PACKET_WORDS; w++) k[w] = 0x5000 + w;
    emc.maybeInsert(k, 0, 7, 1, serials);
    assert.equal(emc.lookup(k, 0, 7, serials), 1);
    for (let w = W_ARP_SHA_HI; w < PACKET_WORDS; w++) {
      const d = Uint32Array.from(k); d[w] ^= 1;
      assert.equal(emc.lookup(d, 0, 7, serials), -1, `ethertype ${ethertype.toString(16)}: keys differing only in word ${w} were taken as equal`);
    }
  }
});

test('a full context table starts afresh and flushes the EMC: no entry answers with a context id given again', () => {
  // 3 contexts at most, 12 ports: the table fills again and again; each port's key in its own
  // bucket (hash = port), so entries of every port stay in the table until a flush.
  const emc = new Emc(64, 1, 3);
  const serials = new Uint32Array(64);
  const keyOf = (port: number) => { const k = ipv4Key(); k[W_IN_PORT] = port; return k; };
  for (let round = 0; round < 3; round++) {
    for (let port = 0; port < 12; port++) {
      const flow = round * 12 + port;
      emc.maybeInsert(keyOf(port), 0, 2 * port, flow, serials);
      assert.equal(emc.lookup(keyOf(port), 0, 2 * port, serials), flow);
      for (let other = 0; other < 12; other++) {
        const f = emc.lookup(keyOf(other), 0, 2 * other, serials);
        assert.ok(f === -1 || f % 12 === other, `port ${other}'s key returned flow ${f} (port ${f % 12}'s)`);
      }
      assert.ok(emc.nContexts <= 3);
      // A live entry reads back as the key it was inserted for (dump.ts prints it).
      emc.forEachLive(serials, (slot, f) => {
        const out = new Uint32Array(EMC_KEY_WORDS);
        emc.entryKey(slot, out);
        assert.deepEqual(out, keyOf(f % 12).subarray(0, EMC_KEY_WORDS), `slot ${slot}, flow ${f}`);
      });
    }
  }
  assert.ok(emc.nContextResets >= 10, `resets ${emc.nContextResets}`);
});

test('random keys from small pools of word values, colliding hashes, a small EMC and context table: a hit is always the flow last inserted for that very key', () => {
  let seed = 12345;
  const rnd = (n: number) => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n; };
  const emc = new Emc(8, 1, 5);
  const serials = new Uint32Array(1000);
  const last = new Map<string, number>();
  const randomKey = () => {
    const k = new Uint32Array(KEY_WORDS);
    k[W_VLAN_DLTYPE] = [0x0800, 0x86dd, 0x0806][rnd(3)];
    for (const w of [...CONTEXT_WORDS, 7, 11, 14]) k[w] = rnd(2);
    if (k[W_VLAN_DLTYPE] !== 0x0800) k[W_ARP_SHA_HI + rnd(PACKET_WORDS - W_ARP_SHA_HI)] = rnd(2);
    return k;
  };
  for (let n = 0; n < 20000; n++) {
    const k = randomKey(), h = rnd(4), name = `${h}:${Array.from(k.subarray(0, EMC_KEY_WORDS)).join(',')}`;
    if (rnd(3) === 0) {
      const flow = rnd(1000);
      emc.maybeInsert(k, 0, h, flow, serials);
      last.set(name, flow);
    }
    const f = emc.lookup(k, 0, h, serials);
    assert.ok(f === -1 || f === last.get(name), `lookup ${n}: flow ${f}, last inserted for this key ${last.get(name)}`);
  }
  assert.ok(emc.nContextResets > 0);
});
