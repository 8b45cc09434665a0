/**
 * node-setup: prepares ONE machine (a Vagrant VM, or a namespace standing in for one) to be
 * node X of a DVR topology, the way the namespace lab prepares its node namespaces, but from
 * inside the node. Called by scripts/provision-node.sh and by the flowd@NODE systemd unit
 * (ExecStartPre), and by hand for `check`.
 *
 *   up     identify the node's NICs by MAC and give them the topology's names (the underlay
 *          device from `underlay.mac`, others from --nic DEV=MAC), put local_ip/24 and the
 *          underlay MTU on the underlay device, bring the physical-bridge devices (ext1) up
 *          without an address, create a namespace per VM port bound to the node (eth0 = the
 *          port's MAC, fixed IP and network MTU, default route via its subnet's gateway; the
 *          host end is the port's `device`, in the node), and write the daemon's node config
 *          STATE_DIR/NODE.yaml. Idempotent: what is already right is left alone (a running
 *          flowd keeps its sockets), what is missing is made; so it also plumbs ports that a
 *          topology edit added.
 *   down   delete the node's VM namespaces (their links go with them) and the node config.
 *   check  node-local acceptance checks, PASS/FAIL per line (see checkNode()).
 *
 * Names: VM namespaces are <ns-prefix><port name in lower case>, with prefix `fl-` by default,
 * i.e. the same names as the namespace lab (fl-vm1), so the same `ip netns exec fl-vm1 ping`
 * works on a VM. Tests pass their own prefix. It shares only lab/shell.ts with lab/lab.ts: the lab
 * builds all nodes on one machine, this builds one node on its own machine.
 *
 * Called by: cli/node-setup.ts (scripts/provision-node.sh, the Vagrant nodes' systemd unit) and
 * test/integration/provision.test.ts.
 *
 * Ownership: it creates and deletes only namespaces named with its prefix, the host ends of
 * their links, and files in the state directory; it renames only NICs whose MAC it was told.
 * Everything runs in the network namespace the process is in (`ip netns exec fv-c1 node ...`).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { request } from '../control/client';
import { netnsCmd } from '../control/netns';
import { FlowdError } from '../errors';
import { readPcap } from '../netdev/pcap-file';
import { isTunnelNetwork, loadTopology, Topology, TopoNode, TopoPort } from '../dvr/topology';
import { ping } from './ping';
import { sh as shellSh, ShellError, trySh } from './shell';

export const DEFAULT_NS_PREFIX = 'fl-';
export const DEFAULT_STATE_DIR = '/run/flowd';
/** Interface names are at most 15 characters (IFNAMSIZ - 1). */
const IFNAME_MAX_CHARS = 15;

export class NodeSetupError extends FlowdError {
  constructor(msg: string) {
    super('E_NODE_SETUP', msg);
  }
}

export interface NodeSetupOptions {
  nodeName: string;
  nsPrefix: string;
  stateDir: string;
  /** Control socket written into the node config; '' = STATE_DIR/flowd.sock. */
  socket: string;
  /** Extra NIC names by MAC (--nic ext1=52:54:00:fe:00:11); the underlay one comes from the topology. */
  nics: NicWant[];
}

export interface NicWant { device: string; mac: string }
export interface NicHave { name: string; mac: string }
export interface Rename { from: string; to: string }

// ---------------------------------------------------------------------------------------------
// Pure parts (unit-tested without root)

export function vmNsName(prefix: string, port: TopoPort | string): string {
  const n = `${prefix}${(typeof port === 'string' ? port : port.name).toLowerCase()}`;
  if (n.length > IFNAME_MAX_CHARS) throw new NodeSetupError(`namespace name ${n} is longer than ${IFNAME_MAX_CHARS} characters`);
  return n;
}

export function socketOf(opts: Pick<NodeSetupOptions, 'socket' | 'stateDir'>): string {
  return opts.socket !== '' ? opts.socket : path.join(opts.stateDir, 'flowd.sock');
}

/**
 * The daemon's node config (control/config.ts): the node, the topology it reads, its socket,
 * and its DHCP agent's namespace prefix (the node's own, so `fl-qdhcp-A` sits beside `fl-vm1`)
 * and state directory.
 */
export function nodeConfigText(nodeName: string, topologyPath: string, socketPath: string,
                               nsPrefix = DEFAULT_NS_PREFIX, stateDir = DEFAULT_STATE_DIR): string {
  return `node: ${nodeName}\ntopology: ${topologyPath}\ncontrol_socket: ${socketPath}\n` +
    `dhcp: { namespace_prefix: ${nsPrefix}, state_dir: ${path.join(stateDir, 'dhcp')} }\n`;
}

/** "ext1=52:54:00:fe:00:11" -> NicWant (MAC in lower case); throws on anything else. */
export function parseNicArg(text: string): NicWant {
  const m = /^([A-Za-z0-9_.:-]{1,15})=((?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2})$/.exec(text);
  if (m === null) throw new NodeSetupError(`--nic ${text}: expected DEV=MAC, e.g. ext1=52:54:00:fe:00:11`);
  return { device: m[1], mac: m[2].toLowerCase() };
}

/** The NICs node `n` needs named: its underlay device by its underlay MAC, plus `extra`. */
export function wantedNics(n: TopoNode, extra: NicWant[]): NicWant[] {
  const want: NicWant[] = [];
  if (n.underlayDevice !== '' && n.underlayMac !== '') want.push({ device: n.underlayDevice, mac: n.underlayMac.toLowerCase() });
  for (const w of extra) {
    const same = want.find((x) => x.device === w.device);
    if (same !== undefined && same.mac !== w.mac) throw new NodeSetupError(`${w.device} is wanted with two MACs, ${same.mac} and ${w.mac}`);
    if (same === undefined) want.push(w);
  }
  return want;
}

/**
 * The renames that give every wanted MAC its device name, in order. A NIC already named right
 * is left alone. When a target name is held by a NIC that is itself being renamed (eth1 <-> eth2),
 * every moving NIC goes through a temporary name first. Throws when a MAC is missing or shared,
 * or when a target name is held by a NIC nobody asked to move (renaming it would take a name
 * the user may rely on, e.g. the management NIC).
 */
export function planNicRenames(have: NicHave[], want: NicWant[], tmpPrefix = 'fdnic'): Rename[] {
  const moves: Rename[] = [];
  const seenDev = new Set<string>();
  for (const w of want) {
    if (seenDev.has(w.device)) throw new NodeSetupError(`two NICs are wanted as ${w.device}`);
    seenDev.add(w.device);
    const hits = have.filter((h) => h.mac.toLowerCase() === w.mac);
    if (hits.length === 0) throw new NodeSetupError(`no interface has MAC ${w.mac} (wanted as ${w.device}); present: ${have.map((h) => `${h.name}=${h.mac}`).join(' ')}`);
    if (hits.some((h) => h.name === w.device)) continue;
    if (hits.length > 1) throw new NodeSetupError(`MAC ${w.mac} (wanted as ${w.device}) is on ${hits.map((h) => h.name).join(' and ')}`);
    moves.push({ from: hits[0].name, to: w.device });
  }
  const moving = new Set(moves.map((m) => m.from));
  let needTmp = false;
  for (const m of moves) {
    const holder = have.find((h) => h.name === m.to);
    if (holder === undefined) continue;
    if (!moving.has(holder.name)) {
      throw new NodeSetupError(`cannot name ${m.from} (MAC ${have.find((h) => h.name === m.from)?.mac ?? '?'}) ${m.to}: ` +
        `${m.to} is taken by an interface with MAC ${holder.mac} that is not to be renamed`);
    }
    needTmp = true;
  }
  if (!needTmp) return moves;
  const out: Rename[] = [];
  moves.forEach((m, i) => out.push({ from: m.from, to: `${tmpPrefix}${i}` }));
  moves.forEach((m, i) => out.push({ from: `${tmpPrefix}${i}`, to: m.to }));
  return out;
}

/** The VM ports bound to `nodeName` that have a device and an address (what the lab plumbs too). */
export function localPorts(t: Topology, nodeName: string): TopoPort[] {
  return t.ports.filter((p) => p.node === nodeName && p.device !== '' && p.fixedIps.length > 0);
}

function subnetOf(t: Topology, p: TopoPort): { prefixLen: number; gatewayIp: string } {
  const sn = t.subnets.find((s) => s.name === p.fixedIps[0].subnet);
  return sn === undefined ? { prefixLen: 24, gatewayIp: '' } : { prefixLen: sn.cidr.prefixLen, gatewayIp: sn.gatewayIp };
}

function findNode(t: Topology, name: string): TopoNode {
  const n = t.nodes.find((x) => x.name === name) ?? t.nodes.find((x) => x.name.toLowerCase() === name.toLowerCase());
  if (n === undefined) throw new NodeSetupError(`${t.file}: no node ${name} (nodes: ${t.nodes.map((x) => x.name).join(', ')})`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Commands on this machine

/** shell.sh, its failure a NodeSetupError (a FlowdError: node-setup exits 2 on those). */
function sh(cmd: string, ...args: string[]): string {
  try {
    return shellSh(cmd, ...args);
  } catch (e) {
    throw e instanceof ShellError ? new NodeSetupError(e.message) : e;
  }
}

function nsx(ns: string, cmd: string, ...args: string[]): string {
  return sh('ip', 'netns', 'exec', ns, cmd, ...args);
}

/** Every link of this namespace with its MAC (`ip -j link`). */
export function listNics(): NicHave[] {
  const links = JSON.parse(sh('ip', '-j', 'link', 'show')) as { ifname: string; address?: string }[];
  return links.map((l) => ({ name: l.ifname, mac: (l.address ?? '').toLowerCase() }));
}

/** Asks netlink, not /sys: under `nsenter --net` /sys still shows the namespace that mounted it. */
function linkExists(name: string): boolean {
  return trySh('ip', 'link', 'show', 'dev', name);
}

function namespaces(): Set<string> {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  return new Set(out.split('\n').map((l) => l.split(' ')[0]).filter((s) => s !== ''));
}

function ipv6Off(dev: string): void {
  trySh('sysctl', '-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`);
}

/** The addresses of this namespace's link `dev` as "a.b.c.d/len". */
function addrsOf(dev: string): string[] {
  const j = JSON.parse(sh('ip', '-j', '-4', 'addr', 'show', 'dev', dev)) as { addr_info?: { local: string; prefixlen: number }[] }[];
  return (j[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
}

/** Renames NICs by MAC as planned; returns what it did, one line each. */
export function applyNicRenames(want: NicWant[]): string[] {
  const done: string[] = [];
  for (const r of planNicRenames(listNics(), want)) {
    sh('ip', 'link', 'set', r.from, 'down');
    sh('ip', 'link', 'set', r.from, 'name', r.to);
    done.push(`renamed ${r.from} -> ${r.to}`);
  }
  return done;
}

/** The VM namespace of `p` and its veth (host end = p.device here); made only when missing. */
export function plumbVmPort(t: Topology, p: TopoPort, nsPrefix: string): string {
  const ns = vmNsName(nsPrefix, p);
  const haveNs = namespaces().has(ns);
  if (haveNs && linkExists(p.device)) return `kept ${ns} (${p.device})`;
  if (haveNs) netnsCmd('del', ns);
  if (linkExists(p.device)) trySh('ip', 'link', 'del', p.device);
  if (!netnsCmd('add', ns)) throw new NodeSetupError(`ip netns add ${ns} failed`);
  try {
    nsx(ns, 'ip', 'link', 'set', 'lo', 'up');
    // No IPv6 autoconfiguration chatter on the wires.
    nsx(ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1');
    nsx(ns, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1');
    const tmp = `${nsPrefix}vmtmp`.slice(0, IFNAME_MAX_CHARS);
    trySh('ip', 'link', 'del', tmp);
    sh('ip', 'link', 'add', p.device, 'type', 'veth', 'peer', 'name', tmp);
    ipv6Off(p.device);
    sh('ip', 'link', 'set', tmp, 'netns', ns);
    nsx(ns, 'ip', 'link', 'set', tmp, 'name', 'eth0');
    nsx(ns, 'ip', 'link', 'set', 'eth0', 'address', p.mac);
    const sn = subnetOf(t, p);
    nsx(ns, 'ip', 'addr', 'add', `${p.fixedIps[0].ip}/${sn.prefixLen}`, 'dev', 'eth0');
    const mtu = t.networks.find((x) => x.name === p.network)?.mtuBytes ?? 1450;
    nsx(ns, 'ip', 'link', 'set', 'eth0', 'mtu', String(mtu));
    nsx(ns, 'ip', 'link', 'set', 'eth0', 'up');
    sh('ip', 'link', 'set', p.device, 'up');
    if (sn.gatewayIp !== '') nsx(ns, 'ip', 'route', 'add', 'default', 'via', sn.gatewayIp);
  } catch (e) {
    netnsCmd('del', ns);
    throw e;
  }
  return `made ${ns}: eth0 ${p.mac} ${p.fixedIps[0].ip} <-> ${p.device}`;
}

/** `up`: see the header. Returns one line per thing done or kept. */
export function setupNode(topologyPath: string, opts: NodeSetupOptions): string[] {
  const topoAbs = path.resolve(topologyPath);
  const t = loadTopology(topoAbs);
  const n = findNode(t, opts.nodeName);
  const done = applyNicRenames(wantedNics(n, opts.nics));

  if (n.underlayDevice !== '') {
    const dev = n.underlayDevice;
    if (!linkExists(dev)) throw new NodeSetupError(`the underlay device ${dev} of ${n.name} does not exist (give the NIC MAC ${n.underlayMac || '(none in the topology)'})`);
    ipv6Off(dev);
    sh('ip', 'link', 'set', dev, 'mtu', String(n.underlayMtuBytes));
    const want = `${n.localIp}/24`;
    const addrs = addrsOf(dev);
    if (!addrs.includes(want)) {
      // Another address on the underlay NIC (a leftover of an earlier topology) would answer ARP
      // for the wrong endpoint: the NIC carries exactly the topology's local_ip.
      sh('ip', 'addr', 'flush', 'dev', dev);
      sh('ip', 'addr', 'add', want, 'dev', dev);
      done.push(`${dev}: ${want}`);
    }
    sh('ip', 'link', 'set', dev, 'up');
  }
  for (const dev of n.physicalInterfaces.values()) {
    if (!linkExists(dev)) throw new NodeSetupError(`the physical-bridge device ${dev} of ${n.name} does not exist (pass --nic ${dev}=MAC)`);
    // flowd owns this NIC as a bridge port: the host must not answer ARP or send anything on it.
    ipv6Off(dev);
    if (addrsOf(dev).length > 0) {
      sh('ip', 'addr', 'flush', 'dev', dev);
      done.push(`${dev}: addresses removed (a bridge port carries none)`);
    }
    sh('ip', 'link', 'set', dev, 'promisc', 'on');
    sh('ip', 'link', 'set', dev, 'up');
  }
  for (const p of localPorts(t, n.name)) done.push(plumbVmPort(t, p, opts.nsPrefix));

  fs.mkdirSync(opts.stateDir, { recursive: true });
  const cfg = path.join(opts.stateDir, `${n.name}.yaml`);
  const text = nodeConfigText(n.name, topoAbs, socketOf(opts), opts.nsPrefix, opts.stateDir);
  const old = fs.existsSync(cfg) ? fs.readFileSync(cfg, 'utf8') : '';
  if (old !== text) {
    fs.writeFileSync(cfg, text);
    done.push(`wrote ${cfg}`);
  }
  return done;
}

/** `down`: deletes the node's VM namespaces and its node config; safe to run twice. */
export function teardownNode(topologyPath: string, opts: NodeSetupOptions): string[] {
  const t = loadTopology(path.resolve(topologyPath));
  const n = findNode(t, opts.nodeName);
  const done: string[] = [];
  const have = namespaces();
  for (const p of localPorts(t, n.name)) {
    const ns = vmNsName(opts.nsPrefix, p);
    // The link first: deleting it takes both ends now, while a namespace's links go asynchronously.
    if (linkExists(p.device) && trySh('ip', 'link', 'del', p.device)) done.push(`deleted ${p.device}`);
    if (have.has(ns) && netnsCmd('del', ns)) done.push(`deleted namespace ${ns}`);
  }
  const cfg = path.join(opts.stateDir, `${n.name}.yaml`);
  if (fs.existsSync(cfg)) {
    fs.rmSync(cfg);
    done.push(`removed ${cfg}`);
  }
  return done;
}

// ---------------------------------------------------------------------------------------------
// check

export interface CheckLine { name: string; pass: boolean; detail: string }

const macAt = (b: Uint8Array, o: number): string =>
  Array.from(b.subarray(o, o + 6), (x) => x.toString(16).padStart(2, '0')).join(':');
const ipAt = (b: Uint8Array, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

/** An ICMP echo inside a VXLAN or GRE frame on the underlay, as the check reads it. */
export interface TunnelEcho {
  outerSrcMac: string; outerDstMac: string; outerSrcIp: string; outerDstIp: string;
  kind: 'vxlan' | 'gre'; id: number;
  innerSrcMac: string; innerDstMac: string; innerSrcIp: string; innerDstIp: string; ttl: number; icmpType: number;
}

/** Reads an untagged IPv4 VXLAN (UDP 4789, RFC 7348) or GRE-TEB (RFC 2890 key) frame carrying ICMP; null otherwise. */
export function tunnelEcho(b: Uint8Array): TunnelEcho | null {
  if (b.length < 34 || b[12] !== 0x08 || b[13] !== 0x00) return null;
  const l4 = 14 + ((b[14] & 15) << 2);
  let inner = -1;
  let kind: 'vxlan' | 'gre' = 'vxlan';
  let id = 0;
  if (b[23] === 17 && b.length >= l4 + 16 && ((b[l4 + 2] << 8) | b[l4 + 3]) === 4789) {
    id = (b[l4 + 12] << 16) | (b[l4 + 13] << 8) | b[l4 + 14];
    inner = l4 + 16;
  } else if (b[23] === 47 && b.length >= l4 + 8 && (b[l4] & 0x20) !== 0 && ((b[l4 + 2] << 8) | b[l4 + 3]) === 0x6558) {
    // RFC 2890: the key follows the 4-byte base header (no checksum bit in flowd's frames).
    const keyOff = l4 + 4 + ((b[l4] & 0x80) !== 0 ? 4 : 0);
    id = ((b[keyOff] << 24) | (b[keyOff + 1] << 16) | (b[keyOff + 2] << 8) | b[keyOff + 3]) >>> 0;
    inner = keyOff + 4 + ((b[l4] & 0x10) !== 0 ? 4 : 0);
    kind = 'gre';
  }
  if (inner < 0 || b.length < inner + 34 || b[inner + 12] !== 0x08 || b[inner + 13] !== 0x00 || b[inner + 23] !== 1) return null;
  const icmp = inner + 14 + ((b[inner + 14] & 15) << 2);
  if (b.length <= icmp) return null;
  return {
    outerSrcMac: macAt(b, 6), outerDstMac: macAt(b, 0), outerSrcIp: ipAt(b, 26), outerDstIp: ipAt(b, 30), kind, id,
    innerSrcMac: macAt(b, inner + 6), innerDstMac: macAt(b, inner), innerSrcIp: ipAt(b, inner + 26),
    innerDstIp: ipAt(b, inner + 30), ttl: b[inner + 22], icmpType: b[icmp],
  };
}

function routerJoins(t: Topology, a: TopoPort, b: TopoPort): boolean {
  if (a.network === b.network) return true;
  return t.routers.some((r) => {
    const nets = r.interfaces.map((i) => t.subnets.find((s) => s.name === i.subnet)?.network);
    return nets.includes(a.network) && nets.includes(b.network);
  });
}

async function captureWhile<T>(dev: string, file: string, work: () => T): Promise<T> {
  const proc = spawn('tcpdump', ['-i', dev, '-U', '-n', '-w', file], { stdio: ['ignore', 'ignore', 'ignore'] });
  await new Promise((r) => setTimeout(r, 700));
  const out = work();
  await new Promise((r) => setTimeout(r, 300));
  await new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.pid === undefined) { resolve(); return; }
    proc.once('exit', () => resolve());
    process.kill(proc.pid, 'SIGINT');
  });
  return out;
}

/**
 * Node-local checks (what one machine can see of dvr-reference.md's expectations):
 *   - the daemon answers on its control socket with br-int and br-tun (and the physical bridge);
 *   - each local VM namespace exists with the port's MAC and IP, and its gateway answers ping;
 *   - unless `remote` is false: each VM a router joins answers ping; for a VM on another node of
 *     a tunnel network, the echo request on this node's underlay is outer underlay MAC/IP of
 *     this node -> that node, VNI/key of the DESTINATION network, inner src = this node's DVR
 *     MAC, inner dst = the VM's MAC, TTL 63; and the VM's gateway MAC never appears as a source
 *     on the underlay;
 *   - unless `external` is false: each local VM reaches the upstream gateway (through its
 *     floating IP on this node, or SNAT on the dvr_snat node).
 */
export async function checkNode(topologyPath: string, opts: NodeSetupOptions & { remote: boolean; external: boolean }): Promise<CheckLine[]> {
  const t = loadTopology(path.resolve(topologyPath));
  const n = findNode(t, opts.nodeName);
  const res: CheckLine[] = [];
  const add = (name: string, pass: boolean, detail = ''): void => { res.push({ name, pass, detail }); };

  const sock = socketOf(opts);
  try {
    const show = String(await request(sock, 'show', {}, 3000));
    const want = ['br-int', 'br-tun', ...n.physicalInterfaces.keys()];
    const missing = want.filter((b) => !show.split('\n').includes(`${b}:`));
    add(`flowd of ${n.name} answers on ${sock} with ${want.join(', ')}`, missing.length === 0, missing.length ? `missing ${missing.join(', ')}` : '');
  } catch (e) {
    add(`flowd of ${n.name} answers on ${sock}`, false, (e as Error).message);
  }

  const have = namespaces();
  const mine = localPorts(t, n.name);
  for (const p of mine) {
    const ns = vmNsName(opts.nsPrefix, p);
    if (!have.has(ns)) { add(`${p.name}: namespace ${ns}`, false, 'missing'); continue; }
    const mac = spawnSync('ip', ['netns', 'exec', ns, 'cat', '/sys/class/net/eth0/address'], { encoding: 'utf8' }).stdout?.trim() ?? '';
    const ip = spawnSync('ip', ['netns', 'exec', ns, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' }).stdout ?? '';
    add(`${p.name}: ${ns} eth0 is ${p.mac} ${p.fixedIps[0].ip}`, mac === p.mac && ip.includes(` ${p.fixedIps[0].ip}/`), `eth0 ${mac}`);
    const gw = subnetOf(t, p).gatewayIp;
    if (gw !== '') {
      const r = ping(ns, gw, 3);
      add(`${p.name} -> its gateway ${gw} (answered by ${n.name}'s router flows)`, r.received === r.sent, `${r.received}/${r.sent} replies`);
    }
  }

  if (opts.remote) {
    const others = t.ports.filter((p) => p.node !== '' && p.fixedIps.length > 0);
    let k = 0;
    for (const a of mine) {
      for (const b of others) {
        if (a === b || !routerJoins(t, a, b)) continue;
        const ns = vmNsName(opts.nsPrefix, a);
        const peer = t.nodes.find((x) => x.name === b.node);
        const net = t.networks.find((x) => x.name === b.network);
        const tunneled = peer !== undefined && peer !== n && net !== undefined && isTunnelNetwork(net) && n.underlayDevice !== '';
        if (!tunneled) {
          const r = ping(ns, b.fixedIps[0].ip, 3);
          add(`${a.name} -> ${b.name} ${b.fixedIps[0].ip} on ${b.node}`, r.received === r.sent, `${r.received}/${r.sent} replies`);
          continue;
        }
        const file = path.join(opts.stateDir, `check-${n.name}-${k++}.pcap`);
        const r = await captureWhile(n.underlayDevice, file, () => ping(ns, b.fixedIps[0].ip, 3));
        add(`${a.name} -> ${b.name} ${b.fixedIps[0].ip} on ${b.node}`, r.received === r.sent, `${r.received}/${r.sent} replies`);
        const frames = (await readPcap(file)).records.map((x) => x.data);
        fs.rmSync(file, { force: true });
        const echoes = frames.map(tunnelEcho).filter((e): e is TunnelEcho => e !== null);
        const req = echoes.find((e) => e.icmpType === 8 && e.innerDstIp === b.fixedIps[0].ip);
        const routed = a.network !== b.network;
        const wantSrc = routed ? n.dvrMac : a.mac;
        const expect = `${n.underlayMac} -> ${peer.underlayMac}, ${n.localIp} -> ${peer.localIp}, ${net.type} ${net.segmentationId}, ` +
          `inner ${wantSrc} -> ${b.mac}, TTL ${routed ? 63 : 64}`;
        const got = req === undefined ? 'no echo request seen' :
          `${req.outerSrcMac} -> ${req.outerDstMac}, ${req.outerSrcIp} -> ${req.outerDstIp}, ${req.kind} ${req.id}, ` +
          `inner ${req.innerSrcMac} -> ${req.innerDstMac}, TTL ${req.ttl}`;
        add(`${n.name} underlay: ${a.name} -> ${b.name} request is ${expect}`, got === expect, got === expect ? '' : `saw ${got}`);
        const gwMacs = new Set(t.routers.flatMap((rt) => rt.interfaces.map((i) => i.mac)));
        const leaked = frames.filter((f) => f.length >= 12 && gwMacs.has(macAt(f, 6))).length;
        add(`${n.name} underlay: no frame with a router interface MAC as source`, leaked === 0, leaked ? `${leaked} frames` : '');
      }
    }
  }

  if (opts.external) {
    const extNet = t.networks.find((x) => x.external);
    const extSub = extNet === undefined ? undefined : t.subnets.find((s) => s.network === extNet.name);
    if (extSub !== undefined) {
      for (const a of mine) {
        const fip = t.floatingIps.find((f) => f.port === a.name);
        const r = ping(vmNsName(opts.nsPrefix, a), extSub.gatewayIp, 3);
        add(`${a.name} -> upstream ${extSub.gatewayIp} (${fip ? `floating IP ${fip.ip}` : 'SNAT on the dvr_snat node'})`,
          r.received === r.sent, `${r.received}/${r.sent} replies`);
      }
    }
  }
  return res;
}
