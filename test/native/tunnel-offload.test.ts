/**
 * tunnel-offload.c on literal bytes: a TCP super-frame encapsulated by tunnelEmit (VXLAN
 * packed as one UDP GSO frame, VXLAN over a small MTU and GRE one outer frame per segment),
 * the UDP GSO frame cut as the kernel would (offload.c's UDP_L4 path), every datagram a
 * complete VXLAN frame whose inner TCP checksum verifies; then the inner segments coalesced
 * back (coalesce) into one super-frame with the original payload and a TCPV4 vnet header.
 * No privileges needed; skipped only when the addon is not built.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeIo, nativeAvailable, nativeLoadError, OffloadResult, TUNNEL_EMIT_GRE, TUNNEL_EMIT_VXLAN } from '../../src/native/io';
import { buildTunnelHeader, TunnelDesc } from '../../src/dpif/tunnel-header';
import { sum16 } from '../helpers/sum16';

const skip = nativeAvailable() ? false : `native addon not built: ${nativeLoadError()}`;
const SLOT = 65536 + 256;
const HEAD = 128;

/** IPv4 TCP frame (no VLAN): does the TCP checksum verify? */
function tcpOk(f: Uint8Array): boolean {
  const l4 = 34;
  return sum16(f, l4, f.length - l4, sum16(f, 26, 8) + 6 + (f.length - l4)) === 0xffff;
}

function ipHdrOk(f: Uint8Array, ip: number): boolean {
  return sum16(f, ip, 20) === 0xffff;
}

/** A TCPv4 super-frame with `payload` bytes, MSS `mss`, timestamps option (32-byte TCP header). */
function superFrame(payload: number, mss: number): { frame: Uint8Array; vh: Uint8Array; data: Uint8Array } {
  const hdr = 14 + 20 + 32;
  const f = new Uint8Array(hdr + payload);
  f.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
  const ip = 14;
  f.set([0x45, 0, (20 + 32 + payload) >> 8, (20 + 32 + payload) & 0xff, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 1, 10, 10, 0, 2, 20], ip);
  const t = 34;
  f.set([0x9c, 0x40, 0x14, 0x51, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0x80, 0x18, 0x01, 0xf5, 0, 0, 0, 0,
    1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], t);
  const data = new Uint8Array(payload);
  for (let i = 0; i < payload; i++) data[i] = (i * 7 + 3) & 0xff;
  f.set(data, hdr);
  // Pseudo-header sum in the checksum field (CHECKSUM_PARTIAL), as the sender's stack leaves it.
  const ps = sum16(f, 26, 8) + 6 + (32 + payload);
  const folded = (ps & 0xffff) + (ps >>> 16);
  f[t + 16] = folded >> 8; f[t + 17] = folded & 0xff;
  const vh = new Uint8Array(10);
  vh[0] = 1; vh[1] = 1; vh[4] = mss & 0xff; vh[5] = mss >> 8; vh[6] = t; vh[8] = 16;
  return { frame: f, vh, data };
}

const desc = (kind: 'vxlan' | 'gre'): TunnelDesc => ({
  kind, localIp: 0xc0a8640b, remoteIp: 0xc0a8640c, srcMac: 0x525400000011, nextHopMac: 0x525400000012,
  dstPort: 4789, ttl: 64, tos: 0,
});

test('VXLAN: one UDP GSO frame whose datagrams are complete VXLAN frames; coalesced back whole', { skip }, () => {
  const io = loadNativeIo();
  const mss = 1398;                                        // inner MTU 1450 over a 1500-byte underlay
  const { frame, vh, data } = superFrame(mss * 20 + 300, mss);
  const h = buildTunnelHeader(desc('vxlan'), 1001);
  const tmpl = Uint8Array.from(h.bytes);
  tmpl[34] = 0xc0; tmpl[35] = 0x01;                         // source port of the flow
  const buf = new Uint8Array(2 * SLOT);
  const off = new Uint32Array(2), len = new Uint32Array(2), vnet = new Uint8Array(20), st = new Uint32Array(1);
  const n = io.tunnelEmit(vh, frame, tmpl, TUNNEL_EMIT_VXLAN, 1, 1500, buf, SLOT, HEAD, 0, 2, off, len, vnet, st);
  assert.equal(n, 1);
  assert.equal(st[0], 0);
  const unit = 8 + 66 + mss;
  assert.deepEqual([...vnet.subarray(0, 10)], [1, 5, 42, 0, unit & 0xff, unit >> 8, 34, 0, 6, 0]);
  const outer = buf.subarray(off[0], off[0] + len[0]);
  assert.equal(len[0], 42 + 20 * unit + 8 + 66 + 300);
  assert.ok(ipHdrOk(outer, 14));
  assert.equal((outer[16] << 8) | outer[17], len[0] - 14);
  assert.equal((outer[34] << 8) | outer[35], 0xc001, 'outer source port kept');
  // Cut it as the kernel does (UDP_L4), then check every datagram.
  const segBuf = new Uint8Array(64 * 2048);
  const so = new Uint32Array(64), sl = new Uint32Array(64);
  const ns = io.offloadFrame(vnet.subarray(0, 10), outer, segBuf, 2048, HEAD, 64, so, sl);
  assert.equal(ns, 21);
  const inOff = new Uint32Array(ns), inLen = new Uint32Array(ns);
  for (let k = 0; k < ns; k++) {
    const d = segBuf.subarray(so[k], so[k] + sl[k]);
    assert.ok(sl[k] - 14 <= 1500, 'datagram fits the MTU');
    assert.equal(d[42], 0x08);
    assert.equal((d[46] << 16) | (d[47] << 8) | d[48], 1001);
    const inner = d.subarray(50);
    assert.ok(tcpOk(inner), `inner TCP checksum of segment ${k}`);
    assert.ok(ipHdrOk(inner, 14), `inner IP checksum of segment ${k}`);
    const seq = ((inner[38] << 24) | (inner[39] << 16) | (inner[40] << 8) | inner[41]) >>> 0;
    assert.equal(seq, 0x1000 + k * mss);
    assert.equal(inner[47] & 0x08, k === ns - 1 ? 0x08 : 0, 'PSH only on the last');
    inOff[k] = so[k] + 50;
    inLen[k] = sl[k] - 50;
  }
  // Coalesce the inner segments back.
  const grp = new Uint32Array(ns * 3);
  const cOff = new Uint32Array(4), cLen = new Uint32Array(4), cVnet = new Uint8Array(40), src = new Uint32Array(4);
  const cst = new Uint32Array(2);
  const cBuf = new Uint8Array(4 * SLOT);
  const k = io.coalesce(segBuf, inOff, inLen, ns, grp, 3, cBuf, SLOT, HEAD, 4, cOff, cLen, cVnet, src, cst);
  assert.equal(k, 1);
  assert.equal(cst[0], ns);
  assert.equal(cst[1], ns - 1);
  const merged = cBuf.subarray(cOff[0], cOff[0] + cLen[0]);
  assert.equal(cLen[0], frame.length);
  assert.deepEqual(merged.subarray(66), data);
  assert.deepEqual([...cVnet.subarray(0, 10)], [1, 1, 66, 0, mss & 0xff, mss >> 8, 34, 0, 16, 0]);
  assert.ok(ipHdrOk(merged, 14));
  assert.equal(merged[47], 0x18, 'ACK|PSH');
  // The checksum field holds the pseudo-header sum (CHECKSUM_PARTIAL), like the original.
  assert.equal((merged[50] << 8) | merged[51], (frame[50] << 8) | frame[51]);
});

test('GSO frames stay below the kernel\'s gso_max_size (65536): UDP GSO outer frames and coalesced super-frames of at most 65535 bytes', { skip }, () => {
  // The kernel segments a GSO skb of 65536 bytes or more in software as it is sent (offload.h
  // FIO_GSO_FRAME_MAX). An IPv4 length of 65535 allowed frames of up to 65549 bytes.
  const io = loadNativeIo();
  // tunnelEmit: unit 1310 (MSS 1236): 50 datagrams made 42 + 50 * 1310 = 65542 bytes.
  const mss = 1236, unit = 8 + 66 + mss;
  const { frame, vh } = superFrame(mss * 50, mss);
  const tmpl = Uint8Array.from(buildTunnelHeader(desc('vxlan'), 1001).bytes);
  const buf = new Uint8Array(2 * SLOT);
  const off = new Uint32Array(2), len = new Uint32Array(2), vnet = new Uint8Array(20), st = new Uint32Array(1);
  const n = io.tunnelEmit(vh, frame, tmpl, TUNNEL_EMIT_VXLAN, 1, 1500, buf, SLOT, HEAD, 0, 2, off, len, vnet, st);
  assert.deepEqual([...len.subarray(0, n)], [42 + 49 * unit, 42 + unit], '49 datagrams, then 1');
  // coalesce: 45 segments of 1455 bytes made 66 + 45 * 1455 = 65541 bytes.
  const p = 1455;
  const big = superFrame(p * 45, p);
  const segBuf = new Uint8Array(64 * 2048);
  const so = new Uint32Array(64), sl = new Uint32Array(64);
  const ns = io.offloadFrame(big.vh, big.frame, segBuf, 2048, HEAD, 64, so, sl);
  assert.equal(ns, 45);
  const cOff = new Uint32Array(4), cLen = new Uint32Array(4), cVnet = new Uint8Array(40), src = new Uint32Array(4), cst = new Uint32Array(2);
  const cBuf = new Uint8Array(4 * SLOT);
  const k = io.coalesce(segBuf, so, sl, ns, new Uint32Array(ns * 3), 3, cBuf, SLOT, HEAD, 4, cOff, cLen, cVnet, src, cst);
  assert.deepEqual([...cLen.subarray(0, k)], [66 + 44 * p, 66 + p], '44 segments merged, then 1');
  const merged = new Uint8Array(45 * p);
  merged.set(cBuf.subarray(cOff[0] + 66, cOff[0] + cLen[0]));
  merged.set(cBuf.subarray(cOff[1] + 66, cOff[1] + cLen[1]), 44 * p);
  assert.deepEqual(merged, big.data);
});

test('coalesce straight from a UDP GSO frame kept whole (stride): the same super-frame, resumable, a foreign VNI dropped', { skip }, () => {
  const io = loadNativeIo();
  const mss = 1398;
  const { frame, vh, data } = superFrame(mss * 20 + 300, mss);
  const tmpl = Uint8Array.from(buildTunnelHeader(desc('vxlan'), 1001).bytes);
  const buf = new Uint8Array(2 * SLOT);
  const off = new Uint32Array(2), len = new Uint32Array(2), vnet = new Uint8Array(20), st = new Uint32Array(1);
  assert.equal(io.tunnelEmit(vh, frame, tmpl, TUNNEL_EMIT_VXLAN, 1, 1500, buf, SLOT, HEAD, 0, 2, off, len, vnet, st), 1);
  const unit = vnet[4] | (vnet[5] << 8);
  // What the underlay's decap leaves: the slot from the first inner frame on, gso_size apart.
  const inOff = Uint32Array.of(off[0] + 50), inLen = Uint32Array.of(len[0] - 50), stride = Uint32Array.of(unit);
  const grp = new Uint32Array(3), trusted = Uint8Array.of(1);
  const cBuf = new Uint8Array(4 * SLOT);
  const cOff = new Uint32Array(4), cLen = new Uint32Array(4), cVnet = new Uint8Array(40), src = new Uint32Array(4);
  const cst = new Uint32Array(4);
  let k = io.coalesce(buf, inOff, inLen, 1, grp, 3, cBuf, SLOT, HEAD, 4, cOff, cLen, cVnet, src, cst, trusted, stride);
  assert.equal(k, 1);
  assert.deepEqual([...cst], [1, 20, 0, 0], 'input consumed, 20 datagrams merged into the first, none dropped');
  const merged = cBuf.subarray(cOff[0], cOff[0] + cLen[0]);
  assert.equal(cLen[0], frame.length);
  assert.deepEqual(merged.subarray(66), data);
  assert.deepEqual([...cVnet.subarray(0, 10)], [1, 1, 66, 0, mss & 0xff, mss >> 8, 34, 0, 16, 0]);
  assert.equal((merged[50] << 8) | merged[51], (frame[50] << 8) | frame[51]);
  // Without merging (no vnet array) one frame per datagram, two slots per call, resumed by stats[2].
  const seen: Uint8Array[] = [];
  cst.fill(0);
  for (let call = 0; call < 20 && seen.length < 21; call++) {
    const n = io.coalesce(buf, inOff, inLen, 1, grp, 3, cBuf, SLOT, HEAD, 2, cOff, cLen, undefined, src, cst, trusted, stride);
    for (let o = 0; o < n; o++) seen.push(cBuf.slice(cOff[o], cOff[o] + cLen[o]));
    if (cst[0] === 1) break;
  }
  assert.equal(seen.length, 21);
  seen.forEach((f, i) => {
    assert.ok(tcpOk(f), `datagram ${i}: complete inner frame`);
    assert.equal(f.length, 66 + (i < 20 ? mss : 300));
  });
  // A datagram with another VNI ends the frame: it and the rest are dropped and counted.
  const third = off[0] + 42 + 2 * unit;
  buf[third + 6] ^= 1;
  cst.fill(0);
  k = io.coalesce(buf, inOff, inLen, 1, grp, 3, cBuf, SLOT, HEAD, 4, cOff, cLen, cVnet, src, cst, trusted, stride);
  assert.equal(k, 1);
  assert.equal(cLen[0], 66 + 2 * mss, 'the first two datagrams merged');
  assert.deepEqual([...cst], [1, 1, 0, 19]);
});

test('coalesce: other flows, a corrupted segment and a group change break the run', { skip }, () => {
  const io = loadNativeIo();
  const mss = 1000;
  const { frame, vh } = superFrame(mss * 6, mss);
  const h = buildTunnelHeader(desc('gre'), 7);
  const buf = new Uint8Array(8 * 2048);
  const off = new Uint32Array(8), len = new Uint32Array(8), st = new Uint32Array(1);
  const n = io.tunnelEmit(vh, frame, h.bytes, TUNNEL_EMIT_GRE, 0, 1500, buf, 2048, HEAD, 0, 8, off, len, undefined, st);
  assert.equal(n, 6, 'GRE: one outer frame per segment');
  const inOff = new Uint32Array(6), inLen = new Uint32Array(6);
  for (let k = 0; k < 6; k++) {
    const d = buf.subarray(off[k], off[k] + len[k]);
    assert.equal(d[23], 47);
    assert.ok(ipHdrOk(d, 14));
    assert.ok(tcpOk(d.subarray(42)));
    inOff[k] = off[k] + 42;
    inLen[k] = len[k] - 42;
  }
  buf[inOff[3] + 100] ^= 0xff;                             // corrupt segment 3's payload
  const grp = new Uint32Array(18);
  grp[5 * 3] = 9;                                          // segment 5 from another tunnel
  const cBuf = new Uint8Array(8 * SLOT);
  const cOff = new Uint32Array(8), cLen = new Uint32Array(8), cVnet = new Uint8Array(80), src = new Uint32Array(8);
  const cst = new Uint32Array(2);
  const k = io.coalesce(buf, inOff, inLen, 6, grp, 3, cBuf, SLOT, HEAD, 8, cOff, cLen, cVnet, src, cst);
  // [0,1,2] merged; 3 (bad checksum) alone; 4 alone (its run partner 5 is another group); 5 alone.
  assert.deepEqual([...src.subarray(0, k)], [0, 3, 4, 5]);
  assert.equal(cLen[0], 66 + 3 * mss);
  assert.equal(cVnet[1], 1);
  for (const j of [1, 2, 3]) assert.equal(cVnet[j * 10 + 1], 0, `output ${j} is a plain frame`);
  // Without vnetOut nothing merges.
  const k2 = io.coalesce(buf, inOff, inLen, 6, new Uint32Array(18), 3, cBuf, SLOT, HEAD, 8, cOff, cLen, undefined, src, cst);
  assert.equal(k2, 6);
});

test('VXLAN over a small MTU: one outer frame per segment; a non-GSO frame is refused', { skip }, () => {
  const io = loadNativeIo();
  const mss = 1398;
  const { frame, vh } = superFrame(mss * 3, mss);
  const h = buildTunnelHeader(desc('vxlan'), 5);
  const buf = new Uint8Array(2 * SLOT);
  const off = new Uint32Array(2), len = new Uint32Array(2), vnet = new Uint8Array(20), st = new Uint32Array(1);
  // 1400 < 28 + 8 + 66 + 1398: not packed; 2 slots for 3 segments -> resume.
  let n = io.tunnelEmit(vh, frame, h.bytes, TUNNEL_EMIT_VXLAN, 1, 1400, buf, SLOT, HEAD, 0, 2, off, len, vnet, st);
  assert.equal(n, 2);
  assert.equal(st[0], 2);
  assert.equal(vnet[1], 0);
  assert.equal(len[0], 50 + 66 + mss);
  n = io.tunnelEmit(vh, frame, h.bytes, TUNNEL_EMIT_VXLAN, 1, 1400, buf, SLOT, HEAD, 0, 2, off, len, vnet, st);
  assert.equal(n, 1);
  assert.equal(st[0], 0);
  const plain = Uint8Array.from(vh);
  plain[1] = 0;
  n = io.tunnelEmit(plain, frame.subarray(0, 200), h.bytes, TUNNEL_EMIT_VXLAN, 1, 1500, buf, SLOT, HEAD, 0, 2, off, len, vnet, st);
  assert.equal(n, OffloadResult.NotTcpGso);
});

/**
 * A super-frame cut two ways, `segs` segments each in 2048-byte slots: GRE-encapsulated by
 * tunnelEmit (one outer frame per segment) and plain by offloadFrame (the kernel-like cut, the
 * same copy-and-sum), for tests that compare the inner segments.
 */
function greAndPlainCut(vh: Uint8Array, frame: Uint8Array, tmpl: Uint8Array, segs: number):
  { buf: Uint8Array; off: Uint32Array; len: Uint32Array; sBuf: Uint8Array; so: Uint32Array; sl: Uint32Array } {
  const io = loadNativeIo();
  const buf = new Uint8Array(segs * 2048);
  const off = new Uint32Array(segs), len = new Uint32Array(segs), st = new Uint32Array(1);
  assert.equal(io.tunnelEmit(vh, frame, tmpl, TUNNEL_EMIT_GRE, 0, 9000, buf, 2048, HEAD, 0, segs, off, len, undefined, st), segs);
  const sBuf = new Uint8Array(segs * 2048);
  const so = new Uint32Array(segs), sl = new Uint32Array(segs);
  assert.equal(io.offloadFrame(vh, frame, sBuf, 2048, HEAD, segs, so, sl), segs);
  return { buf, off, len, sBuf, so, sl };
}

test('segments whose payload is copied and summed in one pass: odd and short tails, every offset parity', { skip }, () => {
  const tmpl = Uint8Array.from(buildTunnelHeader(desc('gre'), 7).bytes);
  for (const [mss, payload] of [[1397, 1397 * 3 + 301], [1000, 2001], [7, 33], [1448, 1448 + 1]]) {
    const { frame, vh, data } = superFrame(payload, mss);
    const segs = Math.ceil(payload / mss);
    // GRE: one outer frame per segment (tunnel-offload.c write_seg).
    const { buf, off, len, sBuf, so, sl } = greAndPlainCut(vh, frame, tmpl, segs);
    const got: number[] = [];
    for (let k = 0; k < segs; k++) {
      const inner = buf.subarray(off[k] + 42, off[k] + len[k]);
      assert.ok(tcpOk(inner), `GRE segment ${k} of ${payload}/${mss}: TCP checksum`);
      const cut = sBuf.subarray(so[k], so[k] + sl[k]);
      assert.ok(tcpOk(cut), `cut segment ${k} of ${payload}/${mss}: TCP checksum`);
      assert.deepEqual(cut, inner);
      got.push(...inner.subarray(66));
    }
    assert.deepEqual(Uint8Array.from(got), data);
  }
});

test('payload sums over the 64-byte steps (AVX2 where the CPU has it) verify for every length, alignment and carry pattern', { skip }, () => {
  const io = loadNativeIo();
  const tmpl = Uint8Array.from(buildTunnelHeader(desc('gre'), 7).bytes);
  let seed = 12345;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed >>> 24; };
  const fills: Array<[string, () => number]> = [['random', rnd], ['0xff', () => 0xff], ['0x00', () => 0]];
  for (const [fill, byte] of fills) {
    for (const [mss, payload] of [[127, 127 * 2 + 1], [128, 128 * 2 + 63], [129, 129 * 3], [191, 1000], [1398, 1398 * 5 + 127], [1800, 1800 + 65]]) {
      const { frame, vh } = superFrame(payload, mss);
      const data = new Uint8Array(payload);
      for (let i = 0; i < payload; i++) data[i] = byte();
      frame.set(data, 66);
      const segs = Math.ceil(payload / mss);
      const buf = new Uint8Array(segs * 2048);
      const off = new Uint32Array(segs), len = new Uint32Array(segs), st = new Uint32Array(1);
      assert.equal(io.tunnelEmit(vh, frame, tmpl, TUNNEL_EMIT_GRE, 0, 9000, buf, 2048, HEAD, 0, segs, off, len, undefined, st), segs);
      const got: number[] = [];
      for (let k = 0; k < segs; k++) {
        const inner = buf.subarray(off[k] + 42, off[k] + len[k]);
        assert.ok(tcpOk(inner), `${fill} segment ${k} of ${payload}/${mss}: TCP checksum`);
        got.push(...inner.subarray(66));
      }
      assert.deepEqual(Uint8Array.from(got), data, `${fill} ${payload}/${mss}: payload`);
    }
  }
});

test('tunnelEmit with offsets into whole arrays (vOff, fOff, fLen) writes what it writes for exact views; bad offsets are refused', { skip }, () => {
  const io = loadNativeIo();
  const mss = 1398;
  const { frame, vh } = superFrame(mss * 7 + 11, mss);
  for (const kind of ['vxlan', 'gre'] as const) {
    const tmpl = Uint8Array.from(buildTunnelHeader(desc(kind), 77).bytes);
    const k = kind === 'vxlan' ? TUNNEL_EMIT_VXLAN : TUNNEL_EMIT_GRE;
    const big = new Uint8Array(frame.length + 4099);
    big.set(frame, 4099 - 3);
    const vnBig = new Uint8Array(50);
    vnBig.set(vh, 30);
    const run = (offsets: boolean): string[] => {
      const buf = new Uint8Array(8 * 2048);
      const off = new Uint32Array(8), len = new Uint32Array(8), vnet = new Uint8Array(80), st = new Uint32Array(1);
      const n = offsets
        ? io.tunnelEmit(vnBig, big, tmpl, k, 0, 1500, buf, 2048, HEAD, 0, 8, off, len, vnet, st, 30, 4096, frame.length)
        : io.tunnelEmit(vh, frame, tmpl, k, 0, 1500, buf, 2048, HEAD, 0, 8, off, len, vnet, st);
      assert.equal(n, 8);
      return [...off.subarray(0, n)].map((o, i) => Buffer.from(buf.subarray(o, o + len[i])).toString('hex'));
    };
    assert.deepEqual(run(true), run(false), kind);
  }
  const tmpl = Uint8Array.from(buildTunnelHeader(desc('gre'), 77).bytes);
  const b = new Uint8Array(8 * 2048), o = new Uint32Array(8), l = new Uint32Array(8), st = new Uint32Array(1);
  assert.throws(() => io.tunnelEmit(vh, frame, tmpl, TUNNEL_EMIT_GRE, 0, 1500, b, 2048, HEAD, 0, 8, o, l, undefined, st, 1, 0, frame.length));
  assert.throws(() => io.tunnelEmit(vh, frame, tmpl, TUNNEL_EMIT_GRE, 0, 1500, b, 2048, HEAD, 0, 8, o, l, undefined, st, 0, 1, frame.length));
});

/** A TCP super-frame over IPv4 or IPv6 with the given IPv4 ID, TCP flags and TCP header length. */
function variedFrame(v6: boolean, ipId: number, flags: number, tcpHdr: number, payload: number, mss: number):
  { frame: Uint8Array; vh: Uint8Array } {
  const l3 = 14, ipLen = v6 ? 40 : 20, t = l3 + ipLen;
  const f = new Uint8Array(t + tcpHdr + payload);
  f.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, v6 ? 0x86 : 0x08, v6 ? 0xdd : 0x00]);
  if (v6) {
    f.set([0x60, 0, 0, 0, (tcpHdr + payload) >> 8, (tcpHdr + payload) & 0xff, 6, 64], l3);
    for (let i = 0; i < 32; i++) f[l3 + 8 + i] = 0xf0 ^ (i * 37);
  } else {
    const tot = 20 + tcpHdr + payload;
    f.set([0x45, 0x10, tot >> 8, tot & 0xff, ipId >> 8, ipId & 0xff, 0x40, 0, 63, 6, 0, 0, 172, 16, 0xfe, 9, 10, 0xff, 2, 0xfe], l3);
  }
  f.set([0xff, 0xfe, 0x14, 0x51, 0x7f, 0xff, 0xfc, 0x00, 0xab, 0xcd, 0xef, 0x01, (tcpHdr / 4) << 4, flags, 0xff, 0xff, 0, 0, 0x12, 0x34], t);
  for (let i = 20; i < tcpHdr; i++) f[t + i] = i === 20 ? 1 : 0xee;
  for (let i = 0; i < payload; i++) f[t + tcpHdr + i] = (i * 13 + 0xf1) & 0xff;
  const ps = v6 ? sum16(f, l3 + 8, 32) + 6 + tcpHdr + payload : sum16(f, l3 + 12, 8) + 6 + tcpHdr + payload;
  const folded = ((ps & 0xffff) + (ps >>> 16)) & 0xffff;
  f[t + 16] = folded >> 8; f[t + 17] = folded & 0xff;
  const vh = new Uint8Array(10);
  vh[0] = 1; vh[1] = v6 ? 4 : 1; vh[4] = mss & 0xff; vh[5] = mss >> 8; vh[6] = t; vh[8] = 16;
  return { frame: f, vh };
}

test('per-segment header sums (shared part + own words) equal the full sums of the kernel-like cut: IPv4 ID wrap, FIN/PSH/CWR, no options, IPv6', { skip }, () => {
  const tmpl = Uint8Array.from(buildTunnelHeader(desc('gre'), 7).bytes);
  const cases: Array<[boolean, number, number, number]> = [
    [false, 0xfffe, 0x80 | 0x10 | 0x08 | 0x01, 20], [false, 0, 0x10, 40], [false, 0xffff, 0x18, 32],
    [true, 0, 0x80 | 0x10 | 0x08 | 0x01, 20], [true, 0, 0x10, 32],
  ];
  for (const [v6, ipId, flags, tcpHdr] of cases) {
    const mss = 1200, payload = mss * 3 + 77, segs = 4;
    const { frame, vh } = variedFrame(v6, ipId, flags, tcpHdr, payload, mss);
    const { buf, off, len, sBuf, so, sl } = greAndPlainCut(vh, frame, tmpl, segs);
    const l4 = v6 ? 54 : 34;
    for (let k = 0; k < segs; k++) {
      const inner = buf.subarray(off[k] + 42, off[k] + len[k]);
      const what = `${v6 ? 'IPv6' : 'IPv4'} id ${ipId} flags ${flags} tcp ${tcpHdr}, segment ${k}`;
      assert.deepEqual(inner, sBuf.subarray(so[k], so[k] + sl[k]), what);
      const ps = v6 ? sum16(inner, 22, 32) : sum16(inner, 26, 8);
      assert.equal(sum16(inner, l4, inner.length - l4, ps + 6 + inner.length - l4), 0xffff, `${what}: TCP checksum`);
      if (!v6) assert.equal(sum16(inner, 14, 20), 0xffff, `${what}: IPv4 header checksum`);
    }
  }
});

test('tunnelEmit with no slot free takes nothing and says so (NoRoom), never "done"; MORE only after a write', { skip }, () => {
  const io = loadNativeIo();
  const mss = 1000;
  const { frame, vh } = superFrame(mss * 6, mss);
  const gre = buildTunnelHeader(desc('gre'), 7).bytes;
  const vx = buildTunnelHeader(desc('vxlan'), 7).bytes;
  const buf = new Uint8Array(4 * 2048);
  const off = new Uint32Array(4), len = new Uint32Array(4), st = new Uint32Array(1);
  // GRE, one outer frame per segment: all 4 slots taken (first = maxFrames), at the start and on resuming.
  for (const from of [0, 3]) {
    st[0] = from;
    assert.equal(io.tunnelEmit(vh, frame, gre, TUNNEL_EMIT_GRE, 0, 1500, buf, 2048, HEAD, 4, 4, off, len, undefined, st),
      OffloadResult.NoRoom, `GRE from segment ${from}`);
    assert.equal(st[0], from, 'the resume point is left as it was');
  }
  // Two slots free of four: two segments written, MORE with the segment to resume at.
  st[0] = 0;
  assert.equal(io.tunnelEmit(vh, frame, gre, TUNNEL_EMIT_GRE, 0, 1500, buf, 2048, HEAD, 2, 4, off, len, undefined, st), 2);
  assert.equal(st[0], 2);
  // VXLAN packed into UDP GSO frames: no slot, nothing to extend.
  const big = new Uint8Array(2 * SLOT), boff = new Uint32Array(2), blen = new Uint32Array(2), vnet = new Uint8Array(20);
  st[0] = 0;
  assert.equal(io.tunnelEmit(vh, frame, vx, TUNNEL_EMIT_VXLAN, 1, 1500, big, SLOT, HEAD, 2, 2, boff, blen, vnet, st),
    OffloadResult.NoRoom);
  assert.equal(st[0], 0);
});
