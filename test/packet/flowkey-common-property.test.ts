/**
 * extractCommon (the datapath's one-loop parse of a batch, dpif/stages.ts extract) against the
 * general parse, extractKey, word for word, over random batches (fast-check): frames made from
 * every shape the parser knows (untagged, 802.1Q, QinQ, 802.3 LLC/SNAP, IPv4 with and without
 * options, fragments, IPv6, ARP, ICMP, GRE, VXLAN, TCP with options), then bent (bytes set or
 * flipped in the headers, cut short, grown, up to GSO super-frame lengths over 64 KiB), laid
 * at random alignments among junk bytes; batches that repeat frames (runs of one flow) and
 * frames differing from the one before in one header byte; slots in random order, each left
 * holding the key of an earlier frame (IPv6 and ARP keys included); ingress columns of one
 * plain port (plainPort given, as selectAll finds), one tunnel, or mixed.
 * For every frame: the key words [0, PACKET_WORDS) and the offsets it writes are extractKey's
 * (with the tunnel words from the columns), and extractKey says Stop.Ok; a frame it leaves is
 * listed in order, with a zero ARP/IPv6 tail so that extractKeyOver then gives extractKey's key;
 * the pipeline words are untouched; same[i] is the frame before it in `slots` exactly when both
 * were parsed here and their keys are equal; an unmarked frame's hash is ingressHash of its key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as F from './frames';
import { extractCommon, extractKey, extractKeyOver, frameView, IngressColumns, OFFS_WORDS } from '../../src/packet/flowkey';
import {
  KEY_WORDS, PACKET_WORDS, W_ARP_SHA_HI, W_CT_MARK, W_CT_STATE, W_TUN_DST, W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC,
} from '../../src/packet/flowkey-layout';
import { Stop } from '../../src/packet/stop';
import { buildTcp4Frame } from '../../src/packet/tcp';
import { ingressHash } from '../../src/dpif/flow-hash';

const TCP4 = buildTcp4Frame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 80, dport: 40000, flags: 0x10 });
const TCP4_OPTS = buildTcp4Frame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, flags: 0x12,
  tcpOptions: F.hex('020405b4 01030307'), payload: new Uint8Array(10) });
/** TCP4_VLAN under an 802.1ad outer tag. */
const TCP4_QINQ = Uint8Array.from([...F.TCP4_VLAN.subarray(0, 12), 0x88, 0xa8, 0x00, 0x07, ...F.TCP4_VLAN.subarray(12)]);

const TEMPLATES: readonly Uint8Array[] = [
  F.UDP4, F.TCP4_VLAN, TCP4, TCP4_OPTS, TCP4_QINQ, F.ICMP4_ECHO, F.ARP_REQ, F.VXLAN, F.GRE_KEY, F.UDP6,
  F.ICMP6_HBH_FRAG, F.IPV6_LATER_FRAG, F.IPV4_LATER_FRAG, F.IPV4_FIRST_FRAG, F.SNAP_IPV4, F.UDP4_OPTS, F.LLC_STP,
];

/** The biggest frame made here: a GSO super-frame of 64 KiB and more. */
const MAX_FRAME = 65536 + 200;
const MAX_BATCH = 24;
const SLOT = MAX_FRAME + 8;

type Op =
  | { kind: 'set'; pos: number; val: number }
  | { kind: 'cut'; len: number }
  | { kind: 'grow'; big: boolean; extra: number; fixLength: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), pos: fc.nat(79), val: fc.nat(255) }),
  fc.record({ kind: fc.constant('cut' as const), len: fc.nat(90) }),
  fc.record({ kind: fc.constant('grow' as const), big: fc.boolean(), extra: fc.nat(120), fixLength: fc.boolean() }),
);

/** A frame: a template (the first four, the frames extractCommon is for, more often) and what is done to it (often nothing). */
const frameArb = fc.record({
  t: fc.oneof({ weight: 3, arbitrary: fc.nat(3) }, { weight: 2, arbitrary: fc.nat(TEMPLATES.length - 1) }),
  ops: fc.oneof({ weight: 2, arbitrary: fc.constant<readonly Op[]>([]) }, { weight: 1, arbitrary: fc.array(opArb, { minLength: 1, maxLength: 3 }) }),
});

function makeFrame(spec: { t: number; ops: readonly Op[] }): Uint8Array {
  let f = Uint8Array.from(TEMPLATES[spec.t]);
  for (const op of spec.ops) {
    if (op.kind === 'set') {
      if (op.pos < f.length) f[op.pos] = op.val;
    } else if (op.kind === 'cut') {
      f = f.slice(0, op.len % (f.length + 1));
    } else {
      const n = Math.min(MAX_FRAME, (op.big ? Math.max(65536, f.length) : f.length) + op.extra);
      const g = new Uint8Array(n);
      g.set(f);
      for (let k = f.length; k < n; k++) g[k] = (k * 151) & 0xff;
      // A super-frame's IPv4 total length as a segmenting sender leaves it (the whole, capped).
      const l3 = g[12] === 0x81 ? 18 : 14;
      if (op.fixLength && n > l3 + 4) {
        const total = Math.min(0xffff, n - l3);
        g[l3 + 2] = total >>> 8; g[l3 + 3] = total & 0xff;
      }
      f = g;
    }
  }
  return f;
}

/** One frame of a batch: a frame of the pool, maybe with one header byte changed. */
const entryArb = fc.record({
  pick: fc.nat(5),
  tweak: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.record({ pos: fc.nat(59), val: fc.nat(255) }) }),
  ingress: fc.nat(2),
});

const batchArb = fc.record({
  pool: fc.array(frameArb, { minLength: 1, maxLength: 6 }),
  entries: fc.array(entryArb, { minLength: 1, maxLength: MAX_BATCH }),
  slotOrder: fc.shuffledSubarray(Array.from({ length: MAX_BATCH }, (_, i) => i), { minLength: MAX_BATCH, maxLength: MAX_BATCH }),
  prior: fc.array(fc.nat(TEMPLATES.length), { minLength: MAX_BATCH, maxLength: MAX_BATCH }),
  align: fc.nat(3),
  ingressMode: fc.constantFrom('plain', 'tunnel', 'mixed'),
  seed: fc.integer(),
});

// Reused by every run: the batch buffer (junk between frames) and its columns.
const buf = new Uint8Array(SLOT * MAX_BATCH);
const dv = frameView(buf);
const INGRESS = [
  { port: 3, idHi: 0, idLo: 0, src: 0, dst: 0 },
  { port: 3, idHi: 0, idLo: 0x3e9, src: 0xc0a8640c, dst: 0xc0a8640b },
  { port: 4, idHi: 1, idLo: 0x3e9, src: 0xc0a8640c, dst: 0xc0a8640b },
];

test('extractCommon writes what extractKey writes, marks runs of equal keys and hashes as ingressHash (fast-check)', () => {
  let nTaken = 0, nMarked = 0, nLeft = 0;
  fc.assert(fc.property(batchArb, (b) => {
    const pool = b.pool.map(makeFrame);
    const n = b.entries.length;
    const slots = Uint16Array.from(b.slotOrder.slice(0, n));
    const off = new Uint32Array(MAX_BATCH), len = new Uint32Array(MAX_BATCH);
    const cols: IngressColumns = { inPort: new Uint32Array(MAX_BATCH), tunIdHi: new Uint32Array(MAX_BATCH),
      tunIdLo: new Uint32Array(MAX_BATCH), tunSrc: new Uint32Array(MAX_BATCH), tunDst: new Uint32Array(MAX_BATCH) };
    let s = b.seed | 1;
    for (let k = 0; k < buf.length; k += 4096) {       // junk around the frames, cheaply
      s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
      buf.fill(s & 0xff, k, k + 4096);
    }
    for (let k = 0; k < n; k++) {
      const e = b.entries[k], i = slots[k];
      const f = pool[e.pick % pool.length];
      const o = i * SLOT + b.align;
      buf.set(f, o);
      if (e.tweak !== null && e.tweak.pos < f.length) buf[o + e.tweak.pos] = e.tweak.val;
      off[i] = o; len[i] = f.length;
      const ing = INGRESS[b.ingressMode === 'plain' ? 0 : b.ingressMode === 'tunnel' ? 1 : e.ingress];
      cols.inPort[i] = ing.port; cols.tunIdHi[i] = ing.idHi; cols.tunIdLo[i] = ing.idLo;
      cols.tunSrc[i] = ing.src; cols.tunDst[i] = ing.dst;
    }
    // Each slot holds an earlier frame's key (or zeros), and pipeline words extract must not touch.
    const keys = new Uint32Array(MAX_BATCH * KEY_WORDS), offs = new Uint16Array(MAX_BATCH * OFFS_WORDS).fill(0xeeee);
    for (let i = 0; i < MAX_BATCH; i++) {
      const t = b.prior[i];
      if (t < TEMPLATES.length) extractKey(TEMPLATES[t], 0, TEMPLATES[t].length, 9, keys, i * KEY_WORDS, offs, i * OFFS_WORDS);
      for (let w = PACKET_WORDS; w < KEY_WORDS; w++) keys[i * KEY_WORDS + w] = 0xc0de0000 + w;
    }
    const others = new Uint16Array(MAX_BATCH), same = new Int16Array(MAX_BATCH).fill(0x7777);
    const hashes = new Uint32Array(MAX_BATCH).fill(0xdeadbeef), cacheHashes = new Uint32Array(MAX_BATCH).fill(0xdeadbeef);
    const plainPort = b.ingressMode === 'plain' ? INGRESS[0].port : -1;
    const nOther = extractCommon(dv, off, len, slots, n, keys, offs, others, same, hashes, cols, plainPort, cacheHashes);

    const ref = new Uint32Array(KEY_WORDS), refOffs = new Uint16Array(OFFS_WORDS);
    const left: number[] = [];
    let prevTaken = -1;
    for (let k = 0; k < n; k++) {
      const i = slots[k], base = i * KEY_WORDS;
      const stop = extractKey(buf, off[i], len[i], cols.inPort[i], ref, 0, refOffs, 0);
      ref[W_TUN_ID_HI] = cols.tunIdHi[i]; ref[W_TUN_ID_LO] = cols.tunIdLo[i];
      ref[W_TUN_SRC] = cols.tunSrc[i]; ref[W_TUN_DST] = cols.tunDst[i];
      const taken = others.subarray(0, nOther).indexOf(i) < 0;
      // The ct words of a frame it parses are zero (a frame from a port); no other pipeline word is touched.
      for (let w = PACKET_WORDS; w < KEY_WORDS; w++) {
        const ctWord: boolean = taken && w >= W_CT_STATE && w <= W_CT_MARK;
        assert.equal(keys[base + w], ctWord ? 0 : 0xc0de0000 + w, `slot ${i}: pipeline word ${w}`);
      }
      if (!taken) {
        left.push(i);
        nLeft++;
        assert.equal(same[i], -1, `slot ${i}: left, but marked`);
        for (let w = W_ARP_SHA_HI; w < PACKET_WORDS; w++) assert.equal(keys[base + w], 0, `slot ${i}: left with tail word ${w} set`);
        // What the caller does next (dpif/stages.ts extractOthers) then gives extractKey's key.
        extractKeyOver(buf, off[i], len[i], cols.inPort[i], keys, base, offs, i * OFFS_WORDS, dv);
        keys[base + W_TUN_ID_HI] = cols.tunIdHi[i]; keys[base + W_TUN_ID_LO] = cols.tunIdLo[i];
        keys[base + W_TUN_SRC] = cols.tunSrc[i]; keys[base + W_TUN_DST] = cols.tunDst[i];
        for (let w = 0; w < PACKET_WORDS; w++) assert.equal(keys[base + w], ref[w], `slot ${i}: extractKeyOver after, word ${w}`);
        prevTaken = -1;
        continue;
      }
      nTaken++;
      assert.equal(stop, Stop.Ok, `slot ${i}: taken, but extractKey stops at ${stop}`);
      for (let w = 0; w < PACKET_WORDS; w++) assert.equal(keys[base + w], ref[w], `slot ${i}: word ${w}`);
      for (let o = 0; o < OFFS_WORDS; o++) assert.equal(offs[i * OFFS_WORDS + o], refOffs[o], `slot ${i}: offset ${o}`);
      let equal = prevTaken >= 0;
      for (let w = 0; equal && w < PACKET_WORDS; w++) equal = keys[base + w] === keys[prevTaken * KEY_WORDS + w];
      assert.equal(same[i], equal ? prevTaken : -1, `slot ${i}: same`);
      if (equal) nMarked++;
      // Every frame it takes has its hash in both columns, a marked one too (hashed once per run).
      assert.equal(hashes[i], ingressHash(ref, 0) >>> 0, `slot ${i}: hash`);
      assert.equal(cacheHashes[i], hashes[i], `slot ${i}: cache hash`);
      prevTaken = i;
    }
    assert.deepEqual(Array.from(others.subarray(0, nOther)), left, 'the frames left, in `slots` order');
  }), { numRuns: 500 });
  // The generator reaches every outcome often enough to mean something.
  assert.ok(nTaken > 1000 && nMarked > 200 && nLeft > 500, `taken ${nTaken}, marked ${nMarked}, left ${nLeft}`);
});
