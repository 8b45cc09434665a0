/**
 * `lab check`'s DHCP expectations (issue 18), on the wires of a running lab:
 * - a VM on a node without an agent for its network renews its lease: its DISCOVER leaves its
 *   node over the tunnel to each agent's node, both agents' OFFERs reach the VM, the VM keeps
 *   one (REQUEST naming that server, ACK from it with its fixed IP), address/gateway/MTU right;
 * - a port added to the topology file gets its lease with every dnsmasq reloaded, none
 *   restarted (same PIDs), and the file is put back afterwards;
 * - a MAC no port has gets no lease;
 * - with each agent's dnsmasq stopped in turn (SIGSTOP, then SIGCONT), another one serves.
 * Called by: lab/lab.ts (check). Makes only `fl-dhcpchk` (namespace) and `dhcpchk-host`
 * (its link on the node), removed before returning.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTopology, Topology, TopoPort } from '../dvr/topology';
import { Capture, capturesReady, CheckResult, startCapture, stopCapture, mac, ip4 } from './lab-check';
import { LabState, nodeNs, PREFIX, vmNs } from './lab-state';
import { framesOf } from './ping';
import { obtainLease } from './dhcp-client';
import { agentOf, clientScript, dhcpVms, dnsmasqPid, leaseFile } from './lab-dhcp';
import { newNamespace, trySh, vethBetween } from './shell';

/** DHCP message types (RFC 2132 s9.6). */
const DISCOVER = 1, OFFER = 2, REQUEST = 3, ACK = 5;

/** A DHCP message seen on a wire, with the tunnel it rode in when it did. */
export interface DhcpSeen { type: number; chaddr: string; yiaddr: string; serverId: string; outerDstIp: string }

const u16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];

/** The DHCP message in an Ethernet frame at `o` (plain, or inside VXLAN/GRE); null when none. */
export function dhcpOf(b: Uint8Array, o = 0, outerDstIp = ''): DhcpSeen | null {
  if (b.length < o + 34 || u16(b, o + 12) !== 0x0800) return null;
  const ihl = (b[o + 14] & 15) << 2;
  const l4 = o + 14 + ihl;
  const proto = b[o + 23];
  if (proto === 17 && b.length >= l4 + 8) {
    const dport = u16(b, l4 + 2);
    if (dport === 4789 && outerDstIp === '') return dhcpOf(b, l4 + 16, ip4(b, o + 30));
    const sport = u16(b, l4);
    if (!((sport === 68 && dport === 67) || (sport === 67 && dport === 68))) return null;
    const d = l4 + 8;
    // RFC 2131 s2: fixed header of 236 bytes, then the magic cookie 99.130.83.99, then options.
    if (b.length < d + 240 || b[d + 236] !== 99 || b[d + 237] !== 130 || b[d + 238] !== 83 || b[d + 239] !== 99) return null;
    const r: DhcpSeen = { type: 0, chaddr: mac(b, d + 28), yiaddr: ip4(b, d + 16), serverId: '', outerDstIp };
    for (let p = d + 240; p < b.length && b[p] !== 255;) {
      if (b[p] === 0) { p++; continue; }
      if (p + 2 > b.length || p + 2 + b[p + 1] > b.length) break;
      const code = b[p], len = b[p + 1];
      if (code === 53 && len >= 1) r.type = b[p + 2];
      if (code === 54 && len >= 4) r.serverId = ip4(b, p + 2);
      p += 2 + len;
    }
    return r.type === 0 ? null : r;
  }
  if (proto === 47 && outerDstIp === '' && b.length >= l4 + 4) {
    const f = b[l4];
    const hlen = 4 + ((f & 0x80) ? 4 : 0) + ((f & 0x20) ? 4 : 0) + ((f & 0x10) ? 4 : 0);
    return dhcpOf(b, l4 + hlen, ip4(b, o + 30));
  }
  return null;
}

async function dhcpFrames(c: Capture): Promise<DhcpSeen[]> {
  if (!fs.existsSync(c.file)) return [];
  const out: DhcpSeen[] = [];
  for (const f of await framesOf(c.file)) {
    const d = dhcpOf(f);
    if (d !== null) out.push(d);
  }
  return out;
}

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function logCount(st: LabState, event: string): number {
  let n = 0;
  for (const d of st.daemons) {
    try {
      n += fs.readFileSync(d.log, 'utf8').split(`"event":"${event}"`).length - 1;
    } catch { /* no log yet */ }
  }
  return n;
}

/** The exchange of `vm` on the wires: its node's underlay and its own eth0. */
async function exchangeChecks(t: Topology, st: LabState, vm: TopoPort, add: (n: string, ok: boolean, d: string) => void): Promise<void> {
  const node = t.nodes.find((n) => n.name === vm.node)!;
  const agents = t.dhcpPorts.filter((p) => p.network === vm.network);
  const remoteAgents = agents.filter((p) => p.node !== vm.node).map((p) => t.nodes.find((n) => n.name === p.node)!);
  const dir = st.stateDir;
  const ul = startCapture(nodeNs(node), node.underlayDevice, path.join(dir, 'dhcp-ul.pcap'));
  const eth = startCapture(vmNs(vm), 'eth0', path.join(dir, 'dhcp-vm.pcap'));
  await capturesReady([ul, eth]);
  const lease = obtainLease(vmNs(vm), 'eth0', clientScript(st), leaseFile(st, vm), 5);
  await stopCapture(ul);
  await stopCapture(eth);
  const onUl = (await dhcpFrames(ul)).filter((d) => d.chaddr === vm.mac && d.type === DISCOVER && d.outerDstIp !== '');
  const to = new Set(onUl.map((d) => d.outerDstIp));
  const want = remoteAgents.map((n) => n.localIp);
  add(`DHCP: ${vm.name}'s DISCOVER leaves ${node.name} over the tunnel to each agent's node (${remoteAgents.map((n) => n.name).join(', ')})`,
    want.length > 0 && want.every((ip) => to.has(ip)), `tunnelled to ${[...to].join(', ') || 'nobody'}`);
  const onVm = await dhcpFrames(eth);
  const offers = new Set(onVm.filter((d) => d.type === OFFER && d.chaddr === vm.mac).map((d) => d.serverId));
  const agentIps = agents.map((p) => p.fixedIps[0].ip);
  add(`DHCP: OFFERs from every agent of ${vm.network} reach ${vm.name} (${agentIps.join(', ')})`,
    agentIps.every((ip) => offers.has(ip)), `offers from ${[...offers].join(', ') || 'nobody'}`);
  const req = onVm.find((d) => d.type === REQUEST && d.chaddr === vm.mac && d.serverId !== '');
  const ack = req === undefined ? undefined : onVm.find((d) => d.type === ACK && d.serverId === req.serverId);
  add(`DHCP: ${vm.name} keeps one offer (REQUEST to one server, ACK from it with ${vm.fixedIps[0].ip})`,
    req !== undefined && ack !== undefined && ack.yiaddr === vm.fixedIps[0].ip,
    req === undefined ? 'no REQUEST' : `REQUEST to ${req.serverId} (${agentOf(t, vm.network, req.serverId)}), ACK ${ack ? `yiaddr ${ack.yiaddr}` : 'missing'}`);
  const sn = t.subnets.find((s) => s.name === vm.fixedIps[0].subnet)!;
  const mtu = t.networks.find((n) => n.name === vm.network)!.mtuBytes;
  add(`DHCP: ${vm.name}'s lease: ${vm.fixedIps[0].ip}, gateway ${sn.gatewayIp}, MTU ${mtu}`,
    lease !== null && lease.ip === vm.fixedIps[0].ip && lease.router === sn.gatewayIp && lease.mtu === mtu,
    lease === null ? 'no lease' : `${lease.ip} gw ${lease.router} mtu ${lease.mtu} from ${lease.serverId}`);
}

/** A port added to the topology file gets a lease, nothing restarts; an unknown MAC gets none. */
async function liveAddChecks(t: Topology, st: LabState, vm: TopoPort, add: (n: string, ok: boolean, d: string) => void): Promise<void> {
  const ns = `${PREFIX}dhcpchk`;
  const device = 'dhcpchk-host';
  const sn = t.subnets.find((s) => s.name === vm.fixedIps[0].subnet)!;
  const probe = loadTopology(st.topology);
  const base = sn.cidr.base;
  let ip = '';
  for (let h = 200; h < 250 && ip === ''; h++) {
    const cand = `${base >>> 24}.${(base >>> 16) & 255}.${(base >>> 8) & 255}.${h}`;
    const used = [...probe.ports, ...probe.dhcpPorts].some((p) => p.fixedIps.some((f) => f.ip === cand));
    if (!used) ip = cand;
  }
  const newMac = 'fa:16:3e:dc:00:01';
  const original = fs.readFileSync(st.topology, 'utf8');
  const pidsBefore = t.dhcpPorts.map((p) => dnsmasqPid(st, p));
  const reloadsBefore = logCount(st, 'dhcp_reloaded');
  try {
    newNamespace(ns);
    vethBetween(ns, 'eth0', nodeNs(vm.node), device, { macA: newMac });
    const entry = `  - { name: DHCPCHK, mac: "${newMac}", network: ${vm.network}, fixed_ips: [${ip}], binding:host_id: ${vm.node}, device: ${device} }\n`;
    fs.writeFileSync(st.topology, original.replace(/^floating_ips:/m, `${entry}floating_ips:`));
    const agents = t.dhcpPorts.filter((p) => p.network === vm.network).length;
    const t0 = Date.now();
    while (logCount(st, 'dhcp_reloaded') < reloadsBefore + agents && Date.now() - t0 < 10000) await sleepMs(100);
    const lease = obtainLease(ns, 'eth0', clientScript(st), path.join(st.stateDir, 'leases', 'DHCPCHK.lease'), 5);
    const pidsAfter = t.dhcpPorts.map((p) => dnsmasqPid(st, p));
    add(`DHCP: a port added to the topology file (${ip} on ${vm.node}) gets its lease, no dnsmasq restarted`,
      lease !== null && lease.ip === ip && pidsAfter.every((p, i) => p === pidsBefore[i] && p > 0),
      `${lease === null ? 'no lease' : `${lease.ip} from ${lease.serverId}`}; ${logCount(st, 'dhcp_reloaded') - reloadsBefore} reloads; dnsmasq pids ${pidsBefore.join(',')} -> ${pidsAfter.join(',')}`);
    trySh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'eth0', 'address', 'fa:16:3e:dc:99:99');
    const none = obtainLease(ns, 'eth0', clientScript(st), path.join(st.stateDir, 'leases', 'unknown.lease'), 2);
    add('DHCP: a MAC no port has gets no lease (static mode)', none === null, none === null ? 'no offer' : `got ${none.ip} from ${none.serverId}`);
  } finally {
    // Put the file back and let the daemons drop the port before its link goes.
    const applied = logCount(st, 'topology_applied');
    fs.writeFileSync(st.topology, original);
    const t0 = Date.now();
    while (logCount(st, 'topology_applied') < applied + st.daemons.length && Date.now() - t0 < 5000) await sleepMs(100);
    trySh('ip', 'netns', 'del', ns);
    trySh('ip', 'netns', 'exec', nodeNs(vm.node), 'ip', 'link', 'del', device);
  }
}

/**
 * Each agent's dnsmasq stopped in turn (SIGSTOP, then SIGCONT): the VM still gets its lease,
 * from another agent. Every agent is stopped once, so the one that served the VM before is too.
 */
function agentStopChecks(t: Topology, st: LabState, vm: TopoPort, add: (n: string, ok: boolean, d: string) => void): void {
  const agents = t.dhcpPorts.filter((p) => p.network === vm.network);
  if (agents.length < 2) return;
  for (const stopped of agents) {
    const pid = dnsmasqPid(st, stopped);
    if (pid <= 0) {
      add(`DHCP: with ${stopped.node}'s dnsmasq stopped, ${vm.name} is still served`, false, `no dnsmasq pid for ${stopped.network} on ${stopped.node}`);
      continue;
    }
    process.kill(pid, 'SIGSTOP');
    try {
      const lease = obtainLease(vmNs(vm), 'eth0', clientScript(st), leaseFile(st, vm), 5);
      const from = lease === null ? '' : agentOf(t, vm.network, lease.serverId);
      add(`DHCP: with ${stopped.node}'s dnsmasq stopped (SIGSTOP pid ${pid}), ${vm.name} is served by another agent`,
        lease !== null && lease.ip === vm.fixedIps[0].ip && from !== '' && from !== stopped.node,
        lease === null ? 'no lease' : `${lease.ip} from ${lease.serverId} (${from})`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  }
}

export async function runDhcpChecks(t: Topology, st: LabState): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const add = (name: string, pass: boolean, detail: string): void => { out.push({ name, pass, detail }); };
  const vms = dhcpVms(t);
  // Prefer a VM whose node runs no agent of its network: its exchange crosses the tunnels.
  const vm = vms.find((p) => !t.dhcpPorts.some((d) => d.network === p.network && d.node === p.node)) ?? vms[0];
  if (vm === undefined) return out;
  await exchangeChecks(t, st, vm, add);
  await liveAddChecks(t, st, vm, add);
  agentStopChecks(t, st, vm, add);
  return out;
}
