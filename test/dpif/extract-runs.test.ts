/**
 * Runs of one key formed at extract (packet/flowkey.ts extractCommon with the run columns,
 * dpif/batch-state.ts runLen): in the input pass a frame whose parse equals the frame's before
 * it, TCP header length included, is a member of that frame's run, and none of its key words or
 * hashes are written. Every stage that must see a member on its own writes its columns first
 * (stages.ts expandRun); a straight program takes the run by its head and its ct step
 * recirculates it whole, and the next pass's conntrack stage answers its members as the head
 * (Conntrack.againRun) or, where it does not, writes their keys from the head's (memberWords).
 * Each case compares what the ports sent, the rule counters and the lookups with a world of the
 * same history sent the batch one frame per batch (no run forms in a batch of one):
 *  - the head's refresh changes the rules (a revalidation between head and members);
 *  - the head misses the caches with an upcall budget of one: members upcalled or queued with
 *    their own words;
 *  - frames of one key with two TCP header lengths: two runs, not one;
 *  - a run through ct(nat) to a recirculation pass, againRun answering one frame a call there;
 *  - a run to a tunnel port: one outer UDP source port (the head's flow hash) for all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchState } from '../../src/dpif/batch-state';
import { Conntrack } from '../../src/dpif/conntrack';
import { Datapath } from '../../src/dpif/datapath';
import { DpAction } from '../../src/dpif/dp-actions';
import { extract, selectAll } from '../../src/dpif/stages';
import { PortTable } from '../../src/dpif/ports';
import { TunnelDesc } from '../../src/dpif/tunnel-header';
import { PacketBatch } from '../../src/netdev/batch';
import { OFFS_WORDS } from '../../src/packet/flowkey';
import { MemNetdev, OutUpcaller, tcpUdpFrame as frame, toHex } from './helpers';

const A = 0x0a000005, B = 0xcb007107, NAT = 0x0a090001;

const VXLAN: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c, srcMac: 0x525400000011,
  nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };

interface World { dp: Datapath; nd: Map<string, MemNetdev>; up: OutUpcaller; runs: number[] }

/** A datapath over `up` with ports 1-3 and VXLAN port 4; `runs` collects each pass's state.nRuns at its EMC lookup. */
function world(up: OutUpcaller, maxUpcallsPerBatch = 64, ctCapacity = 64): World {
  const dp = new Datapath({ upcaller: up, emcInsertInvProb: 1, nowMs: () => 1000, maxUpcallsPerBatch,
    conntrack: { capacity: ctCapacity } });
  const nd = new Map<string, MemNetdev>();
  for (let p = 1; p <= 4; p++) {
    const m = new MemNetdev(`p${p}`);
    dp.addPort(p, m, p === 4 ? VXLAN : null);
    nd.set(`p${p}`, m);
  }
  const st = (dp as unknown as { st: BatchState }).st, emc = dp.emc, start = emc.lookupsStart.bind(emc);
  const runs: number[] = [];
  emc.lookupsStart = (n: number): void => { runs.push(st.nRuns); start(n); };
  return { dp, nd, up, runs };
}

/** Sends `frames` in on port 1 as one batch, then what waits in the miss queue; returns what each port sent (hex). */
function send(w: World, frames: readonly Uint8Array[]): Record<string, string[]> {
  const b = new PacketBatch(32);
  for (const f of frames) { const i = b.append(f.slice()); b.inPort[i] = 1; }
  w.dp.processBatch(b, b.count);
  w.dp.runQueuedMisses();
  const out: Record<string, string[]> = {};
  for (const [name, m] of w.nd) { out[name] = m.sent.map(toHex); m.sent.length = 0; }
  return out;
}

interface Outcome { sent: Record<string, string[]>; rules: number[]; lookups: number; queued: number; ctPackets: number }

/**
 * Two worlds made by `make`: `warm` as one batch, then `before` on each, then `batch`, as one
 * batch to the first and one frame per batch to the second. Returns both outcomes and the
 * first world's nRuns of its batch's input pass.
 */
function runsAndSingles(make: () => World, warm: Uint8Array[], before: (w: World) => void,
                        batch: Uint8Array[]): { together: Outcome; alone: Outcome; inputRuns: number; w1: World } {
  const w1 = make(), w2 = make();
  for (const w of [w1, w2]) { send(w, warm); before(w); }
  const outcome = (w: World, run: () => Record<string, string[]>): Outcome => {
    const dp = w.dp, l0 = dp.nEmcHits + dp.nMegaflowHits + dp.nUpcalls, q0 = dp.nQueuedMisses;
    const r0 = [w.up.r0.nPackets, w.up.r1.nPackets], ct0 = dp.conntrackIfAny()?.nPackets ?? 0;
    const sent = run();
    return { sent, rules: [w.up.r0.nPackets - r0[0], w.up.r1.nPackets - r0[1]],
      lookups: dp.nEmcHits + dp.nMegaflowHits + dp.nUpcalls - l0, queued: dp.nQueuedMisses - q0,
      ctPackets: (dp.conntrackIfAny()?.nPackets ?? 0) - ct0 };
  };
  w1.runs.length = 0;
  // Extract looks for runs in this batch (after input passes without any it looks in one of 16: the last case here).
  (w1.dp as unknown as { st: BatchState }).st.extractRuns = true;
  const together = outcome(w1, () => send(w1, batch));
  const inputRuns = w1.runs[0];
  const alone = outcome(w2, () => {
    const all: Record<string, string[]> = {};
    for (const f of batch) for (const [name, s] of Object.entries(send(w2, [f]))) all[name] = [...(all[name] ?? []), ...s];
    return all;
  });
  return { together, alone, inputRuns, w1 };
}

const udp = (src: number, id: number): Uint8Array => frame(17, src, B, 40000, 53, 0, id);

test('a run formed at extract whose head\'s refresh changes the rules: its members are resolved again and take the new flow', () => {
  const batch = [1, 2, 3, 4, 5].map((id) => udp(A, id));
  const { together, alone, inputRuns } = runsAndSingles(() => world(new OutUpcaller()), batch,
    (w) => { w.up.armed = true; }, batch);
  assert.equal(inputRuns, 1, 'one run at extract');
  assert.equal(together.sent.p2.length, 1, 'the head ran the flow it was resolved to');
  assert.equal(together.sent.p3.length, 4, 'the members the one after the revalidation');
  // Lookups aside: the members were looked up twice (their head's EMC hit, then resolved again).
  assert.deepEqual({ ...together, lookups: 0 }, { ...alone, lookups: 0 });
});

test('a run formed at extract whose head misses with an upcall budget of one: members upcalled or queued with their words', () => {
  // The warm batch caches both sources' flows; the rule change after it (output now to port 3)
  // removes them, so the batch's heads miss: A's is upcalled (its members then hit the new
  // megaflow), A + 1's is over the budget and waits in the miss queue with its members.
  const warm = [udp(A, 1), udp(A + 1, 1)];
  const move = (w: World): void => { w.up.port = 3; w.dp.rulesChanged(); };
  const batch = [udp(A, 3), udp(A, 4), udp(A, 5), udp(A + 1, 3), udp(A + 1, 4), udp(A + 1, 5)];
  const { together, alone, inputRuns } = runsAndSingles(() => world(new OutUpcaller(), 1), warm, move, batch);
  assert.equal(inputRuns, 2, 'two runs at extract');
  assert.equal(together.queued, 3, 'the second run waited in the miss queue');
  assert.deepEqual(together.sent.p3, batch.map(toHex));
  assert.deepEqual({ ...together, queued: 0, lookups: 0 }, { ...alone, queued: 0, lookups: 0 });
});

test('frames of one key with two TCP header lengths form two runs: a member\'s offsets are its head\'s', () => {
  const tcp = (id: number, opt: number): Uint8Array => frame(6, A, B, 40000, 80, 0x10, id, opt);
  const frames = [tcp(1, 0), tcp(2, 0), tcp(3, 4), tcp(4, 4), tcp(5, 0)];
  const ports = new PortTable(8);
  ports.add(1, new MemNetdev('p1'), null);
  const st = new BatchState(), b = new PacketBatch(32);
  for (const f of frames) { const i = b.append(f.slice()); b.inPort[i] = 1; }
  selectAll(st, b, b.count, ports);
  assert.equal(extract(st, b, b.count, null, new Float64Array(64), ports), 5);
  assert.deepEqual(Array.from(st.runLen.subarray(0, 5)).filter((_, i) => i === 0 || i === 2 || i === 4), [1, 1, 0]);
  assert.deepEqual(Array.from(st.sameKey.subarray(0, 5)), [-1, 0, 1, 2, 3], 'every key equals the one before it');
  for (let i = 0; i < 5; i++) {
    assert.equal(st.offs[i * OFFS_WORDS + 2], 14 + 20 + (i === 2 || i === 3 ? 24 : 20), `frame ${i}: L4 payload offset`);
  }
  // Through ct to a recirculation pass and out, as one frame per batch.
  const { together, alone, inputRuns } = runsAndSingles(() => world(new OutUpcaller(true)), [tcp(9, 0)], () => {}, frames);
  assert.equal(inputRuns, 2);
  assert.equal(together.sent.p2.length, 5);
  assert.deepEqual({ ...together, lookups: 0 }, { ...alone, lookups: 0 });
});

test('a run formed at extract through ct(nat) to a recirculation pass: members conntrack does not answer as the head take their own words', () => {
  const batch = [2, 3, 4, 5, 6, 7].map((id) => udp(A, id));
  // againRun refuses every other call and answers at most one frame a call otherwise: every
  // other member of the run goes through conntrack on its own key (written from the head's
  // words before the stage).
  const limit = (w: World): void => {
    const ct = w.dp.conntrack as Conntrack, againRun = ct.againRun.bind(ct);
    let calls = 0;
    ct.againRun = (bt, live, from, to, same, l3, nowMs): number =>
      (calls++ & 1) === 0 ? 0 : againRun(bt, live, from, Math.min(to, from + 1), same, l3, nowMs);
  };
  const { together, alone, inputRuns, w1 } = runsAndSingles(() => world(new OutUpcaller(true, NAT)), [udp(A, 1)], limit, batch);
  assert.equal(inputRuns, 1);
  assert.ok(w1.runs.length >= 2 && w1.runs[1] > 0, 'runs in the recirculation pass');
  assert.equal(together.sent.p2.length, 6);
  assert.ok(together.sent.p2.every((hex) => hex.includes('0a090001')), 'SNATed');
  assert.deepEqual({ ...together, lookups: 0 }, { ...alone, lookups: 0 });
  // And whole, againRun unlimited.
  const whole = runsAndSingles(() => world(new OutUpcaller(true, NAT)), [udp(A, 1)], () => {}, batch);
  assert.deepEqual({ ...whole.together, lookups: 0 }, { ...whole.alone, lookups: 0 });
});

test('a run formed at extract whose head conntrack drops (the table full): its members are looked at on their own', () => {
  // A table of one connection, taken by A + 1's to port 53: A's frames are new, their commit is
  // refused. (The warm batch caches A's first flow, and leaves that connection's key in slot 2,
  // where a member's key would be read if it were not written from its head's.)
  const batch = [2, 3, 4, 5].map((id) => udp(A, id));
  const f1 = udp(A + 1, 1), f2 = frame(17, A + 1, B, 40000, 54, 0, 1);
  const { together, alone, inputRuns } = runsAndSingles(() => world(new OutUpcaller(true), 64, 1), [f1, f2, f1, f2, udp(A, 1)],
    () => {}, batch);
  assert.equal(inputRuns, 1);
  assert.equal((together.sent.p2 ?? []).length, 0, 'all dropped');
  assert.deepEqual(together, alone);
});

test('a run formed at extract to a tunnel port: every frame leaves with the head\'s flow hash (the outer UDP source port)', () => {
  const batch = [2, 3, 4, 5, 6].map((id) => udp(A, id));
  const { together, alone, inputRuns } = runsAndSingles(() => world(new OutUpcaller(false, 0, true)), [udp(A, 1)],
    () => {}, batch);
  assert.equal(inputRuns, 1);
  assert.equal(together.sent.p4.length, 5);
  const srcPorts = new Set(together.sent.p4.map((hex) => hex.slice(34 * 2, 36 * 2)));
  assert.equal(srcPorts.size, 1, 'one flow, one outer source port');
  assert.deepEqual(together, alone);
});

/** `f` with an 802.1Q tag (TPID 0x8100, TCI `tci`) after its MAC addresses. */
function tagged(f: Uint8Array, tci: number): Uint8Array {
  const t = new Uint8Array(f.length + 4);
  t.set(f.subarray(0, 12));
  t.set([0x81, 0x00, tci >> 8, tci & 0xff], 12);
  t.set(f.subarray(12), 16);
  return t;
}

test('a tagged run formed at extract through pop_vlan, set TTL and set_eth to ct(nat): every member\'s bytes rewritten as its head\'s', () => {
  const pre: DpAction[] = [{ kind: 'pop_vlan' }, { kind: 'set_ipv4', src: -1, dst: -1, tos: 0, tosMask: 0, ttl: 9 },
    { kind: 'set_eth', src: 0x020000000009, dst: 0x02000000000a }];
  const batch = [2, 3, 4, 5, 6].map((id) => tagged(udp(A, id), 7));
  const { together, alone, inputRuns } = runsAndSingles(() => world(new OutUpcaller(true, NAT, false, pre)),
    [tagged(udp(A, 1), 7)], () => {}, batch);
  assert.equal(inputRuns, 1);
  assert.equal(together.sent.p2.length, 5);
  assert.ok(together.sent.p2.every((hex) => hex.startsWith('02000000000a0200000000090800')), 'untagged, new MACs');
  assert.ok(together.sent.p2.every((hex) => hex.slice(22 * 2, 23 * 2) === '09'), 'TTL 9');
  assert.deepEqual({ ...together, lookups: 0 }, { ...alone, lookups: 0 });
});

test('a tagged run formed at extract whose push_vlan the key cannot follow (QinQ) before ct: each member parsed again', () => {
  const pre: DpAction[] = [{ kind: 'push_vlan', tci: 5 }];
  const batch = [2, 3, 4, 5].map((id) => tagged(udp(A, id), 7));
  const { together, alone, inputRuns } = runsAndSingles(() => world(new OutUpcaller(true, 0, false, pre)),
    [tagged(udp(A, 1), 7)], () => {}, batch);
  assert.equal(inputRuns, 1);
  assert.equal(together.sent.p2.length, 4);
  assert.deepEqual({ ...together, lookups: 0 }, { ...alone, lookups: 0 });
});

test('while input passes form no runs, extract looks for them in one input pass of 16 (a batch of one frame tells nothing)', () => {
  const w = world(new OutUpcaller());
  const run = [1, 2, 3, 4].map((id) => udp(A, id)), distinct = [udp(A, 1), udp(A + 1, 1), udp(A + 2, 1)];
  send(w, run);
  send(w, distinct); // looked for runs, found none
  w.runs.length = 0;
  for (let k = 0; k < 16; k++) send(w, run);
  assert.deepEqual(w.runs, [...new Array<number>(15).fill(0), 1], 'runs formed again in the 16th');
  w.runs.length = 0;
  send(w, run);
  assert.deepEqual(w.runs, [1], 'and in the pass after it');
  w.runs.length = 0;
  send(w, [udp(A, 9)]);
  send(w, run);
  assert.deepEqual(w.runs, [0, 1], 'a batch of one frame does not turn the looking off');
  assert.equal(w.nd.get('p2')?.sent.length ?? 0, 0); // send() collected them
});
