/**
 * extractCommon (the datapath's straight-line parse of Ethernet/IPv4/TCP-UDP frames, a batch at
 * a time) agrees with extractKey: for every frame it takes (does not list in `others`), its
 * words [W_DL_DST_HI, W_ARP_SHA_HI) and its offsets equal extractKey's, and extractKey says
 * Stop.Ok; it takes the plain frames it was written for; and it never reads outside the frame
 * (garbage around the frame changes nothing). Frames: the fuzz corpus shapes, bit-flipped, cut
 * and with their IPv4/TCP/UDP length fields bent, one after another. Over a batch: it lists
 * the frames it leaves in slot order, clears the ARP/IPv6 words of a slot whose last key
 * used them, and marks (same) exactly the frames whose words equal their neighbour's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from './frames';
import { extractCommon, extractKey, frameView, IngressColumns, OFFS_WORDS } from '../../src/packet/flowkey';
import {
  KEY_WORDS, PACKET_WORDS, W_ARP_SHA_HI, W_DL_DST_HI, W_IN_PORT, W_IPV6_SRC, W_RECIRC_ID, W_TUN_DST, W_TUN_ID_HI,
  W_TUN_ID_LO, W_TUN_SRC,
} from '../../src/packet/flowkey-layout';
import { Stop } from '../../src/packet/stop';
import { buildTcp4Frame } from '../../src/packet/tcp';
import { ingressHash } from '../../src/dpif/flow-hash';

const TCP4_OPTS = buildTcp4Frame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, flags: 0x12,
  tcpOptions: F.hex('020405b4 01030307'), payload: new Uint8Array(10) });
const TCP4 = buildTcp4Frame({ src: '10.0.0.1', dst: '10.0.0.2', sport: 80, dport: 40000, flags: 0x10 });

/** Ingress columns for `n` slots, all zero (frames from port 0, no tunnel). */
function noIngress(n: number): IngressColumns {
  return { inPort: new Uint32Array(n), tunIdHi: new Uint32Array(n), tunIdLo: new Uint32Array(n),
    tunSrc: new Uint32Array(n), tunDst: new Uint32Array(n) };
}

/** extractCommon over one frame at buf[off, off + len) (slot 0); true when it took it. */
function common(dv: DataView, off: number, len: number, keys: Uint32Array, offs: Uint16Array): boolean {
  const others = new Uint16Array(1);
  return extractCommon(dv, Uint32Array.of(off), Uint32Array.of(len), Uint16Array.of(0), 1, keys, offs, others, new Int16Array(1), new Uint32Array(1), noIngress(1)) === 0;
}

const BASES: Uint8Array[] = [
  F.UDP4, F.TCP4_VLAN, TCP4, TCP4_OPTS, F.ICMP4_ECHO, F.ARP_REQ, F.VXLAN, F.GRE_KEY, F.UDP6,
  F.IPV4_LATER_FRAG, F.IPV4_FIRST_FRAG, F.SNAP_IPV4, F.UDP4_OPTS,
];

test('extractCommon takes the plain TCP/UDP frames and agrees with extractKey (40000 frames)', () => {
  const OFF = 6;
  const zeros = new Uint8Array(OFF + 2048), junk = new Uint8Array(OFF + 2048);
  const dvZ = frameView(zeros), dvJ = frameView(junk);
  const ref = new Uint32Array(KEY_WORDS), refOffs = new Uint16Array(OFFS_WORDS);
  const kz = new Uint32Array(KEY_WORDS), oz = new Uint16Array(OFFS_WORDS);
  const kj = new Uint32Array(KEY_WORDS), oj = new Uint16Array(OFFS_WORDS);
  for (const f of [F.UDP4, F.TCP4_VLAN, TCP4, TCP4_OPTS]) {
    zeros.fill(0); zeros.set(f, OFF);
    assert.equal(common(dvZ, OFF, f.length, kz, oz), true, 'a plain frame takes the common path');
  }
  let s = 0x13579bdf;
  const rnd = (): number => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return s >>> 0; };
  let nTaken = 0;
  for (let iter = 0; iter < 40000; iter++) {
    const frame = BASES[rnd() % BASES.length];
    zeros.fill(0);
    zeros.set(frame, OFF);
    const m = rnd() & 7;
    if (m < 3) for (let k = 0; k < 2; k++) zeros[OFF + (rnd() % frame.length)] ^= 1 << (rnd() & 7);
    else if (m < 5) zeros[OFF + 12 + (rnd() % 40)] = rnd() & 0xff; // a header byte: lengths, IHL, flags, type
    const len = (rnd() & 3) === 0 ? rnd() % (frame.length + 1) : frame.length;
    for (let k = 0; k < junk.length; k++) junk[k] = rnd() & 0xff;
    junk.set(zeros.subarray(OFF, OFF + len), OFF);
    const r = extractKey(zeros, OFF, len, 0, ref, 0, refOffs, 0);
    kz.fill(0x5a5a5a5a); kj.fill(0xa5a5a5a5);
    const tz = common(dvZ, OFF, len, kz, oz);
    const tj = common(dvJ, OFF, len, kj, oj);
    assert.equal(tj, tz, `frame ${iter}: bytes outside the frame changed the answer`);
    if (!tz) continue;
    nTaken++;
    assert.equal(r, Stop.Ok, `frame ${iter}: extractCommon took a frame extractKey stops at (${r})`);
    for (let w = W_DL_DST_HI; w < W_ARP_SHA_HI; w++) {
      assert.equal(kz[w], ref[w], `frame ${iter}, word ${w}`);
      assert.equal(kj[w], ref[w], `frame ${iter}, word ${w} (garbage around)`);
    }
    for (let o = 0; o < OFFS_WORDS; o++) assert.equal(oz[o], refOffs[o], `frame ${iter}, offset ${o}`);
  }
  assert.ok(nTaken > 5000, `common path taken ${nTaken} times`);
});

test('extractCommon over a batch: the frames it leaves in slot order, stale IPv6 words cleared', () => {
  const frames = [F.UDP4, F.ARP_REQ, F.TCP4_VLAN, F.UDP6, TCP4, F.VXLAN, F.UDP4];
  const SLOT = 256, buf = new Uint8Array(SLOT * frames.length);
  const off = new Uint32Array(frames.length), len = new Uint32Array(frames.length);
  frames.forEach((f, i) => { buf.set(f, i * SLOT + 2); off[i] = i * SLOT + 2; len[i] = f.length; });
  const keys = new Uint32Array(frames.length * KEY_WORDS), offs = new Uint16Array(frames.length * OFFS_WORDS);
  // Slot 4's key is left over from an IPv6 frame: its addresses must not survive into the TCP key.
  extractKey(F.UDP6, 0, F.UDP6.length, 0, keys, 4 * KEY_WORDS, offs, 4 * OFFS_WORDS);
  assert.notEqual(keys[4 * KEY_WORDS + W_IPV6_SRC], 0);
  const slots = Uint16Array.of(6, 5, 4, 3, 2, 1, 0), others = new Uint16Array(frames.length);
  const same = new Int16Array(frames.length).fill(7);
  const nOther = extractCommon(frameView(buf), off, len, slots, slots.length, keys, offs, others, same,
    new Uint32Array(frames.length), noIngress(frames.length));
  assert.deepEqual(Array.from(others.subarray(0, nOther)), [5, 3, 1], 'VXLAN, IPv6 and ARP left, in the order given');
  assert.deepEqual(Array.from(same), [-1, -1, -1, -1, -1, -1, -1], 'no two neighbours parsed here are equal');
  const ref = new Uint32Array(KEY_WORDS), refOffs = new Uint16Array(OFFS_WORDS);
  for (const i of [0, 2, 4, 6]) {
    extractKey(buf, off[i], len[i], 0, ref, 0, refOffs, 0);
    for (let w = W_DL_DST_HI; w < PACKET_WORDS; w++) assert.equal(keys[i * KEY_WORDS + w], ref[w], `slot ${i}, word ${w}`);
    for (let o = 0; o < OFFS_WORDS; o++) assert.equal(offs[i * OFFS_WORDS + o], refOffs[o], `slot ${i}, offset ${o}`);
  }
});

test('extractCommon marks a frame whose parsed words equal the frame before it (same), and only then', () => {
  // Slots in the order given: UDP4, UDP4 (equal), TCP flags differ, same again, ARP (left), UDP4
  // after the ARP (not marked: its neighbour was not parsed here), UDP4 again (marked).
  const ack = Uint8Array.from(TCP4), fin = Uint8Array.from(TCP4);
  fin[14 + 20 + 13] |= 0x01;
  const frames = [F.UDP4, F.UDP4, ack, fin, fin, F.ARP_REQ, F.UDP4, F.UDP4];
  const SLOT = 256, buf = new Uint8Array(SLOT * frames.length);
  const off = new Uint32Array(frames.length), len = new Uint32Array(frames.length);
  frames.forEach((f, i) => { buf.set(f, i * SLOT); off[i] = i * SLOT; len[i] = f.length; });
  const keys = new Uint32Array(frames.length * KEY_WORDS), offs = new Uint16Array(frames.length * OFFS_WORDS);
  const slots = Uint16Array.from(frames.map((_, i) => i)), others = new Uint16Array(frames.length);
  const same = new Int16Array(frames.length).fill(9);
  const nOther = extractCommon(frameView(buf), off, len, slots, slots.length, keys, offs, others, same,
    new Uint32Array(frames.length), noIngress(frames.length));
  assert.equal(nOther, 1);
  assert.deepEqual(Array.from(same), [-1, 0, -1, -1, 3, -1, -1, 6]);
  // Every word of a marked key equals its neighbour's (the words extractCommon writes).
  for (const i of [1, 4, 7]) {
    for (let w = W_DL_DST_HI; w < PACKET_WORDS; w++) assert.equal(keys[i * KEY_WORDS + w], keys[(i - 1) * KEY_WORDS + w], `slot ${i} word ${w}`);
  }
});

test('extractCommon copies in_port and the tunnel words from the ingress columns, and a neighbour differing in one of them is not marked', () => {
  // Eight equal UDP4 frames; frames 2-6 differ from the one before in one ingress column each
  // (in_port, tun_id hi, tun_id lo, tun_src, tun_dst), frame 7 equals frame 6.
  const n = 8, SLOT = 256, buf = new Uint8Array(SLOT * n);
  const off = new Uint32Array(n), len = new Uint32Array(n);
  for (let i = 0; i < n; i++) { buf.set(F.UDP4, i * SLOT); off[i] = i * SLOT; len[i] = F.UDP4.length; }
  const meta = noIngress(n);
  meta.inPort.fill(3);
  meta.inPort.fill(4, 2);
  meta.tunIdHi.fill(1, 3);
  meta.tunIdLo.fill(0x3e9, 4);
  meta.tunSrc.fill(0xc0a8640c, 5);
  meta.tunDst.fill(0xc0a8640b, 6);
  const keys = new Uint32Array(n * KEY_WORDS).fill(0x77), offs = new Uint16Array(n * OFFS_WORDS);
  const slots = Uint16Array.from({ length: n }, (_, i) => i), others = new Uint16Array(n), same = new Int16Array(n);
  for (let i = 0; i < n; i++) keys.fill(0, i * KEY_WORDS + W_ARP_SHA_HI, i * KEY_WORDS + PACKET_WORDS);
  assert.equal(extractCommon(frameView(buf), off, len, slots, n, keys, offs, others, same, new Uint32Array(n), meta), 0);
  assert.deepEqual(Array.from(same), [-1, 0, -1, -1, -1, -1, -1, 6]);
  for (let i = 0; i < n; i++) {
    const b = i * KEY_WORDS;
    assert.deepEqual([keys[b + W_IN_PORT], keys[b + W_RECIRC_ID], keys[b + W_TUN_ID_HI], keys[b + W_TUN_ID_LO],
      keys[b + W_TUN_SRC], keys[b + W_TUN_DST]],
    [meta.inPort[i], 0, meta.tunIdHi[i], meta.tunIdLo[i], meta.tunSrc[i], meta.tunDst[i]], `slot ${i}`);
  }
});

test('extractCommon compares the ingress columns with the frame before in `slots` order, not the slot before', () => {
  // Live order 0, 2, 1, 3 with in_port 5, 6, 5, 5 by slot: slot 2 equals slot 0 (before it in
  // `slots`), slot 1 differs from slot 2, slot 3 from slot 1; slot i - 1 would say otherwise.
  const n = 4, SLOT = 256, buf = new Uint8Array(SLOT * n);
  const off = new Uint32Array(n), len = new Uint32Array(n);
  for (let i = 0; i < n; i++) { buf.set(F.UDP4, i * SLOT); off[i] = i * SLOT; len[i] = F.UDP4.length; }
  const meta = noIngress(n);
  meta.inPort.set([5, 6, 5, 5]);
  const keys = new Uint32Array(n * KEY_WORDS), offs = new Uint16Array(n * OFFS_WORDS);
  const slots = Uint16Array.of(0, 2, 1, 3), others = new Uint16Array(n), same = new Int16Array(n);
  assert.equal(extractCommon(frameView(buf), off, len, slots, n, keys, offs, others, same, new Uint32Array(n), meta), 0);
  assert.deepEqual(Array.from(same), [-1, -1, 0, -1]);
});

test('extractCommon hashes the first frame of each run of equal keys as ingressHash hashes its key (ingress columns, VLAN, TCP)', () => {
  // Frames of different flows and runs of one flow, with the ingress columns varying: the hash
  // column extractCommon writes from its locals must equal ingressHash over the finished key, or
  // the EMC would miss entries made by the hash stage (queued frames) and the tunnel source port
  // would change with the path a frame took.
  const ack = Uint8Array.from(TCP4);
  ack[14 + 20 + 13] = 0x18;
  const frames = [F.UDP4, F.UDP4, F.TCP4_VLAN, TCP4, ack, ack, F.ARP_REQ, F.UDP4, TCP4_OPTS, TCP4_OPTS];
  const n = frames.length, SLOT = 256, buf = new Uint8Array(SLOT * n);
  const off = new Uint32Array(n), len = new Uint32Array(n);
  frames.forEach((f, i) => { buf.set(f, i * SLOT); off[i] = i * SLOT; len[i] = f.length; });
  const meta = noIngress(n);
  meta.inPort.set([3, 3, 4, 4, 4, 4, 4, 5, 6, 6]);
  meta.tunIdLo.set([0, 0, 0x3e9, 0x3e9, 0x3e9, 0x3e9, 0, 0, 7, 7]);
  meta.tunSrc.set([0, 0, 0, 0, 0xc0a8640c, 0xc0a8640c, 0, 0, 0, 0]);
  meta.tunIdHi.set([0, 0, 0, 0, 0, 0, 0, 9, 0, 0]);
  meta.tunDst.set([0, 0, 0, 0, 0, 0, 0, 0, 0xc0a8640b, 0xc0a8640b]);
  const keys = new Uint32Array(n * KEY_WORDS), offs = new Uint16Array(n * OFFS_WORDS);
  const slots = Uint16Array.from({ length: n }, (_, i) => i), others = new Uint16Array(n), same = new Int16Array(n);
  for (const plainPort of [-1, 3]) {
    const hashes = new Uint32Array(n).fill(0xdeadbeef);
    const nOther = extractCommon(frameView(buf), off, len, slots, plainPort < 0 ? n : 2, keys, offs, others, same, hashes, meta,
      plainPort);
    assert.equal(nOther, plainPort < 0 ? 1 : 0);
    for (let i = 0; i < (plainPort < 0 ? n : 2); i++) {
      if (i === 6) continue; // the ARP frame, left to extractKeyOver
      const h = same[i] < 0 ? hashes[i] : hashes[same[i]]; // a marked frame's hash is its run's first
      assert.equal(h, ingressHash(keys, i * KEY_WORDS) >>> 0, `plainPort ${plainPort}, slot ${i}`);
    }
    if (plainPort < 0) assert.deepEqual(Array.from(same), [-1, 0, -1, -1, -1, 4, -1, -1, -1, 8]);
  }
});
