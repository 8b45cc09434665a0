/**
 * The conntrack stage (dpif/stages.ts conntrack) over a run of frames with equal keys, called
 * directly: the first frame goes through Conntrack.executeKeyed, the others through againRun,
 * and every frame's key must then hold what the stage writes for it (recirc id, ct state, zone,
 * mark) and, after NAT, the words of its rewritten header, as a parse of the rewritten frame
 * gives them, once the run's members are expanded (stages.ts expandRun): a later stage that reads
 * a frame's own key (an EMC probe after the run's first frame missed, an upcall) must see the
 * frame as it is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchState } from '../../src/dpif/batch-state';
import { Conntrack, CS_DST_NAT, CS_ESTABLISHED, CS_INVALID, CS_REPLY_DIR, CS_SRC_NAT, CS_TRACKED, CtNatRange } from '../../src/dpif/conntrack';
import { DpCt } from '../../src/dpif/dp-actions';
import { PortTable } from '../../src/dpif/ports';
import { ingressHash } from '../../src/dpif/flow-hash';
import { conntrack, CtCounters, expandRunsIn, recircHash } from '../../src/dpif/stages';
import { PacketBatch } from '../../src/netdev/batch';
import { ipv4SetChecksum, l4SetChecksum4 } from '../../src/packet/checksum';
import { extractKey, OFFS_WORDS } from '../../src/packet/flowkey';
import { KEY_WORDS, W_CT_MARK, W_CT_STATE, W_CT_ZONE, W_NW_DST, W_NW_SRC, W_RECIRC_ID, W_TP } from '../../src/packet/flowkey-layout';

const A = 0x0a000005, S = 0xcb007107, G = 0xac18040a;

function tcp(src: number, dst: number, sp: number, dp: number, flags: number, ipId: number): Uint8Array {
  const b = new Uint8Array(54);
  const dv = new DataView(b.buffer);
  b[12] = 0x08; b[14] = 0x45; b[17] = 40; dv.setUint16(18, ipId); b[22] = 64; b[23] = 6;
  dv.setUint32(26, src); dv.setUint32(30, dst); dv.setUint16(34, sp); dv.setUint16(36, dp);
  b[46] = 0x50; b[47] = flags; b[48] = 0xfa; b[49] = 0xf0;
  ipv4SetChecksum(b, 14);
  l4SetChecksum4(b, 14, 34, 20, 6);
  return b;
}

/**
 * Runs the stage over `frames` as one run of equal keys (state.sameKey chained, the ct step on the
 * first frame only, as keepRunInPlace leaves a run); returns the state and batch.
 */
function stageRun(ct: Conntrack, frames: Uint8Array[], step: DpCt, depths: number[] = [],
                  afterParse: (bt: PacketBatch) => void = () => {}): { st: BatchState; bt: PacketBatch; n: number; run: number; runs: number[] } {
  const n = frames.length;
  const st = new BatchState(), bt = new PacketBatch(n, 2048);
  for (let i = 0; i < n; i++) {
    bt.append(frames[i]);
    extractKey(bt.buf, bt.off[i], bt.len[i], 1, st.keys, i * KEY_WORDS, st.offs, i * OFFS_WORDS);
    st.live[i] = i;
    st.sameKey[i] = i - 1;
    st.ctPending[i] = i === 0 ? step : null; // the run's frames have the first one's step (stages.ts keepInPlace)
    st.depth[i] = depths[i] ?? 1;
  }
  afterParse(bt);
  const c: CtCounters = { nCtDrops: 0, nRecirculated: 0 };
  const left = conntrack(ct, st, bt, n, 5, c, new PortTable(n));
  assert.equal(c.nRecirculated, n);
  // The frames after the first are its run's members (BatchState.runLen): their columns are
  // written when a stage must read them on their own (expandRun), which the checks below stand for.
  const runs = Array.from(st.live.subarray(0, left), (i) => (st.nRuns > 0 ? st.runLen[i] : 0));
  expandRunsIn(st, st.live, 0, left, true);
  return { st, bt, n: left, run: runs[0], runs };
}

/**
 * The stage leaves each frame it keeps with its hashes (the pass runs no hash stage after it):
 * the ingress hash of its finished key, and the cache hash mixed with recirc id and depth.
 */
function assertHashes(st: BatchState, i: number): void {
  const h = ingressHash(st.keys, i * KEY_WORDS);
  assert.equal(st.hashes[i], h >>> 0, `frame ${i} hash`);
  assert.equal(st.cacheHash[i], recircHash(h, st.keys[i * KEY_WORDS + W_RECIRC_ID], st.depth[i]) >>> 0, `frame ${i} cache hash`);
}

test('a run through SNAT, both directions: every frame\'s key holds its ct words and its rewritten header\'s words', () => {
  const snat: CtNatRange = { kind: 'src', ipMin: G, ipMax: G, portMin: 0, portMax: 0 };
  const ct = new Conntrack({ capacity: 16 });
  ct.execute(tcp(A, S, 40000, 80, 0x02, 1), 0, 54, 7, true, snat, 0, 0, 5);
  ct.execute(tcp(S, G, 80, 40000, 0x12, 1), 0, 54, 7, false, snat, 0, 0, 5);
  const step: DpCt = { kind: 'ct', zone: 7, commit: false, recircId: 3, nat: snat };
  const dirs: [number, number, number, number, number][] = [
    [A, S, 40000, 80, CS_TRACKED | CS_ESTABLISHED | CS_SRC_NAT],
    [S, G, 80, 40000, CS_TRACKED | CS_ESTABLISHED | CS_REPLY_DIR | CS_DST_NAT],
  ];
  let runs = 0;
  for (const [src, dst, sp, dp, state] of [...dirs, ...dirs]) {
    const { st, bt, n, run } = stageRun(ct, [1, 2, 3, 4].map((id) => tcp(src, dst, sp, dp, 0x10, id)), step);
    assert.equal(n, 4);
    const want = new Uint32Array(KEY_WORDS), offs = new Uint16Array(OFFS_WORDS);
    for (let i = 0; i < n; i++) {
      const base = i * KEY_WORDS;
      extractKey(bt.buf, bt.off[i], bt.len[i], 1, want, 0, offs, 0); // the rewritten frame
      for (const [name, w] of [['nw_src', W_NW_SRC], ['nw_dst', W_NW_DST], ['tp', W_TP]] as const) {
        assert.equal(st.keys[base + w], want[w], `frame ${i} ${name}`);
      }
      assert.equal(st.keys[base + W_RECIRC_ID], 3);
      assert.equal(st.keys[base + W_CT_STATE], state, `frame ${i} ct_state`);
      assert.equal(st.keys[base + W_CT_ZONE], 7);
      assert.equal(st.keys[base + W_CT_MARK], 0);
      assert.equal(st.ctPending[i], null);
      assertHashes(st, i);
    }
    assert.equal(st.keys[W_NW_SRC] === src >>> 0 && st.keys[W_NW_DST] === dst >>> 0, false, 'NAT rewrote the key');
    runs += run;
  }
  assert.ok(runs > 0, 'some frames were answered as members of a run');
});

test('a run whose frames are at different depths: each frame\'s cache hash mixes its own depth', () => {
  const snat: CtNatRange = { kind: 'src', ipMin: G, ipMax: G, portMin: 0, portMax: 0 };
  const ct = new Conntrack({ capacity: 16 });
  ct.execute(tcp(A, S, 40000, 80, 0x02, 1), 0, 54, 7, true, snat, 0, 0, 5);
  const step: DpCt = { kind: 'ct', zone: 7, commit: false, recircId: 3, nat: snat };
  const { st, n, run } = stageRun(ct, [1, 2, 3, 4, 5].map((id) => tcp(A, S, 40000, 80, 0x10, id)), step, [1, 1, 2, 1, 3]);
  assert.equal(n, 5);
  assert.equal(run, 4, 'one run of members of other depths');
  for (let i = 0; i < n; i++) assertHashes(st, i);
  assert.notEqual(st.cacheHash[2], st.cacheHash[1], 'depth is in the cache hash');
});

test('againRun refuses a frame in the middle of a run: the run ends before it, it is answered on its own, the frames after it make a run of their own', () => {
  const snat: CtNatRange = { kind: 'src', ipMin: G, ipMax: G, portMin: 0, portMax: 0 };
  const ct = new Conntrack({ capacity: 16 });
  ct.execute(tcp(A, S, 40000, 80, 0x02, 1), 0, 54, 7, true, snat, 0, 0, 5);
  ct.execute(tcp(S, G, 80, 40000, 0x12, 1), 0, 54, 7, false, snat, 0, 0, 5);
  ct.execute(tcp(A, S, 40000, 80, 0x10, 1), 0, 54, 7, false, snat, 0, 0, 5); // the handshake's last ACK: established
  const step: DpCt = { kind: 'ct', zone: 7, commit: false, recircId: 3, nat: snat };
  // Frame 2's IPv4 total length, set after its parse (its key stays the others'), runs past the frame.
  const long = (bt: PacketBatch): void => { bt.view.setUint16(bt.off[2] + 16, 60); };
  const { st, n, runs } = stageRun(ct, [1, 2, 3, 4, 5].map((id) => tcp(A, S, 40000, 80, 0x10, id)), step, [], long);
  assert.equal(n, 5);
  assert.deepEqual(runs, [1, 0, 0, 1, 0], 'runs: frames 0-1 and 3-4');
  const est = CS_TRACKED | CS_ESTABLISHED | CS_SRC_NAT;
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => st.keys[i * KEY_WORDS + W_CT_STATE]), [est, est, CS_TRACKED | CS_INVALID, est, est]);
  for (const i of [0, 1, 3, 4]) assert.equal(st.keys[i * KEY_WORDS + W_NW_SRC], G, `frame ${i} SNATed`);
  for (let i = 0; i < n; i++) assertHashes(st, i);
});
