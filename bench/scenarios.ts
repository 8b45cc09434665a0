/**
 * The in-memory bench's scenarios, built once for every tool that measures them: the datapath
 * of each (its bridges or fixed upcaller, ports and warm-up traffic) and the rings of batches
 * that feed it, restored before each use where its programs rewrite frames.
 *
 * Called by: bench/inmem.ts (`npm run bench`: each scenario's figure and ratio to the
 * yardstick), and the stage tools run by hand for issue 12: bench/stage-harness.ts ((a), (d)),
 * bench/tunnel-stages.ts ((a), (b), (c)), bench/ct-stages.ts ((f), (g)). What each scenario
 * is: bench/inmem.ts's header.
 */
import { Datapath } from '../src/dpif/datapath';
import { EMC_ALWAYS } from '../src/dpif/emc';
import { DpAction } from '../src/dpif/dp-actions';
import { UpcallResult, Upcaller, StatsRule } from '../src/dpif/upcall';
import { copyFrame, wordsOf } from '../src/dpif/ports';
import { decapVxlan, TunnelDesc, buildTunnelHeader, encapFill } from '../src/dpif/tunnel-header';
import { PacketBatch } from '../src/netdev/batch';
import { Netdev, NetdevStats } from '../src/netdev/netdev';
import { KEY_WORDS, W_DL_DST_HI, W_DL_DST_LO, W_IN_PORT } from '../src/packet/flowkey-layout';
import { ipv4SetChecksum, l4SetChecksum4 } from '../src/packet/checksum';
import { Bridge } from '../src/ofproto/bridge';
import { Ofproto, TunnelEnds, XlateBridge } from '../src/ofproto/ofproto';
import { BridgeView } from '../src/ofproto/bridge-view';
import { OfprotoUpcaller } from '../src/ofproto/upcall';
import { dumpCache, perfStats } from '../src/dpif/dump';
import { parseTopology } from '../src/dvr/topology';
import { nodeConfig } from '../src/dvr/node-config';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Frames per batch (OVS's NETDEV_MAX_BURST). */
export const BATCH = 32;

/** A port that counts what it is sent. */
export class SinkNetdev implements Netdev {
  readonly kind = 'internal';
  nPackets = 0;
  /**
   * `txFromInput` true: like a native port, send only reads the batch (dpif/ports.ts may pass
   * the input batch); false: every output is copied (bench/inmem.ts BENCH_COPY_OUT).
   */
  constructor(readonly name: string, readonly txFromInput = true) {}
  recv(): number { return 0; }
  send(_b: PacketBatch, count: number): number { this.nPackets += count; return count; }
  stats(_o: NetdevStats): void { /* none */ }
  close(): void { /* none */ }
}

class FixedRule implements StatsRule { nPackets = 0; nBytes = 0; lastUsedMs = 0; }

/** Answers every upcall with the same actions and mask. */
export class FixedUpcaller implements Upcaller {
  readonly rule = new FixedRule();
  constructor(readonly actions: DpAction[], readonly mask: Uint32Array) {}
  upcall(): UpcallResult { return { actions: this.actions, mask: this.mask, rules: [this.rule], cacheable: true }; }
  revalidate(): UpcallResult { return this.upcall(); }
}

export function maskOf(words: [number, number][]): Uint32Array {
  const m = new Uint32Array(KEY_WORDS);
  for (const [w, v] of words) m[w] |= v;
  return m;
}

/** Ethernet/IPv4/UDP, 64 bytes. */
export function frame64(dstMac: number, srcMac: number, srcIp: number, dstIp: number): Uint8Array {
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

/**
 * A ring of prebuilt batches the scenario cycles through, `frames` laid BATCH to a batch,
 * all coming in on `inPort`. `restore`: take() restores each frame from a pristine copy (one
 * frame-sized word copy each, what recv would cost), for programs that rewrite frames in place.
 * `oneBuffer`: every batch is restored into the first batch's buffer, as a port's poll loop
 * receives into one batch (control/switch.ts poll), instead of into its own (restore only).
 */
export class Ring {
  readonly batches: PacketBatch[] = [];
  readonly off0: Uint32Array[] = [];
  readonly len0: Uint32Array[] = [];
  next = 0;
  /** Pristine copies of the batch buffers, for scenarios whose programs rewrite frames. */
  private readonly pristine: (Uint8Array | null)[] = [];
  private readonly words: (Uint32Array | null)[] = [];
  private readonly pristineWords: (Uint32Array | null)[] = [];
  constructor(readonly frames: Uint8Array[], readonly inPort: number, readonly slotBytes = 512, readonly restore = false,
              readonly oneBuffer = false) {
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
  /** The next batch with its first `n` frames where recv would have put them. */
  take(n = BATCH): PacketBatch {
    const k = this.next;
    this.next = k + 1 === this.batches.length ? 0 : k + 1;
    const into = this.oneBuffer ? 0 : k;
    const b = this.batches[into];
    b.off.set(this.off0[k]);
    b.len.set(this.len0[k]);
    const p = this.pristine[k];
    if (p !== null) {
      // Fresh frames, as recv would deliver them: one frame-sized word copy each.
      for (let i = 0; i < n; i++) copyFrame(b.buf, this.words[into], b.off[i], p, this.pristineWords[k], b.off[i], b.len[i]);
    }
    return b;
  }
}

/**
 * A scenario's datapath and what feeds it: `rings` taken in turn, one batch each ((f) and (g):
 * one per direction); `decap`: each frame is decapsulated after take() ((c): decapVxlan,
 * standing in for the VXLAN netdev).
 */
export interface Setup {
  readonly dp: Datapath;
  readonly rings: readonly Ring[];
  readonly decap: boolean;
  /** A number to print after a run, to show the scenario did its work (frames out, rules). */
  check?(): number;
  debug?(): string;
}

/** Batch number `k` of a run of `s`, `n` frames of it ready (restored, decapsulated). */
export function nextBatch(s: Setup, k: number, n = BATCH): PacketBatch {
  const rings = s.rings;
  const b = rings[rings.length === 1 ? 0 : k % rings.length].take(n);
  if (s.decap) for (let i = 0; i < n; i++) decapVxlan(b, i);
  return b;
}

/** Sends `frame` alone through `dp` from datapath port `port` (a scenario's warm-up). */
function sendOne(dp: Datapath, frame: Uint8Array, port: number): void {
  const b = new PacketBatch(1); b.append(frame); b.inPort[0] = port;
  dp.processBatch(b, 1);
}

export const VM2 = 0xfa163e000220;
export const VXLAN_DESC: TunnelDesc = { kind: 'vxlan', localIp: 0xc0a8640b, remoteIp: 0xc0a8640c,
  srcMac: 0x525400000011, nextHopMac: 0x525400000012, dstPort: 4789, ttl: 64, tos: 0 };
const TUNNEL_ENDS = new Map<string, TunnelEnds>([['vxlan-c0a8640c', { localIp: 0xc0a8640b, remoteIp: 0xc0a8640c }]]);

/** (a): one flow, in_port -> output, frames not restored (nothing rewrites them). */
export function setupA(slotBytes = 512, txFromInput = true): Setup {
  const up = new FixedUpcaller([{ kind: 'output', port: 2 }], maskOf([[W_IN_PORT, 0xffffffff]]));
  const dp = new Datapath({ upcaller: up });
  dp.addPort(1, new SinkNetdev('p1', txFromInput)); dp.addPort(2, new SinkNetdev('p2', txFromInput));
  const ring = new Ring([frame64(0x020000000002, 0x020000000001, 0x0a000101, 0x0a000102)], 1, slotBytes);
  return { dp, rings: [ring], decap: false };
}

/** One datapath over real bridges (ofproto/bridge.ts + xlate through OfprotoUpcaller). */
export function ofprotoDatapath(bridges: { br: Bridge; tunnels?: Map<string, TunnelEnds> }[], tunnelDesc: TunnelDesc,
                                maxUpcallsPerBatch = 64, txFromInput = true):
    { dp: Datapath; ofp: Ofproto; up: OfprotoUpcaller; dpOf: (br: string, ofport: number) => number } {
  const ofp = new Ofproto();
  for (const b of bridges) ofp.addBridge(new BridgeView(b.br, b.tunnels ?? new Map()));
  let dp: Datapath | null = null;
  const up = new OfprotoUpcaller(ofp, Date.now, () => dp?.rulesChanged());
  dp = new Datapath({ upcaller: up, maxUpcallsPerBatch });
  for (const info of ofp.dpPorts()) {
    dp.addPort(info.dpPort, new SinkNetdev(info.port.name, txFromInput), info.port.kind === 'tunnel' ? tunnelDesc : null);
  }
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

/** (b): br-int -> br-tun ending in VXLAN encap, 1k flows (UDP destination ports). */
export function setupB(txFromInput = true): Setup {
  const { brInt, brTun } = neutronBridges();
  const { dp, dpOf } = ofprotoDatapath([{ br: brInt }, { br: brTun, tunnels: TUNNEL_ENDS }], VXLAN_DESC, 64, txFromInput);
  const frames: Uint8Array[] = [];
  for (let k = 0; k < 1024; k++) frames.push(frame64(0xfa163e0a0001, 0xfa163e000110, 0x0a00010a, 0x0a000214));
  for (let k = 0; k < 1024; k++) { frames[k][37] = k & 0xff; frames[k][36] = 0x20 | (k >>> 8); } // 1k UDP dst ports
  return { dp, rings: [new Ring(frames, dpOf('br-int', 1), 512, true)], decap: false,
    check() { return dp.ports.byNo(dpOf('br-tun', 2))?.txPackets ?? 0; },
    debug() { return perfStats(dp) + dumpCache(dp).slice(0, 2000); } };
}

/** (c): VXLAN decap -> br-int delivery, 1k flows. */
export function setupC(txFromInput = true): Setup {
  const { brInt, brTun } = neutronBridges();
  const { dp, dpOf } = ofprotoDatapath([{ br: brInt }, { br: brTun, tunnels: TUNNEL_ENDS }], VXLAN_DESC, 64, txFromInput);
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
  return { dp, rings: [new Ring(frames, dpOf('br-tun', 2), 512, true)], decap: true,
    check() { return dp.ports.byNo(dpOf('br-int', 3))?.txPackets ?? 0; },
    debug() {
      const st = dp.megaflows.subtables.map((t) => Array.from(t.mask).map((x, w) => x ? `${w}:${x.toString(16)}` : '').filter(Boolean).join(' '));
      const ids = dp.megaflows.liveIds().slice(0, 3).map((id) => Array.from(dp.megaflows.value.subarray(id * KEY_WORDS, id * KEY_WORDS + 16)).map((x) => x.toString(16)).join(' '));
      return perfStats(dp) + st.join('\n') + '\n' + ids.join('\n');
    } };
}

/**
 * (d): 100k flows, one megaflow per destination MAC, EMC insertion 1/`insertInvProb` (0: off);
 * `alwaysLookup`: the EMC looked up for every frame (its lookup policy off).
 */
export function setupD(insertInvProb: number, alwaysLookup = false, txFromInput = true): Setup {
  const mask = maskOf([[W_IN_PORT, 0xffffffff], [W_DL_DST_HI, 0xffff], [W_DL_DST_LO, 0xffffffff]]);
  const dp = new Datapath({ upcaller: new FixedUpcaller([{ kind: 'output', port: 2 }], mask), emcInsertInvProb: insertInvProb });
  if (alwaysLookup) dp.emc.lookupPolicy = EMC_ALWAYS;
  dp.addPort(1, new SinkNetdev('p1', txFromInput)); dp.addPort(2, new SinkNetdev('p2', txFromInput));
  const frames: Uint8Array[] = [];
  for (let k = 0; k < 100000; k++) frames.push(frame64(0x020000000000 + (k & 15), 0x020000000001, 0x0a000000 + k, 0x0a100001));
  // Shuffle so consecutive batches do not share flows.
  let x = 12345;
  for (let k = frames.length - 1; k > 0; k--) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; const j = x % (k + 1); const t = frames[k]; frames[k] = frames[j]; frames[j] = t; }
  return { dp, rings: [new Ring(frames, 1, 256)], decap: false };
}

/** (e): 10k rules in one bridge (9k MACs, 999 prefixes, NORMAL); every frame a new megaflow. */
export function setupE(txFromInput = true): Setup {
  const br = new Bridge('br0', 0, { defaultFlow: true });
  for (let p = 1; p <= 4; p++) br.addPort({ name: `p${p}`, ofport: p, kind: 'afpacket' });
  const lines: string[] = [];
  const mac = (k: number) => `02:00:00:01:${((k >>> 8) & 0xff).toString(16).padStart(2, '0')}:${(k & 0xff).toString(16).padStart(2, '0')}`;
  for (let k = 0; k < 9000; k++) lines.push(`priority=100,dl_dst=${mac(k)},actions=output:2`);
  for (let k = 0; k < 999; k++) lines.push(`priority=50,ip,nw_dst=11.${k >>> 8}.${k & 0xff}.0/24,actions=output:3`);
  br.addFlows(lines.join('\n'), 0); // + table 0's priority=0 NORMAL: 10k rules
  const { dp, dpOf } = ofprotoDatapath([{ br }], VXLAN_DESC, BATCH, txFromInput);
  const frames: Uint8Array[] = [];
  for (let k = 0; k < 8192; k++) frames.push(frame64(0x020000010000 + k, 0x020000000001, 0x0a000001, 0x0b000001 + ((k % 999) << 8)));
  return { dp, rings: [new Ring(frames, dpOf('br0', 1))], decap: false, check() { return br.allRules().length; },
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

/** (f): an established TCP connection through ct(zone=7,nat) + SNAT; rings out, back in turn. */
export function setupF(txFromInput = true): Setup {
  const br = new Bridge('br0', 0, { defaultFlow: false });
  br.addPort({ name: 'in', ofport: 1, kind: 'afpacket' });
  br.addPort({ name: 'out', ofport: 2, kind: 'afpacket' });
  br.addFlows(SNAT_ROUTER, 0);
  const { dp, dpOf } = ofprotoDatapath([{ br }], VXLAN_DESC, 64, txFromInput);
  const vm = 0x0a000005, server = 0xcb007107, fip = 0xac18040a;
  // Open the connection: SYN out (committed, SNAT), SYN-ACK back (established).
  const syn = tcpAck(vm, server, 40000, 80); syn[47] = 0x02;
  const synAck = tcpAck(server, fip, 80, 40000); synAck[47] = 0x12;
  sendOne(dp, syn, dpOf('br0', 1));
  sendOne(dp, synAck, dpOf('br0', 2));
  // Both rings restore their frames: conntrack NATs them in place.
  const out = new Ring([tcpAck(vm, server, 40000, 80)], dpOf('br0', 1), 512, true);
  const back = new Ring([tcpAck(server, fip, 80, 40000)], dpOf('br0', 2), 512, true);
  return { dp, rings: [out, back], decap: false,
    check() { return (dp.ports.byNo(dpOf('br0', 1))?.txPackets ?? 0) + (dp.ports.byNo(dpOf('br0', 2))?.txPackets ?? 0); },
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

/**
 * (g): C1's generated br-int of examples/topologies/security-groups.yaml, an established TCP
 * stream WEB2 -> WEB1:80 (from patch-tun, VLAN 1) and WEB1's replies; rings in, out in turn.
 */
export function setupG(txFromInput = true): Setup {
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
  const { dp, dpOf } = ofprotoDatapath([{ br }], VXLAN_DESC, 64, txFromInput);
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
  for (const [f, port] of [[arp, fromTun], [req(0x02), fromTun], [rpl(0x12), fromVm], [req(0x10), fromTun]] as const) sendOne(dp, f, port);
  // Both rings restore their frames: the programs pop and push the VLAN tag in place.
  const inward = new Ring([req(0x10)], fromTun, 512, true), outward = new Ring([rpl(0x10)], fromVm, 512, true);
  return { dp, rings: [inward, outward], decap: false,
    check() { return (dp.ports.byNo(fromTun)?.txPackets ?? 0) + (dp.ports.byNo(fromVm)?.txPackets ?? 0); },
    debug() { return perfStats(dp) + dumpCache(dp).slice(0, 3000); } };
}
