/**
 * `lab check`: the acceptance expectations of dvr-reference.md ("Expected on the wire"), checked
 * on a running lab with captures on the wires, byte for byte: for every pair of VMs a router
 * joins, a ping while tcpdump records each node's underlay device and both VMs' interfaces.
 *
 * Per pair on different nodes and networks (east-west, routed on the sender's node):
 *   outer MACs/IPs are the two nodes' underlay addresses; VXLAN to 4789 with flags 0x08 and the
 *   DESTINATION network's VNI (GRE: protocol 0x6558, key = segmentation id); outer UDP source
 *   port a flow hash in 32768..61000; inner source = the sender node's DVR MAC, inner
 *   destination = the receiving VM's MAC, TTL 63; the VM sees its own gateway MAC as source;
 *   the reply travels with the other network's VNI; no other node sees a tunnel frame; no
 *   frame on any wire carries a gateway MAC as source; no ARP for a gateway IP crosses a tunnel.
 * Per pair on one network on different nodes (switched): the network's VNI / key, inner VM MAC
 * -> VM MAC, TTL 64 (no router on the way), the VM sees the other VM's MAC.
 * Per pair on one node: routed or switched locally, nothing on that node's underlay.
 * Pairs where a network is vlan or flat are lab-check-physical.ts's (the physical wire).
 * Isolation (runIsolationChecks): for every pair of VMs no router joins whose subnets overlap
 * (two projects with the same address plan), a pings b's address: no reply (or the reply of
 * the VM of a's own project that has the same address), b sees nothing from a, and no tunnel
 * frame of the ping carries b's network's VNI / key.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cidrsOverlap } from '../dvr/addr';
import { isTunnelNetwork, Topology, TopoPort } from '../dvr/topology';
import { LabState, nodeNs, vmNs } from './lab-state';
import { framesOf, pingAll, PingCount, PING_PARALLEL } from './ping';
import { allows } from './sg-model';

export interface CheckResult {
  name: string;
  pass: boolean;
  detail: string;
}

/** A tcpdump writing one interface of one namespace to a capture file. */
export interface Capture {
  file: string;
  proc: ChildProcess;
  /** Settles when tcpdump records (it said "listening on"), has exited, or after 10 s. */
  ready: Promise<void>;
}

const CAPTURE_READY_MAX_MS = 10_000;

/** `direction` 'out': only what the interface sends (tcpdump -Q out), e.g. what a node puts on a wire. */
export function startCapture(ns: string, iface: string, file: string, direction: 'inout' | 'out' = 'inout'): Capture {
  // --immediate-mode: libpcap's ring otherwise hands frames over only when a block fills or
  // its 1 s timer fires, and a capture stopped sooner (SIGINT) loses what the block held.
  const proc = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '--immediate-mode', '-i', iface,
    ...(direction === 'out' ? ['-Q', 'out'] : []), '-U', '-n', '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  const ready = new Promise<void>((resolve) => {
    let said = '';
    const timer = setTimeout(resolve, CAPTURE_READY_MAX_MS);
    const done = (): void => { clearTimeout(timer); resolve(); };
    proc.stderr?.on('data', (b: Buffer) => {
      said = (said + b.toString()).slice(-200);
      if (said.includes('listening on')) done();
    });
    proc.once('exit', done);
  });
  return { file, proc, ready };
}

/**
 * Waits until every capture records. A fixed sleep is not enough on a loaded machine: a frame
 * sent before tcpdump opened its socket is on no capture, and a check fails that should not.
 */
export async function capturesReady(caps: Iterable<Capture>): Promise<void> {
  await Promise.all(Array.from(caps, (c) => c.ready));
}

/** Waits for late frames, then stops tcpdump (SIGINT, so it flushes) and waits for it. */
export async function stopCapture(c: Capture): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  await new Promise<void>((resolve) => {
    if (c.proc.exitCode !== null) { resolve(); return; }
    c.proc.once('exit', () => resolve());
    c.proc.kill('SIGINT');
  });
}

/** Stops every capture of a check at once: one wait for late frames, not one per capture. */
export async function stopCaptures(caps: Iterable<Capture>): Promise<void> {
  await Promise.all(Array.from(caps, (c) => stopCapture(c)));
}

export const mac = (b: Uint8Array, o: number): string =>
  Array.from(b.subarray(o, o + 6), (x) => x.toString(16).padStart(2, '0')).join(':');
export const ip4 = (b: Uint8Array, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
const ICMP = 1;
const ICMP_ECHO = 8;
const u16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];

/** What a frame on a wire is, as far as the checks care. */
interface Seen {
  src: string;
  dst: string;
  tunnel: null | { kind: 'vxlan' | 'gre'; outerSrcIp: string; outerDstIp: string; id: number; flags: number; srcPort: number };
  inner: { src: string; dst: string; type: number; ipSrc: string; ipDst: string; ttl: number; icmpType: number; arpTpa: string };
}

function innerOf(b: Uint8Array, o: number): Seen['inner'] {
  const r = { src: mac(b, o + 6), dst: mac(b, o), type: u16(b, o + 12), ipSrc: '', ipDst: '', ttl: -1, icmpType: -1, arpTpa: '' };
  if (r.type === 0x0800 && b.length >= o + 34) {
    r.ipSrc = ip4(b, o + 26);
    r.ipDst = ip4(b, o + 30);
    r.ttl = b[o + 22];
    if (b[o + 23] === 1) r.icmpType = b[o + 14 + ((b[o + 14] & 15) << 2)];
  } else if (r.type === 0x0806 && b.length >= o + 42) {
    r.arpTpa = ip4(b, o + 38);
  }
  return r;
}

export function classify(b: Uint8Array): Seen {
  const s: Seen = { src: mac(b, 6), dst: mac(b, 0), tunnel: null, inner: innerOf(b, 0) };
  if (u16(b, 12) !== 0x0800 || b.length < 34) return s;
  const ihl = (b[14] & 15) << 2;
  const l4 = 14 + ihl;
  if (b[23] === 17 && b.length >= l4 + 16 + 14 && u16(b, l4 + 2) === 4789) {
    s.tunnel = { kind: 'vxlan', outerSrcIp: ip4(b, 26), outerDstIp: ip4(b, 30), flags: b[l4 + 8],
      id: (b[l4 + 12] << 16) | (b[l4 + 13] << 8) | b[l4 + 14], srcPort: u16(b, l4) };
    s.inner = innerOf(b, l4 + 16);
  } else if (b[23] === 47 && b.length >= l4 + 8) {
    const f = b[l4];
    const keyOff = l4 + 4 + ((f & 0x80) ? 4 : 0);
    const hlen = 4 + ((f & 0x80) ? 4 : 0) + ((f & 0x20) ? 4 : 0) + ((f & 0x10) ? 4 : 0);
    s.tunnel = { kind: 'gre', outerSrcIp: ip4(b, 26), outerDstIp: ip4(b, 30), flags: u16(b, l4 + 2),
      id: (f & 0x20) ? ((b[keyOff] << 24) | (b[keyOff + 1] << 16) | (b[keyOff + 2] << 8) | b[keyOff + 3]) >>> 0 : -1, srcPort: -1 };
    s.inner = innerOf(b, l4 + hlen);
  }
  return s;
}

function gwMacOf(t: Topology, p: TopoPort): string {
  const sn = p.fixedIps[0]?.subnet;
  for (const r of t.routers) for (const i of r.interfaces) if (i.subnet === sn) return i.mac.toLowerCase();
  return '';
}

function joined(t: Topology, a: TopoPort, b: TopoPort): boolean {
  return t.routers.some((r) => {
    const nets = r.interfaces.map((i) => t.subnets.find((s) => s.name === i.subnet)?.network);
    return nets.includes(a.network) && nets.includes(b.network);
  });
}

/**
 * Splits `pairs` into rounds whose pings run at once, in order: no VM and no address is in two
 * pairs of a round, so each check, which picks its pair's frames by the pair's two addresses
 * (and the VMs' own captures), sees what it saw with the pair alone. `bothWays`: a pair's two
 * directions (a -> b, b -> a) may share a round, for checks that tell them apart by ICMP type
 * and the addresses' order or assert the same of both (east-west; not isolation, where b's
 * ping to a's address is answered by a's twin with a's address). Rounds hold at most
 * PING_PARALLEL pings. Pure.
 */
export function pingRounds<P extends { a: TopoPort; b: TopoPort }>(pairs: readonly P[], bothWays: boolean): P[][] {
  const rounds: { pairs: P[]; owner: Map<string, string> }[] = [];
  for (const pr of pairs) {
    const names = [pr.a.name, pr.b.name];
    const who = bothWays ? names.sort().join(' ') : names.join(' ');
    const keys = [`vm:${pr.a.name}`, `vm:${pr.b.name}`, ...[pr.a, pr.b].flatMap((p) => p.fixedIps.map((f) => `ip:${f.ip}`))];
    let r = rounds.find((x) => x.pairs.length < PING_PARALLEL && keys.every((k) => (x.owner.get(k) ?? who) === who));
    if (r === undefined) { r = { pairs: [], owner: new Map() }; rounds.push(r); }
    r.pairs.push(pr);
    for (const k of keys) r.owner.set(k, who);
  }
  return rounds.map((r) => r.pairs);
}

/** The frames of one round: every node's underlay and each VM of the round's pairs, classified. */
async function captureRound(t: Topology, dir: string, tag: string, vms: readonly TopoPort[],
                            act: () => Promise<void>): Promise<Map<string, Seen[]>> {
  const caps = new Map<string, Capture>();
  for (const n of t.nodes) caps.set(`wire:${n.name}`, startCapture(nodeNs(n), n.underlayDevice, path.join(dir, `${tag}-${n.name}.pcap`)));
  for (const v of vms) caps.set(`vm:${v.name}`, startCapture(vmNs(v), 'eth0', path.join(dir, `${tag}-${v.name}.pcap`)));
  await capturesReady(caps.values());
  await act();
  await stopCaptures(caps.values());
  const seen = new Map<string, Seen[]>();
  for (const [k, c] of caps) seen.set(k, fs.existsSync(c.file) ? (await framesOf(c.file)).map(classify) : []);
  return seen;
}

export async function runChecks(t: Topology, st: LabState): Promise<CheckResult[]> {
  const res: CheckResult[] = [];
  const add = (name: string, pass: boolean, detail = ''): void => { res.push({ name, pass, detail }); };
  const dir = path.join(st.stateDir, 'captures');
  fs.mkdirSync(dir, { recursive: true });
  const vms = t.ports.filter((p) => p.node !== '' && p.fixedIps.length > 0);
  const onTunnels = (p: TopoPort): boolean => t.networks.some((n) => n.name === p.network && isTunnelNetwork(n));
  const pairs: { a: TopoPort; b: TopoPort }[] = [];
  let physicalPairs = 0;
  for (const a of vms) {
    for (const b of vms) {
      if (a === b || !(a.network === b.network || joined(t, a, b))) continue;
      // A ping the security groups refuse is the security-group checks' business (lab-check-sg.ts).
      if (!allows(t, a, b, ICMP, ICMP_ECHO)) continue;
      if (!onTunnels(a) || !onTunnels(b)) { physicalPairs++; continue; }
      pairs.push({ a, b });
    }
  }
  // Pairs of one round ping at once (pingRounds); results are added in the order of `pairs`.
  const byPair = new Map<{ a: TopoPort; b: TopoPort }, CheckResult[]>();
  let roundNo = 0;
  for (const round of pingRounds(pairs, true)) {
    roundNo++;
    let got: PingCount[] = [];
    const seen = await captureRound(t, dir, `r${roundNo}`, [...new Set(round.flatMap((x) => [x.a, x.b]))], async () => {
      got = await pingAll(round.map(({ a, b }) => ({ fromNs: vmNs(a), ip: b.fixedIps[0].ip, count: 3 })));
    });
    round.forEach((x, i) => byPair.set(x, checkPair(t, x.a, x.b, got[i], seen)));
  }
  for (const x of pairs) res.push(...byPair.get(x)!);
  if (pairs.length === 0 && physicalPairs === 0) add('the topology has VM pairs a router joins', false, 'nothing to check');
  return res;
}

/**
 * The checks of one pair a -> b (see the header) on the frames of its round: `pr` is a's ping,
 * `seen` every node's underlay (`wire:<node>`) and each VM's interface (`vm:<name>`).
 */
function checkPair(t: Topology, a: TopoPort, b: TopoPort, pr: PingCount, seenAll: Map<string, Seen[]>): CheckResult[] {
  const res: CheckResult[] = [];
  const add = (name: string, pass: boolean, detail = ''): void => { res.push({ name, pass, detail }); };
  const gwMacs = new Set(t.routers.flatMap((r) => r.interfaces.map((i) => i.mac.toLowerCase())));
  const gwIps = new Set(t.subnets.map((s) => s.gatewayIp));
  const nodeByName = new Map(t.nodes.map((n) => [n.name, n]));
  const label = `${a.name}->${b.name}`;
  add(`${label}: ping ${b.fixedIps[0].ip} from ${a.name}`, pr.received === pr.sent && pr.sent > 0, `${pr.received}/${pr.sent}, rtt ${pr.rttMs} ms`);
  // The round's wires, and this pair's two VMs as vm:a and vm:b.
  const seen = new Map<string, Seen[]>([...seenAll].filter(([k]) => k.startsWith('wire:')));
  seen.set('vm:a', seenAll.get(`vm:${a.name}`) ?? []);
  seen.set('vm:b', seenAll.get(`vm:${b.name}`) ?? []);
  const na = nodeByName.get(a.node)!;
  const nb = nodeByName.get(b.node)!;
  const netA = t.networks.find((n) => n.name === a.network)!;
  const netB = t.networks.find((n) => n.name === b.network)!;
  const aIp = a.fixedIps[0].ip, bIp = b.fixedIps[0].ip;
  const routed = a.network !== b.network;
  // Switched: the frame keeps the VM's MAC and TTL; routed: the DVR MAC of the node, TTL 63.
  const ttl = routed ? 63 : 64;
  const srcOf = (n: typeof na, p: TopoPort): string => (routed ? n.dvrMac : p.mac).toLowerCase();
  const seenFrom = (p: TopoPort, other: TopoPort): string => (routed ? gwMacOf(t, p) : other.mac.toLowerCase());
  if (a.node === b.node) {
    const tun = (seen.get(`wire:${a.node}`) ?? []).filter((s) => s.tunnel !== null && [aIp, bIp].includes(s.inner.ipSrc) && [aIp, bIp].includes(s.inner.ipDst));
    add(`${label}: ${routed ? 'routed' : 'switched'} on ${a.node}, nothing on its underlay`, tun.length === 0, `${tun.length} tunnel frames`);
  } else {
    const wireA = seen.get(`wire:${a.node}`) ?? [];
    const req = wireA.find((s) => s.tunnel !== null && s.inner.icmpType === 8 && s.inner.ipSrc === aIp && s.inner.ipDst === bIp);
    add(`${label}: request leaves ${a.node} for ${b.node} on the underlay`, req !== undefined && req.src === na.underlayMac.toLowerCase() &&
      req.dst === nb.underlayMac.toLowerCase() && req.tunnel!.outerSrcIp === na.localIp && req.tunnel!.outerDstIp === nb.localIp,
    req ? `${req.src} -> ${req.dst}, ${req.tunnel!.outerSrcIp} -> ${req.tunnel!.outerDstIp}` : 'no such frame');
    if (req !== undefined) {
      const tn = req.tunnel!;
      if (netB.type === 'gre') {
        add(`${label}: GRE protocol 0x6558, key ${netB.segmentationId} (the destination network's)`, tn.kind === 'gre' && tn.flags === 0x6558 && tn.id === netB.segmentationId, `${tn.kind} proto 0x${tn.flags.toString(16)} key ${tn.id}`);
      } else {
        add(`${label}: VXLAN to 4789, flags 0x08, VNI ${netB.segmentationId} (the destination network's)`, tn.kind === 'vxlan' && tn.flags === 0x08 && tn.id === netB.segmentationId, `${tn.kind} flags 0x${tn.flags.toString(16)} VNI ${tn.id}`);
        add(`${label}: outer UDP source port is a flow hash in 32768..61000`, tn.srcPort >= 32768 && tn.srcPort <= 61000, `port ${tn.srcPort}`);
      }
      add(`${label}: inner ${srcOf(na, a)} -> ${b.mac}, TTL ${ttl}`, req.inner.src === srcOf(na, a) && req.inner.dst === b.mac.toLowerCase() && req.inner.ttl === ttl,
        `${req.inner.src} -> ${req.inner.dst}, TTL ${req.inner.ttl}`);
    }
    const atB = (seen.get('vm:b') ?? []).find((s) => s.inner.icmpType === 8 && s.inner.ipSrc === aIp);
    add(`${label}: ${b.name} receives it from ${routed ? 'its gateway ' : ''}${seenFrom(b, a)}, TTL ${ttl}`, atB !== undefined && atB.src === seenFrom(b, a) && atB.inner.ttl === ttl,
      atB ? `from ${atB.src}, TTL ${atB.inner.ttl}` : 'not received');
    const wireB = seen.get(`wire:${b.node}`) ?? [];
    const rep = wireB.find((s) => s.tunnel !== null && s.inner.icmpType === 0 && s.inner.ipSrc === bIp && s.inner.ipDst === aIp);
    const repId = netA.segmentationId;
    add(`${label}: reply ${b.node} -> ${a.node} with ${netA.type === 'gre' ? 'GRE key' : 'VNI'} ${repId}, inner source ${srcOf(nb, b)}`,
      rep !== undefined && rep.tunnel!.kind === netA.type && rep.tunnel!.id === repId && rep.inner.src === srcOf(nb, b),
      rep ? `id ${rep.tunnel!.id}, inner src ${rep.inner.src}` : 'no such frame');
    const atA = (seen.get('vm:a') ?? []).find((s) => s.inner.icmpType === 0 && s.inner.ipSrc === bIp);
    add(`${label}: ${a.name} gets the reply from ${seenFrom(a, b)}, TTL ${ttl}`, atA !== undefined && atA.src === seenFrom(a, b) && atA.inner.ttl === ttl,
      atA ? `from ${atA.src}, TTL ${atA.inner.ttl}` : 'not received');
    for (const n of t.nodes) {
      if (n.name === a.node || n.name === b.node) continue;
      // Frames of this ping only: other traffic may cross the tunnels meanwhile (VRRP adverts
      // on an HA network, DHCP renewals).
      const tun = (seen.get(`wire:${n.name}`) ?? []).filter((s) => s.tunnel !== null && (s.tunnel.outerDstIp === n.localIp || s.tunnel.outerSrcIp === n.localIp) &&
        (s.inner.ipSrc === aIp || s.inner.ipSrc === bIp || s.inner.ipDst === aIp || s.inner.ipDst === bIp));
      add(`${label}: nothing reaches ${n.name}`, tun.length === 0, `${tun.length} tunnel frames to or from ${n.localIp}`);
    }
  }
  let gwSrc = 0, gwArp = 0;
  for (const [k, frames] of seen) {
    for (const s of frames) {
      if (k.startsWith('wire:') && (gwMacs.has(s.src) || (s.tunnel !== null && gwMacs.has(s.inner.src)))) gwSrc++;
      if (s.tunnel !== null && s.inner.type === 0x0806 && gwIps.has(s.inner.arpTpa)) gwArp++;
    }
  }
  add(`${label}: no frame on an underlay wire has a gateway MAC as source`, gwSrc === 0, `${gwSrc} frames`);
  add(`${label}: no ARP for a gateway IP crosses a tunnel`, gwArp === 0, `${gwArp} frames`);
  return res;
}

function overlaps(t: Topology, a: TopoPort, b: TopoPort): boolean {
  const sa = t.subnets.find((s) => s.name === a.fixedIps[0].subnet)!;
  const sb = t.subnets.find((s) => s.name === b.fixedIps[0].subnet)!;
  return cidrsOverlap(sa.cidr, sb.cidr);
}

/**
 * The ordered pairs the isolation checks ping: bound VMs on different networks no router
 * joins, whose subnets overlap; `twin` is the VM of a's own project (a itself, or one a
 * reaches) that has b's address and answers instead, when there is one. Pure.
 */
export function isolationPairs(t: Topology): { a: TopoPort; b: TopoPort; twin: TopoPort | undefined }[] {
  const vms = t.ports.filter((p) => p.node !== '' && p.fixedIps.length > 0);
  const out: { a: TopoPort; b: TopoPort; twin: TopoPort | undefined }[] = [];
  for (const a of vms) {
    for (const b of vms) {
      if (a === b || a.network === b.network || joined(t, a, b) || !overlaps(t, a, b)) continue;
      const bIp = b.fixedIps[0].ip;
      out.push({ a, b, twin: vms.find((c) => c !== b && c.fixedIps[0].ip === bIp && (c === a || c.network === a.network || joined(t, a, c))) });
    }
  }
  return out;
}

/**
 * Isolation of projects with overlapping subnets (see the header): every ordered pair of bound
 * VMs on different networks no router joins, whose subnets overlap. a pings b's address once.
 */
export async function runIsolationChecks(t: Topology, st: LabState): Promise<CheckResult[]> {
  const res: CheckResult[] = [];
  const dir = path.join(st.stateDir, 'captures');
  fs.mkdirSync(dir, { recursive: true });
  // Pairs of one round ping at once (pingRounds: no VM or address in two pairs of a round).
  const pairs = isolationPairs(t);
  const byPair = new Map<(typeof pairs)[number], CheckResult[]>();
  let roundNo = 0;
  for (const round of pingRounds(pairs, false)) {
    roundNo++;
    let got: PingCount[] = [];
    const seen = await captureRound(t, dir, `iso${roundNo}`, round.map((x) => x.b), async () => {
      got = await pingAll(round.map(({ a, b }) => ({ fromNs: vmNs(a), ip: b.fixedIps[0].ip, count: 2 })));
    });
    round.forEach((x, i) => byPair.set(x, checkIsolation(t, x, got[i], seen)));
  }
  for (const x of pairs) res.push(...byPair.get(x)!);
  return res;
}

/** The isolation checks of one pair on the frames of its round (`seen` as in checkPair). */
function checkIsolation(t: Topology, { a, b, twin }: { a: TopoPort; b: TopoPort; twin: TopoPort | undefined }, pr: PingCount,
                        seen: Map<string, Seen[]>): CheckResult[] {
  const res: CheckResult[] = [];
  const add = (name: string, pass: boolean, detail = ''): void => { res.push({ name, pass, detail }); };
  const aIp = a.fixedIps[0].ip, bIp = b.fixedIps[0].ip;
  const netB = t.networks.find((x) => x.name === b.network)!;
  const label = `isolation ${a.name} (${a.network}) -> ${b.name} (${b.network}, ${bIp})`;
  if (twin === undefined) add(`${label}: no reply`, pr.sent > 0 && pr.received === 0, `${pr.received}/${pr.sent}`);
  else add(`${label}: answered by ${twin === a ? `${a.name} itself` : `${twin.name} of ${a.name}'s own project`} (the same address), not by ${b.name}`, pr.sent > 0 && pr.received === pr.sent, `${pr.received}/${pr.sent}`);
  const atB = (seen.get(`vm:${b.name}`) ?? []).filter((s) => s.src === a.mac.toLowerCase() || s.inner.src === a.mac.toLowerCase() ||
    (s.inner.icmpType === 8 && s.inner.ipSrc === aIp)).length;
  add(`${label}: ${b.name} sees nothing from ${a.name} (${a.mac}, ${aIp})`, atB === 0, `${atB} frames`);
  if (isTunnelNetwork(netB)) {
    const cross = [...seen].filter(([k]) => k.startsWith('wire:')).flatMap(([, f]) => f)
      .filter((s) => s.tunnel !== null && s.tunnel.kind === netB.type && s.tunnel.id === netB.segmentationId &&
        (s.inner.src === a.mac.toLowerCase() || (s.inner.ipSrc === aIp && s.inner.ipDst === bIp))).length;
    add(`${label}: nothing of it crosses a tunnel with ${b.network}'s ${netB.type === 'gre' ? 'GRE key' : 'VNI'} ${netB.segmentationId}`, cross === 0, `${cross} frames`);
  }
  return res;
}
