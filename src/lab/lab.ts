/**
 * The namespace lab: flowd's main job. Brings a DVR topology (dvr/topology.ts; by default the
 * acceptance topology of dvr-reference.md) up on one machine:
 *
 *   fl-ul            the underlay segment: a Linux bridge joining every node's underlay device
 *   fl-<node>        one namespace per node: its underlay device (local_ip, underlay MAC), the
 *                    host ends of its VMs' links, and a flowd daemon reading the topology
 *   fl-<port>        one namespace per VM port: eth0 with the port's MAC; its fixed IP, default
 *                    route and MTU by DHCP (lab-dhcp.ts), or set by hand for `addressing: static`
 *   fl-<node>-qdhcp-<network>  made by that node's flowd: its DHCP agent's dnsmasq
 *   fl-ext, fl-up    the external segment (a bridge) and the upstream host on it, when the
 *                    topology has an external network with nodes mapped to it
 *   fl-pn-<physnet>  the segment of every other physical network (lab-physical.ts): a bridge
 *                    joining each node's device of that network (VLAN and flat networks)
 *
 *   fl-ha-<node>-<router>  keepalived of an HA router on a node (made by that node's flowd)
 *
 * Commands: up [TOPOLOGY] (down first, then up, ping across, print, leave it up), status
 * (also the master of each HA router), failover (lab/lab-failover.ts),
 * check (the acceptance checks with captures, pass/fail per expectation), down (idempotent:
 * stops the daemons it started by PID and deletes what it made, as recorded in its state file).
 * Everything it creates is named with the `fl-` prefix; it touches nothing else.
 *
 * Called by: cli/lab.ts (the `lab.sh` entry point), lab/lab-bench.ts and the lab tests.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTopology, Topology, TopoNode, TopoPort } from '../dvr/topology';
import { snatHost } from '../dvr/node-plan';
import { haRoutersOn } from '../dvr/ha';
import { fipServer } from '../dvr/ns-plan';
import { request } from '../control/client';
import type { JsonValue } from '../control/server';
import { runChecks, runIsolationChecks, CheckResult } from './lab-check';
import { runNorthSouthChecks } from './lab-check-ns';
import { mastersOf, runHaChecks } from './lab-check-ha';
import { runSgChecks, sgChecksApply } from './lab-check-sg';
import { allows, ingressAllows } from './sg-model';
import { alive, EXT_NS, LabState, nodeNs, pidOf, PREFIX, readState, saveState, stateDir, statePath, UL_NS, UP_NS, vmNs } from './lab-state';
import { PingCount, pingAll, PingResult } from './ping';
import { acquireLeases, dhcpConfigText, dhcpStatusLines, qdhcpNamespaces, stopLeftoverDnsmasq, waitForAgents } from './lab-dhcp';
import { runDhcpChecks } from './lab-check-dhcp';
import { ipIn, newNamespace, trySh, vethBetween } from './shell';
import { startEtcd, stopEtcd } from './lab-etcd';
import { externalPhysnet, physicalDevice, plumbPhysical } from './lab-physical';
import { runPhysicalChecks } from './lab-check-physical';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const FLOWD = path.join(ROOT, 'dist', 'src', 'cli', 'flowd.js');
const FLOWCTL = path.join(ROOT, 'dist', 'src', 'cli', 'flowctl.js');
/** Namespaces of the HA routers' keepalived (flowd --ha-ns-prefix). */
export const HA_NS_PREFIX = `${PREFIX}ha-`;
/** The topology `lab up` brings up when given none: dvr-reference.md's acceptance topology. */
export const DEFAULT_TOPOLOGY = path.join(ROOT, 'examples', 'topologies', 'reference.yaml');

function prefixLen(t: Topology, p: TopoPort): number {
  const sn = t.subnets.find((s) => s.name === p.fixedIps[0]?.subnet);
  return sn ? sn.cidr.prefixLen : 24;
}

function gatewayOf(t: Topology, p: TopoPort): string {
  const sn = t.subnets.find((s) => s.name === p.fixedIps[0]?.subnet);
  return sn ? sn.gatewayIp : '';
}

function newNs(ns: string, st: LabState): void {
  newNamespace(ns);
  st.namespaces.push(ns);
}

/** A veth between two namespaces; `mac` for end a when given. */
function veth(nsA: string, a: string, nsB: string, b: string, mac = ''): void {
  vethBetween(nsA, a, nsB, b, { macA: mac });
}

function bridgeNs(ns: string, br: string, st: LabState): void {
  newNs(ns, st);
  ipIn(ns, 'link', 'add', br, 'up', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
}

/** The external network of the topology, when there is one (flat, router:external). */
function externalSubnet(t: Topology): { cidr: string; gw: string; gwMac: string } | null {
  const net = t.networks.find((n) => n.external);
  if (net === undefined) return null;
  const sn = t.subnets.find((s) => s.network === net.name);
  if (sn === undefined) return null;
  return { cidr: `${sn.gatewayIp}/${sn.cidr.prefixLen}`, gw: sn.gatewayIp, gwMac: sn.gatewayMac };
}

/** Builds the namespaces and links of `t` (no daemons). */
export function plumb(t: Topology, st: LabState): void {
  bridgeNs(UL_NS, 'ulbr', st);
  for (const n of t.nodes) {
    const ns = nodeNs(n);
    newNs(ns, st);
    const ulPeer = `ul-${n.name.toLowerCase()}`.slice(0, 15);
    veth(ns, n.underlayDevice, UL_NS, ulPeer, n.underlayMac);
    ipIn(UL_NS, 'link', 'set', ulPeer, 'master', 'ulbr');
    ipIn(ns, 'addr', 'add', `${n.localIp}/24`, 'dev', n.underlayDevice);
    ipIn(ns, 'link', 'set', n.underlayDevice, 'mtu', String(n.underlayMtuBytes));
  }
  const ext = externalSubnet(t);
  const extPhysnet = externalPhysnet(t);
  const extNodes = t.nodes.filter((n) => physicalDevice(n, extPhysnet) !== '');
  if (ext !== null && extNodes.length > 0) {
    bridgeNs(EXT_NS, 'extbr', st);
    newNs(UP_NS, st);
    veth(UP_NS, 'eth0', EXT_NS, 'ex-up', ext.gwMac);
    ipIn(EXT_NS, 'link', 'set', 'ex-up', 'master', 'extbr');
    ipIn(UP_NS, 'addr', 'add', ext.cidr, 'dev', 'eth0');
    for (const n of extNodes) {
      const peer = `ex-${n.name.toLowerCase()}`.slice(0, 15);
      veth(nodeNs(n), physicalDevice(n, extPhysnet), EXT_NS, peer);
      ipIn(EXT_NS, 'link', 'set', peer, 'master', 'extbr');
    }
  }
  plumbPhysical(t, st);
  for (const p of t.ports) plumbPort(t, p, st);
}

/**
 * The namespace of VM port `p` and its link to its node (before the topology names it, when a
 * port is added to a running lab: flowd opens the device when the topology change arrives).
 */
export function plumbPort(t: Topology, p: TopoPort, st: LabState): void {
  if (p.node === '' || p.device === '' || p.fixedIps.length === 0) return;
  const ns = vmNs(p);
  newNs(ns, st);
  veth(ns, 'eth0', nodeNs(p.node), p.device, p.mac);
  if (p.addressing === 'dhcp') return;
  ipIn(ns, 'addr', 'add', `${p.fixedIps[0].ip}/${prefixLen(t, p)}`, 'dev', 'eth0');
  const mtu = t.networks.find((x) => x.name === p.network)?.mtuBytes ?? 1450;
  ipIn(ns, 'link', 'set', 'eth0', 'mtu', String(mtu));
  const gw = gatewayOf(t, p);
  if (gw !== '') ipIn(ns, 'route', 'add', 'default', 'via', gw);
}

async function waitForSocket(sock: string, logFile: string, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      await request(sock, 'show', {}, 1000);
      return;
    } catch {
      if (Date.now() - t0 > timeoutMs) {
        const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').slice(-5).join('\n') : '';
        throw new Error(`flowd did not come up on ${sock} within ${timeoutMs} ms\n${tail}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Starts one flowd per node, each reading the topology (and watching it). */
export async function startDaemons(t: Topology, st: LabState): Promise<void> {
  await Promise.all(t.nodes.map((n) => startDaemon(t, n, st)));
  for (const ns of qdhcpNamespaces(t)) if (!st.namespaces.includes(ns)) st.namespaces.push(ns);
}

/** Starts (or restarts, after `lab failover` killed it) the flowd of node `n`; resolves when it answers. */
export async function startDaemon(t: Topology, n: TopoNode, st: LabState): Promise<void> {
  const ns = nodeNs(n);
  const cfg = path.join(st.stateDir, `${n.name}.yaml`);
  const sock = path.join(st.stateDir, `${n.name}.sock`);
  const pidFile = path.join(st.stateDir, `${n.name}.pid`);
  const log = path.join(st.stateDir, `${n.name}.log`);
  fs.writeFileSync(cfg, `node: ${n.name}\ntopology: ${st.etcdUrl ?? st.topology}\ncontrol_socket: ${sock}\n${dhcpConfigText(st, n.name)}`);
  const out = fs.openSync(log, 'a');
  // keepalived of HA routers runs in fl-ha-<node>-<router>, made by that flowd; recorded so
  // `down` removes them also after a SIGKILLed daemon left them behind.
  for (const h of haRoutersOn(t, n.name)) {
    const hns = `${HA_NS_PREFIX}${n.name}-${h.router.name}`;
    if (!st.namespaces.includes(hns)) st.namespaces.push(hns);
  }
  const child: ChildProcess = spawn('ip', ['netns', 'exec', ns, process.execPath, FLOWD, '--config', cfg, '--pid-file', pidFile,
    '--ha-ns-prefix', HA_NS_PREFIX], { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  fs.closeSync(out);
  if (!st.daemons.some((d) => d.node === n.name)) st.daemons.push({ node: n.name, ns, pidFile, socket: sock, log });
  await waitForSocket(sock, log, 20000);
}

/** Stops the lab's daemons (by PID) and deletes its namespaces; safe to run twice. */
export async function down(dir = stateDir()): Promise<string[]> {
  const st = readState(dir);
  const done: string[] = [];
  if (st === null) return done;
  for (const d of st.daemons) {
    const pid = pidOf(d.pidFile);
    if (alive(pid)) {
      process.kill(pid, 'SIGTERM');
      for (let k = 0; k < 50 && alive(pid); k++) await new Promise((r) => setTimeout(r, 100));
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      done.push(`stopped flowd of ${d.node} (pid ${pid})`);
    }
  }
  done.push(...stopLeftoverDnsmasq(st));
  done.push(...await stopEtcd(st));
  for (const ns of [...st.namespaces].reverse()) if (trySh('ip', 'netns', 'del', ns)) done.push(`deleted namespace ${ns}`);
  fs.rmSync(statePath(dir), { force: true });
  return done;
}

const ICMP = 1;
const ICMP_ECHO = 8;

/** How a packet from port a to port b travels, in words. */
export function describePath(t: Topology, a: TopoPort, b: TopoPort): string {
  const nb = t.networks.find((n) => n.name === b.network);
  const kind = nb ? nb.type.toUpperCase() : '?';
  const routed = a.network !== b.network;
  if (a.node === b.node) return `${routed ? 'routed' : 'switched'} on ${a.node}, never leaves it`;
  const how = routed ? `routed on ${a.node}` : 'switched';
  const id = kind === 'GRE' ? 'key' : kind === 'VLAN' ? `VID on ${nb?.physicalNetwork}` : kind === 'FLAT' ? `untagged on ${nb?.physicalNetwork}` : 'VNI';
  return `${how}, ${a.node} -> ${b.node} over ${kind} ${id}${kind === 'FLAT' ? '' : ` ${nb?.segmentationId ?? '?'}`}`;
}

/** A ping `lab up` runs, and how to report what it got. */
interface UpPing {
  fromNs: string;
  ip: string;
  count: number;
  report: (r: PingCount, lines: string[], results: PingResult[]) => void;
}

/** Runs `pings` side by side (they are independent: each its own pair), reports in their order. */
async function runUpPings(pings: UpPing[]): Promise<{ lines: string[]; results: PingResult[] }> {
  const got = await pingAll(pings);
  const lines: string[] = [];
  const results: PingResult[] = [];
  pings.forEach((p, i) => p.report(got[i], lines, results));
  return { lines, results };
}

/** Pings between every pair of bound VM ports a router joins, side by side; one line per pair. */
export async function pingAcross(t: Topology, count = 3): Promise<{ lines: string[]; results: PingResult[] }> {
  const vms = t.ports.filter((p) => p.node !== '' && p.fixedIps.length > 0);
  const pings: UpPing[] = [];
  for (const a of vms) {
    for (const b of vms) {
      if (a === b) continue;
      // Only pairs a router joins (or the same network): other tenants must stay apart.
      const joined = a.network === b.network || t.routers.some((r) => {
        const nets = r.interfaces.map((i) => t.subnets.find((s) => s.name === i.subnet)?.network);
        return nets.includes(a.network) && nets.includes(b.network);
      });
      if (!joined) continue;
      const ip = b.fixedIps[0].ip;
      // A pair whose security groups refuse the ping (lab/sg-model.ts) must get no reply.
      if (!allows(t, a, b, ICMP, ICMP_ECHO)) {
        pings.push({ fromNs: vmNs(a), ip, count: 1, report: (r, lines) => {
          lines.push(`${r.received === 0 ? 'ok  ' : 'FAIL'} ${a.name} -> ${b.name} (${ip}): ${r.received}/${r.sent} replies; ` +
            'its security groups refuse this ping');
        } });
        continue;
      }
      pings.push({ fromNs: vmNs(a), ip, count, report: (r, lines, results) => {
        results.push({ from: a.name, to: b.name, toIp: ip, ...r });
        const ok = r.received === r.sent ? 'ok  ' : 'FAIL';
        lines.push(`${ok} ${a.name} (${a.fixedIps[0].ip} on ${a.node}) -> ${b.name} (${ip} on ${b.node}): ` +
          `${r.received}/${r.sent} replies, rtt min/avg/max ${r.rttMs} ms; ${describePath(t, a, b)}`);
      } });
    }
  }
  return runUpPings(pings);
}

/**
 * How VM port `p` reaches the upstream, as `lab up` prints it: by its floating IP from the node
 * that serves it, or by SNAT of its own router (the one with a gateway and an interface on one
 * of its subnets) on the dvr_snat node, or on the HA router's master.
 */
export function northSouthPath(t: Topology, p: TopoPort): string {
  const fip = t.floatingIps.find((f) => f.port === p.name);
  if (fip !== undefined) {
    const server = fipServer(t, fip.ip, p.name);
    return server === p.node ? `as floating IP ${fip.ip}, leaves ${server} directly`
      : `as floating IP ${fip.ip}, centrally on ${server ?? 'the HA master'} (${p.node} is dvr_no_external)`;
  }
  const router = t.routers.find((r) => r.gateway !== null && r.interfaces.some((i) => p.fixedIps.some((f) => f.subnet === i.subnet)));
  if (router === undefined || router.gateway === null) return 'no router with a gateway';
  const on = router.ha.ha ? `${router.ha.l3Agents.join('/')} (the master)` : snatHost(t)?.name ?? '?';
  return `SNAT on ${on} to ${router.gateway.ip} (router ${router.name})`;
}

/**
 * North-south pings when the topology has an external network and the lab made the upstream
 * host: every VM pings the upstream gateway (through its floating IP's node, or SNAT on the
 * dvr_snat node), and the upstream pings every floating IP; side by side.
 */
export async function pingNorthSouth(t: Topology, st: LabState, count = 3): Promise<{ lines: string[]; results: PingResult[] }> {
  const ext = externalSubnet(t);
  if (ext === null || !st.namespaces.includes(UP_NS)) return { lines: [], results: [] };
  const line = (ok: boolean, text: string, r: PingCount): string =>
    `${ok ? 'ok  ' : 'FAIL'} ${text}: ${r.received}/${r.sent} replies, rtt min/avg/max ${r.rttMs} ms`;
  const pings: UpPing[] = [];
  for (const p of t.ports.filter((x) => x.node !== '' && x.fixedIps.length > 0)) {
    // A VM on a network no router with an external gateway joins has no way out (as in Neutron).
    if (!t.routers.some((r) => r.gateway !== null && r.interfaces.some((i) => p.fixedIps.some((f) => f.subnet === i.subnet)))) continue;
    const via = northSouthPath(t, p);
    pings.push({ fromNs: vmNs(p), ip: ext.gw, count, report: (r, lines, results) => {
      results.push({ from: p.name, to: 'upstream', toIp: ext.gw, ...r });
      lines.push(line(r.received === r.sent, `${p.name} (${p.fixedIps[0].ip} on ${p.node}) -> upstream ${ext.gw} ${via}`, r));
    } });
  }
  for (const f of t.floatingIps) {
    const port = t.ports.find((p) => p.name === f.port);
    if (port !== undefined && !ingressAllows(t, port, { proto: ICMP, port: ICMP_ECHO, srcIp: ext.gw, dstIp: port.fixedIps[0]?.ip ?? '' })) {
      pings.push({ fromNs: UP_NS, ip: f.ip, count: 1, report: (r, lines) => {
        lines.push(`${r.received === 0 ? 'ok  ' : 'FAIL'} upstream ${ext.gw} -> floating IP ${f.ip} (${f.port}): ${r.received}/${r.sent} replies; ` +
          `${f.port}'s security groups refuse this ping`);
      } });
      continue;
    }
    pings.push({ fromNs: UP_NS, ip: f.ip, count, report: (r, lines, results) => {
      results.push({ from: 'upstream', to: f.port, toIp: f.ip, ...r });
      lines.push(line(r.received === r.sent, `upstream ${ext.gw} -> floating IP ${f.ip} (${f.port}, DNAT on ${fipServer(t, f.ip, f.port) ?? '?'})`, r));
    } });
  }
  return runUpPings(pings);
}

/** Where `lab up` keeps the topology: the file (default), or etcd with 1 or 3 members. */
export interface StoreOptions { store: 'file' | 'etcd'; etcdMembers: number }

export async function up(topologyFile: string, dir = stateDir(),
                         print: (s: string) => void = (s) => { process.stdout.write(s); },
                         store: StoreOptions = { store: 'file', etcdMembers: 1 }): Promise<{ state: LabState; pings: PingResult[] }> {
  const topoPath = path.resolve(topologyFile);
  const t = loadTopology(topoPath);
  await down(dir);
  const st: LabState = { topology: topoPath, stateDir: dir, namespaces: [], daemons: [], store: store.store };
  fs.mkdirSync(dir, { recursive: true });
  saveState(st);
  try {
    plumb(t, st);
    saveState(st);
    if (store.store === 'etcd') {
      st.etcdUrl = await startEtcd(t, topoPath, store.etcdMembers, st, FLOWCTL);
      saveState(st);
    }
    await startDaemons(t, st);
    saveState(st);
    await waitForAgents(t, st);
  } catch (e) {
    saveState(st);
    throw e;
  }
  const leases = await acquireLeases(t, st);
  const east = await pingAcross(t);
  const north = await pingNorthSouth(t, st);
  const lines = [...leases.lines, ...east.lines, ...north.lines];
  const results = [...east.results, ...north.results];
  print(`flowd lab: ${t.nodes.length} nodes (${t.nodes.map((n) => `${n.name} ${n.agentMode} ${n.localIp}`).join(', ')}), ` +
    `${t.ports.length} VM ports, topology ${topoPath}${st.etcdUrl === undefined ? '' : ` pushed to ${st.etcdUrl} (${st.etcd?.length ?? 0} etcd member(s))`}\n`);
  print(`${lines.join('\n')}\n`);
  for (const d of t.deprecations) print(`warning: ${d}\n`);
  print(`\nThe lab is up. Try: ip netns exec ${t.ports[0] ? vmNs(t.ports[0]) : 'fl-vm1'} ping ...; ` +
    `node dist/src/cli/flowctl.js --socket ${st.daemons[0]?.socket ?? ''} dump-flows br-tun; lab check; lab down\n`);
  return { state: st, pings: results };
}

export async function status(dir = stateDir()): Promise<string> {
  const st = readState(dir);
  if (st === null) return 'flowd lab: down\n';
  const out = [`flowd lab: topology ${st.topology}${st.etcdUrl === undefined ? '' : ` in ${st.etcdUrl}`}`];
  for (const d of st.daemons) {
    const pid = pidOf(d.pidFile);
    let stats = '';
    if (alive(pid)) {
      try {
        const r = await request(d.socket, 'stats', {}, 2000);
        const s = String(r);
        const pk = /Rx packets:\s+(\d+)/.exec(s);
        const up = /Upcalls:\s+(\d+)/.exec(s);
        stats = `, ${pk ? pk[1] : '?'} packets, ${up ? up[1] : '?'} upcalls`;
      } catch (e) {
        stats = `, control socket: ${(e as Error).message}`;
      }
    }
    out.push(`  ${d.node}: flowd ${alive(pid) ? `running (pid ${pid})` : 'NOT running'} in ${d.ns}${stats}`);
  }
  try {
    out.push(...dhcpStatusLines(loadTopology(st.topology), st));
  } catch (e) {
    out.push(`  DHCP: ${(e as Error).message}`);
  }
  out.push(...await haMasters(st));
  out.push(`  namespaces: ${st.namespaces.join(' ')}`);
  return `${out.join('\n')}\n`;
}

/** One line per HA router: its master(s) and the state on each of its nodes, asked of each flowd. */
export async function haMasters(st: LabState): Promise<string[]> {
  const byRouter = new Map<string, string[]>();
  for (const d of st.daemons) {
    if (!alive(pidOf(d.pidFile))) continue;
    let r: JsonValue;
    try { r = await request(d.socket, 'ha', { action: 'status', format: 'json' }, 2000); } catch { continue; }
    if (!Array.isArray(r)) continue;
    for (const x of r) {
      if (x === null || typeof x !== 'object' || Array.isArray(x)) continue;
      const router = String(x.router);
      const list = byRouter.get(router) ?? [];
      list.push(`${d.node}=${String(x.state)}`);
      byRouter.set(router, list);
    }
  }
  return [...byRouter].map(([router, states]) => {
    const masters = states.filter((s) => s.endsWith('=master')).map((s) => s.split('=')[0]);
    return `  HA router ${router}: master ${masters.join(', ') || 'none'}${masters.length > 1 ? ' (MORE THAN ONE)' : ''} (${states.join(' ')})`;
  });
}

export async function check(dir = stateDir()): Promise<CheckResult[]> {
  const st = readState(dir);
  if (st === null) throw new Error('the lab is down: run `lab up` first');
  const t = loadTopology(st.topology);
  const east = await runChecks(t, st);
  const hasExternal = t.networks.some((n) => n.external) && t.routers.some((r) => r.gateway !== null);
  // An HA router's SNAT runs where its VRRP master is now.
  const masters = new Map<string, string>();
  for (const r of t.routers) if (r.ha.ha && r.gateway !== null) masters.set(r.name, (await mastersOf(st, r.name))[0] ?? '');
  const ns = hasExternal ? await runNorthSouthChecks(t, st, (r) => masters.get(r.name) ?? '') : [];
  const all = [...east, ...(await runIsolationChecks(t, st)), ...(await runPhysicalChecks(t, st)), ...ns];
  const withDhcp = [...all, ...(await runDhcpChecks(t, st))];
  const withHa = t.routers.some((r) => r.ha.ha) ? [...withDhcp, ...(await runHaChecks(t, st))] : withDhcp;
  return sgChecksApply(t) ? [...withHa, ...(await runSgChecks(t, st))] : withHa;
}
