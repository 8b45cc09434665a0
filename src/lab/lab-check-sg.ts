/**
 * `lab check`, security-group part (issue 13): what Neutron's OVS firewall driver promises,
 * proved on a running lab with probes in the VMs (lab/sg-probe.ts), captures on every node's
 * underlay and the VMs' interfaces, and the nodes' firewall drop counters (flowctl dump-ports).
 * Every scenario is derived from the topology's groups, rules and ports through
 * lab/sg-model.ts, none is written for one file:
 *
 * - allowed: for each filtered port and TCP port its ingress rules name, a source the model
 *   allows connects (and its 5 bytes come back), one from another node and one from the same
 *   node when the topology has such a source;
 * - return traffic: one of those connections whose source has no ingress rule for TCP from the
 *   destination to an ephemeral port;
 * - egress denied: a SYN the sender's egress rules refuse is on no underlay wire and counted
 *   no_rule on the sender's port;
 * - ingress denied: a SYN the destination's ingress rules refuse crosses the underlay, never
 *   reaches the destination VM, and is counted no_rule on the destination's port;
 * - spoofing: a filtered VM sends a frame with an address it does not own as source IP, one
 *   with another source MAC, an ARP reply for another's IP, and a broadcast DHCP server reply
 *   (acting as a DHCP server, from its own addresses), towards a VM on another node: none is
 *   on any underlay wire nor at that VM, each counted spoofed on the sender's port;
 * - allowed address pairs: the VM adds the pair's address to its interface, and a source the
 *   model allows pings it;
 * - port security off: the port sends from an address the topology does not give it;
 * - rule removed live (file store only): while a TCP stream runs to a port a rule opens and one
 *   to a port another rule opens, that rule is deleted from the topology file: the first stream
 *   stops within a second (counted killed), the second goes on; the file is restored and the
 *   connection opens again.
 *
 * Called by: lab/lab.ts (`lab check`, when sgChecksApply) and test/integration/sg-lab.test.ts.
 * Owns the probe processes and captures it starts; stops them before returning; restores the
 * topology file it edits, also on failure.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDocument, isMap, isSeq, YAMLSeq } from 'yaml';
import type { Topology, TopoPort } from '../dvr/topology';
import { IPPROTO_ICMP, IPPROTO_TCP, SecurityGroup, SgRule } from '../dvr/topology-sg';
import { request } from '../control/client';
import { Capture, capturesReady, CheckResult, startCapture, stopCaptures } from './lab-check';
import { LabState, nodeNs, vmNs } from './lab-state';
import { framesOf, ping } from './ping';
import {
  allows, egressAllows, ingressAllows, ingressOpensRange, isFiltered, reachable, SkipRule, tcpRulePorts, unusedAddress,
} from './sg-model';
import { ARP_OP_REPLY, buildArpFrame } from '../packet/arp';
import { ipv4FromString } from '../packet/ipv4';
import { buildUdp4Frame } from '../packet/udp';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const PROBE = path.join(ROOT, 'dist', 'src', 'cli', 'sg-probe.js');
/** Linux's ephemeral ports (net.ipv4.ip_local_port_range): where a client's replies arrive. */
const EPHEMERAL = [32768, 60999] as const;
const CONNECT_WAIT_MS = 3000;
const DENIED_WAIT_MS = 1500;
/** A stream must stop this soon after its rule leaves the file (issue 13). */
const STOP_WITHIN_MS = 1000;

/** True when `lab check` should run these checks: some node filters a bound VM port. */
export function sgChecksApply(t: Topology): boolean {
  return t.ports.some((p) => p.node !== '' && p.fixedIps.length > 0 && isFiltered(t, p));
}

function probeSync(ns: string, args: string[], timeoutMs = 10000): Record<string, unknown> {
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, PROBE, ...args], { encoding: 'utf8', timeout: timeoutMs });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { error: `sg-probe ${args[0]}: ${(r.stderr ?? '').trim().split('\n').pop() ?? ''} (exit ${r.status})` };
  }
}

/** A probe running in the background (listen, stream): its JSON lines as they come. */
interface Running { proc: ChildProcess; lines: Record<string, unknown>[]; exited: Promise<void> }

function probeStart(ns: string, args: string[]): Running {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, PROBE, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  proc.stdout?.on('data', (b: Buffer) => {
    buf += b.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      try { lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>); } catch { /* not a probe line */ }
      buf = buf.slice(i + 1);
    }
  });
  const exited = new Promise<void>((r) => { proc.once('exit', () => r()); });
  return { proc, lines, exited };
}

async function listenOn(ns: string, ports: number[]): Promise<Running> {
  const l = probeStart(ns, ['listen', ...ports.map(String)]);
  for (let k = 0; k < 100 && !l.lines.some((x) => x.ready === true) && l.proc.exitCode === null; k++) await sleep(50);
  return l;
}

async function stop(r: Running): Promise<void> {
  if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGTERM');
  await r.exited;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Bytes a listener had received on `port` by time `tMs` (its last report at or before it). */
function bytesAt(l: Running, port: number, tMs: number): number {
  let n = 0;
  for (const x of l.lines) if (x.port === port && typeof x.tMs === 'number' && x.tMs <= tMs) n = Number(x.bytes);
  return n;
}

type Drops = Record<'spoofed' | 'no_rule' | 'invalid' | 'killed', number>;

/** The firewall drops of VM port `p` on its node, by reason (flowctl dump-ports). */
async function dropsOf(st: LabState, p: TopoPort): Promise<Drops> {
  const zero: Drops = { spoofed: 0, no_rule: 0, invalid: 0, killed: 0 };
  const d = st.daemons.find((x) => x.node === p.node);
  if (d === undefined) return zero;
  const rows = await request(d.socket, 'dump-ports', { bridge: 'br-int', port: p.device, format: 'json' }, 3000);
  if (!Array.isArray(rows)) return zero;
  for (const r of rows) {
    if (r === null || typeof r !== 'object' || Array.isArray(r) || r.port !== p.device) continue;
    const fw = r.firewall_drops;
    if (fw !== null && typeof fw === 'object' && !Array.isArray(fw)) {
      return { spoofed: Number(fw.spoofed), no_rule: Number(fw.no_rule), invalid: Number(fw.invalid), killed: Number(fw.killed) };
    }
  }
  return zero;
}

/** The Ethernet frame inside a captured one: itself, or a VXLAN/GRE frame's inner frame. */
function innerFrame(b: Uint8Array): { f: Uint8Array; tunneled: boolean } {
  if (b.length < 34 || b[12] !== 0x08 || b[13] !== 0x00) return { f: b, tunneled: false };
  const l4 = 14 + ((b[14] & 15) << 2);
  if (b[23] === 17 && b.length >= l4 + 30 && ((b[l4 + 2] << 8) | b[l4 + 3]) === 4789) return { f: b.subarray(l4 + 16), tunneled: true };
  if (b[23] === 47 && b.length >= l4 + 4 && ((b[l4 + 2] << 8) | b[l4 + 3]) === 0x6558) {
    const fl = b[l4];
    const hlen = 4 + ((fl & 0x80) ? 4 : 0) + ((fl & 0x20) ? 4 : 0) + ((fl & 0x10) ? 4 : 0);
    return { f: b.subarray(l4 + hlen), tunneled: true };
  }
  return { f: b, tunneled: false };
}

const ipText = (b: Uint8Array, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
const macText = (b: Uint8Array, o: number): string =>
  Array.from(b.subarray(o, o + 6), (x) => x.toString(16).padStart(2, '0')).join(':');

/** A TCP SYN (without ACK) to `ip`:`port` in frame `f` (untagged IPv4). */
function isSynTo(f: Uint8Array, ip: string, port: number): boolean {
  if (f.length < 54 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== IPPROTO_TCP) return false;
  const l4 = 14 + ((f[14] & 15) << 2);
  return ipText(f, 30) === ip && ((f[l4 + 2] << 8) | f[l4 + 3]) === port && (f[l4 + 13] & 0x12) === 0x02;
}

function contains(f: Uint8Array, marker: Uint8Array): boolean {
  outer: for (let i = 0; i + marker.length <= f.length; i++) {
    for (let j = 0; j < marker.length; j++) if (f[i + j] !== marker[j]) continue outer;
    return true;
  }
  return false;
}

/** Captures the given interfaces while `act` runs; frames per key. */
async function captured(st: LabState, tag: string, where: Map<string, { ns: string; iface: string }>,
                        act: () => Promise<void>): Promise<Map<string, Uint8Array[]>> {
  const dir = path.join(st.stateDir, 'captures');
  fs.mkdirSync(dir, { recursive: true });
  const caps = new Map<string, Capture>();
  for (const [k, w] of where) caps.set(k, startCapture(w.ns, w.iface, path.join(dir, `sg-${tag}-${k.replace(/[^a-z0-9]+/gi, '_')}.pcap`)));
  await capturesReady(caps.values());
  try {
    await act();
  } finally {
    await stopCaptures(caps.values());
  }
  const out = new Map<string, Uint8Array[]>();
  for (const [k, c] of caps) out.set(k, fs.existsSync(c.file) ? await framesOf(c.file) : []);
  return out;
}

function underlays(t: Topology): Map<string, { ns: string; iface: string }> {
  return new Map(t.nodes.map((n) => [`wire:${n.name}`, { ns: nodeNs(n), iface: n.underlayDevice }]));
}

const ipOf = (p: TopoPort): string => p.fixedIps[0].ip;

/** Where a check's pair runs: "C1 -> C2" or "on C1". */
const where = (a: TopoPort, b: TopoPort): string => (a.node === b.node ? `on ${a.node}` : `${a.node} -> ${b.node}`);

/** One TCP connection a -> b:port with b listening; what the probe saw. */
async function connectOnce(a: TopoPort, b: TopoPort, port: number, waitMs: number): Promise<{ connected: boolean; echoed: boolean; error: string }> {
  const l = await listenOn(vmNs(b), [port]);
  try {
    const r = probeSync(vmNs(a), ['connect', ipOf(b), String(port), String(waitMs)], waitMs + 10000);
    return { connected: r.connected === true, echoed: r.echoed === true, error: String(r.error ?? '') };
  } finally {
    await stop(l);
  }
}

/**
 * Checks that connection a -> b:port opens (`expectOpen`) or does not. Exported for the
 * integration test's negative control: the same probe against a wrong expectation fails.
 */
export async function connectionCheck(a: TopoPort, b: TopoPort, port: number, expectOpen: boolean): Promise<CheckResult> {
  const r = await connectOnce(a, b, port, expectOpen ? CONNECT_WAIT_MS : DENIED_WAIT_MS);
  const ok = expectOpen ? r.connected && r.echoed : !r.connected;
  return {
    name: `SG: ${a.name} -> ${b.name} (${ipOf(b)}) tcp/${port} ${where(a, b)} ${expectOpen ? 'completes' : 'does not open'}`,
    pass: ok, detail: `connected=${r.connected} echoed=${r.echoed}${r.error !== '' ? ` (${r.error})` : ''}`,
  };
}

const vmsOf = (t: Topology): TopoPort[] => t.ports.filter((p) => p.node !== '' && p.device !== '' && p.fixedIps.length > 0);

/** Allowed connections, across nodes and on one node, and the return traffic of one. */
async function allowedChecks(t: Topology, out: CheckResult[]): Promise<void> {
  const vms = vmsOf(t);
  const seen = new Set<string>();
  let returnDone = false;
  for (const b of vms.filter((x) => isFiltered(t, x))) {
    for (const port of tcpRulePorts(t, b)) {
      for (const sameNode of [false, true]) {
        const key = `${b.securityGroups.join(',')}|${port}|${sameNode}`;
        if (seen.has(key)) continue;
        const a = vms.find((x) => x !== b && (x.node === b.node) === sameNode && reachable(t, x, b) && allows(t, x, b, IPPROTO_TCP, port));
        if (a === undefined) continue;
        seen.add(key);
        const r = await connectionCheck(a, b, port, true);
        out.push(r);
        if (!returnDone && isFiltered(t, a) && !ingressOpensRange(t, a, IPPROTO_TCP, ipOf(b), EPHEMERAL[0], EPHEMERAL[1])) {
          returnDone = true;
          out.push({ name: `SG: return traffic ${b.name} -> ${a.name} of the tcp/${port} connection passes though ${a.name} has no ingress rule for it`,
            pass: r.pass, detail: r.detail });
        }
      }
    }
  }
}

/** A SYN the sender's egress rules refuse: nothing on any underlay, counted no_rule on the sender. */
async function egressDeniedCheck(t: Topology, st: LabState, out: CheckResult[]): Promise<void> {
  const vms = vmsOf(t);
  const ports = [...new Set(vms.flatMap((p) => tcpRulePorts(t, p))), 22];
  for (const a of vms.filter((x) => isFiltered(t, x))) {
    for (const b of vms) {
      if (b === a || b.node === a.node || !reachable(t, a, b)) continue;
      const port = ports.find((p) => !egressAllows(t, a, { proto: IPPROTO_TCP, port: p, srcIp: ipOf(a), dstIp: ipOf(b) }));
      if (port === undefined) continue;
      const before = await dropsOf(st, a);
      let r: { connected: boolean; error: string } = { connected: false, error: '' };
      const frames = await captured(st, 'egress', new Map([...underlays(t), ['vm', { ns: vmNs(a), iface: 'eth0' }]]), async () => {
        r = await connectOnce(a, b, port, DENIED_WAIT_MS);
      });
      const after = await dropsOf(st, a);
      const sent = (frames.get('vm') ?? []).filter((f) => isSynTo(f, ipOf(b), port)).length;
      const onWire = [...frames].filter(([k]) => k.startsWith('wire:')).reduce((n, [, fs2]) => n + fs2.filter((f) => isSynTo(innerFrame(f).f, ipOf(b), port)).length, 0);
      out.push({ name: `SG: ${a.name}'s egress rules refuse tcp/${port} to ${b.name}: its SYNs never leave ${a.node} (nothing on any underlay), counted no_rule`,
        pass: !r.connected && sent > 0 && onWire === 0 && after.no_rule - before.no_rule >= sent,
        detail: `${sent} SYNs sent, ${onWire} on underlay wires, no_rule +${after.no_rule - before.no_rule}, connected=${r.connected}` });
      return;
    }
  }
}

/** A SYN the destination's ingress rules refuse: crosses the underlay, dropped on the destination's node. */
async function ingressDeniedCheck(t: Topology, st: LabState, out: CheckResult[]): Promise<void> {
  const vms = vmsOf(t);
  const ports = [...new Set(vms.flatMap((p) => tcpRulePorts(t, p))), 22];
  for (const b of vms.filter((x) => isFiltered(t, x))) {
    for (const a of vms) {
      if (a === b || a.node === b.node || !reachable(t, a, b)) continue;
      const port = ports.find((p) => {
        const k = { proto: IPPROTO_TCP, port: p, srcIp: ipOf(a), dstIp: ipOf(b) };
        return egressAllows(t, a, k) && !ingressAllows(t, b, k);
      });
      if (port === undefined) continue;
      const before = await dropsOf(st, b);
      let r: { connected: boolean; error: string } = { connected: false, error: '' };
      const w = underlays(t);
      w.set('vm', { ns: vmNs(b), iface: 'eth0' });
      const frames = await captured(st, 'ingress', w, async () => { r = await connectOnce(a, b, port, DENIED_WAIT_MS); });
      const after = await dropsOf(st, b);
      const syns = (k: string): number => (frames.get(k) ?? []).filter((f) => { const x = innerFrame(f); return x.tunneled && isSynTo(x.f, ipOf(b), port); }).length;
      const atVm = (frames.get('vm') ?? []).filter((f) => isSynTo(f, ipOf(b), port)).length;
      const dropped = after.no_rule - before.no_rule;
      out.push({ name: `SG: ${b.name}'s ingress rules refuse tcp/${port} from ${a.name}: the SYN crosses ${a.node} -> ${b.node}, is dropped on ${b.node} (counted no_rule), never reaches ${b.name}`,
        pass: !r.connected && syns(`wire:${a.node}`) > 0 && syns(`wire:${b.node}`) > 0 && atVm === 0 && dropped >= syns(`wire:${b.node}`),
        detail: `SYNs on ${a.node}'s wire ${syns(`wire:${a.node}`)}, on ${b.node}'s ${syns(`wire:${b.node}`)}, at ${b.name} ${atVm}; no_rule +${dropped}; connected=${r.connected}` });
      return;
    }
  }
}

/** An Ethernet/IPv4/UDP frame carrying `marker`, by default from port 40001 to the discard port 9 (DF, no UDP checksum). */
export function udpFrame(dstMac: string, srcMac: string, srcIp: string, dstIp: string, marker: string, sport = 40001, dport = 9): Uint8Array {
  return buildUdp4Frame({ ethDst: dstMac, ethSrc: srcMac, src: srcIp, dst: dstIp, id: 1, df: true, ttl: 64, sport, dport,
    payload: Buffer.from(marker), noChecksum: true });
}

/** An ARP reply: `sha` says it has `spa`, told to `tha`/`tpa` (padded to 60 bytes). */
export function arpReply(dstMac: string, sha: string, spa: string, tha: string, tpa: string): Uint8Array {
  return buildArpFrame({ op: ARP_OP_REPLY, ethDst: dstMac, sha, spa: ipv4FromString(spa), tha, tpa: ipv4FromString(tpa), pad: true });
}

function isArpReply(f: Uint8Array, sha: string, spa: string): boolean {
  return f.length >= 42 && f[12] === 0x08 && f[13] === 0x06 && f[21] === 2 && macText(f, 22) === sha && ipText(f, 28) === spa;
}

/** Spoofed source IP, source MAC and ARP reply from a filtered VM: dropped on its node, counted. */
async function spoofChecks(t: Topology, st: LabState, out: CheckResult[]): Promise<void> {
  const vms = vmsOf(t);
  let s: TopoPort | undefined;
  let d: TopoPort | undefined;
  for (const x of vms.filter((p) => isFiltered(t, p))) {
    d = vms.find((y) => y !== x && y.node !== x.node && y.network === x.network);
    if (d !== undefined) { s = x; break; }
  }
  if (s === undefined || d === undefined) return;
  const sender = s, dest = d;
  const fakeIp = unusedAddress(t, sender);
  const usedMacs = new Set([...t.ports, ...t.dhcpPorts].flatMap((p) => [p.mac.toLowerCase(), ...p.allowedAddressPairs.map((a) => a.macAddress.toLowerCase())]));
  let fakeMac = 'fa:16:3e:5f:00:01';
  for (let k = 2; usedMacs.has(fakeMac); k++) fakeMac = `fa:16:3e:5f:00:${k.toString(16).padStart(2, '0')}`;
  const victim = vms.find((p) => p !== sender && p.network === sender.network && p !== dest) ?? dest;
  const sMac = sender.mac.toLowerCase();
  const kinds: { what: string; frame: Uint8Array; seen: (f: Uint8Array) => boolean }[] = [
    { what: `a spoofed source IP ${fakeIp} (not its own)`, frame: udpFrame(dest.mac, sMac, fakeIp, ipOf(dest), 'flowd-sg-spoof-ip'),
      seen: (f) => contains(f, Buffer.from('flowd-sg-spoof-ip')) },
    { what: `a spoofed source MAC ${fakeMac} (not its own)`, frame: udpFrame(dest.mac, fakeMac, ipOf(sender), ipOf(dest), 'flowd-sg-spoof-mac'),
      seen: (f) => contains(f, Buffer.from('flowd-sg-spoof-mac')) },
    { what: `a spoofed ARP reply claiming ${ipOf(victim)} (${victim.name}'s)`, frame: arpReply(dest.mac, sMac, ipOf(victim), dest.mac.toLowerCase(), ipOf(dest)),
      seen: (f) => isArpReply(innerFrame(f).f, sMac, ipOf(victim)) },
    // A VM acting as a DHCP server: a broadcast reply (udp 67 -> 68) from its own addresses.
    { what: 'a DHCP server reply as if it were a DHCP server (udp 67 -> 68, broadcast, from its own MAC and IP)',
      frame: udpFrame('ff:ff:ff:ff:ff:ff', sMac, ipOf(sender), '255.255.255.255', 'flowd-sg-rogue-dhcp', 67, 68),
      seen: (f) => contains(f, Buffer.from('flowd-sg-rogue-dhcp')) },
  ];
  for (const k of kinds) {
    const before = await dropsOf(st, sender);
    let sent = 0;
    const w = underlays(t);
    w.set('dest', { ns: vmNs(dest), iface: 'eth0' });
    const frames = await captured(st, `spoof-${kinds.indexOf(k)}`, w, async () => {
      const r = probeSync(vmNs(sender), ['send', 'eth0', Buffer.from(k.frame).toString('hex')]);
      sent = Number(r.sent ?? 0);
      await sleep(200);
    });
    const after = await dropsOf(st, sender);
    const leaked = [...frames].filter(([, fs2]) => fs2.some(k.seen)).map(([key]) => key);
    out.push({ name: `SG: ${sender.name} on ${sender.node} sends ${k.what} to ${dest.name} on ${dest.node}: dropped on ${sender.node}, counted spoofed, nothing crosses a tunnel`,
      pass: sent === 1 && leaked.length === 0 && after.spoofed - before.spoofed >= 1,
      detail: `sent ${sent}; seen on ${leaked.join(', ') || 'no wire'}; spoofed +${after.spoofed - before.spoofed}` });
  }
}

function prefixLenOf(t: Topology, p: TopoPort): number {
  return t.subnets.find((s) => s.name === p.fixedIps[0].subnet)?.cidr.prefixLen ?? 24;
}

/** The allowed pair's VIP, added by the VM to its interface, is reachable from a source the rules allow. */
function vipChecks(t: Topology, out: CheckResult[]): void {
  const vms = vmsOf(t);
  for (const v of vms.filter((p) => isFiltered(t, p))) {
    for (const pair of v.allowedAddressPairs) {
      const vip = pair.ipAddress.includes('/') ? (pair.ipAddress.endsWith('/32') ? pair.ipAddress.split('/')[0] : '') : pair.ipAddress;
      if (vip === '' || pair.macAddress.toLowerCase() !== v.mac.toLowerCase()) continue;
      const k = (a: TopoPort): { proto: number; port: number; srcIp: string; dstIp: string } => ({ proto: IPPROTO_ICMP, port: 8, srcIp: ipOf(a), dstIp: vip });
      const a = [...vms].sort((x, y) => Number(x.node === v.node) - Number(y.node === v.node))
        .find((x) => x !== v && reachable(t, x, v) && egressAllows(t, x, k(x)) && ingressAllows(t, v, k(x)));
      if (a === undefined) continue;
      const len = prefixLenOf(t, v);
      spawnSync('ip', ['netns', 'exec', vmNs(v), 'ip', 'addr', 'add', `${vip}/${len}`, 'dev', 'eth0']);
      try {
        const r = ping(vmNs(a), vip, 3);
        out.push({ name: `SG: ${v.name}'s allowed address pair ${vip}, added to its interface, answers ${a.name}'s ping (${where(a, v)})`,
          pass: r.sent > 0 && r.received === r.sent, detail: `${r.received}/${r.sent} replies` });
      } finally {
        spawnSync('ip', ['netns', 'exec', vmNs(v), 'ip', 'addr', 'del', `${vip}/${len}`, 'dev', 'eth0']);
      }
    }
  }
}

/** A port with port security off sends from an address the topology does not give it. */
function portSecurityOffChecks(t: Topology, out: CheckResult[]): void {
  const vms = vmsOf(t);
  for (const o of vms.filter((p) => !p.portSecurityEnabled)) {
    const extra = unusedAddress(t, o);
    if (extra === '') continue;
    const d = [...vms].sort((x, y) => Number(x.node === o.node) - Number(y.node === o.node))
      .find((x) => x !== o && x.network === o.network && ingressAllows(t, x, { proto: IPPROTO_ICMP, port: 8, srcIp: extra, dstIp: ipOf(x) }));
    if (d === undefined) continue;
    const len = prefixLenOf(t, o);
    spawnSync('ip', ['netns', 'exec', vmNs(o), 'ip', 'addr', 'add', `${extra}/${len}`, 'dev', 'eth0']);
    try {
      const r = ping(vmNs(o), ipOf(d), 3, { source: extra });
      out.push({ name: `SG: ${o.name} (port security off) sends from ${extra}, an address not its own, and ${d.name} answers (${where(o, d)})`,
        pass: r.sent > 0 && r.received === r.sent, detail: `${r.received}/${r.sent} replies` });
    } finally {
      spawnSync('ip', ['netns', 'exec', vmNs(o), 'ip', 'addr', 'del', `${extra}/${len}`, 'dev', 'eth0']);
    }
  }
}

/** The topology file's text without the rule written on line `line` (1-based) of group `g`. */
export function withoutRule(text: string, g: SecurityGroup, line: number): string {
  const doc = parseDocument(text);
  const groups = doc.get('security_groups', true);
  if (!isSeq(groups)) throw new Error('no security_groups list');
  for (const gi of groups.items) {
    if (!isMap(gi) || gi.get('name') !== g.name) continue;
    const rules = gi.get('rules', true);
    if (!isSeq(rules)) continue;
    const idx = (rules as YAMLSeq).items.findIndex((it) => {
      const r = (it as { range?: [number, number, number] }).range;
      return r !== undefined && text.slice(0, r[0]).split('\n').length === line;
    });
    if (idx >= 0) {
      rules.delete(idx);
      return doc.toString();
    }
  }
  throw new Error(`rule of group ${g.name} on line ${line} not found`);
}

/** The rule to delete and two streams: one only it opens, one another rule keeps open. */
function pickRemoval(t: Topology): null | { g: SecurityGroup; r: SgRule; a: TopoPort; b: TopoPort; p1: number; c: TopoPort; d: TopoPort; p2: number } {
  const vms = vmsOf(t);
  const tcpRules = t.securityGroups.flatMap((g) => g.rules.filter((r) => r.line > 0 && r.direction === 'ingress' && r.protocol === IPPROTO_TCP && r.portRangeMin !== null)
    .map((r) => ({ g, r })));
  tcpRules.sort((x, y) => Number(y.r.remoteGroup !== '') - Number(x.r.remoteGroup !== ''));
  for (const { g, r } of tcpRules) {
    const skip: SkipRule = (g2, r2) => g2 === g && r2 === r;
    const p1 = r.portRangeMin!;
    const pairs = (port: number, gone: boolean): [TopoPort, TopoPort][] => vms.flatMap((b) => vms.filter((a) => a !== b && a.node !== b.node && reachable(t, a, b) &&
      allows(t, a, b, IPPROTO_TCP, port) && allows(t, a, b, IPPROTO_TCP, port, skip) !== gone).map((a): [TopoPort, TopoPort] => [a, b]));
    const first = pairs(p1, true).find(([, b]) => isFiltered(t, b));
    if (first === undefined) continue;
    const [a, b] = first;
    for (const p2 of [...new Set(vms.flatMap((x) => tcpRulePorts(t, x)))].filter((p) => p !== p1)) {
      const second = pairs(p2, false).find(([c, d]) => c !== a || d !== b) ?? pairs(p2, false)[0];
      if (second !== undefined) return { g, r, a, b, p1, c: second[0], d: second[1], p2 };
    }
  }
  return null;
}

/** Deleting a rule from the topology file stops the streams it allowed within a second; others go on. */
async function ruleRemovalCheck(t: Topology, st: LabState, out: CheckResult[]): Promise<void> {
  if (st.store === 'etcd') return;
  const pick = pickRemoval(t);
  if (pick === null) return;
  const { g, r, a, b, p1, c, d, p2 } = pick;
  const file = st.topology;
  const original = fs.readFileSync(file, 'utf8');
  const edited = withoutRule(original, g, r.line);
  const l1 = await listenOn(vmNs(b), b === d ? [p1, p2] : [p1]);
  const l2 = b === d ? l1 : await listenOn(vmNs(d), [p2]);
  const s1 = probeStart(vmNs(a), ['stream', ipOf(b), String(p1), '15']);
  const s2 = probeStart(vmNs(c), ['stream', ipOf(d), String(p2), '15']);
  let t0 = 0;
  const before = await dropsOf(st, b);
  try {
    // Both streams flow (their listeners have counted bytes) before the rule goes; at most 5 s.
    for (let k = 0; k < 50 && (bytesAt(l1, p1, Date.now()) === 0 || bytesAt(l2, p2, Date.now()) === 0); k++) await sleep(100);
    await sleep(500);
    t0 = Date.now();
    fs.writeFileSync(file, edited);
    await sleep(STOP_WITHIN_MS + 1500);
  } finally {
    fs.writeFileSync(file, original);
  }
  const tEnd = Date.now();
  const after = await dropsOf(st, b);
  await Promise.all([stop(s1), stop(s2)]);
  const at = (l: Running, p: number, tm: number): number => bytesAt(l, p, tm);
  const s1Before = at(l1, p1, t0), s1Late = at(l1, p1, tEnd) - at(l1, p1, t0 + STOP_WITHIN_MS);
  const s2Before = at(l2, p2, t0), s2Late = at(l2, p2, tEnd) - at(l2, p2, t0 + STOP_WITHIN_MS);
  let lastMs = 0;
  for (const x of l1.lines) if (x.port === p1 && typeof x.tMs === 'number' && x.tMs > t0 && x.tMs <= tEnd) lastMs = x.tMs - t0;
  const rule = `${g.name}'s rule on line ${r.line} (tcp/${p1}${r.remoteGroup !== '' ? ` from members of ${r.remoteGroup}` : ''})`;
  out.push({ name: `SG: deleting ${rule} from ${path.basename(file)} stops the stream ${a.name} -> ${b.name}:${p1} within ${STOP_WITHIN_MS} ms, counted killed`,
    pass: s1Before > 0 && s1Late === 0 && after.killed > before.killed,
    detail: `${s1Before} bytes before the edit, last bytes ${lastMs} ms after it (50 ms reports), ${s1Late} bytes from ${STOP_WITHIN_MS} ms after it; ` +
      `killed +${after.killed - before.killed}` });
  out.push({ name: `SG: meanwhile the stream ${c.name} -> ${d.name}:${p2} goes on`, pass: s2Before > 0 && s2Late > 0,
    detail: `${s2Before} bytes before the edit, ${s2Late} bytes from ${STOP_WITHIN_MS} ms after it` });
  await stop(l1);
  if (l2 !== l1) await stop(l2);
  // The file is back: the rule opens new connections again once the nodes applied it.
  let re = await connectionCheck(a, b, p1, true);
  for (let k = 0; k < 3 && !re.pass; k++) { await sleep(500); re = await connectionCheck(a, b, p1, true); }
  out.push({ name: `SG: ${path.basename(file)} restored: ${a.name} -> ${b.name} tcp/${p1} opens again`, pass: re.pass, detail: re.detail });
}

export async function runSgChecks(t: Topology, st: LabState): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  await allowedChecks(t, out);
  await egressDeniedCheck(t, st, out);
  await ingressDeniedCheck(t, st, out);
  await spoofChecks(t, st, out);
  vipChecks(t, out);
  portSecurityOffChecks(t, out);
  await ruleRemovalCheck(t, st, out);
  return out;
}
