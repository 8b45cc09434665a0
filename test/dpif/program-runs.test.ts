/**
 * The execute stage runs consecutive frames of several flows whose programs are one (interned
 * per action list, program-cache.ts) as one run: what leaves the port is every frame in
 * arrival order, and each megaflow and each rule is credited exactly its own frames and bytes,
 * also when the run has to go frame by frame (a push_vlan without headroom). A pass whose
 * frames all came in on one port credits that port's rxForwarded per run (BatchState.rxPort);
 * extract takes the ingress words of such a batch as constants unless a frame carries tunnel
 * metadata (BatchState.plainPort).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/dpif/datapath';
import { BatchState } from '../../src/dpif/batch-state';
import { PortTable } from '../../src/dpif/ports';
import { extract, selectAll } from '../../src/dpif/stages';
import { DpAction } from '../../src/dpif/dp-actions';
import { PacketBatch } from '../../src/netdev/batch';
import { ipv4SetChecksum } from '../../src/packet/checksum';
import {
  KEY_WORDS, W_IN_PORT, W_NW_DST, W_TUN_DST, W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC,
} from '../../src/packet/flowkey-layout';
import { LinearXlate, MemNetdev, TestRule, hexBytes, matchOf, toHex } from './helpers';

/** Ethernet/IPv4/UDP to 10.0.1.<dstLast> with `pad` payload bytes (so each frame's length tells it apart). */
function udpFrame(dstLast: number, pad: number): Uint8Array {
  const ipLen = 28 + pad;
  const f = hexBytes('020000000002 020000000001 0800' +
    `4500 ${ipLen.toString(16).padStart(4, '0')} 0000 4000 4011 0000 0a000101 0a0001${dstLast.toString(16).padStart(2, '0')}` +
    `03e8 07d0 ${(8 + pad).toString(16).padStart(4, '0')} 0000` + 'a5'.repeat(pad));
  ipv4SetChecksum(f, 14);
  return f;
}

/** Two rules, to 10.0.1.2 and to 10.0.1.3, with equal action lists (two array objects): one program. */
function twoFlows(actions: () => DpAction[], bare = false): {
  dp: Datapath; out: MemNetdev; inPort: MemNetdev; rules: TestRule[]; run: (dsts: number[], pads: number[]) => void;
} {
  const xl = new LinearXlate();
  const dp = new Datapath({ upcaller: xl, emcInsertInvProb: 1 });
  const inPort = new MemNetdev('p1', true), out = new MemNetdev('p2', true);
  dp.addPort(1, inPort); dp.addPort(2, out);
  const rules = [2, 3].map((d) => {
    const m = matchOf([[W_NW_DST, 0x0a000100 + d, 0xffffffff]]);
    return new TestRule(m.value, m.mask, 10, actions());
  });
  xl.rules.push(...rules);
  const run = (dsts: number[], pads: number[]): void => {
    const b = new PacketBatch(64);
    dsts.forEach((d, k) => {
      const i = b.append(udpFrame(d, pads[k]));
      b.inPort[i] = 1;
      // A frame with no headroom: a push_vlan cannot run on it in place (the run goes frame by frame).
      if (bare && k === 3) { b.off[i] = b.slotStart(i); b.buf.set(udpFrame(d, pads[k]), b.off[i]); }
    });
    dp.processBatch(b, dsts.length);
  };
  return { dp, out, inPort, rules, run };
}

const DSTS = [2, 2, 3, 2, 3, 3, 3, 2, 2, 3];
const PADS = [18, 40, 19, 41, 20, 42, 21, 43, 44, 22];

/** Frames and bytes (as received) per destination over `rounds` batches of DSTS. */
function expected(rounds: number, dst: number): { packets: number; bytes: number } {
  let packets = 0, bytes = 0;
  DSTS.forEach((d, k) => { if (d === dst) { packets++; bytes += 42 + PADS[k]; } });
  return { packets: packets * rounds, bytes: bytes * rounds };
}

test('frames of two flows with one action list run as one: in order out, each megaflow and rule credited its own frames', () => {
  const w = twoFlows(() => [{ kind: 'output', port: 2 }]);
  for (let round = 1; round <= 3; round++) {
    w.run(DSTS, PADS);
    for (const [k, d] of [2, 3].entries()) {
      const e = expected(round, d);
      assert.equal(w.rules[k].nPackets, e.packets, `round ${round}: rule to .${d} packets`);
      assert.equal(w.rules[k].nBytes, e.bytes, `round ${round}: rule to .${d} bytes`);
    }
    assert.equal(w.dp.ports.byNo(1)?.rxForwarded, DSTS.length * round, `round ${round}: port 1 forwarded`);
  }
  assert.equal(w.dp.megaflows.nFlows, 2);
  for (const id of w.dp.megaflows.liveIds()) {
    const d = w.dp.megaflows.repKey[id * KEY_WORDS + W_NW_DST] & 0xff;
    const e = expected(3, d);
    // Every round counts, the first too: its frames ran on the payloads their upcalls installed.
    assert.equal(w.dp.megaflows.nPackets[id], e.packets, `megaflow to .${d} packets`);
    assert.equal(w.dp.megaflows.nBytes[id], e.bytes, `megaflow to .${d} bytes`);
  }
  const want = [1, 2, 3].flatMap(() => DSTS.map((d, k) => toHex(udpFrame(d, PADS[k]))));
  assert.deepEqual(w.out.sent.map(toHex), want);
});

test('a run of two flows\' straight program declined for a frame without headroom goes frame by frame, each frame credited once', () => {
  const w = twoFlows(() => [{ kind: 'push_vlan', tci: 0x0007 }, { kind: 'output', port: 2 }], true);
  for (let round = 1; round <= 2; round++) {
    w.run(DSTS, PADS);
    for (const [k, d] of [2, 3].entries()) {
      const e = expected(round, d);
      assert.equal(w.rules[k].nPackets, e.packets, `round ${round}: rule to .${d} packets`);
      assert.equal(w.rules[k].nBytes, e.bytes, `round ${round}: rule to .${d} bytes`);
    }
    // Frame 3 had no room for the tag: dropped, as the slow path drops it; the others went out tagged.
    assert.equal(w.out.sent.length, (DSTS.length - 1) * round);
    assert.equal(w.dp.ports.byNo(1)?.rxForwarded, (DSTS.length - 1) * round);
  }
  const tagged = (f: Uint8Array): string => toHex(f).slice(0, 24) + '81000007' + toHex(f).slice(24);
  assert.deepEqual(w.out.sent.slice(0, DSTS.length - 1).map(toHex),
    DSTS.map((d, k) => tagged(udpFrame(d, PADS[k]))).filter((_, k) => k !== 3));
});

test('selectAll: rxPort and plainPort name the one port of the batch, and only when every frame (the last too) came in on it plain', () => {
  const ports = new PortTable(64);
  ports.add(1, new MemNetdev('p1'), null);
  ports.add(7, new MemNetdev('p7'), null);
  const st = new BatchState();
  const drops = new Float64Array(64);
  const batch = (n: number, set: (b: PacketBatch, i: number) => void): PacketBatch => {
    const b = new PacketBatch(64);
    for (let k = 0; k < n; k++) { const i = b.append(udpFrame(2, 18)); b.inPort[i] = 7; set(b, i); }
    return b;
  };
  const plain = batch(5, () => undefined);
  assert.equal(selectAll(st, plain, 5, ports), 5);
  assert.equal(st.rxPort, ports.byNo(7));
  assert.equal(st.plainPort, 7);
  assert.equal(extract(st, plain, 5, null, drops, ports), 5);
  // One run: frame 0's key is every frame's (its members' keys are not written).
  assert.equal(st.nRuns, 1);
  assert.equal(st.runLen[0], 4);
  assert.deepEqual(Array.from(st.keys.subarray(W_IN_PORT, W_TUN_DST + 1)), [7, 0, 0, 0, 0, 0], 'frame 0');
  // One port, but the last frame came out of a tunnel (each of its four tunnel words alone).
  for (const [w, col] of [[W_TUN_ID_HI, 'tunIdHi'], [W_TUN_ID_LO, 'tunIdLo'], [W_TUN_SRC, 'tunSrc'], [W_TUN_DST, 'tunDst']] as const) {
    const b = batch(5, (bb, i) => { if (i === 4) bb[col][i] = 0x0a0b0c0d; });
    selectAll(st, b, 5, ports);
    assert.equal(st.rxPort, ports.byNo(7), col);
    assert.equal(st.plainPort, -1, col);
    extract(st, b, 5, null, drops, ports);
    assert.equal(st.keys[4 * KEY_WORDS + w], 0x0a0b0c0d, `${col}: the tunnel word in the last frame's key`);
    assert.equal(st.runLen[0], 3, `${col}: frames 1-3 are members of frame 0's run, frame 4 not`);
    assert.equal(st.keys[w], 0, `${col}: not in its neighbours' (their run's head's) key`);
    assert.equal(st.sameKey[4], -1, `${col}: not marked equal to its neighbour`);
    assert.equal(st.sameKey[3], 2, `${col}: frames before it are`);
  }
  // The last frame from another port: neither; a port the table does not have: no rxPort.
  const mixed = batch(5, (b, i) => { if (i === 4) b.inPort[i] = 1; });
  selectAll(st, mixed, 5, ports);
  assert.equal(st.rxPort, null);
  assert.equal(st.plainPort, -1);
  extract(st, mixed, 5, null, drops, ports);
  assert.equal(st.keys[4 * KEY_WORDS + W_IN_PORT], 1);
  assert.equal(st.runLen[0], 3);
  assert.equal(st.keys[W_IN_PORT], 7);
  const unknown = batch(3, (b, i) => { b.inPort[i] = 9; });
  selectAll(st, unknown, 3, ports);
  assert.equal(st.rxPort, null);
  assert.equal(st.plainPort, 9);
});
