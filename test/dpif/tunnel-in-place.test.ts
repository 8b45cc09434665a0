/**
 * Tunnel output as a program's last step (dpif/ports.ts emitLastTunnel): a complete frame with
 * headroom is encapsulated where it lies in the input batch and sent from it; the bytes on the
 * wire are those of the copying path, in output order, and the input batch's frames are left
 * as they were.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HEADROOM, PacketBatch } from '../../src/netdev/batch';
import { Netdev, NetdevStats } from '../../src/netdev/netdev';
import { PortTable } from '../../src/dpif/ports';
import { buildTunnelHeader, encapFill, TunnelDesc } from '../../src/dpif/tunnel-header';

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
