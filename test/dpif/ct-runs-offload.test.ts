/**
 * A run of one connection (dpif/batch-state.ts runLen) in a batch with offload metadata, whose
 * recirculated flow cannot take offload frames (a SLOW list: check_pkt_len): execute runs such a
 * flow's frames one by one and sets the super-frame in the run aside to be finished after the
 * pass, with the frames of its flow behind it (stages.ts execute). The run's members are
 * expanded there (stages.ts expandRun): each must run its own program with its own pipeline
 * words, also when it is finished later. Compared with the same frames sent one per batch.
 * Finishing uses the native addon's offload.c: skipped when it is not built.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GSO_SLOT_BYTES, PacketBatch, VNET_HDR_BYTES } from '../../src/netdev/batch';
import { nativeAvailable, nativeLoadError } from '../../src/native/io';
import { Datapath } from '../../src/dpif/datapath';
import { DpAction } from '../../src/dpif/dp-actions';
import { Conntrack } from '../../src/dpif/conntrack';
import { KEY_WORDS, W_RECIRC_ID } from '../../src/packet/flowkey-layout';
import { LinearXlate, MemNetdev, TestRule, toHex } from './helpers';
import { fold16, sum16 } from '../../src/packet/checksum';
import { wr16 } from '../../src/packet/bytes';

const skip = nativeAvailable() ? false : `native addon not built: ${nativeLoadError()}`;

/**
 * Ethernet + IPv4 10.0.0.1 -> 10.0.0.2 + TCP 1000 -> 80, ACK|PSH, sequence `seq`, `payload`
 * bytes; `partial`: the TCP checksum field holds the pseudo-header sum (a sender with TX
 * checksum offload), else the full checksum.
 */
function tcpFrame(seq: number, payload: number, partial: boolean): Uint8Array {
  const f = new Uint8Array(54 + payload);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45]);
  wr16(f, 16, 40 + payload); wr16(f, 18, 0x1234); f[20] = 0x40; f[22] = 64; f[23] = 6;
  f.set([10, 0, 0, 1, 10, 0, 0, 2], 26);
  wr16(f, 24, ~fold16(sum16(f, 14, 20, 0)) & 0xffff);
  wr16(f, 34, 1000); wr16(f, 36, 80);
  f[38] = seq >>> 24; f[39] = (seq >>> 16) & 255; f[40] = (seq >>> 8) & 255; f[41] = seq & 255;
  f[46] = 0x50; f[47] = 0x18; wr16(f, 48, 65535);
  for (let k = 0; k < payload; k++) f[54 + k] = (k * 7 + 3) & 255;
  const pseudo = sum16(f, 26, 8, 0) + 6 + 20 + payload;
  wr16(f, 50, partial ? fold16(pseudo) : ~fold16(sum16(f, 34, 20 + payload, pseudo)) & 0xffff);
  return f;
}

/** virtio_net_hdr: NEEDS_CSUM, csum_start 34, csum_offset 16, GSO TCPV4 with `mss`. */
function vnetHdr(mss: number): Uint8Array {
  const v = new Uint8Array(VNET_HDR_BYTES);
  v[0] = 1; v[1] = 1; v[4] = mss & 255; v[5] = mss >>> 8; v[6] = 34; v[8] = 16;
  return v;
}

/** A batch with offload metadata holding `frames` from in_port 3 (a super-frame where `vnets` has a header). */
function batchOf(frames: Uint8Array[], vnets: (Uint8Array | null)[]): PacketBatch {
  const b = new PacketBatch(8, GSO_SLOT_BYTES, true);
  for (let i = 0; i < frames.length; i++) {
    b.resetSlot(i);
    b.buf.set(frames[i], b.off[i]);
    b.len[i] = frames[i].length;
    b.inPort[i] = 3;
    const v = vnets[i];
    if (v !== null) (b.vnet as Uint8Array).set(v, i * VNET_HDR_BYTES);
  }
  b.count = frames.length;
  return b;
}

/** The rule for frames at `recircId` (every other word wildcarded). */
function recircRule(recircId: number, actions: DpAction[]): TestRule {
  const value = new Uint32Array(KEY_WORDS), mask = new Uint32Array(KEY_WORDS);
  value[W_RECIRC_ID] = recircId; mask[W_RECIRC_ID] = 0xffffffff;
  return new TestRule(value, mask, 1, actions);
}

/** ct(commit,zone=3),recirc(7), then check_pkt_len (SLOW) to port 2. */
function world(): { dp: Datapath; out: MemNetdev; againRun: { n: number } } {
  const x = new LinearXlate();
  x.rules.push(recircRule(0, [{ kind: 'ct', zone: 3, commit: true, recircId: 7 }]));
  x.rules.push(recircRule(7, [{ kind: 'check_pkt_len', size: 9000, gt: [], le: [{ kind: 'output', port: 2 }] }]));
  const dp = new Datapath({ upcaller: x, nowMs: () => 1000, emcInsertInvProb: 1 });
  const out = new MemNetdev('out');
  dp.addPort(1, new MemNetdev('p1')); dp.addPort(2, out); dp.addPort(3, new MemNetdev('in'));
  const ct = dp.conntrack, again = ct.againRun.bind(ct), counted = { n: 0 };
  ct.againRun = (...args: Parameters<Conntrack['againRun']>): number => { const n = again(...args); counted.n += n; return n; };
  return { dp, out, againRun: counted };
}

const seg = (k: number): Uint8Array => tcpFrame(0x01000000 + k * 100, 100, false);
const cases: [string, Uint8Array[], number[]][] = [
  ['a member', [seg(0), seg(1), seg(2), tcpFrame(0x01000000 + 300, 3000, true), seg(33), seg(34)], [154, 154, 154, 1502, 1502, 158, 154, 154]],
  ['the head', [tcpFrame(0x01000000, 3000, true), seg(30), seg(31), seg(32)], [1502, 1502, 158, 154, 154, 154]],
];
for (const [where, frames, lengths] of cases) {
  test(`a super-frame in a run (${where}) to a flow that cannot take it: set aside with the frames behind it, each with its own words`, { skip }, () => {
    const vnets = frames.map((f) => (f.length > 1000 ? vnetHdr(1448) : null));
    const together = world(), alone = world();
    for (const w of [together, alone]) {
      for (let r = 0; r < 2; r++) w.dp.processBatch(batchOf([seg(0), seg(1), seg(2)], [null, null, null]), 3); // the connection and the caches
      w.out.sent.length = 0;
    }
    const members0 = together.againRun.n;
    together.dp.processBatch(batchOf(frames, vnets), frames.length);
    assert.ok(together.againRun.n - members0 >= 3, 'the batch\'s frames made a run');
    for (let i = 0; i < frames.length; i++) alone.dp.processBatch(batchOf([frames[i]], [vnets[i]]), 1);
    assert.deepEqual(together.out.sent.map((f) => f.length), lengths,
      'in order: the super-frame\'s pieces after the frames before it, the frames behind it after them');
    assert.deepEqual(together.out.sent.map(toHex), alone.out.sent.map(toHex));
    assert.equal(together.dp.conntrack.nPackets, alone.dp.conntrack.nPackets);
  });
}
