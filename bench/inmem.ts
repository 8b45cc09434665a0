/**
 * In-memory benchmark of the fast path (`npm run bench`): 64-byte frames, no I/O, one core.
 *
 * Scenarios (issue 5, item 7), each batch 32 frames (OVS's NETDEV_MAX_BURST):
 *  (a) L2 forward, exact-match hit: one flow, in_port -> output.
 *  (b) Neutron-like br-int -> br-tun egress ending in VXLAN encap: the composed datapath actions
 *      of a routed east-west frame (set eth src=DVR MAC/dst=VM MAC, ttl 63, set_tunnel VNI,
 *      output to the VXLAN port), 1k flows (VMs x peers), precomputed tunnel header.
 *  (c) VXLAN decap -> br-int delivery: outer frames, decapVxlan (dpif/tunnel-header.ts, standing
 *      in for the VXLAN netdev) then set eth src=gw MAC and output to the VM port; 1k flows.
 *  (d) 100k distinct flows (distinct IPv4 source, one megaflow per destination MAC): megaflow
 *      hits with the exact-match cache thrashing; run with EMC insertion 1/100 (default), and
 *      for the record 1/1 and 1/20 and EMC off, and (d100A) 1/100 with the EMC looked up for
 *      every frame (its lookup policy, dpif/emc.ts, off: the default bypasses it here).
 *  (e) Upcall rate against 10k rules in ofproto's classifier (ofproto/classifier.ts): every
 *      packet a new megaflow; caches flushed between repetitions.
 *  (f) An established TCP connection through ct(zone=7,nat) + SNAT (Neutron's SNAT router in
 *      flows, as test/dpif/conntrack-pipeline.test.ts): batches alternate between the inside
 *      port (SNAT, ct lookup, recirculation) and the outside port (de-NAT of the replies).
 *  (g) A VM port behind Neutron's OVS firewall: C1's generated br-int of
 *      examples/topologies/security-groups.yaml (tables 0/60/71-73/81-82, ct per direction,
 *      conjunctions), an established TCP stream from WEB2 (arriving on patch-tun, VLAN 1) to
 *      WEB1's port 80 and WEB1's replies: every packet passes WEB1's ingress or egress ct.
 * Yardstick: a plain JS loop that copies the same frames into an output batch with the same copy
 * routine the datapath uses (dpif/ports.ts copyFrame, 32-bit words); each figure is printed with
 * its ratio to the yardstick.
 * Every repetition runs all scenarios in turn (interleaved), and the medians are reported.
 * (b), (c), (f) and (g) rewrite frames in place (VLAN, NAT), so their rings restore each frame before its batch (a
 * 64-byte word copy, what recv would cost; about one yardstick per packet is that copy).
 * (b), (c) and (e) run real bridges (ofproto/bridge.ts rules, ofproto/xlate.ts through
 * src/ofproto/upcall.ts): (b)/(c) with Neutron's br-int/br-tun tables for a routed frame, (e)
 * against 10k rules. (a) and (d) use a fixed-answer upcaller: their cost is all cache hits.
 *
 * Environment: BENCH_REPS (5), BENCH_MS per measurement (400), BENCH_ONLY=a,b,... (subset; d = d100),
 * BENCH_DEBUG=1 (perf-show and cache dumps of some scenarios), BENCH_CPU=1 (CPU time instead of
 * wall time), BENCH_COPY_OUT=1 (outputs copied, not sent from the input batch: see SinkNetdev),
 * BENCH_A_SLOT=bytes (slot size of scenario (a)'s input batch, 512 by default).
 *
 * Figures (2025-11-25, this 2-core machine shared with other sessions at load average 8-11, so
 * absolute ns are inflated several-fold and move between runs; ratios to the yardstick are the
 * stabler figure). Two runs, medians of 5 interleaved repetitions:
 *   yardstick (64-byte word copy)        62-429 ns   1.00
 *   (a) L2 forward, exact hit             738-2901   6.8-14x   extractKey ~30%, EMC hash+compare ~35%,
 *                                                               program + output copy ~20%
 *   (b) br-int -> br-tun, VXLAN encap    2003-9468   22-32x    + frame restore (1x), TTL checksum
 *                                                               patch, tunnel header copy + fill
 *   (c) VXLAN decap -> br-int            1368-10334  17-31x    + decap and restore of 114-byte frames
 *   (d) 100k flows, EMC 1/100            1190-7478   17-19x    EMC misses -> one-subtable megaflow
 *                                                               lookup (hash + compare of 3 words)
 *   (e) upcalls vs 10k rules             ~8-12k/s              ofproto/xlate.ts ~64% of the time
 *                                                               (it formats each visited rule's match as
 *                                                               trace text even when not tracing), GC
 *                                                               ~15%, dpif install/compile ~15%
 *       (2026-12-04, issue 12, 5 interleaved runs against main, medians: 60k -> 430k upcalls/s
 *       at load ~4; in CPU time 68k -> 432k/s. A reused xlate Translator, programs interned by
 *       action digest (dpif/program-cache.ts), classifier slots probed without visiting buckets.
 *       Left: megaflow install ~15%, classifier probe ~14%, rest of xlate ~25%, stages ~20%, GC ~7%)
 * Against the targets (60/150/150/300 ns, 200k upcalls/s) every figure misses on this loaded
 * machine; see the final report of issue 5 for the projection to an idle core.
 */
import { Datapath } from '../src/dpif/datapath';
import { EMC_ALWAYS } from '../src/dpif/emc';
import { DpAction } from '../src/dpif/dp-actions';
import { UpcallResult, Upcaller, StatsRule } from '../src/dpif/upcall';
import { copyFrame, wordsOf } from '../src/dpif/ports';
import { decapVxlan, TunnelDesc, buildTunnelHeader, encapFill } from '../src/dpif/tunnel-header';
import { PacketBatch, HEADROOM } from '../src/netdev/batch';
import { Netdev, NetdevStats } from '../src/netdev/netdev';
import { KEY_WORDS, W_DL_DST_HI, W_DL_DST_LO, W_IN_PORT } from '../src/packet/flowkey-layout';
import { ipv4SetChecksum, l4SetChecksum4 } from '../src/packet/checksum';
import { Bridge } from '../src/ofproto/bridge';
import { BridgeView, Ofproto, TunnelEnds, XlateBridge } from '../src/ofproto/ofproto';
import { OfprotoUpcaller } from '../src/ofproto/upcall';
import { dumpCache, perfStats } from '../src/dpif/dump';
import { parseTopology } from '../src/dvr/topology';
import { nodeConfig } from '../src/dvr/node-config';
import * as fs from 'node:fs';
import * as path from 'node:path';

const BATCH = 32;
const REPS = Number(process.env.BENCH_REPS ?? 5);
const TARGET_MS = Number(process.env.BENCH_MS ?? 400);

/** BENCH_COPY_OUT=1: sinks refuse the input batch, so every output is copied (A/B of ports.ts emitLast). */
const SINK_FROM_INPUT = process.env.BENCH_COPY_OUT !== '1';

/**
 * BENCH_A_SLOT=65792: scenario (a)'s input batch with GSO-sized slots (netdev/batch.ts
 * GSO_SLOT_BYTES, what offload ports receive into), so its small frames lie 64 KiB apart.
 */
const A_SLOT_BYTES = Number(process.env.BENCH_A_SLOT ?? 512);

class SinkNetdev implements Netdev {
  readonly kind = 'internal';
  /** Like a native port: send only reads the batch (dpif/ports.ts may pass the input batch). */
  readonly txFromInput = SINK_FROM_INPUT;
  nPackets = 0;
  constructor(readonly name: string) {}
  recv(): number { return 0; }
  send(_b: PacketBatch, count: number): number { this.nPackets += count; return count; }
  stats(_o: NetdevStats): void { /* none */ }
  close(): void { /* none */ }
}

class FixedRule implements StatsRule { nPackets = 0; nBytes = 0; lastUsedMs = 0; }

/** Answers every upcall with the same actions and mask. */
class FixedUpcaller implements Upcaller {
  readonly rule = new FixedRule();
  constructor(readonly actions: DpAction[], readonly mask: Uint32Array) {}
  upcall(): UpcallResult { return { actions: this.actions, mask: this.mask, rules: [this.rule], cacheable: true }; }
  revalidate(): UpcallResult { return this.upcall(); }
}

function maskOf(words: [number, number][]): Uint32Array {
  const m = new Uint32Array(KEY_WORDS);
  for (const [w, v] of words) m[w] |= v;
  return m;
}

/** Ethernet/IPv4/UDP, 64 bytes. */
function frame64(dstMac: number, srcMac: number, srcIp: number, dstIp: number): Uint8Array {
  const f = new Uint8Array(64);
  const mac = (o: number, m: number) => {
    const hi = Math.floor(m / 2 ** 32), lo = m >>> 0;
    f[o] = hi >>> 8; f[o + 1] = hi & 255; f[o + 2] = lo >>> 24; f[o + 3] = (lo >>> 16) & 255; f[o + 4] = (lo >>> 8) & 255; f[o + 5] = lo & 255;
  };
  mac(0, dstMac); mac(6, srcMac);
  f[12] = 8; f[13] = 0;
  const ip = 14;
  f[ip] = 0x45; f[ip + 3] = 50; f[ip + 6] = 0x40; f[ip + 8] = 64; f[ip + 9] = 17;
  for (let k = 0; k < 4; k++) { f[ip + 12 + k] = (srcIp >>> (24 - 8 * k)) & 255; f[ip + 16 + k] = (dstIp >>> (24 - 8 * k)) & 255; }
  ipv4SetChecksum(f, ip);
  f[34] = 0x03; f[35] = 0xe8; f[36] = 0x07; f[37] = 0xd0; f[38] = 0; f[39] = 30;
  return f;
}

/** A ring of prebuilt batches the scenario cycles through (frames are restored per batch). */
class Ring {
  readonly batches: PacketBatch[] = [];
  readonly off0: Uint32Array[] = [];
  readonly len0: Uint32Array[] = [];
  next = 0;
  /** Pristine copies of the batch buffers, for scenarios whose programs rewrite frames. */
  private readonly pristine: (Uint8Array | null)[] = [];
  private readonly words: (Uint32Array | null)[] = [];
  private readonly pristineWords: (Uint32Array | null)[] = [];
  constructor(frames: Uint8Array[], inPort: number, slotBytes = 512, readonly restore = false) {
    for (let s = 0; s < frames.length; s += BATCH) {
      const b = new PacketBatch(BATCH, slotBytes);
      for (let k = 0; k < BATCH; k++) { const i = b.append(frames[(s + k) % frames.length]); b.inPort[i] = inPort; }
      this.batches.push(b);
      this.off0.push(Uint32Array.from(b.off));
      this.len0.push(Uint32Array.from(b.len));
      const copy = restore ? b.buf.slice() : null;
      this.pristine.push(copy);
      this.words.push(restore ? wordsOf(b.buf) : null);
      this.pristineWords.push(copy === null ? null : wordsOf(copy));
    }
  }
  /** The next batch with its frames where recv would have put them. */
  take(): PacketBatch {
    const k = this.next;
    this.next = k + 1 === this.batches.length ? 0 : k + 1;
    const b = this.batches[k];
    b.off.set(this.off0[k]);
    b.len.set(this.len0[k]);
    const p = this.pristine[k];
    if (p !== null) {
      // Fresh frames, as recv would deliver them: one frame-sized word copy each.
      for (let i = 0; i < b.count; i++) copyFrame(b.buf, this.words[k], b.off[i], p, this.pristineWords[k], b.off[i], b.len[i]);
    }
    return b;
  }
}

interface Scenario {
  readonly name: string;
  readonly label: string;
  /** Runs `nBatches` batches; returns packets processed. */
  run(nBatches: number): number;
  /** Per-repetition reset (e: flush caches). */
  reset?(): void;
  unit?: 'pkt' | 'upcall';
  /** A number printed after the run, to show the scenario did its work (frames out, rules). */
  check?(): number;
  debug?(): string;
}

const VM2 = 0xfa163e000220;
const VXLAN_DESC: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c,
  srcMac: 0x525400000011, nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };

function scenarioA(): Scenario {
  const up = new FixedUpcaller([{ kind: 'output', port: 2 }], maskOf([[W_IN_PORT, 0xffffffff]]));
  const dp = new Datapath({ upcaller: up });
  dp.addPort(1, new SinkNetdev('p1')); dp.addPort(2, new SinkNetdev('p2'));
  const ring = new Ring([frame64(0x020000000002, 0x020000000001, 0x0a000101, 0x0a000102)], 1, A_SLOT_BYTES);
  return { name: 'a', label: '(a) L2 forward, exact hit', run(n) {
    for (let k = 0; k < n; k++) dp.processBatch(ring.take(), BATCH);
    return n * BATCH;
  } };
}

/** One datapath over real bridges (ofproto/bridge.ts + xlate through OfprotoUpcaller). */
function ofprotoDatapath(bridges: { br: Bridge; tunnels?: Map<string, TunnelEnds> }[], tunnelDesc: TunnelDesc,
                         maxUpcallsPerBatch = 64): { dp: Datapath; ofp: Ofproto; up: OfprotoUpcaller; dpOf: (br: string, ofport: number) => number } {
  const ofp = new Ofproto();
  for (const b of bridges) ofp.addBridge(new BridgeView(b.br, b.tunnels ?? new Map()));
  let dp: Datapath | null = null;
  const up = new OfprotoUpcaller(ofp, Date.now, () => dp?.rulesChanged());
  dp = new Datapath({ upcaller: up, maxUpcallsPerBatch });
  for (const info of ofp.dpPorts()) dp.addPort(info.dpPort, new SinkNetdev(info.port.name), info.port.kind === 'tunnel' ? tunnelDesc : null);
  for (const b of bridges) b.br.onRulesChanged(() => dp?.rulesChanged());
  return { dp, ofp, up, dpOf: (br, ofport) => ofp.dpPort(ofp.bridges.get(br) as XlateBridge, ofport) };
}

/** br-int (C1) and br-tun with Neutron's table layout, for a routed east-west frame VM1 -> VM2. */
function neutronBridges(): { brInt: Bridge; brTun: Bridge } {
  const brInt = new Bridge('br-int', 0, { defaultFlow: false });
  brInt.addPort({ name: 'vm1', ofport: 1, kind: 'tap', tag: 1 });
  brInt.addPort({ name: 'patch-tun', ofport: 2, kind: 'patch', peerBridge: 'br-tun', peerPort: 'patch-int' });
  brInt.addPort({ name: 'vm2', ofport: 3, kind: 'tap', tag: 2 });
  brInt.addFlows([
    // VM1's access port: tag with lv 1 and route (DVR: the router lives in flows on this node).
    'table=0,priority=10,in_port=1,actions=mod_vlan_vid:1,resubmit(,60)',
    'table=60,priority=4,dl_vlan=1,dl_dst=fa:16:3e:0a:00:01,ip,nw_dst=10.0.2.0/24,actions=mod_dl_src:fa:16:3e:0b:00:01,mod_dl_dst:fa:16:3e:00:02:20,dec_ttl,mod_vlan_vid:2,output:2',
    // From the tunnel: a frame routed on a remote node (src = its DVR MAC).
    'table=0,priority=2,in_port=2,dl_src=fa:16:3f:00:00:12,actions=resubmit(,1)',
    'table=1,priority=20,dl_vlan=2,dl_dst=fa:16:3e:00:02:20,actions=mod_dl_src:fa:16:3e:0b:00:01,resubmit(,60)',
    'table=60,priority=20,dl_vlan=2,dl_dst=fa:16:3e:00:02:20,actions=strip_vlan,output:3',
  ].join('\n'), 0);
  const brTun = new Bridge('br-tun', 0, { defaultFlow: false });
  brTun.addPort({ name: 'patch-int', ofport: 1, kind: 'patch', peerBridge: 'br-int', peerPort: 'patch-tun' });
  brTun.addPort({ name: 'vxlan-c0a8640c', ofport: 2, kind: 'vxlan' });
  brTun.addFlows([
    'table=0,priority=1,in_port=1,actions=resubmit(,1)',
    'table=0,priority=1,in_port=2,actions=resubmit(,4)',
    'table=1,priority=1,dl_vlan=2,dl_src=fa:16:3e:0b:00:01,actions=mod_dl_src:fa:16:3f:00:00:11,resubmit(,2)',
    'table=1,priority=0,actions=resubmit(,2)',
    'table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,20)',
    'table=20,priority=2,dl_vlan=2,dl_dst=fa:16:3e:00:02:20,actions=strip_vlan,set_tunnel:1002,output:2',
    'table=4,priority=1,tun_id=1002,actions=mod_vlan_vid:2,resubmit(,9)',
    'table=9,priority=1,dl_src=fa:16:3f:00:00:12,actions=output:1',
  ].join('\n'), 0);
  return { brInt, brTun };
}

const TUNNEL_ENDS = new Map<string, TunnelEnds>([['vxlan-c0a8640c', { localIp: 0xc0a8640b, remoteIp: 0xc0a8640c }]]);

function scenarioB(): Scenario {
  const { brInt, brTun } = neutronBridges();
  const { dp, dpOf } = ofprotoDatapath([{ br: brInt }, { br: brTun, tunnels: TUNNEL_ENDS }], VXLAN_DESC);
  const frames: Uint8Array[] = [];
  for (let k = 0; k < 1024; k++) frames.push(frame64(0xfa163e0a0001, 0xfa163e000110, 0x0a00010a, 0x0a000214));
  for (let k = 0; k < 1024; k++) { frames[k][37] = k & 0xff; frames[k][36] = 0x20 | (k >>> 8); } // 1k UDP dst ports
  const ring = new Ring(frames, dpOf('br-int', 1), 512, true);
  return { name: 'b', label: '(b) br-int -> br-tun, VXLAN encap', run(n) {
    for (let k = 0; k < n; k++) dp.processBatch(ring.take(), BATCH);
    return n * BATCH;
  }, check() { return dp.ports.byNo(dpOf('br-tun', 2))?.txPackets ?? 0; }, debug() { return perfStats(dp) + dumpCache(dp).slice(0, 2000); } };
}

function scenarioC(): Scenario {
  const { brInt, brTun } = neutronBridges();
  const { dp, dpOf } = ofprotoDatapath([{ br: brInt }, { br: brTun, tunnels: TUNNEL_ENDS }], VXLAN_DESC);
  const frames: Uint8Array[] = [];
  const hdr = buildTunnelHeader({ ...VXLAN_DESC, localIp: 0xc0a8640c, remoteIp: 0xc0a8640b }, 1002);
  for (let k = 0; k < 1024; k++) {
    const inner = frame64(VM2, 0xfa163f000012, 0x0a00010a, 0x0a000214);
    inner[37] = k & 0xff; inner[36] = 0x20 | (k >>> 8);
    const outer = new Uint8Array(64 + 50 + 50);
    outer.set(inner, 50);
    const o = encapFill(outer, 50, 64, hdr, k * 2654435761);
    frames.push(outer.subarray(o, o + 114));
  }
  const ring = new Ring(frames, dpOf('br-tun', 2), 512, true);
  return { name: 'c', label: '(c) VXLAN decap -> br-int delivery', run(n) {
    for (let k = 0; k < n; k++) {
      const b = ring.take();
      for (let i = 0; i < BATCH; i++) decapVxlan(b, i);
      dp.processBatch(b, BATCH);
    }
    return n * BATCH;
  }, check() { return dp.ports.byNo(dpOf('br-int', 3))?.txPackets ?? 0; }, debug() {
    const st = dp.megaflows.subtables.map((t) => Array.from(t.mask).map((x, w) => x ? `${w}:${x.toString(16)}` : '').filter(Boolean).join(' '));
    const ids = dp.megaflows.liveIds().slice(0, 3).map((id) => Array.from(dp.megaflows.value.subarray(id * KEY_WORDS, id * KEY_WORDS + 16)).map((x) => x.toString(16)).join(' '));
    return perfStats(dp) + st.join('\n') + '\n' + ids.join('\n');
  } };
}

/** `alwaysLookup`: the EMC looked up for every frame (its lookup policy off; the dA row). */
function scenarioD(insertInvProb: number, alwaysLookup = false): Scenario {
  const mask = maskOf([[W_IN_PORT, 0xffffffff], [W_DL_DST_HI, 0xffff], [W_DL_DST_LO, 0xffffffff]]);
  const dp = new Datapath({ upcaller: new FixedUpcaller([{ kind: 'output', port: 2 }], mask), emcInsertInvProb: insertInvProb });
  if (alwaysLookup) dp.emc.lookupPolicy = EMC_ALWAYS;
  dp.addPort(1, new SinkNetdev('p1')); dp.addPort(2, new SinkNetdev('p2'));
  const frames: Uint8Array[] = [];
  for (let k = 0; k < 100000; k++) frames.push(frame64(0x020000000000 + (k & 15), 0x020000000001, 0x0a000000 + k, 0x0a100001));
  // Shuffle so consecutive batches do not share flows.
  let x = 12345;
  for (let k = frames.length - 1; k > 0; k--) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; const j = x % (k + 1); const t = frames[k]; frames[k] = frames[j]; frames[j] = t; }
  const ring = new Ring(frames, 1, 256);
  const tag = (insertInvProb === 0 ? 'EMC off' : `EMC insert 1/${insertInvProb}`) + (alwaysLookup ? ', always' : '');
  return { name: `d${insertInvProb}${alwaysLookup ? 'A' : ''}`, label: `(d) 100k flows, ${tag}`, run(n) {
    for (let k = 0; k < n; k++) dp.processBatch(ring.take(), BATCH);
    return n * BATCH;
  } };
}

function scenarioE(): Scenario {
  const br = new Bridge('br0', 0, { defaultFlow: true });
  for (let p = 1; p <= 4; p++) br.addPort({ name: `p${p}`, ofport: p, kind: 'afpacket' });
  const lines: string[] = [];
  const mac = (k: number) => `02:00:00:01:${((k >>> 8) & 0xff).toString(16).padStart(2, '0')}:${(k & 0xff).toString(16).padStart(2, '0')}`;
  for (let k = 0; k < 9000; k++) lines.push(`priority=100,dl_dst=${mac(k)},actions=output:2`);
  for (let k = 0; k < 999; k++) lines.push(`priority=50,ip,nw_dst=11.${k >>> 8}.${k & 0xff}.0/24,actions=output:3`);
  br.addFlows(lines.join('\n'), 0); // + table 0's priority=0 NORMAL: 10k rules
  const { dp, dpOf } = ofprotoDatapath([{ br }], VXLAN_DESC, BATCH);
  const frames: Uint8Array[] = [];
  for (let k = 0; k < 8192; k++) frames.push(frame64(0x020000010000 + k, 0x020000000001, 0x0a000001, 0x0b000001 + ((k % 999) << 8)));
  const ring = new Ring(frames, dpOf('br0', 1));
  return { name: 'e', label: '(e) upcalls vs 10k rules', unit: 'upcall', reset() { dp.flushCaches(); ring.next = 0; }, run(n) {
    const before = dp.nUpcalls;
    for (let k = 0; k < n; k++) {
      if (ring.next === 0) dp.flushCaches();
      dp.processBatch(ring.take(), BATCH);
    }
    return dp.nUpcalls - before;
  }, check() { return br.allRules().length; },
  debug() { return `busy ${dp.busyMs.toFixed(0)} ms, upcalls ${dp.nUpcalls}, programs compiled ${dp.programs.nCompiled}, shared ${dp.programs.nShared}`; } };
}

/** Ethernet/IPv4/TCP ACK, 54 bytes, checksums filled. */
function tcpAck(src: number, dst: number, sport: number, dport: number): Uint8Array {
  const f = new Uint8Array(64);
  f.set([0xfa, 0x16, 0x3e, 0, 0, 1, 2, 0, 0, 0, 0, 5, 8, 0, 0x45, 0, 0, 50, 0, 1, 0x40, 0, 64, 6]);
  const dv = new DataView(f.buffer);
  dv.setUint32(26, src); dv.setUint32(30, dst);
  dv.setUint16(34, sport); dv.setUint16(36, dport);
  f[46] = 0x50; f[47] = 0x10; f[48] = 0xfa; f[49] = 0xf0;
  ipv4SetChecksum(f, 14);
  l4SetChecksum4(f, 14, 34, 30, 6);
  return f;
}

const SNAT_ROUTER = [
  'table=0,priority=10,ip,actions=ct(table=1,zone=7,nat)',
  'table=1,priority=10,ct_state=+trk+new,in_port=1,ip,actions=ct(commit,zone=7,nat(src=172.24.4.10)),output:2',
  'table=1,priority=10,ct_state=+trk+est,in_port=1,ip,actions=output:2',
  'table=1,priority=10,ct_state=+trk+est,in_port=2,ip,actions=output:1',
  'table=1,priority=0,actions=drop',
].join('\n');

function scenarioF(): Scenario {
  const br = new Bridge('br0', 0, { defaultFlow: false });
  br.addPort({ name: 'in', ofport: 1, kind: 'afpacket' });
  br.addPort({ name: 'out', ofport: 2, kind: 'afpacket' });
  br.addFlows(SNAT_ROUTER, 0);
  const { dp, dpOf } = ofprotoDatapath([{ br }], VXLAN_DESC);
  const vm = 0x0a000005, server = 0xcb007107, fip = 0xac18040a;
  // Both rings restore their frames: conntrack NATs them in place.
  const out = new Ring([tcpAck(vm, server, 40000, 80)], dpOf('br0', 1), 512, true);
  const back = new Ring([tcpAck(server, fip, 80, 40000)], dpOf('br0', 2), 512, true);
  // Open the connection: SYN out (committed, SNAT), SYN-ACK back (established).
  const syn = tcpAck(vm, server, 40000, 80); syn[47] = 0x02;
  const synAck = tcpAck(server, fip, 80, 40000); synAck[47] = 0x12;
  for (const [f, port] of [[syn, 1], [synAck, 2]] as const) {
    const b = new PacketBatch(1); b.append(f); b.inPort[0] = dpOf('br0', port);
    dp.processBatch(b, 1);
  }
  return { name: 'f', label: '(f) TCP through ct(zone)+SNAT, both ways', run(n) {
    for (let k = 0; k < n; k++) dp.processBatch((k & 1) === 0 ? out.take() : back.take(), BATCH);
    return n * BATCH;
  }, check() { return (dp.ports.byNo(dpOf('br0', 1))?.txPackets ?? 0) + (dp.ports.byNo(dpOf('br0', 2))?.txPackets ?? 0); },
  debug() { return perfStats(dp) + dumpCache(dp).slice(0, 3000); } };
}

/** Ethernet (optionally VLAN-tagged) + IPv4 + TCP with `flags`, checksums filled. */
function tcpFrame(dst: number, src: number, vlan: number, ipSrc: number, ipDst: number, sport: number, dport: number,
                  flags: number): Uint8Array {
  const t = vlan === 0 ? 0 : 4;
  const f = new Uint8Array(64);
  const dv = new DataView(f.buffer);
  dv.setUint16(0, Math.floor(dst / 2 ** 32)); dv.setUint32(2, dst >>> 0);
  dv.setUint16(6, Math.floor(src / 2 ** 32)); dv.setUint32(8, src >>> 0);
  if (vlan !== 0) { dv.setUint16(12, 0x8100); dv.setUint16(14, vlan); }
  dv.setUint16(12 + t, 0x0800);
  const ip = 14 + t;
  f.set([0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6], ip);
  dv.setUint32(ip + 12, ipSrc); dv.setUint32(ip + 16, ipDst);
  dv.setUint16(ip + 20, sport); dv.setUint16(ip + 22, dport);
  f[ip + 32] = 0x50; f[ip + 33] = flags; f[ip + 34] = 0xfa; f[ip + 35] = 0xf0;
  ipv4SetChecksum(f, ip);
  l4SetChecksum4(f, ip, ip + 20, 20, 6);
  return f;
}

function scenarioG(): Scenario {
  const file = path.join(__dirname, '../../examples/topologies/security-groups.yaml');
  const cfg = nodeConfig(parseTopology(file, fs.readFileSync(file, 'utf8')), 'C1');
  const bc = cfg.bridges.find((b) => b.name === 'br-int');
  if (bc === undefined) throw new Error(`${file}: C1 has no br-int`);
  const br = new Bridge(bc.name, 0, { defaultFlow: false });
  // Patch ports stand as plain ports here: what leaves on patch-tun is what br-tun would get.
  for (const p of bc.ports) br.addPort({ name: p.name, ofport: p.ofport, kind: 'afpacket', tag: p.tag === 0 ? undefined : p.tag });
  br.addFlows(bc.flows.map((f) => f.text).join('\n'), 0, bc.flows[0].file);
  const ofport = (name: string): number => {
    const p = bc.ports.find((x) => x.name === name);
    if (p === undefined) throw new Error(`C1's br-int has no port ${name}`);
    return p.ofport;
  };
  const { dp, dpOf } = ofprotoDatapath([{ br }], VXLAN_DESC);
  const WEB1 = 0xfa163e000110, WEB2 = 0xfa163e000111, ipWeb1 = 0x0a00010a, ipWeb2 = 0x0a00010b;
  const fromTun = dpOf('br-int', ofport('patch-tun')), fromVm = dpOf('br-int', ofport('web1-host'));
  // Network A is local VLAN 1 on C1's br-int trunk toward br-tun.
  const req = (flags: number): Uint8Array => tcpFrame(WEB1, WEB2, 1, ipWeb2, ipWeb1, 40000, 80, flags);
  const rpl = (flags: number): Uint8Array => tcpFrame(WEB2, WEB1, 0, ipWeb1, ipWeb2, 80, 40000, flags);
  // WEB2's ARP request (broadcast, from br-tun) lets NORMAL learn where WEB2's MAC lives, as
  // it does before any stream: WEB1's replies then go to patch-tun alone, not flooded.
  const arp = new Uint8Array(46);
  const av = new DataView(arp.buffer);
  arp.fill(0xff, 0, 6);
  av.setUint16(6, Math.floor(WEB2 / 2 ** 32)); av.setUint32(8, WEB2 >>> 0);
  av.setUint16(12, 0x8100); av.setUint16(14, 1); av.setUint16(16, 0x0806);
  arp.set([0, 1, 8, 0, 6, 4, 0, 1], 18);
  av.setUint16(26, Math.floor(WEB2 / 2 ** 32)); av.setUint32(28, WEB2 >>> 0);
  av.setUint32(32, ipWeb2); av.setUint32(42, ipWeb1);
  for (const [f, port] of [[arp, fromTun], [req(0x02), fromTun], [rpl(0x12), fromVm], [req(0x10), fromTun]] as const) {
    const b = new PacketBatch(1); b.append(f); b.inPort[0] = port;
    dp.processBatch(b, 1);
  }
  // Both rings restore their frames: the programs pop and push the VLAN tag in place.
  const inward = new Ring([req(0x10)], fromTun, 512, true), outward = new Ring([rpl(0x10)], fromVm, 512, true);
  return { name: 'g', label: '(g) VM port behind the OVS firewall', run(n) {
    for (let k = 0; k < n; k++) dp.processBatch((k & 1) === 0 ? inward.take() : outward.take(), BATCH);
    return n * BATCH;
  }, check() { return (dp.ports.byNo(fromTun)?.txPackets ?? 0) + (dp.ports.byNo(fromVm)?.txPackets ?? 0); },
  debug() { return perfStats(dp) + dumpCache(dp).slice(0, 3000); } };
}

function yardstick(): Scenario {
  const ring = new Ring([frame64(0x020000000002, 0x020000000001, 0x0a000101, 0x0a000102)], 1);
  const out = new PacketBatch(BATCH);
  const out32 = wordsOf(out.buf);
  const in32 = wordsOf(ring.batches[0].buf);
  const sink = new SinkNetdev('y');
  return { name: 'y', label: 'yardstick: plain JS copy loop', run(n) {
    for (let k = 0; k < n; k++) {
      const b = ring.take();
      for (let i = 0; i < BATCH; i++) {
        const o = i * out.slotBytes + HEADROOM;
        copyFrame(out.buf, out32, o, b.buf, in32, b.off[i], b.len[i]);
        out.off[i] = o; out.len[i] = b.len[i];
      }
      sink.send(out, BATCH);
    }
    return n * BATCH;
  } };
}

/** Runs `s` in growing rounds until one takes 100 ms; records its batches per ms. */
function calibrate(s: Scenario, batchesPerMs: Map<string, number>): void {
  for (let n = 4; ; n *= 4) {
    if (s.reset) s.reset();
    const t0 = process.hrtime.bigint();
    s.run(n);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms >= 100 || n >= 1 << 20) { batchesPerMs.set(s.name, n / ms); return; }
  }
}

/**
 * BENCH_CPU=1: time each measurement by the process's CPU time (user + system) instead of the
 * wall clock, so that time the shared machine's scheduler gives other processes is not counted
 * (for A/B runs on a loaded machine; caches are still shared).
 */
const CPU_TIME = process.env.BENCH_CPU === '1';

function clockNs(): number {
  if (CPU_TIME) { const u = process.cpuUsage(); return (u.user + u.system) * 1000; }
  return Number(process.hrtime.bigint());
}

/** Runs `s` for about TARGET_MS; returns ns per unit. */
function measure(s: Scenario, batchesPerMs: Map<string, number>): number {
  const guess = batchesPerMs.get(s.name) ?? 50;
  const nBatches = Math.max(16, Math.round(guess * TARGET_MS));
  if (s.reset) s.reset();
  const t0 = clockNs();
  const units = s.run(nBatches);
  const ns = clockNs() - t0;
  batchesPerMs.set(s.name, nBatches / (ns / 1e6));
  return ns / Math.max(1, units);
}

function median(a: number[]): number {
  const b = a.slice().sort((x, y) => x - y);
  return b.length % 2 ? b[(b.length - 1) / 2] : (b[b.length / 2 - 1] + b[b.length / 2]) / 2;
}

function main(): void {
  const t0 = Date.now();
  const only = process.env.BENCH_ONLY; // e.g. "a" or "d100,d1" for profiling some scenarios
  const all: [string, () => Scenario][] = [['y', yardstick], ['a', scenarioA], ['b', scenarioB], ['c', scenarioC],
    ['d100', () => scenarioD(100)], ['d100A', () => scenarioD(100, true)], ['d20', () => scenarioD(20)], ['d1', () => scenarioD(1)], ['d0', () => scenarioD(0)],
    ['e', scenarioE], ['f', scenarioF], ['g', scenarioG]];
  // 'd' stands for (d) with the default insertion, d100.
  const wanted = only ? new Set(['y', ...only.split(',').map((n) => (n === 'd' ? 'd100' : n))]) : null;
  const scenarios = all.filter(([n]) => wanted === null || wanted.has(n)).map(([, make]) => make());
  const rate = new Map<string, number>();
  const results = new Map<string, number[]>();
  for (const s of scenarios) calibrate(s, rate); // warm up (JIT, caches) and learn each rate
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let r = 0; r < REPS; r++) {
    for (const s of scenarios) {
      if (gc) gc();
      const ns = measure(s, rate);
      const l = results.get(s.name) ?? [];
      l.push(ns);
      results.set(s.name, l);
    }
  }
  const y = median(results.get('y') as number[]);
  // Issue 12's targets, as ratios to the yardstick of the same run (e: absolute rate).
  const targets: Record<string, string> = { a: '<= 3x', b: '<= 5x', c: '<= 5x', d100: '<= 6x', e: '>= 200k/s', f: '<= 6x', g: '<= 6x' };
  console.log(`flowd in-memory bench: ${BATCH}-frame batches of 64-byte frames, ${REPS} interleaved repetitions, medians`);
  console.log('scenario                               ns/unit      Mpps   x yardstick  target');
  for (const s of scenarios) {
    const ns = median(results.get(s.name) as number[]);
    const perS = 1e9 / ns;
    const rateText = s.unit === 'upcall' ? `${(perS / 1000).toFixed(0)}k upcalls/s` : `${(perS / 1e6).toFixed(2)}`;
    console.log(`${s.label.padEnd(38)} ${ns.toFixed(1).padStart(8)}  ${rateText.padStart(8)}  ${(ns / y).toFixed(2).padStart(10)}  ${targets[s.name] ?? ''}`);
  }
  if (process.env.BENCH_DEBUG) for (const s of scenarios) if (s.debug) console.log(s.name, s.debug());
  const checks = scenarios.filter((s) => s.check).map((s) => `${s.name}=${(s.check as () => number)()}`).join(' ');
  console.log(`sanity (frames out / rules): ${checks}`);
  console.log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main();
