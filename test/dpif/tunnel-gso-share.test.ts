/**
 * UDP GSO outer frames shared by the super-frames of one pass (dpif/ports.ts emitTunnel,
 * native tunnelEmit with TUNNEL_EMIT_EXTEND): consecutive VXLAN super-frames to one tunnel port
 * fill up the last outer frame before a new one is started and go out in one send at the end
 * of the pass; every datagram, cut as the kernel cuts a UDP_L4 frame, is a complete VXLAN
 * frame whose inner segment verifies, in sequence order. A frame for the port in between (or
 * a super-frame whose last segment is short) ends the shared frame, so nothing overtakes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortTable } from '../../src/dpif/ports';
import { buildTunnelHeader } from '../../src/dpif/tunnel-header';
import { nativeAvailable, nativeLoadError } from '../../src/native/io';
import { sum16 } from '../helpers/sum16';
import { cutDatagrams, GsoWire, Sent, tcpStreamFrame, TEST_VXLAN } from '../helpers/tcp-gso-frames';

/** A checksum-partial TCPv4 GSO super-frame of `payload` bytes from `seq` (no PSH). */
const shareFrame = (payload: number, seq: number): { frame: Uint8Array; vh: Uint8Array } => tcpStreamFrame({ seq, payload });

const skip = nativeAvailable() ? false : `native addon not built: ${nativeLoadError()}`;
const MSS = 1398;
const UNIT = 8 + 66 + MSS;

const VX = TEST_VXLAN;




/** The inner segments' sequence numbers, each checked: VXLAN header, inner IP and TCP checksums. */
function innerSeqs(dgrams: Uint8Array[]): number[] {
  return dgrams.map((d) => {
    assert.ok(d.length - 14 <= 1500, 'datagram fits the MTU');
    assert.equal((d[46] << 16) | (d[47] << 8) | d[48], 1001, 'VNI');
    const inner = d.subarray(50);
    assert.equal(sum16(inner, 14, 20), 0xffff, 'inner IPv4 checksum');
    assert.equal(sum16(inner, 34, inner.length - 34, sum16(inner, 26, 8) + 6 + (inner.length - 34)), 0xffff, 'inner TCP checksum');
    return ((inner[38] << 24) | (inner[39] << 16) | (inner[40] << 8) | inner[41]) >>> 0;
  });
}

test('VXLAN super-frames of one pass share UDP GSO outer frames and go out in one send', { skip }, () => {
  const ports = new PortTable(64);
  const wire = new GsoWire('vx');
  const p = ports.add(2, wire, VX);
  const hdr = buildTunnelHeader(VX, 1001);
  const a = shareFrame(30 * MSS, 0x1000), b = shareFrame(30 * MSS, 0x1000 + 30 * MSS);
  ports.batchNo = 1;
  ports.emit(p.index, a.frame, 0, a.frame.length, hdr, 77, a.vh, 0);
  ports.emit(p.index, b.frame, 0, b.frame.length, hdr, 77, b.vh, 0);
  assert.equal(wire.calls.length, 0, 'held until the end of the pass');
  ports.flushTouched();
  assert.equal(wire.calls.length, 1, 'one send for the pass');
  const sent = wire.calls[0];
  assert.deepEqual(sent.map((s) => s.frame.length), [42 + 44 * UNIT, 42 + 16 * UNIT], '60 datagrams in 2 outer frames (44 per IPv4 packet)');
  for (const s of sent) {
    assert.deepEqual([...s.vnet], [1, 5, 42, 0, UNIT & 0xff, UNIT >> 8, 34, 0, 6, 0]);
    assert.equal(sum16(s.frame, 14, 20), 0xffff, 'outer IPv4 checksum');
    assert.equal((s.frame[16] << 8) | s.frame[17], s.frame.length - 14);
    assert.equal((s.frame[38] << 8) | s.frame[39], s.frame.length - 34, 'UDP length');
  }
  const seqs = innerSeqs(cutDatagrams(sent));
  assert.deepEqual(seqs, Array.from({ length: 60 }, (_, k) => 0x1000 + k * MSS));
  assert.equal(p.txPackets, 2);
  assert.equal(ports.tunnelSeg.nUdpGso, 2);
});

test('a frame for the port in between, a short last segment or another flow start a new outer frame', { skip }, () => {
  const ports = new PortTable(64);
  const wire = new GsoWire('vx');
  const p = ports.add(2, wire, VX);
  const hdr = buildTunnelHeader(VX, 1001);
  const small = new Uint8Array(60);
  small[12] = 0x08;
  const a = shareFrame(10 * MSS, 0x1000), b = shareFrame(10 * MSS + 100, 0x1000 + 10 * MSS);
  const c = shareFrame(10 * MSS, 0x1000 + 20 * MSS + 100), d = shareFrame(10 * MSS, 0x1000 + 30 * MSS + 100);
  ports.batchNo = 1;
  ports.emit(p.index, a.frame, 0, a.frame.length, hdr, 77, a.vh, 0);
  ports.emit(p.index, small, 0, small.length, hdr, 77);
  ports.emit(p.index, b.frame, 0, b.frame.length, hdr, 77, b.vh, 0);   // after the small frame: new outer frame
  ports.emit(p.index, c.frame, 0, c.frame.length, hdr, 77, c.vh, 0);   // b ends short: new outer frame
  ports.emit(p.index, d.frame, 0, d.frame.length, hdr, 0x90000000, d.vh, 0); // another flow (outer source port): new
  ports.flushTouched();
  const lens = wire.calls.map((call) => call.map((s) => s.frame.length));
  assert.deepEqual(lens, [[42 + 10 * UNIT], [small.length + 50], [42 + 10 * UNIT + 8 + 66 + 100, 42 + 10 * UNIT, 42 + 10 * UNIT]],
    'a, then the small frame, then b, c and d in frames of their own');
  const all = wire.calls.flat();
  const seqs = innerSeqs(cutDatagrams([all[0], ...all.slice(2)]));
  assert.deepEqual(seqs, [...Array.from({ length: 21 }, (_, k) => 0x1000 + k * MSS),
    ...Array.from({ length: 20 }, (_, k) => 0x1000 + 20 * MSS + 100 + k * MSS)]);
  const sp = (s: Sent): number => (s.frame[34] << 8) | s.frame[35];
  assert.equal(sp(all[2]), sp(all[3]));
  assert.notEqual(sp(all[3]), sp(all[4]), 'flows differ in the outer source port');
});

test('more super-frames in a pass than held outer frames: the held ones are sent and none is lost', { skip }, () => {
  const ports = new PortTable(64);
  const wire = new GsoWire('vx');
  const p = ports.add(2, wire, VX);
  const hdr = buildTunnelHeader(VX, 1001);
  ports.batchNo = 1;
  const n = 20, segs = 44; // each fills one outer frame exactly
  for (let k = 0; k < n; k++) {
    const f = shareFrame(segs * MSS, 0x1000 + k * segs * MSS);
    ports.emit(p.index, f.frame, 0, f.frame.length, hdr, 77, f.vh, 0);
  }
  ports.flushTouched();
  const sent = wire.calls.flat();
  assert.equal(sent.length, n);
  assert.deepEqual(innerSeqs(cutDatagrams(sent)), Array.from({ length: n * segs }, (_, k) => 0x1000 + k * MSS));
  assert.equal(p.txPackets, n);
});
