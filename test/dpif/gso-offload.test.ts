/**
 * Offload frames (GSO super-frames, checksum-partial frames) in the datapath: kept whole for a
 * port that takes them, finished (segmented, checksummed) for one that does not and before a
 * SLOW program that cannot take them (conntrack and NAT take them whole), csum_start moved by VLAN push/pop, and an address rewrite patching a partial
 * checksum in its pseudo-header form. Finishing uses the native addon's offload.c: skipped
 * when the addon is not built.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GSO_SLOT_BYTES, HEADROOM, PacketBatch, VNET_HDR_BYTES } from '../../src/netdev/batch';
import { NetdevStats } from '../../src/netdev/netdev';
import { nativeAvailable, nativeLoadError } from '../../src/native/io';
import { Datapath } from '../../src/dpif/datapath';
import { DpAction } from '../../src/dpif/dp-actions';
import { hdr, locate, setAddr } from '../../src/dpif/frame-headers';
import { finishOffload } from '../../src/dpif/gso';
import { LinearXlate, MemNetdev, TestRule } from './helpers';
import { KEY_WORDS, W_RECIRC_ID } from '../../src/packet/flowkey-layout';
import { fold16, sum16 } from '../../src/packet/checksum';
import { wr16 } from '../../src/packet/bytes';

const skip = nativeAvailable() ? false : `native addon not built: ${nativeLoadError()}`;

/** Sends like MemNetdev and keeps each frame's vnet header. */
class OffloadMemNetdev extends MemNetdev {
  readonly txOffload = true;
  readonly vnets: Uint8Array[] = [];
  override send(batch: PacketBatch, count: number): number {
    for (let i = 0; i < count; i++) {
      this.vnets.push(batch.vnet === null ? new Uint8Array(VNET_HDR_BYTES)
        : batch.vnet.slice(i * VNET_HDR_BYTES, (i + 1) * VNET_HDR_BYTES));
    }
    return super.send(batch, count);
  }
  override stats(_out: NetdevStats): void { /* none */ }
}

/**
 * Ethernet + IPv4 (10.0.0.1 -> dst) + TCP 1000 -> 80, seq 0x01000000, ACK|PSH, `payload` bytes
 * of (k * 7 + 3) & 255. `partial`: the TCP checksum field holds the pseudo-header sum (as
 * a sender with TX checksum offload leaves it), else the full checksum.
 */
function tcpFrame(dst: number, payload: number, partial: boolean): Uint8Array {
  const f = new Uint8Array(14 + 20 + 20 + payload);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
  const ip = 14;
  f[ip] = 0x45; wr16(f, ip + 2, 40 + payload); wr16(f, ip + 4, 0x1234); f[ip + 6] = 0x40; f[ip + 8] = 64; f[ip + 9] = 6;
  f.set([10, 0, 0, 1], ip + 12);
  f.set([dst >>> 24, (dst >>> 16) & 255, (dst >>> 8) & 255, dst & 255], ip + 16);
  wr16(f, ip + 10, ~fold16(sum16(f, ip, 20, 0)) & 0xffff);
  const l4 = 34;
  wr16(f, l4, 1000); wr16(f, l4 + 2, 80); f.set([1, 0, 0, 0], l4 + 4); f[l4 + 12] = 0x50; f[l4 + 13] = 0x18;
  wr16(f, l4 + 14, 65535);
  for (let k = 0; k < payload; k++) f[54 + k] = (k * 7 + 3) & 255;
  const pseudo = sum16(f, ip + 12, 8, 0) + 6 + 20 + payload;
  if (partial) wr16(f, l4 + 16, fold16(pseudo));
  else wr16(f, l4 + 16, ~fold16(sum16(f, l4, 20 + payload, pseudo)) & 0xffff);
  return f;
}

/** virtio_net_hdr: NEEDS_CSUM, csum_start 34, csum_offset 16, and GSO TCPV4 when mss > 0. */
function vnetHdr(mss: number): Uint8Array {
  const v = new Uint8Array(VNET_HDR_BYTES);
  v[0] = 1; v[1] = mss > 0 ? 1 : 0; v[4] = mss & 255; v[5] = mss >>> 8; v[6] = 34; v[8] = 16;
  return v;
}

/** A batch with one offload frame in slot 0, from in_port `inPort`. */
function batchWith(frame: Uint8Array, vnet: Uint8Array, inPort: number): PacketBatch {
  const b = new PacketBatch(4, GSO_SLOT_BYTES, true);
  b.resetSlot(0);
  b.buf.set(frame, b.off[0]);
  b.len[0] = frame.length;
  b.inPort[0] = inPort;
  (b.vnet as Uint8Array).set(vnet, 0);
  b.count = 1;
  return b;
}

function tcpCsumOk(f: Uint8Array): boolean {
  const l4Len = ((f[16] << 8) | f[17]) - 20;
  return fold16(sum16(f, 34, l4Len, sum16(f, 26, 8, 0) + 6 + l4Len)) === 0xffff;
}

function dpWith(actions: DpAction[]): { dp: Datapath; plain: MemNetdev; gso: OffloadMemNetdev } {
  const x = new LinearXlate();
  x.rules.push(new TestRule(new Uint32Array(KEY_WORDS), new Uint32Array(KEY_WORDS), 1, actions));
  const dp = new Datapath({ upcaller: x, nowMs: () => 1000 });
  const plain = new MemNetdev('plain');
  const gso = new OffloadMemNetdev('gso');
  dp.addPort(1, plain);
  dp.addPort(2, gso);
  dp.addPort(3, new MemNetdev('in'));
  return { dp, plain, gso };
}

test('an address rewrite on a checksum-partial frame patches the pseudo-header sum', { skip }, () => {
  const f = tcpFrame(0x0a000002, 300, true);
  locate(f, 0, f.length);
  hdr.l4Partial = true;
  setAddr(f, 14 + 16, 0x0a0000fe, 0);
  // The field is now exactly the pseudo-header sum of a frame sent to 10.0.0.254.
  const want = tcpFrame(0x0a0000fe, 300, true);
  assert.deepEqual(f, want);
  // And finishing it gives the frame a sender without offload would have sent.
  const out = new PacketBatch(4);
  assert.equal(finishOffload(f, 0, f.length, vnetHdr(0), 0, out), 1);
  assert.deepEqual(out.frame(0), tcpFrame(0x0a0000fe, 300, false));
});

test('a super-frame leaves whole with its vnet header to a port that takes offloads', { skip }, () => {
  const { dp, plain, gso } = dpWith([{ kind: 'output', port: 2 }]);
  const f = tcpFrame(0x0a000002, 4000, true);
  dp.processBatch(batchWith(f, vnetHdr(1448), 3), 1);
  assert.equal(plain.sent.length, 0);
  assert.equal(gso.sent.length, 1);
  assert.deepEqual(gso.sent[0], f);
  assert.deepEqual(gso.vnets[0], vnetHdr(1448));
  assert.equal(dp.ports.byNo(3)?.rxPackets, 1);
});

test('a big super-frame goes out straight from the input buffer, after the frames before it', { skip }, () => {
  const { dp, gso } = dpWith([{ kind: 'output', port: 2 }]);
  const small = tcpFrame(0x0a000002, 100, false);
  const big = tcpFrame(0x0a000002, 20000, true);
  const b = batchWith(small, new Uint8Array(VNET_HDR_BYTES), 3);
  b.resetSlot(1);
  b.buf.set(big, b.off[1]);
  b.len[1] = big.length;
  b.inPort[1] = 3;
  (b.vnet as Uint8Array).set(vnetHdr(1448), VNET_HDR_BYTES);
  b.count = 2;
  dp.processBatch(b, 2);
  assert.deepEqual(gso.sent, [small, big], 'order kept');
  assert.deepEqual(gso.vnets, [new Uint8Array(VNET_HDR_BYTES), vnetHdr(1448)]);
  assert.equal(gso.nSendCalls, 2, 'pending frames flushed, then the super-frame on its own');
  assert.equal(dp.ports.nDirectSends, 1);
  assert.equal(dp.ports.byNo(2)?.txPackets, 2);
});

test('a super-frame is segmented for a port without offload: 1448-byte pieces, valid checksums', { skip }, () => {
  const { dp, plain } = dpWith([{ kind: 'output', port: 1 }]);
  dp.processBatch(batchWith(tcpFrame(0x0a000002, 4000, true), vnetHdr(1448), 3), 1);
  assert.deepEqual(plain.sent.map((s) => s.length), [54 + 1448, 54 + 1448, 54 + 1104]);
  plain.sent.forEach((s, k) => {
    assert.equal(((s[38] << 24) | (s[39] << 16) | (s[40] << 8) | s[41]) >>> 0, 0x01000000 + k * 1448, 'seq');
    assert.equal((s[16] << 8) | s[17], s.length - 14, 'IP total length');
    assert.equal(s[47], k < 2 ? 0x10 : 0x18, 'PSH only on the last segment');
    assert.ok(tcpCsumOk(s), `segment ${k} TCP checksum`);
    assert.equal(s[54 + 10], (((k * 1448 + 10) * 7 + 3) & 255), 'payload in order');
  });
  assert.equal(dp.ports.nOffloadFinished, 1);
});

test('push_vlan moves csum_start with the L3 header; pop_vlan moves it back', { skip }, () => {
  const push = dpWith([{ kind: 'push_vlan', tci: 7 }, { kind: 'output', port: 2 }]);
  push.dp.processBatch(batchWith(tcpFrame(0x0a000002, 3000, true), vnetHdr(1448), 3), 1);
  assert.equal(push.gso.sent[0].length, 54 + 3000 + 4);
  assert.equal(push.gso.vnets[0][6], 38, 'csum_start 34 + 4');
  const pop = dpWith([{ kind: 'pop_vlan' }, { kind: 'output', port: 2 }]);
  const tagged = push.gso.sent[0];
  const v = push.gso.vnets[0];
  pop.dp.processBatch(batchWith(tagged, v, 3), 1);
  assert.deepEqual(pop.gso.sent[0], tcpFrame(0x0a000002, 3000, true));
  assert.equal(pop.gso.vnets[0][6], 34);
});

test('conntrack on a super-frame: tracked once, sent whole with its vnet header', { skip }, () => {
  const { dp, plain, gso } = dpWith([{ kind: 'ct', zone: 0, commit: true, recircId: 0 }, { kind: 'output', port: 2 }]);
  const f = tcpFrame(0x0a000002, 4000, true);
  dp.processBatch(batchWith(f, vnetHdr(1448), 3), 1);
  assert.equal(plain.sent.length, 0);
  assert.deepEqual(gso.sent, [f]);
  assert.deepEqual(gso.vnets[0], vnetHdr(1448));
  assert.equal(dp.nOffloadFinished, 0, 'not segmented');
  assert.equal(dp.conntrack.nPackets, 1, 'one conntrack execution for the whole super-frame');
  assert.equal(dp.ports.byNo(3)?.rxPackets, 1, 'the super-frame counted once on rx');
});

test('SNAT on a super-frame: headers rewritten once, every segment cut from it has the NATed tuple and valid checksums', { skip }, () => {
  const nat = { kind: 'src' as const, ipMin: 0xcb00710a, ipMax: 0xcb00710a, portMin: 40000, portMax: 40000 };
  const { dp, plain, gso } = dpWith([{ kind: 'ct', zone: 5, commit: true, recircId: 0, nat }, { kind: 'output', port: 2 }]);
  dp.processBatch(batchWith(tcpFrame(0x0a000002, 4000, true), vnetHdr(1448), 3), 1);
  assert.equal(plain.sent.length, 0);
  assert.equal(gso.sent.length, 1, 'one super-frame out');
  const sf = gso.sent[0];
  assert.deepEqual([...sf.subarray(26, 30)], [203, 0, 113, 10], 'source address NATed');
  assert.equal((sf[34] << 8) | sf[35], 40000, 'source port NATed');
  // Segment it as the kernel (or a port without offload) would: every piece is right.
  const out = new PacketBatch(8);
  assert.equal(finishOffload(sf, 0, sf.length, gso.vnets[0], 0, out), 3);
  for (let k = 0; k < 3; k++) {
    const s = out.frame(k);
    assert.ok(tcpCsumOk(s), `segment ${k} TCP checksum`);
    assert.equal(fold16(sum16(s, 14, 20, 0)), 0xffff, `segment ${k} IPv4 header checksum`);
    assert.deepEqual([...s.subarray(26, 30)], [203, 0, 113, 10]);
    assert.equal((s[34] << 8) | s[35], 40000);
  }
});

test('a SLOW list that cannot take a super-frame (check_pkt_len) gets it finished first, per segment', { skip }, () => {
  const { dp, plain, gso } = dpWith([{ kind: 'check_pkt_len', size: 2000, gt: [], le: [{ kind: 'output', port: 2 }] }]);
  dp.processBatch(batchWith(tcpFrame(0x0a000002, 4000, true), vnetHdr(1448), 3), 1);
  assert.equal(plain.sent.length, 0);
  assert.deepEqual(gso.sent.map((s) => s.length), [1502, 1502, 1158]);
  for (const v of gso.vnets) assert.deepEqual(v, new Uint8Array(VNET_HDR_BYTES), 'segments are complete frames');
  for (const s of gso.sent) assert.ok(tcpCsumOk(s));
  assert.equal(dp.nOffloadFinished, 1);
});

test('a frame behind a super-frame set aside for such a list waits behind it: the flow leaves in order', { skip }, () => {
  const { dp, gso } = dpWith([{ kind: 'check_pkt_len', size: 2000, gt: [], le: [{ kind: 'output', port: 2 }] }]);
  const b = batchWith(tcpFrame(0x0a000002, 4000, true), vnetHdr(1448), 3);
  // The flow's next segment, complete (no offload), right behind it in the same batch.
  const seg = tcpFrame(0x0a000002, 100, false);
  seg[38] = 0x01; seg[39] = 0x00; seg[40] = 0x0f; seg[41] = 0xa0; // seq 0x01000fa0: after the 4000 bytes
  const l4Len = seg.length - 34;
  wr16(seg, 50, 0);
  wr16(seg, 50, ~fold16(sum16(seg, 34, l4Len, sum16(seg, 26, 8, 0) + 6 + l4Len)) & 0xffff);
  b.resetSlot(1);
  b.buf.set(seg, b.off[1]);
  b.len[1] = seg.length;
  b.inPort[1] = 3;
  b.count = 2;
  dp.processBatch(b, 2);
  assert.deepEqual(gso.sent.map((s) => s.length), [1502, 1502, 1158, 154], 'the segment after the super-frame\'s pieces');
  const seqs = gso.sent.map((s) => ((s[38] << 24) | (s[39] << 16) | (s[40] << 8) | s[41]) >>> 0);
  assert.deepEqual(seqs, [0x01000000, 0x010005a8, 0x01000b50, 0x01000fa0]);
  for (const s of gso.sent) assert.ok(tcpCsumOk(s));
  assert.equal(dp.ports.byNo(3)?.rxForwarded, 2, 'both ends counted once');
});

/** The rule for frames at `recircId` (every other word wildcarded). */
function recircRule(recircId: number, actions: DpAction[]): TestRule {
  const value = new Uint32Array(KEY_WORDS), mask = new Uint32Array(KEY_WORDS);
  value[W_RECIRC_ID] = recircId; mask[W_RECIRC_ID] = 0xffffffff;
  return new TestRule(value, mask, 1, actions);
}

for (const copied of [false, true]) {
  test(`a super-frame recirculated (${copied ? 'a copy in the queue' : 'in place'}) to a list that cannot take it is finished there, counted once`, { skip }, () => {
    const x = new LinearXlate();
    // A rewrite after the ct makes the datapath copy the frame into the recirculation queue.
    const after: DpAction[] = copied ? [{ kind: 'set_eth', src: 0x020000000009, dst: -1 }, { kind: 'output', port: 1 }] : [];
    x.rules.push(recircRule(0, [{ kind: 'ct', zone: 3, commit: true, recircId: 7 }, ...after]));
    x.rules.push(recircRule(7, [{ kind: 'check_pkt_len', size: 2000, gt: [], le: [{ kind: 'output', port: 2 }] }]));
    const dp = new Datapath({ upcaller: x, nowMs: () => 1000 });
    const plain = new MemNetdev('plain'), gso = new OffloadMemNetdev('gso');
    dp.addPort(1, plain); dp.addPort(2, gso); dp.addPort(3, new MemNetdev('in'));
    dp.processBatch(batchWith(tcpFrame(0x0a000002, 4000, true), vnetHdr(1448), 3), 1);
    assert.deepEqual(gso.sent.map((s) => s.length), [1502, 1502, 1158], 'the recirculated super-frame, per segment');
    for (const s of gso.sent) assert.ok(tcpCsumOk(s));
    assert.equal(dp.nOffloadFinished, 1);
    assert.equal(dp.conntrack.nPackets, 1, 'conntrack saw the super-frame once');
    const port = dp.ports.byNo(3);
    assert.equal(port?.rxPackets, 1);
    assert.equal(port?.rxForwarded, 1, 'its end counted once, forwarded');
  });
}

test('a checksum-partial TCP frame whose checksum comes out 0 is finished with 0x0000 (0xffff is for UDP only)', { skip }, () => {
  const f = tcpFrame(0x0a000002, 40, false);
  const l4 = 34, l4Len = f.length - l4, pseudo = sum16(f, 26, 8, 0) + 6 + l4Len;
  // Choose the first payload word so that the data sums to 0xffff: the checksum is then 0.
  wr16(f, l4 + 16, 0); wr16(f, 54, 0);
  wr16(f, 54, 0xffff - fold16(sum16(f, l4, l4Len, pseudo)));
  wr16(f, l4 + 16, fold16(pseudo)); // partial: the pseudo-header sum, as the sender leaves it
  const out = new PacketBatch(4);
  assert.equal(finishOffload(f, 0, f.length, vnetHdr(0), 0, out), 1);
  const g = out.frame(0);
  assert.equal((g[l4 + 16] << 8) | g[l4 + 17], 0x0000);
  assert.ok(tcpCsumOk(g));
});

test('a batch made without withVnet carries no offload metadata; a GSO slot holds a 64 KB IP packet', () => {
  const b = new PacketBatch(2);
  assert.equal(b.vnet, null);
  assert.equal(b.hasOffload(0), false);
  assert.equal(HEADROOM + 65535 + 18 + 3 <= GSO_SLOT_BYTES, true, 'a 64 KB IP packet fits a GSO slot');
});
