/**
 * Frames recirculated in place carry state.sameKey ("my key equals the frame's before me") into
 * the next pass, where conntrack answers such a frame as the one before it (Conntrack.againRun,
 * at that frame's L3 offset) and the hash and EMC stages take that frame's hashes and flow. The
 * datapath decides it as it recirculates each frame (dpif/stages.ts keepInPlace, keepRunInPlace),
 * and must not carry it where the next pass would see different keys or headers:
 *  - two QinQ frames whose keys are equal (the parse stops at the inner tag) but whose inner
 *    tags differ: popping the outer tag leaves both keys stale, parsed again to different keys;
 *  - frames of two connections in a run of one megaflow (the first pass's ct(nat) flow matches
 *    no address or port) that SNAT rewrites differently: each NATed as its own connection, and
 *    an LLC/SNAP frame after frames of its connection (an equal key, its IPv4 header at another
 *    offset) NATed at its own header;
 *  - the same connections recirculated one by one (a program that outputs before its ct step is
 *    not straight).
 * Each case sends a batch of the frames together, after a first batch put its flows in the
 * caches (so the frames of one key form runs), and compares what every port sent with a world
 * of the same history that got one frame per batch (no runs, no sameKey).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bridge } from '../../src/ofproto/bridge';
import { ipv4SetChecksum, l4SetChecksum4 } from '../../src/packet/checksum';
import { Datapath } from '../../src/dpif/datapath';
import { PacketBatch } from '../../src/netdev/batch';
import { VLAN_CFI, W_IN_PORT, W_RECIRC_ID, W_VLAN_DLTYPE } from '../../src/packet/flowkey-layout';
import { bridgeWorld, BridgeWorld, LinearXlate, matchOf, MemNetdev, sendBatch, TestRule, toHex } from './helpers';

function world(flows: string): BridgeWorld {
  const br = new Bridge('br0', 0, { defaultFlow: false });
  for (let p = 1; p <= 4; p++) br.addPort({ name: `p${p}`, ofport: p, kind: 'afpacket' });
  br.addFlows(flows, 0);
  return bridgeWorld(br);
}

/**
 * Ethernet (`l2`: the bytes after the MACs, up to the IPv4 header) + IPv4 + TCP with IP id `id`,
 * checksums filled.
 */
function tcpAfter(l2: number[], src: number, dst: number, sp: number, dp: number, flags: number, id: number): Uint8Array {
  const ip = 12 + l2.length;
  const f = new Uint8Array(ip + 40);
  const v = new DataView(f.buffer);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, ...l2]);
  f.set([0x45, 0, 0, 40], ip);
  v.setUint16(ip + 4, id); f[ip + 8] = 64; f[ip + 9] = 6;
  v.setUint32(ip + 12, src); v.setUint32(ip + 16, dst);
  v.setUint16(ip + 20, sp); v.setUint16(ip + 22, dp);
  f[ip + 32] = 0x50; f[ip + 33] = flags; f[ip + 34] = 0xfa; f[ip + 35] = 0xf0;
  ipv4SetChecksum(f, ip);
  l4SetChecksum4(f, ip, ip + 20, 20, 6);
  return f;
}

const ETH2 = [0x08, 0x00];
/** 802.3 length + LLC/SNAP with OUI 0 and ethertype IPv4 (length: LLC 8 + IPv4 40). */
const SNAP = [0x00, 48, 0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
const qinq = (outer: number, inner: number): number[] => [0x88, 0xa8, 0, outer, 0x81, 0x00, 0, inner, 0x08, 0x00];

const A = 0x0a000005, B = 0xcb007107, NAT = 0xac18040a;

/**
 * Runs `history` (frames and their port, one per batch) then `batch` in two worlds over
 * `flows`: one gets `batch` as one batch, the other one frame per batch. Returns both outputs
 * of `batch`, port by port.
 */
function runsAndSingles(flows: string, history: [Uint8Array, string][], port: string, batch: Uint8Array[]): {
  together: Record<string, string[]>; alone: Record<string, string[]>;
} {
  const w1 = world(flows), w2 = world(flows);
  for (const [f, p] of history) { sendBatch(w1, p, [f]); sendBatch(w2, p, [f]); }
  const copies = batch.map((f) => f.slice());
  sendBatch(w1, port, copies); // the caches learn every flow; the next batch hits in runs
  for (const f of batch) sendBatch(w2, port, [f.slice()]);
  const together = sendBatch(w1, port, batch.map((f) => f.slice()));
  const alone: Record<string, string[]> = {};
  for (const f of batch) {
    for (const [name, sent] of Object.entries(sendBatch(w2, port, [f.slice()]))) alone[name] = [...(alone[name] ?? []), ...sent];
  }
  return { together, alone };
}

test('QinQ frames with equal keys and other inner tags, outer tag popped before ct: each goes where its inner tag sends it', () => {
  // ofproto refuses ct on a frame whose match is not IP: datapath rules (LinearXlate) here.
  // First pass: pop_vlan, ct(zone=1), recirc(1); second: by the inner tag, 20 to p2, 30 to p3.
  const inner = (tci: number): number => (((tci | VLAN_CFI) << 16) | 0x0800) >>> 0;
  const dpWorld = (): { send: (fs: Uint8Array[]) => string[][] } => {
    const xl = new LinearXlate();
    const m0 = matchOf([[W_RECIRC_ID, 0, 0xffffffff], [W_IN_PORT, 1, 0xffffffff]]);
    xl.rules.push(new TestRule(m0.value, m0.mask, 10, [{ kind: 'pop_vlan' }, { kind: 'ct', zone: 1, commit: false, recircId: 1 }]));
    for (const [tci, port] of [[20, 2], [30, 3]]) {
      const m = matchOf([[W_RECIRC_ID, 1, 0xffffffff], [W_VLAN_DLTYPE, inner(tci), 0xffffffff]]);
      xl.rules.push(new TestRule(m.value, m.mask, 10, [{ kind: 'output', port }]));
    }
    const dp = new Datapath({ upcaller: xl, emcInsertInvProb: 1, nowMs: () => 1000 });
    const nd = [1, 2, 3].map((p) => new MemNetdev(`p${p}`));
    nd.forEach((n, k) => dp.addPort(k + 1, n));
    return { send(fs) {
      const b = new PacketBatch(32);
      for (const f of fs) { const i = b.append(f.slice()); b.inPort[i] = 1; }
      dp.processBatch(b, b.count);
      return nd.map((n) => n.sent.splice(0).map(toHex));
    } };
  };
  const f = (tci: number, id: number): Uint8Array => tcpAfter(qinq(10, tci), A, B, 40000, 80, 0x02, id);
  const batch = [f(20, 1), f(30, 2), f(30, 3), f(20, 4)];
  const w1 = dpWorld(), w2 = dpWorld();
  w1.send(batch); // the caches learn the flows; the next batch hits in runs of one key
  for (const x of batch) w2.send([x]);
  const together = w1.send(batch);
  const alone = [[], [], []] as string[][];
  for (const x of batch) w2.send([x]).forEach((sent, p) => alone[p].push(...sent));
  assert.equal(together[1].length, 2);
  assert.equal(together[2].length, 2);
  assert.deepEqual(together, alone);
});

/** An SNAT router (p1 inside, p2 outside; established from p1 leaves on p3); `first`: table 0's actions. */
const snatFlows = (first: string): string => `
table=0,priority=10,ip,actions=${first}
table=1,priority=10,ct_state=+trk+new,in_port=1,ip,actions=ct(commit,zone=7,nat(src=172.24.4.10)),output:2
table=1,priority=10,ct_state=+trk+est,in_port=1,ip,actions=output:3
table=1,priority=10,ct_state=+trk+est,in_port=2,ip,actions=output:1
table=1,priority=10,ct_state=+trk+inv,ip,actions=drop
table=1,priority=0,actions=drop`;

/**
 * The history that establishes two connections from port 40000 of A and of A + 1 through
 * `flows`: SNAT keeps the first's port and gives the second another (the address is one for
 * both), so their rewrites differ.
 */
function twoConnections(flows: string): [Uint8Array, string][] {
  const history: [Uint8Array, string][] = [];
  let natPort = 0;
  for (const src of [A, A + 1]) {
    history.push([tcpAfter(ETH2, src, B, 40000, 80, 0x02, 1), 'p1']);
    const w = world(flows);
    for (const [f, p] of history) {
      const out = sendBatch(w, p, [f]);
      if (p === 'p1' && out.p2.length === 1) natPort = Number.parseInt(out.p2[0].slice(68, 72), 16);
    }
    history.push([tcpAfter(ETH2, B, NAT, 80, natPort, 0x12, 1), 'p2']);
  }
  assert.notEqual(natPort, 40000);
  return history;
}

const ack = (l2: number[], src: number, id: number): Uint8Array => tcpAfter(l2, src, B, 40000, 80, 0x10, id);

test('two SNAT connections and an LLC/SNAP frame in a run of one megaflow: each frame NATed as its own connection, at its own IPv4 header', () => {
  const flows = snatFlows('ct(table=1,zone=7,nat)');
  const run = [ack(ETH2, A, 2), ack(ETH2, A, 3), ack(ETH2, A + 1, 4), ack(ETH2, A + 1, 5), ack(ETH2, A, 6),
    ack(ETH2, A, 7), ack(SNAP, A, 8)];
  const { together, alone } = runsAndSingles(flows, twoConnections(flows), 'p1', run);
  assert.equal(together.p3.length, 6);
  assert.deepEqual(together, alone);
});

test('two SNAT connections recirculated one by one (an output before the ct step: not a straight program): each NATed as its own', () => {
  const flows = snatFlows('output:4,ct(table=1,zone=7,nat)');
  const run = [ack(ETH2, A, 2), ack(ETH2, A, 3), ack(ETH2, A + 1, 4), ack(ETH2, A + 1, 5), ack(ETH2, A, 6)];
  const { together, alone } = runsAndSingles(flows, twoConnections(flows), 'p1', run);
  assert.equal(together.p3.length, 5);
  assert.equal(together.p4.length, 5);
  assert.deepEqual(together, alone);
});
