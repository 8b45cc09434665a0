import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTunnelHeader, decapVxlan, encapFill, encapRun, TunnelDesc, TunnelHeader } from '../../src/dpif/tunnel-header';
import { PacketBatch } from '../../src/netdev/batch';
import { Stop } from '../../src/packet/stop';
import { tunnelSrcPort } from '../../src/dpif/flow-hash';
import { ipv4ChecksumOk } from '../../src/packet/checksum';

const VX: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c, srcMac: 0x525400000011,
  nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };

test('GRE header: protocol 47, K bit, TEB 0x6558, key = segmentation id, 42 bytes', () => {
  const h = buildTunnelHeader({ ...VX, kind: 'gre' }, 1002);
  assert.equal(h.bytes.length, 42);
  const b = new Uint8Array(200);
  const o = encapFill(b, 100, 64, h, 0);
  assert.equal(o, 58);
  assert.equal(Buffer.from(b.subarray(o + 14, o + 24)).toString('hex'), '4500' + '005c' + '0000' + '4000' + '402f');
  assert.equal(Buffer.from(b.subarray(o + 34, o + 42)).toString('hex'), '2000' + '6558' + '000003ea');
  assert.ok(ipv4ChecksumOk(b, o + 14));
});

test('encap with 32-bit copies writes the same bytes at every alignment', () => {
  const h = buildTunnelHeader(VX, 0x123456);
  for (let a = 0; a < 4; a++) {
    const x = new Uint8Array(256), y = new Uint8Array(256);
    const ox = encapFill(x, 120 + a, 64, h, 0xdeadbeef);
    const oy = encapFill(y, 120 + a, 64, h, 0xdeadbeef, new Uint32Array(y.buffer));
    assert.equal(ox, oy);
    assert.deepEqual(y, x);
    assert.equal(Buffer.from(y.subarray(oy + 42, oy + 50)).toString('hex'), '08000000' + '12345600');
  }
});

test('tunnel source port is scaled into [32768, 61000)', () => {
  assert.equal(tunnelSrcPort(0), 32768);
  assert.equal(tunnelSrcPort(0xffffffff), 60999);
  assert.equal(tunnelSrcPort(0x80000000), 32768 + 14116);
});

test('tunnel source port (int32 maths) equals floor(h * 28232 / 2^32) + 32768: edges and a dense sample', () => {
  const float = (h: number): number => 32768 + Math.floor(((h >>> 0) * 28232) / 4294967296);
  const check = (h: number): void => {
    // The datapath passes int32 hashes; tunnel-gso passes the same bits as uint32.
    assert.equal(tunnelSrcPort(h | 0), float(h), `hash ${h >>> 0}`);
    assert.equal(tunnelSrcPort(h >>> 0), float(h), `hash ${h >>> 0}`);
  };
  // Around every 16-bit boundary of the low half, the top of the range and the points where
  // the port steps (h = ceil(k * 2^32 / 28232)).
  for (const base of [0, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffeffff, 0xffff0000, 0xffffffff]) {
    for (let d = -3; d <= 3; d++) check((base + d) >>> 0);
  }
  for (let k = 1; k < 28232; k += 97) {
    const step = Math.ceil((k * 4294967296) / 28232);
    check(step - 1); check(step); check(step + 1);
  }
  // Dense: a stride coprime with 2^32 over 2^22 hashes, plus every low half with a fixed high half.
  for (let i = 0, h = 0; i < (1 << 22); i++, h = (h + 0x9e3779b1) >>> 0) check(h);
  for (let lo = 0; lo < 0x10000; lo++) check((0xabcd0000 | lo) >>> 0);
});

test('one header reused across flows and lengths: each outer header is that of a fresh header (no port or length carried over)', () => {
  for (const kind of ['vxlan', 'gre'] as const) {
    const shared = buildTunnelHeader({ ...VX, kind }, 0x1234);
    // Lengths repeat and change, hashes change every frame, alignments change: the word
    // templates' length fields are refilled when the length changes, the source port never kept.
    const cases: [number, number, number][] = [[64, 0x11111111, 0], [64, 0xfedcba98, 0], [64, 0x22222222, 2], [1400, 0x33333333, 2],
      [64, 0x44444444, 2], [65, 0x55555555, 1], [65, 0, 3], [64, 0xffffffff, 0]];
    for (const [len, hash, a] of cases) {
      const got = new Uint8Array(1600), want = new Uint8Array(1600);
      got.fill(0xaa); want.fill(0xaa);
      const og = encapFill(got, 100 + a, len, shared, hash, new Uint32Array(got.buffer));
      const ow = encapFill(want, 100 + a, len, buildTunnelHeader({ ...VX, kind }, 0x1234), hash);
      assert.equal(og, ow);
      assert.deepEqual(got, want, `${kind} len ${len} hash ${hash.toString(16)} alignment ${a}`);
      assert.ok(ipv4ChecksumOk(got, og + 14));
      if (kind === 'vxlan') assert.equal((got[og + 34] << 8) | got[og + 35], tunnelSrcPort(hash));
    }
  }
});

test('decapVxlan: strips the outer headers, records VNI and outer addresses; refuses what is not VXLAN, with its reason', () => {
  const h = buildTunnelHeader({ ...VX, localIp: 0xc0a8640c, remoteIp: 0x0a0000fe }, 0xabcdef);
  const inner = new Uint8Array(64).map((_, k) => k * 7);
  const outer = new Uint8Array(64 + 50 + 50);
  outer.set(inner, 50);
  const o = encapFill(outer, 50, 64, h, 0x1234);
  const frame = outer.slice(o, o + 114);
  const run = (f: Uint8Array): [Stop, PacketBatch] => { const b = new PacketBatch(1); b.append(f); return [decapVxlan(b, 0), b]; };
  const [ok, b] = run(frame);
  assert.equal(ok, Stop.Ok);
  assert.deepEqual([b.tunIdHi[0], b.tunIdLo[0], b.tunSrc[0], b.tunDst[0]], [0, 0xabcdef, 0xc0a8640c, 0x0a0000fe]);
  assert.deepEqual(b.frame(0), inner);
  const bad = (edit: (f: Uint8Array) => void, len = frame.length): Stop => { const f = frame.slice(0, len); edit(f); return run(f)[0]; };
  assert.equal(bad(() => undefined, 13), Stop.TruncatedEth);
  assert.equal(bad((f) => { f[12] = 0x86; f[13] = 0xdd; }), Stop.UnknownEthertype);
  assert.equal(bad(() => undefined, 33), Stop.TruncatedIpv4);
  assert.equal(bad((f) => { f[14] = 0x65; }), Stop.BadIpv4Version);
  assert.equal(bad((f) => { f[14] = 0x44; }), Stop.BadIhl);
  assert.equal(bad((f) => { f[23] = 6; }), Stop.UnknownEthertype);
  assert.equal(bad(() => undefined, 49), Stop.TruncatedVxlan);
  assert.equal(bad((f) => { f[42] = 0; }), Stop.BadVxlanFlags);
});

test('encapRun: a run of frames at every alignment, of changing lengths, over a headroom of other bytes: each outer frame and every byte around it as encapFill byte by byte; stops at a frame without headroom', () => {
  for (const kind of ['vxlan', 'gre'] as const) {
    const hdr = buildTunnelHeader({ ...VX, kind }, 0x1234);
    // Slot k's frame starts `shift` bytes after the usual offset (alignment 0..3), so the outer
    // header's first and last words are shared with headroom and frame bytes at each alignment.
    const layout: [number, number][] = [[0, 64], [1, 64], [1, 64], [2, 65], [3, 65], [3, 200], [0, 64], [2, 64]];
    const got = new PacketBatch(16), want = new PacketBatch(16);
    for (const b of [got, want]) {
      b.buf.fill(0xaa);
      for (const [k, [shift, len]] of layout.entries()) {
        const i = b.append(new Uint8Array(len).map((_, j) => (j * 13 + k) & 0xff));
        b.buf.copyWithin(b.off[i] + shift, b.off[i], b.off[i] + len);
        b.off[i] += shift;
      }
    }
    const live = Uint16Array.from(layout.keys());
    const hashes = Uint32Array.from(layout, (_, k) => Math.imul(k + 1, 0x9e3779b1) >>> 0);
    const out = new PacketBatch(16);
    const stop = encapRun(got, got.words as Uint32Array, live, 0, layout.length, hdr, hashes, out, 3);
    assert.equal(stop, layout.length);
    for (let k = 0; k < layout.length; k++) {
      const o = encapFill(want.buf, want.off[k], want.len[k], hdr, hashes[k] | 0);
      assert.equal(out.off[3 + k], o, `${kind} frame ${k}`);
      assert.equal(out.len[3 + k], want.len[k] + hdr.bytes.length);
    }
    assert.deepEqual(got.buf, want.buf, kind);
    // A frame without room for the header in its slot ends the run there, untouched.
    got.off[5] = got.slotStart(5);
    const before = got.buf.slice();
    assert.equal(encapRun(got, got.words as Uint32Array, live, 4, layout.length, hdr, hashes, out, 0), 5);
    assert.deepEqual(got.buf.subarray(got.slotStart(5)), before.subarray(got.slotStart(5)));
  }
});

test('encapRun leaves a header longer than its locals hold (past word 13) to encapWords: it stops at the first frame, which it leaves untouched', () => {
  const vx = buildTunnelHeader(VX, 0x1234);
  const long = new Uint8Array(60);
  long.set(vx.bytes);
  const hdr = new TunnelHeader(long, vx.baseCsum, true);
  const b = new PacketBatch(4);
  for (let k = 0; k < 3; k++) b.append(new Uint8Array(64).fill(k + 1));
  const before = b.buf.slice();
  const out = new PacketBatch(4);
  assert.equal(encapRun(b, b.words as Uint32Array, Uint16Array.of(0, 1, 2), 0, 3, hdr, new Uint32Array(3), out, 0), 0);
  assert.deepEqual(b.buf, before);
});
