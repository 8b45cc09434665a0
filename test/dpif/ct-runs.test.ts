/**
 * Runs of one connection in a conntrack pass (dpif/batch-state.ts runLen): the conntrack stage
 * answers the frames after a run's head as the head (Conntrack.againRun) without writing their
 * key words, hashes or payloads, and later stages walk the head alone. Wherever a member must be
 * seen on its own its columns are written first (stages.ts expandRun). Each case here splits a
 * run at one such place and compares what the ports sent, the rule counters, conntrack's
 * packets and the cache lookups with a world of the same history that got one frame per batch
 * (no runs form in a batch of one):
 *  - the head's refresh changes the rules (a revalidation between head and members): the
 *    members are resolved again and take the new flow;
 *  - the upcall budget runs out at a run: its members wait in the miss queue with their words;
 *  - the EMC's lookup policy bypasses it: every frame goes to the megaflow cache with the words
 *    its key has (a member's those of its first pass), and execute must still run the run by
 *    its head's flow;
 *  - a tunnel output after SNAT: the members need the head's flow hash (the outer UDP source
 *    port), which a plain output never reads.
 * (againRun refusing a frame in the middle of a run: ct-stage-run.test.ts; extract drops a frame
 * whose headers conntrack would refuse, so a datapath cannot be sent one.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge } from '../../src/ofproto/bridge';
import { Datapath } from '../../src/dpif/datapath';
import { Conntrack } from '../../src/dpif/conntrack';
import { TunnelDesc } from '../../src/dpif/tunnel-header';
import { PacketBatch } from '../../src/netdev/batch';
import { bridgeWorld, MemNetdev, OutUpcaller, tcpUdpFrame as frame, toHex } from './helpers';

const A = 0x0a000005, B = 0xcb007107, NAT = 0x0a090001;

/** What a world needs for these cases: its datapath, each port's netdev and datapath number. */
interface World { dp: Datapath; nd: Map<string, MemNetdev>; dpNo: Map<string, number>; rules: () => number[] }

/** What a batch did. */
interface Outcome { sent: Record<string, string[]>; rules: number[]; ctPackets: number; lookups: number }

/**
 * Sends `frames` in on `port` as one batch, then runs what waits in the miss queue; returns the
 * frames (hex) each port sent.
 */
function send(w: World, port: string, frames: readonly Uint8Array[]): Record<string, string[]> {
  const b = new PacketBatch(32);
  for (const f of frames) { const i = b.append(f.slice()); b.inPort[i] = w.dpNo.get(port) as number; }
  w.dp.processBatch(b, b.count);
  w.dp.runQueuedMisses();
  const out: Record<string, string[]> = {};
  for (const [name, m] of w.nd) { out[name] = m.sent.map(toHex); m.sent.length = 0; }
  return out;
}

function lookups(w: World): number { return w.dp.nEmcHits + w.dp.nMegaflowHits + w.dp.nUpcalls; }

/**
 * Two worlds made by `make`, the same `history` (frames and their port, one per batch), then
 * `warm` on `port` as one batch in both (the caches learn the flows), then `before` on each,
 * then `batch`: one world gets it as one batch, the other one frame per batch. Returns both
 * outcomes of `batch` and how many frames againRun answered in the first (members of runs).
 */
function runsAndSingles(make: () => World, history: [Uint8Array, string][], port: string, warm: Uint8Array[],
                        before: (w: World) => void, batch: Uint8Array[]): { together: Outcome; alone: Outcome; members: number } {
  const w1 = make(), w2 = make();
  for (const w of [w1, w2]) {
    for (const [f, p] of history) send(w, p, [f]);
    send(w, port, warm);
    before(w);
  }
  const ct = w1.dp.conntrack, againRun = ct.againRun.bind(ct);
  let members = 0;
  ct.againRun = (...args: Parameters<Conntrack['againRun']>): number => { const n = againRun(...args); members += n; return n; };
  const outcome = (w: World, run: () => Record<string, string[]>): Outcome => {
    const ct0 = w.dp.conntrack.nPackets, l0 = lookups(w), r0 = w.rules();
    const sent = run();
    return { sent, rules: w.rules().map((n, k) => n - r0[k]), ctPackets: w.dp.conntrack.nPackets - ct0, lookups: lookups(w) - l0 };
  };
  const together = outcome(w1, () => send(w1, port, batch));
  const alone = outcome(w2, () => {
    const all: Record<string, string[]> = {};
    for (const f of batch) for (const [name, s] of Object.entries(send(w2, port, [f]))) all[name] = [...(all[name] ?? []), ...s];
    return all;
  });
  return { together, alone, members };
}

/** A bridge with an SNAT router in tables 0 and 1 (as dvr/ builds one), invalid packets to p3. */
function snatWorld(): World {
  const br = new Bridge('br0', 0, { defaultFlow: false });
  for (let p = 1; p <= 3; p++) br.addPort({ name: `p${p}`, ofport: p, kind: 'afpacket' });
  br.addFlows(`
table=0,priority=10,ip,actions=ct(zone=7,nat,table=1)
table=1,priority=10,ct_state=+trk+new,in_port=1,ip,actions=ct(commit,zone=7,nat(src=10.9.0.1)),output:2
table=1,priority=10,ct_state=+trk+est,in_port=1,ip,actions=output:2
table=1,priority=10,ct_state=+trk+est,in_port=2,ip,actions=output:1
table=1,priority=5,ct_state=+trk+inv,ip,actions=output:3
table=1,priority=0,actions=drop`, 0);
  const w = bridgeWorld(br);
  return { dp: w.dp, nd: w.nd, dpNo: w.dpNo, rules: () => br.allRules().map((r) => r.nPackets) };
}

test('the EMC bypassed in the recirculation pass: a run\'s members run the flow its head resolved to', () => {
  const history: [Uint8Array, string][] = [[frame(6, A, B, 40000, 80, 0x02, 1), 'p1'], [frame(6, B, NAT, 80, 40000, 0x12, 1), 'p2']];
  const batch = [2, 3, 4, 5, 6].map((id) => frame(6, A, B, 40000, 80, 0x10, id));
  // The input pass looks the EMC up (its hits chain the frames of one key into runs: sameKey),
  // the recirculation pass bypasses it; no probe of the policy for the rest of the test.
  const bypass = (w: World): void => {
    const emc = w.dp.emc, start = emc.lookupsStart.bind(emc);
    emc.lookupPolicy = { runFrames: 1e9, probeFrames: 0, marginPct: 0, maxHitPct: 0, fillFrames: 0 };
    let pass = 0;
    emc.lookupsStart = (n: number): void => { start(n); emc.bypassing = (pass++ & 1) === 1; };
  };
  const { together, alone, members } = runsAndSingles(snatWorld, history, 'p1', batch, bypass, batch);
  assert.ok(members >= 4, `runs formed (${members} members)`);
  assert.equal(together.sent.p2.length, 5);
  assert.deepEqual(together, alone);
});

/** The flows of these tests: with `snat`, the ct step source-NATs to it; with `tunnel`, the output is to VXLAN port 4. */
function ctOut(snat = 0, tunnel = false): OutUpcaller { return new OutUpcaller(true, snat, tunnel, [], false); }

const VXLAN: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c, srcMac: 0x525400000011,
  nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };

/** ct(commit,zone=7),recirc(1) for frames from port 1 (one megaflow), then output by IPv4 source (OutUpcaller). */
function ctOutWorld(maxUpcallsPerBatch = 64, up = ctOut()): World & { up: OutUpcaller } {
  const dp = new Datapath({ upcaller: up, emcInsertInvProb: 1, nowMs: () => 1000, maxUpcallsPerBatch, conntrack: { capacity: 64 } });
  const nd = new Map<string, MemNetdev>(), dpNo = new Map<string, number>();
  for (let p = 1; p <= 4; p++) {
    const m = new MemNetdev(`p${p}`);
    dp.addPort(p, m, p === 4 ? VXLAN : null);
    nd.set(`p${p}`, m);
    dpNo.set(`p${p}`, p);
  }
  return { dp, nd, dpNo, up, rules: () => [up.r0.nPackets, up.r1.nPackets] };
}

test('the head\'s refresh changes the rules: the members of its run are resolved again and take the new flow', () => {
  const udp = (id: number): Uint8Array => frame(17, A, B, 40000, 53, 0, id);
  const batch = [1, 2, 3, 4, 5].map(udp);
  const arm = (w: World): void => { (w as ReturnType<typeof ctOutWorld>).up.armed = true; };
  const { together, alone, members } = runsAndSingles(() => ctOutWorld(), [], 'p1', batch, arm, batch);
  assert.ok(members >= 4, `runs formed (${members} members)`);
  assert.equal(together.sent.p2.length, 1, 'the head ran the flow it was resolved to');
  assert.equal(together.sent.p3.length, 4, 'the members the one after the revalidation');
  // Lookups aside: the members were looked up twice (an EMC hit, then resolved again).
  assert.deepEqual({ ...together, lookups: 0 }, { ...alone, lookups: 0 });
});

test('the upcall budget runs out at a run: its members wait in the miss queue with their ct words', () => {
  // One upcall a pass. The warm batch puts every flow in the caches; the revalidation after it
  // (the recirculated flows now output to port 3) removes the recirculated ones, so the batch's
  // recirculation pass misses for A (upcalled) and A + 1 (over the budget: queued, members too).
  const udp = (src: number, id: number): Uint8Array => frame(17, src, B, 40000, 53, 0, id);
  const warm = [udp(A, 1), udp(A, 2), udp(A + 1, 1), udp(A + 1, 2)];
  const move = (w: World): void => { (w as ReturnType<typeof ctOutWorld>).up.port = 3; w.dp.rulesChanged(); };
  const batch = [udp(A, 3), udp(A, 4), udp(A, 5), udp(A + 1, 3), udp(A + 1, 4), udp(A + 1, 5)];
  const { together, alone, members } = runsAndSingles(() => ctOutWorld(1), [], 'p1', warm, move, batch);
  assert.ok(members >= 4, `runs formed (${members} members)`);
  assert.equal(together.sent.p3.length, 6);
  assert.ok(together.lookups > 0);
  assert.deepEqual(together, alone);
});

test('a run to a tunnel port after SNAT: the members leave with the head\'s flow hash (the outer UDP source port)', () => {
  const udp = (id: number): Uint8Array => frame(17, A, B, 40000, 53, 0, id);
  const warm = [udp(1), udp(2), udp(3)];
  const batch = [4, 5, 6, 7, 8].map(udp);
  const { together, alone, members } = runsAndSingles(() => ctOutWorld(64, ctOut(NAT, true)), [], 'p1', warm,
    () => {}, batch);
  assert.ok(members >= 4, `runs formed (${members} members)`);
  assert.equal(together.sent.p4.length, 5);
  const srcPorts = new Set(together.sent.p4.map((hex) => hex.slice(34 * 2, 36 * 2)));
  assert.equal(srcPorts.size, 1, 'one flow, one outer source port');
  assert.ok(together.sent.p4.every((hex) => hex.includes('0a090001')), 'SNATed inner frames');
  assert.deepEqual(together, alone);
});
