/**
 * The hot path allocates nothing per packet (DESIGN.md "Hot path habits"), measured: the heap
 * must not grow across thousands of whole processBatch calls whose batches mix exact-match hits,
 * exact-match misses served by the megaflow cache, and TCP segments of an established
 * connection recirculated through ct(zone,nat) with SNAT out and de-NAT back (conntrack lookups,
 * NAT rewrites, queue copies, two passes). Upcalls are left out: a translation allocates by
 * design (ofproto builds rules and actions), once per new megaflow.
 *
 * How: a full GC, the young generation's used size, N rounds of batches, the used size again,
 * with no GC in between (the runs allocate well under the young generation, so any allocation
 * per packet shows as growth), for a short and a long run; the slope is the bytes per frame,
 * the median of five. The last test shows the measure sees one small object per frame.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Datapath } from '../../src/dpif/datapath';
import { PacketBatch } from '../../src/netdev/batch';
import { Netdev, NetdevStats } from '../../src/netdev/netdev';
import { Bridge } from '../../src/ofproto/bridge';
import { Ofproto } from '../../src/ofproto/ofproto';
import { BridgeView } from '../../src/ofproto/bridge-view';
import { OfprotoUpcaller } from '../../src/ofproto/upcall';
import { ipv4SetChecksum, l4SetChecksum4 } from '../../src/packet/checksum';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

class CountingNetdev implements Netdev {
  readonly kind = 'internal';
  nPackets = 0;
  constructor(readonly name: string) {}
  recv(): number { return 0; }
  send(_b: PacketBatch, count: number): number { this.nPackets += count; return count; }
  stats(_o: NetdevStats): void { /* none */ }
  close(): void { /* none */ }
}

function tcp(src: number, dst: number, sport: number, dport: number, flags: number): Uint8Array {
  const f = new Uint8Array(54);
  f.set([0xfa, 0x16, 0x3e, 0, 0, 1, 2, 0, 0, 0, 0, 5, 8, 0, 0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6]);
  const dv = new DataView(f.buffer);
  dv.setUint32(26, src); dv.setUint32(30, dst); dv.setUint16(34, sport); dv.setUint16(36, dport);
  f[46] = 0x50; f[47] = flags; f[48] = 0xfa; f[49] = 0xf0;
  ipv4SetChecksum(f, 14);
  l4SetChecksum4(f, 14, 34, 20, 6);
  return f;
}

const RULES = `
table=0,priority=30,in_port=3,actions=output:4
table=0,priority=30,in_port=4,tcp,actions=mod_tp_dst:2001,ct(table=2,zone=9)
table=2,priority=10,ct_state=+trk,in_port=4,actions=output:3
table=0,priority=10,ip,actions=ct(table=1,zone=7,nat)
table=1,priority=10,ct_state=+trk+new,in_port=1,ip,actions=ct(commit,zone=7,nat(src=172.24.4.10)),output:2
table=1,priority=10,ct_state=+trk+est,in_port=1,ip,actions=output:2
table=1,priority=10,ct_state=+trk+est,in_port=2,ip,actions=output:1
table=1,priority=0,actions=drop
`;

const VM = 0x0a000005, SERVER = 0xcb007107, SNAT = 0xac18040a;

/** A datapath with every flow of the mix cached and the connection established. */
function world(reparse = false): { dp: Datapath; batches: PacketBatch[]; out: CountingNetdev[] } {
  const br = new Bridge('br0', 0, { defaultFlow: false });
  for (let p = 1; p <= 4; p++) br.addPort({ name: `p${p}`, ofport: p, kind: 'afpacket' });
  br.addFlows(RULES, 0);
  const ofp = new Ofproto();
  ofp.addBridge(new BridgeView(br));
  let dp: Datapath | null = null;
  const up = new OfprotoUpcaller(ofp, () => 1000, () => dp?.rulesChanged());
  dp = new Datapath({ upcaller: up, nowMs: () => 1000, conntrack: { capacity: 1024 } });
  const out: CountingNetdev[] = [];
  const dpNo = new Map<string, number>();
  for (const info of ofp.dpPorts()) {
    const nd = new CountingNetdev(info.port.name);
    out.push(nd);
    dp.addPort(info.dpPort, nd, null);
    dpNo.set(info.port.name, info.dpPort);
  }
  br.onRulesChanged(() => dp?.rulesChanged());
  const one = (f: Uint8Array, port: string): void => {
    const b = new PacketBatch(1); b.append(f); b.inPort[0] = dpNo.get(port) as number;
    (dp as Datapath).processBatch(b, 1);
  };
  one(tcp(VM, SERVER, 40000, 80, 0x02), 'p1');
  one(tcp(SERVER, SNAT, 80, 40000, 0x12), 'p2');
  if (reparse) one(tcp(0x0a000101, 0x0a000102, 1000, 2000, 0x10), 'p4');
  // 16 batches of 32: 8 frames of one flow (EMC hits; with `reparse`, frames whose port
  // rewrites them before ct(zone=9), parsed again in the recirculation pass), 8 of 1024
  // distinct flows over one megaflow (mostly EMC misses, megaflow hits), 8 segments out and 8
  // back through ct + SNAT.
  const batches: PacketBatch[] = [];
  for (let n = 0; n < 16; n++) {
    const b = new PacketBatch(32);
    const first = reparse ? 'p4' : 'p3';
    for (let k = 0; k < 8; k++) b.inPort[b.append(tcp(0x0a000101, 0x0a000102, 1000, 2000, 0x10))] = dpNo.get(first) as number;
    for (let k = 0; k < 8; k++) b.inPort[b.append(tcp(0x0b000000 + n * 64 + k, 0x0a000102, 1000, 2000, 0x10))] = dpNo.get('p3') as number;
    for (let k = 0; k < 8; k++) b.inPort[b.append(tcp(VM, SERVER, 40000, 80, 0x10))] = dpNo.get('p1') as number;
    for (let k = 0; k < 8; k++) b.inPort[b.append(tcp(SERVER, SNAT, 80, 40000, 0x10))] = dpNo.get('p2') as number;
    batches.push(b);
  }
  return { dp, batches, out };
}

const pristineOf = new WeakMap<PacketBatch[], { buf: Uint8Array; off: Uint32Array; len: Uint32Array }[]>();

/** Heap bytes the datapath retains or allocates over `n` rounds of the batches. */
function heapGrowth(dp: Datapath, batches: PacketBatch[], n: number, extra: (() => void) | null): number {
  // processBatch rewrites frames in place (NAT of the frames ct recirculates in their slot):
  // each round starts from the frames as received.
  const pristine = pristineOf.get(batches) ?? batches.map((b) => ({ buf: b.buf.slice(), off: b.off.slice(), len: b.len.slice() }));
  pristineOf.set(batches, pristine);
  gc();
  const before = youngBytes();
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < batches.length; k++) {
      const b = batches[k], p = pristine[k];
      b.buf.set(p.buf); b.off.set(p.off); b.len.set(p.len);
      dp.processBatch(b, b.count);
      if (extra !== null) extra();
    }
  }
  return youngBytes() - before;
}

/**
 * Bytes in use in the young generation. What code allocates lands there (until a scavenge
 * empties it, which a full GC before a run and runs that allocate well under its size keep
 * out); the old generation's use moves with the GC's own concurrent sweeping and the compiler's
 * data, which measured the heap's whole use by up to +-30 bytes a frame and failed this test
 * one run in ten with nothing allocated per frame.
 */
function youngBytes(): number {
  let n = 0;
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'new_space' || s.space_name === 'new_large_object_space') n += s.space_used_size;
  return n;
}

/** Rounds of the short and the long run; the long one allocates well under the young generation (1 MB at first). */
const SHORT = 5, LONG = 20;

/**
 * Heap bytes per frame, as the slope between a short and a long run: the heap moves by a fixed
 * amount around a measurement (the GC's and the compiler's own bookkeeping), which the slope
 * cancels; what stays is what each batch allocates. The median of five such slopes.
 */
function bytesPerFrame(dp: Datapath, batches: PacketBatch[], extra: (() => void) | null): number {
  const slopes: number[] = [];
  for (let k = 0; k < 5; k++) {
    const a = heapGrowth(dp, batches, SHORT, extra);
    const b = heapGrowth(dp, batches, LONG, extra);
    slopes.push((b - a) / ((LONG - SHORT) * batches.length * 32));
  }
  return slopes.sort((x, y) => x - y)[2];
}

/**
 * Warms `world(reparse)` up, then measures heap bytes per frame over cache hits only: asserts no
 * upcall, every frame sent, `recircShare` of them recirculated, and under 6 bytes per frame (a
 * few numbers boxed per batch, the clock readings, are ~1 byte per frame; one small object per
 * frame would be 16 or more).
 */
function assertSteadyNoAlloc(reparse: boolean, recircShare: number, recircWhat: string): void {
  const { dp, batches, out } = world(reparse);
  heapGrowth(dp, batches, 200, null); // warm up: compile everything, cache every flow
  const upcalls = dp.nUpcalls;
  const sent = out.reduce((s, o) => s + o.nPackets, 0);
  const recirculated = dp.nRecirculated;
  const perFrame = bytesPerFrame(dp, batches, null);
  assert.equal(dp.nUpcalls, upcalls, 'the measured batches made no upcall');
  const nFrames = 5 * (SHORT + LONG) * batches.length * 32;
  assert.equal(out.reduce((s, o) => s + o.nPackets, 0) - sent, nFrames, 'every frame went out');
  assert.equal(dp.nRecirculated - recirculated, nFrames * recircShare, recircWhat);
  assert.ok(perFrame < 6, `${perFrame.toFixed(2)} heap bytes per frame`);
}

test('processBatch allocates nothing per packet: hits, megaflow hits and ct/SNAT recirculation', () => {
  assertSteadyNoAlloc(false, 1 / 2, 'the ct/SNAT half recirculated');
});

test('a frame parsed again in the recirculation pass (set_l4 before ct) allocates nothing', () => {
  assertSteadyNoAlloc(true, 3 / 4, 'the p4 frames recirculated too');
});

test('the measure sees one small object allocated per frame', () => {
  const { dp, batches } = world();
  heapGrowth(dp, batches, 200, null);
  const keep: unknown[] = new Array(32).fill(null);
  const perFrame = bytesPerFrame(dp, batches, () => { for (let i = 0; i < 32; i++) keep[i] = { a: i }; });
  assert.ok(perFrame >= 12, `only ${perFrame.toFixed(2)} heap bytes per frame`);
});
