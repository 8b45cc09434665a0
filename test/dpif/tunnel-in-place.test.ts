/**
 * Tunnel output as a program's last step (dpif/ports.ts emitLastTunnel): a complete frame with
 * headroom is encapsulated where it lies in the input batch and sent from it; the bytes on the
 * wire are those of the copying path, in output order, and the input batch's frames are left
 * as they were. A run of frames of one flow (emitLastTunnelRun) from a batch with vnet headers
 * (an offload port's) goes the same way up to its first offload frame, which is finished first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HEADROOM, PacketBatch, VNET_HDR_BYTES } from '../../src/netdev/batch';
import { Netdev, NetdevStats } from '../../src/netdev/netdev';
import { PortTable } from '../../src/dpif/ports';
import { buildTunnelHeader, encapFill, TunnelDesc } from '../../src/dpif/tunnel-header';
import { finishOffload } from '../../src/dpif/gso';
import { nativeAvailable, nativeLoadError } from '../../src/native/io';

const skip = nativeAvailable() ? false : `native addon not built: ${nativeLoadError()}`;

const VX: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c, srcMac: 0x525400000011,
  nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };

/** Records every frame sent and whether it came from `input`'s buffer. */
class Wire implements Netdev {
  readonly kind = 'internal';
  readonly frames: string[] = [];
  nFromInput = 0;
  input: Uint8Array | null = null;
  constructor(readonly name: string) {}
  recv(): number { return 0; }
  send(b: PacketBatch, count: number): number {
    for (let i = 0; i < count; i++) {
      this.frames.push(Buffer.from(b.buf.subarray(b.off[i], b.off[i] + b.len[i])).toString('hex'));
      if (b.buf === this.input) this.nFromInput++;
    }
    return count;
  }
  stats(_o: NetdevStats): void { /* none */ }
  close(): void { /* none */ }
}

function frameOf(k: number, len: number): Uint8Array {
  const f = new Uint8Array(len);
  for (let i = 0; i < len; i++) f[i] = (k * 31 + i) & 0xff;
  f[12] = 0x08; f[13] = 0x00;
  return f;
}

/** The outer frame the copying path makes for `inner`. */
function expected(inner: Uint8Array, hdr: ReturnType<typeof buildTunnelHeader>, hash: number): string {
  const b = new Uint8Array(inner.length + 64);
  b.set(inner, 64);
  const o = encapFill(b, 64, inner.length, hdr, hash);
  return Buffer.from(b.subarray(o, 64 + inner.length)).toString('hex');
}

test('tunnel output as the last step: encapsulated in the input batch headroom, sent from it, bytes and order as copied', () => {
  const ports = new PortTable(64);
  const wire = new Wire('vx');
  const p = ports.add(2, wire, VX);
  const hdrA = buildTunnelHeader(VX, 1001), hdrB = buildTunnelHeader(VX, 1002);
  const input = new PacketBatch(8, 2048);
  wire.input = input.buf;
  const inner: Uint8Array[] = [];
  for (let k = 0; k < 6; k++) {
    const i = input.append(frameOf(k, 60 + 37 * k));
    inner.push(input.frame(i).slice());
  }
  // Slot 4's frame starts at its slot's first byte: no room for the header, so it is copied.
  input.off[4] = input.slotStart(4);
  input.buf.set(inner[4], input.off[4]);
  const off0 = Uint32Array.from(input.off), len0 = Uint32Array.from(input.len);
  ports.batchNo = 1;
  ports.setInput(input);
  const want: string[] = [];
  for (const k of [1, 0, 2]) { // any order of slots
    ports.emitLastTunnel(p.index, input, k, k === 2 ? hdrB : hdrA, 0x1000 + k);
    want.push(expected(inner[k], k === 2 ? hdrB : hdrA, 0x1000 + k));
  }
  ports.flushTouched();
  assert.deepEqual(wire.frames, want);
  assert.equal(wire.nFromInput, 3, 'the three frames went out from the input buffer');
  assert.equal(ports.nInputSends, 1);
  assert.equal(p.txPackets, 3);
  assert.equal(p.out.count, 0);

  // Gathered in place, then a frame without headroom (copied): the gathered ones are copied
  // ahead of it, so the order on the wire is the output order.
  wire.frames.length = 0; wire.nFromInput = 0;
  ports.batchNo = 2;
  ports.setInput(input);
  ports.emitLastTunnel(p.index, input, 3, hdrA, 7);
  ports.emitLastTunnel(p.index, input, 4, hdrA, 8);
  ports.emitLastTunnel(p.index, input, 5, hdrB, 9);
  ports.flushTouched();
  assert.deepEqual(wire.frames, [expected(inner[3], hdrA, 7), expected(inner[4], hdrA, 8), expected(inner[5], hdrB, 9)]);
  assert.equal(wire.nFromInput, 0, 'one frame had to be copied, so all went through the port batch');
  // The input batch still describes the inner frames, unchanged.
  assert.deepEqual(input.off, off0);
  assert.deepEqual(input.len, len0);
  for (let k = 0; k < 6; k++) assert.deepEqual(input.frame(k), inner[k]);
  assert.ok(off0[0] - HEADROOM === input.slotStart(0));
});

/**
 * Ethernet + IPv4 + TCP with 40 payload bytes whose checksum field holds the pseudo-header sum
 * (checksum-partial, as a sender with TX checksum offload leaves it), and its vnet header
 * (NEEDS_CSUM, csum_start 34, csum_offset 16, no GSO).
 */
function partialTcp(): { frame: Uint8Array; vnet: Uint8Array } {
  const f = new Uint8Array(94);
  const w16 = (o: number, v: number): void => { f[o] = v >>> 8; f[o + 1] = v & 0xff; };
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0, 0, 80, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  let s = 0;
  for (let k = 14; k < 34; k += 2) s += (f[k] << 8) | f[k + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  w16(24, ~s & 0xffff);
  w16(34, 1000); w16(36, 80); f[46] = 0x50; f[47] = 0x18; w16(48, 65535);
  for (let k = 54; k < 94; k++) f[k] = (k * 7) & 0xff;
  let p = 6 + 60; // pseudo-header: addresses, protocol, TCP length
  for (let k = 26; k < 34; k += 2) p += (f[k] << 8) | f[k + 1];
  while (p > 0xffff) p = (p & 0xffff) + (p >>> 16);
  w16(50, p);
  const vnet = new Uint8Array(VNET_HDR_BYTES);
  vnet[0] = 1; vnet[6] = 34; vnet[8] = 16;
  return { frame: f, vnet };
}

test('a run of frames from a batch with vnet headers: complete frames encapsulated in place, the first checksum-partial one finished, it and the rest copied, in order', { skip }, () => {
  const ports = new PortTable(64);
  const wire = new Wire('vx');
  const p = ports.add(2, wire, VX);
  const hdr = buildTunnelHeader(VX, 1001);
  const input = new PacketBatch(8, 2048, true);
  wire.input = input.buf;
  const { frame: partial, vnet } = partialTcp();
  const inner: Uint8Array[] = [];
  for (let k = 0; k < 5; k++) {
    const i = input.append(k === 2 ? partial : frameOf(k, 60 + 11 * k));
    inner.push(input.frame(i).slice());
    if (k === 2) (input.vnet as Uint8Array).set(vnet, i * VNET_HDR_BYTES);
  }
  const live = Uint16Array.of(0, 1, 3, 4), hashes = Uint32Array.of(10, 11, 12, 13, 14);
  ports.batchNo = 1;
  ports.setInput(input);
  ports.emitLastTunnelRun(p.index, input, live, 0, 4, hdr, hashes);
  ports.flushTouched();
  assert.deepEqual(wire.frames, [0, 1, 3, 4].map((k) => expected(inner[k], hdr, 10 + k)));
  assert.equal(wire.nFromInput, 4, 'complete frames of a batch with vnet headers went out from the input buffer');

  wire.frames.length = 0; wire.nFromInput = 0;
  ports.batchNo = 2;
  ports.setInput(input);
  ports.emitLastTunnelRun(p.index, input, Uint16Array.of(0, 1, 2, 3, 4), 0, 5, hdr, hashes);
  ports.flushTouched();
  const finished = new PacketBatch(4);
  assert.equal(finishOffload(partial, 0, partial.length, vnet, 0, finished), 1);
  const want = [0, 1, 2, 3, 4].map((k) => expected(k === 2 ? finished.frame(0) : inner[k], hdr, 10 + k));
  assert.notEqual(want[2], expected(partial, hdr, 12), 'finishing fills the TCP checksum');
  assert.deepEqual(wire.frames, want);
  assert.equal(wire.nFromInput, 0, 'the finished frame is copied, so the frames gathered before it are too');
});
