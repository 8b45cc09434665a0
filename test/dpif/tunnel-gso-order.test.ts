/**
 * Frames of one TCP flow stay in sequence order through both flowd nodes of a VXLAN tunnel
 * (issue 16; native-notes/tunnel-gso.md, p14d): on the sending node through dpif/ports.ts
 * (emitTunnel's UDP GSO frames held in tunnelOut and shared by the super-frames of a pass,
 * TUNNEL_EMIT_EXTEND; the port's gathered and copied frames; the 8 held slots filling), and on
 * the receiving node through the native coalesce as netdev/underlay.ts drives it (a kept-whole
 * UDP GSO frame walked by its stride, resumed mid-frame when the output batch is full, one
 * call per received batch). The lab once saw a 7526-byte super-frame (5 x 1398 + 536 bytes,
 * the tail of a burst) reach the VM after the 64 KB one that followed it; these pin the order
 * for that pattern and its neighbours: in one pass and across passes, with a one-segment GSO
 * frame and plain segments of the flow in between, another flow interleaved, every output
 * batch size from 1 slot, every split of the datagrams into two received batches.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GSO_SLOT_BYTES, HEADROOM, PacketBatch, VNET_HDR_BYTES } from '../../src/netdev/batch';
import { PortTable } from '../../src/dpif/ports';
import { buildTunnelHeader } from '../../src/dpif/tunnel-header';
import { loadNativeIo, nativeAvailable, nativeLoadError } from '../../src/native/io';
import { sum16 } from '../helpers/sum16';
import { cutDatagrams, GsoWire, Sent, tcpStreamFrame, TEST_VXLAN } from '../helpers/tcp-gso-frames';

const skip = nativeAvailable() ? false : `native addon not built: ${nativeLoadError()}`;
const MSS = 1398;
const FULL = 46 * MSS;          // a 64 KB super-frame of the lab: 64308 bytes
const TAIL = 5 * MSS + 536;     // the burst tail the lab saw late: 7526 bytes
const VNI = 1001;

const VX = TEST_VXLAN;


/** Byte of the stream of source port `sport` at sequence `seq` (payloads are checked byte for byte). */
const streamByte = (sport: number, seq: number): number => ((seq >>> 0) * 7 + sport * 13 + 3) & 0xff;


/** One frame a VM sends: `payload` bytes of stream `sport`; `plain`: a complete segment, no GSO. */
interface Piece { sport: number; payload: number; plain?: boolean }

/**
 * The sending node: each pass's pieces (frames of a VM's input batch, with their flows' next
 * sequence numbers) go to the tunnel port as the datapath emits them (a super-frame through
 * emit, a plain segment as a last output through emitLastTunnel, in place in the input batch),
 * and the pass is flushed. Returns the outer frames in the order the underlay got them.
 */
function sendPasses(passes: Piece[][]): Sent[] {
  const ports = new PortTable(64);
  const wire = new GsoWire('vx');
  const p = ports.add(2, wire, VX);
  const hdr = buildTunnelHeader(VX, VNI);
  const next = new Map<number, number>();
  const input = new PacketBatch(64, GSO_SLOT_BYTES, true);
  passes.forEach((pieces, pass) => {
    input.count = 0;
    for (const pc of pieces) {
      const seq = next.get(pc.sport) ?? 0x10000000;
      next.set(pc.sport, seq + pc.payload);
      const { frame, vh } = tcpStreamFrame({ sport: pc.sport, seq, payload: pc.payload, psh: pc.payload % MSS !== 0, plain: pc.plain === true, byteAt: (x) => streamByte(pc.sport, x) }); // PSH: a write's tail
      const s = input.append(frame);
      (input.vnet as Uint8Array).set(vh, s * VNET_HDR_BYTES);
    }
    ports.batchNo = pass + 1;
    ports.setInput(input);
    for (let s = 0; s < input.count; s++) {
      const hash = input.buf[input.off[s] + 34] * 0x01000193; // outer source port per flow
      if (input.hasOffload(s)) ports.emit(p.index, input.buf, input.off[s], input.len[s], hdr, hash, input.vnet, s * VNET_HDR_BYTES);
      else ports.emitLastTunnel(p.index, input, s, hdr, hash);
    }
    ports.flushTouched();
  });
  return wire.sent;
}


/** A TCP frame's source port, sequence and payload length. */
function tcpOf(f: Uint8Array): { sport: number; seq: number; len: number } {
  const ipLen = (f[16] << 8) | f[17];
  const th = (f[46] >> 4) * 4;
  return { sport: (f[34] << 8) | f[35], seq: ((f[38] << 24) | (f[39] << 16) | (f[40] << 8) | f[41]) >>> 0, len: ipLen - 20 - th };
}

/**
 * Asserts that `frames` (inner TCP frames in delivery order) carry every stream of `passes`
 * whole and in order: each flow's frames follow on in sequence without a gap or an overlap,
 * and each payload byte is the stream's.
 */
function assertInOrder(frames: Uint8Array[], passes: Piece[][], what: string): void {
  const want = new Map<number, number>();
  for (const pc of passes.flat()) want.set(pc.sport, (want.get(pc.sport) ?? 0) + pc.payload);
  const next = new Map<number, number>();
  frames.forEach((f, k) => {
    const t = tcpOf(f);
    const exp = next.get(t.sport) ?? 0x10000000;
    assert.equal(t.seq, exp, `${what}: frame ${k} of flow ${t.sport} starts at ${t.seq - 0x10000000}, expected ${exp - 0x10000000}`);
    const hdr = 14 + 20 + (f[46] >> 4) * 4;
    for (let i = 0; i < t.len; i++) {
      if (f[hdr + i] !== streamByte(t.sport, t.seq + i)) assert.fail(`${what}: frame ${k} byte ${i} is not the stream's`);
    }
    next.set(t.sport, exp + t.len);
  });
  for (const [sport, bytes] of want) assert.equal((next.get(sport) ?? 0x10000000) - 0x10000000, bytes, `${what}: flow ${sport} whole`);
}

/** Every datagram is a VXLAN frame of our VNI whose inner checksums verify; returns the inner frames. */
function inner(dgrams: Uint8Array[]): Uint8Array[] {
  return dgrams.map((d) => {
    assert.ok(d.length - 14 <= 1500, 'datagram fits the MTU');
    assert.equal((d[46] << 16) | (d[47] << 8) | d[48], VNI);
    const f = d.subarray(50);
    assert.equal(sum16(f, 14, 20), 0xffff, 'inner IPv4 checksum');
    assert.equal(sum16(f, 34, f.length - 34, sum16(f, 26, 8) + 6 + (f.length - 34)), 0xffff, 'inner TCP checksum');
    return f;
  });
}

/** A received frame as netdev/underlay.ts keeps it after decap: the inner frame(s) from `off`. */
interface RxFrame { buf: Uint8Array; stride: number; trusted: number }

/** The outer frames as the receiving underlay reads them: flowd's UDP GSO frames kept whole. */
function rxWhole(sent: Sent[]): RxFrame[] {
  return sent.map((s) => ({ buf: s.frame, stride: s.vnet[1] === 5 ? s.vnet[4] | (s.vnet[5] << 8) : 0, trusted: 1 }));
}

/** The datagrams as a kernel-cut stream (FLOWD_TUNNEL_GSO=0 senders, kernel VXLAN peers): verified. */
function rxDatagrams(sent: Sent[]): RxFrame[] {
  return cutDatagrams(sent).map((d) => ({ buf: d, stride: 0, trusted: 0 }));
}

/**
 * The receiving node's underlay (netdev/underlay.ts recv -> coalesce): each of `batches` is
 * one received batch (the inner frames after decap at +50, VXLAN header before them), handed
 * to output batches of `cap` 64 KB slots until done, resuming at (rxNext, rxSub) as
 * Underlay.coalesce does. Returns the frames delivered, in order, with their vnet headers.
 */
function receive(batches: RxFrame[][], cap: number): { frames: Uint8Array[]; vnets: Uint8Array[] } {
  const io = loadNativeIo();
  const frames: Uint8Array[] = [], vnets: Uint8Array[] = [];
  const out = new PacketBatch(cap, GSO_SLOT_BYTES, true);
  const srcIdx = new Uint32Array(cap), st = new Uint32Array(4);
  for (const rx of batches) {
    const n = rx.length;
    const SLOT = GSO_SLOT_BYTES;
    const buf = new Uint8Array(Math.max(1, n) * SLOT);
    const off = new Uint32Array(n), len = new Uint32Array(n), stride = new Uint32Array(n), trusted = new Uint8Array(n);
    const grp = new Uint32Array(3 * n);
    rx.forEach((f, i) => {
      buf.set(f.buf, i * SLOT + HEADROOM);
      off[i] = i * SLOT + HEADROOM + 50;
      len[i] = f.buf.length - 50;
      stride[i] = f.stride;
      trusted[i] = f.trusted;
      grp[3 * i] = 2; grp[3 * i + 1] = VNI; grp[3 * i + 2] = VX.localIp;
    });
    let rxNext = 0, rxSub = 0;
    for (let guard = 0; rxNext < n; guard++) {
      assert.ok(guard < 10000, 'coalesce makes progress');
      st[1] = 0; st[2] = rxSub; st[3] = 0;
      const k = io.coalesce(buf, off.subarray(rxNext), len.subarray(rxNext), n - rxNext, grp.subarray(3 * rxNext), 3,
        out.buf, out.slotBytes, HEADROOM, out.capacity, out.off, out.len, out.vnet as Uint8Array, srcIdx, st,
        trusted.subarray(rxNext), stride.subarray(rxNext));
      assert.equal(st[3], 0, 'no sub-frame dropped');
      for (let o = 0; o < k; o++) {
        frames.push(out.buf.slice(out.off[o], out.off[o] + out.len[o]));
        vnets.push((out.vnet as Uint8Array).slice(o * VNET_HDR_BYTES, (o + 1) * VNET_HDR_BYTES));
      }
      rxNext += st[0];
      rxSub = st[2];
    }
  }
  return { frames, vnets };
}

/** The pass patterns: the lab's (64 KB, tail, 64 KB) in one pass and across two, and neighbours. */
const A = 0x9c40, B = 0x9c41;
const SCENARIOS: [string, Piece[][]][] = [
  ['one pass: 64 KB, tail, 64 KB', [[{ sport: A, payload: FULL }, { sport: A, payload: TAIL }, { sport: A, payload: FULL }]]],
  ['two passes: 64 KB, tail | 64 KB', [[{ sport: A, payload: FULL }, { sport: A, payload: TAIL }], [{ sport: A, payload: FULL }]]],
  ['two passes: 64 KB | tail, 64 KB', [[{ sport: A, payload: FULL }], [{ sport: A, payload: TAIL }, { sport: A, payload: FULL }]]],
  ['the 8 held slots filling: 64 KB and tails alternating, 13 super-frames in one pass',
    [Array.from({ length: 13 }, (_, k) => ({ sport: A, payload: k % 2 === 0 ? FULL : TAIL }))]],
  ['slots filling across passes: 7 x 64 KB + tail | 64 KB, tail, 64 KB',
    [[...Array.from({ length: 7 }, () => ({ sport: A, payload: FULL })), { sport: A, payload: TAIL }],
      [{ sport: A, payload: FULL }, { sport: A, payload: TAIL }, { sport: A, payload: FULL }]]],
  ['a one-segment GSO frame (536 bytes, per-segment path) between two 64 KB and last in the pass',
    [[{ sport: A, payload: FULL }, { sport: A, payload: 536 }, { sport: A, payload: FULL }, { sport: A, payload: TAIL },
      { sport: A, payload: 536 }]]],
  ['plain segments of the flow (in place, gathered) around the tail and last in the pass',
    [[{ sport: A, payload: FULL }, { sport: A, payload: MSS, plain: true }, { sport: A, payload: TAIL },
      { sport: A, payload: 536, plain: true }, { sport: A, payload: FULL }, { sport: A, payload: MSS, plain: true }]]],
  ['another flow in between',
    [[{ sport: A, payload: FULL }, { sport: B, payload: TAIL }, { sport: A, payload: TAIL }, { sport: B, payload: FULL },
      { sport: A, payload: FULL }, { sport: B, payload: 3 * MSS }], [{ sport: A, payload: TAIL }, { sport: B, payload: FULL }]]],
];

test('sending node: the datagrams handed to the underlay carry each flow in sequence order', { skip }, () => {
  for (const [name, passes] of SCENARIOS) {
    const sent = sendPasses(passes);
    assertInOrder(inner(cutDatagrams(sent)), passes, `sent, ${name}`);
  }
});

test('sending node: a pass of the lab pattern shares outer frames (the tail closes its frame)', { skip }, () => {
  const sent = sendPasses(SCENARIOS[0][1]);
  const unit = 8 + 66 + MSS;
  // 64 KB: 44 + 2 datagrams; the tail's 6 go on in the second frame, which its short segment
  // closes; the next 64 KB starts a new frame.
  assert.deepEqual(sent.map((s) => s.frame.length),
    [42 + 44 * unit, 42 + 7 * unit + 8 + 66 + 536, 42 + 44 * unit, 42 + 2 * unit]);
});

test('receiving node: coalesced super-frames reach the VM port in sequence order, any output batch size', { skip }, () => {
  for (const [name, passes] of SCENARIOS) {
    const sent = sendPasses(passes);
    for (const cap of [1, 2, 3, 64]) {
      const whole = receive([rxWhole(sent)], cap);
      assertInOrder(whole.frames, passes, `kept whole, ${cap} slots, ${name}`);
      for (const v of whole.vnets) if (v[1] !== 0) assert.equal(v[4] | (v[5] << 8), MSS, 'gso_size');
      assertInOrder(receive([rxDatagrams(sent)], cap).frames, passes, `datagrams, ${cap} slots, ${name}`);
    }
  }
});

test('receiving node: order kept for every split of the stream into two received batches', { skip }, () => {
  for (const [name, passes] of [SCENARIOS[0], SCENARIOS[7]]) {
    const sent = sendPasses(passes);
    const whole = rxWhole(sent), dgrams = rxDatagrams(sent);
    for (let cut = 0; cut <= whole.length; cut++) {
      assertInOrder(receive([whole.slice(0, cut), whole.slice(cut)], 2).frames, passes, `kept whole, cut ${cut}, ${name}`);
    }
    for (let cut = 0; cut <= dgrams.length; cut += 3) {
      assertInOrder(receive([dgrams.slice(0, cut), dgrams.slice(cut)], 2).frames, passes, `datagrams, cut ${cut}, ${name}`);
    }
  }
});

test('receiving node: a short datagram in the middle of a run ends the super-frame, the next follows in order', { skip }, () => {
  // Datagrams as a kernel VXLAN peer sends them: 3 full, a short one, 3 full, another flow's, 2 full.
  const passes: Piece[][] = [[{ sport: A, payload: 3 * MSS + 700 }, { sport: A, payload: 3 * MSS }, { sport: B, payload: MSS },
    { sport: A, payload: 2 * MSS }]];
  const sent = sendPasses(passes);
  for (const cap of [1, 2, 64]) {
    const got = receive([rxDatagrams(sent)], cap).frames.map(tcpOf);
    assert.deepEqual(got.map((t) => [t.sport, t.len]),
      [[A, 3 * MSS + 700], [A, 3 * MSS], [B, MSS], [A, 2 * MSS]], `${cap} slots: runs end at the short datagram and the other flow`);
  }
});
