/**
 * A run of frames recirculated in place keeps one pending ct step: the first frame of each run
 * of one key holds it in state.ctPending, the frames after it (their sameKey kept) take it from
 * the frame before them (dpif/stages.ts keepInPlace, keepRunInPlace). The two readers that
 * must find it for every frame:
 *  - the datapath's spillInPlace, when a later frame of the same pass forks a copy (an action
 *    rewrites the frame after its ct step): every frame recirculated in place so far moves to
 *    the recirculation queue with its step;
 *  - the conntrack stage when it drops the first frame of a run (a zone's connection limit):
 *    the frames after it still run their step (and are dropped by the same limit), rather than
 *    going on as frames with none.
 * Each case sends a batch after a first batch put its flows in the caches (so the frames of
 * one key form runs), and compares what every port sent and what conntrack dropped with a
 * world of the same history that got one frame per batch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge } from '../../src/ofproto/bridge';
import { ipv4SetChecksum, l4SetChecksum4 } from '../../src/packet/checksum';
import { bridgeWorld, BridgeWorld, sendBatch } from './helpers';

function world(flows: string): BridgeWorld {
  const br = new Bridge('br0', 0, { defaultFlow: false });
  for (let p = 1; p <= 4; p++) br.addPort({ name: `p${p}`, ofport: p, kind: 'afpacket' });
  br.addFlows(flows, 0);
  return bridgeWorld(br);
}

/** Ethernet + IPv4 + TCP from src:sp to dst:dp with `flags` and IP id `id`, checksums filled. */
function tcp(src: number, dst: number, sp: number, dp: number, flags: number, id: number): Uint8Array {
  const f = new Uint8Array(54);
  const v = new DataView(f.buffer);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0, 0, 40]);
  v.setUint16(18, id); f[22] = 64; f[23] = 6;
  v.setUint32(26, src); v.setUint32(30, dst);
  v.setUint16(34, sp); v.setUint16(36, dp);
  f[46] = 0x50; f[47] = flags; f[48] = 0xfa; f[49] = 0xf0;
  ipv4SetChecksum(f, 14);
  l4SetChecksum4(f, 14, 34, 20, 6);
  return f;
}

const A = 0x0a000005, B = 0xcb007107;

/** What a batch did: frames each port sent, conntrack's drops and packets, cache lookups (hits and upcalls). */
interface Outcome { sent: Record<string, string[]>; ctDrops: number; ctPackets: number; lookups: number }

/**
 * Runs `history` (frames and their port, one per batch) then `batch` on `port` in two worlds
 * over `flows` (`setup` runs on each world first): one gets `batch` as one batch, the other one
 * frame per batch. Returns both outcomes of `batch`.
 */
function runsAndSingles(flows: string, setup: (w: BridgeWorld) => void, history: [Uint8Array, string][], port: string,
                        batch: Uint8Array[]): { together: Outcome; alone: Outcome } {
  const w1 = world(flows), w2 = world(flows);
  setup(w1); setup(w2);
  for (const [f, p] of history) { sendBatch(w1, p, [f.slice()]); sendBatch(w2, p, [f.slice()]); }
  sendBatch(w1, port, batch.map((f) => f.slice())); // the caches learn every flow; the next batch hits in runs
  for (const f of batch) sendBatch(w2, port, [f.slice()]);
  const counts = (w: BridgeWorld): number[] => [w.dp.nCtDrops, w.dp.conntrack.nPackets,
    w.dp.nEmcHits + w.dp.nMegaflowHits + w.dp.nUpcalls];
  const c1 = counts(w1), c2 = counts(w2);
  const together: Outcome = { sent: sendBatch(w1, port, batch.map((f) => f.slice())), ctDrops: 0, ctPackets: 0, lookups: 0 };
  const e1 = counts(w1);
  [together.ctDrops, together.ctPackets, together.lookups] = [e1[0] - c1[0], e1[1] - c1[1], e1[2] - c1[2]];
  const alone: Outcome = { sent: {}, ctDrops: 0, ctPackets: 0, lookups: 0 };
  for (const f of batch) {
    for (const [name, sent] of Object.entries(sendBatch(w2, port, [f.slice()]))) {
      alone.sent[name] = [...(alone.sent[name] ?? []), ...sent];
    }
  }
  const e2 = counts(w2);
  [alone.ctDrops, alone.ctPackets, alone.lookups] = [e2[0] - c2[0], e2[1] - c2[1], e2[2] - c2[2]];
  return { together, alone };
}

test('a run recirculated in place, then a frame whose program forks a copy: every frame of the run goes to the queue with its ct step', () => {
  // From p1 (A): ct(zone=7,table=1), straight, in place. From p1 (A + 1): ct(zone=8,table=1)
  // and a MAC rewrite after it, which forks a copy (and sends the original to p4) and so spills
  // the frames of A recirculated before it into the queue.
  const flows = `
table=0,priority=10,ip,in_port=1,nw_src=10.0.0.5,actions=ct(zone=7,table=1)
table=0,priority=10,ip,in_port=1,nw_src=10.0.0.6,actions=ct(zone=8,table=1),mod_dl_dst:02:00:00:00:00:09,output:4
table=0,priority=10,ip,in_port=2,nw_dst=10.0.0.5,actions=ct(zone=7,table=1)
table=0,priority=10,ip,in_port=2,nw_dst=10.0.0.6,actions=ct(zone=8,table=1)
table=1,priority=10,ct_state=+trk+est,ct_zone=7,in_port=1,ip,actions=output:2
table=1,priority=10,ct_state=+trk+est,ct_zone=8,in_port=1,ip,actions=output:3
table=1,priority=5,ct_state=+trk+new,ct_zone=7,ip,actions=ct(commit,zone=7)
table=1,priority=5,ct_state=+trk+new,ct_zone=8,ip,actions=ct(commit,zone=8)
table=1,priority=0,actions=drop`;
  const history: [Uint8Array, string][] = [
    [tcp(A, B, 40000, 80, 0x02, 1), 'p1'], [tcp(B, A, 80, 40000, 0x12, 1), 'p2'],
    [tcp(A + 1, B, 40000, 80, 0x02, 1), 'p1'], [tcp(B, A + 1, 80, 40000, 0x12, 1), 'p2'],
  ];
  const ack = (src: number, id: number): Uint8Array => tcp(src, B, 40000, 80, 0x10, id);
  const batch = [ack(A, 2), ack(A, 3), ack(A, 4), ack(A + 1, 5), ack(A, 6), ack(A, 7)];
  const { together, alone } = runsAndSingles(flows, () => {}, history, 'p1', batch);
  assert.equal(together.sent.p2.length, 5, 'every frame of A established in zone 7');
  assert.equal(together.sent.p3.length, 1);
  assert.equal(together.sent.p4.length, 1);
  assert.deepEqual(together, alone);
});

test('the first frame of a run dropped by conntrack (zone limit): the frames after it run the same ct step and are dropped too', () => {
  // A zone 7 limit of 1, held by A's connection: the commit of every frame of A + 1's new
  // connection finds the zone full.
  const flows = `
table=0,priority=10,ip,actions=ct(commit,zone=7,table=1)
table=1,priority=10,ct_state=+trk,ip,actions=output:2
table=1,priority=0,actions=drop`;
  const limit = (w: BridgeWorld): void => w.dp.conntrack.setZoneLimit(7, 1);
  const history: [Uint8Array, string][] = [[tcp(A, B, 40000, 80, 0x02, 1), 'p1']];
  const batch = [1, 2, 3, 4].map((id) => tcp(A + 1, B, 40000, 80, 0x02, id));
  const { together, alone } = runsAndSingles(flows, limit, history, 'p1', batch);
  assert.equal(together.ctDrops, 4);
  assert.equal(together.lookups, 4, 'each frame looked up once, in the first pass (none goes on without its ct step)');
  assert.equal(together.sent.p2.length, 0);
  assert.deepEqual(together, alone);
});
