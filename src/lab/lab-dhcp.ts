/**
 * DHCP in the namespace lab: where each node's DHCP agent keeps its namespaces and files, the
 * VMs' leases (taken with lab/dhcp-client.ts after the daemons are up), and what `lab status`
 * says about them (address, gateway, MTU and which agent gave the lease).
 * Called by: lab/lab.ts (up, status, down, daemon configs), lab/lab-check-dhcp.ts.
 *
 * Names: node N's agent uses namespace prefix `fl-n-` (so `fl-nn-qdhcp-A`) and keeps dnsmasq's
 * files in `<state dir>/dhcp-N/<network>/`; a VM's lease is `<state dir>/leases/<port>.lease`.
 * The lab records the qdhcp namespaces in its state so `down` removes them even when a daemon
 * died before it could, and stops a dnsmasq left behind by such a daemon (by its pid file).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Topology, TopoPort } from '../dvr/topology';
import { LabState, nodeNs, vmNs } from './lab-state';
import { Lease, obtainLeaseAsync, readLease, writeClientScript } from './dhcp-client';

export function dhcpNsPrefix(node: string): string {
  return `${nodeNs(node)}-`;
}

export function dhcpStateDir(st: LabState, node: string): string {
  return path.join(st.stateDir, `dhcp-${node}`);
}

/** The `dhcp:` section of node `node`'s daemon config. */
export function dhcpConfigText(st: LabState, node: string): string {
  return `dhcp: { namespace_prefix: ${dhcpNsPrefix(node)}, state_dir: ${dhcpStateDir(st, node)} }\n`;
}

/** Every qdhcp namespace the topology's agents make in the lab. */
export function qdhcpNamespaces(t: Topology): string[] {
  return t.dhcpPorts.map((p) => `${dhcpNsPrefix(p.node)}qdhcp-${p.network}`);
}

/** dnsmasq's pid file for the DHCP port `p` (a DHCP port of the topology). */
export function dnsmasqPidFile(st: LabState, p: TopoPort): string {
  return path.join(dhcpStateDir(st, p.node), p.network, 'pid');
}

export function dnsmasqPid(st: LabState, p: TopoPort): number {
  try {
    return Number(fs.readFileSync(dnsmasqPidFile(st, p), 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

export function leaseFile(st: LabState, p: TopoPort): string {
  return path.join(st.stateDir, 'leases', `${p.name}.lease`);
}

export function clientScript(st: LabState): string {
  return writeClientScript(st.stateDir);
}

/** The node whose DHCP port has address `serverId` on `network`, '' when none. */
export function agentOf(t: Topology, network: string, serverId: string): string {
  return t.dhcpPorts.find((p) => p.network === network && p.fixedIps.some((f) => f.ip === serverId))?.node ?? '';
}

/** Waits until every agent's dnsmasq has written its pid file. */
export async function waitForAgents(t: Topology, st: LabState, timeoutMs = 15000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const missing = t.dhcpPorts.filter((p) => dnsmasqPid(st, p) === 0);
    if (missing.length === 0) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`dnsmasq did not start for ${missing.map((p) => `${p.network} on ${p.node}`).join(', ')} (see the node logs in ${st.stateDir})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function describeLease(t: Topology, p: TopoPort, l: Lease | null): string {
  if (l === null) return `${p.name} (${p.node}): no lease`;
  const agent = agentOf(t, p.network, l.serverId);
  return `${p.name} (${p.node}): ${l.ip} mask ${l.subnet} gateway ${l.router} mtu ${l.mtu} lease ${l.leaseS}s ` +
    `from ${l.serverId} (${agent === '' ? 'unknown server' : `${agent}'s dnsmasq`})`;
}

/** The VM ports that take their address by DHCP in the lab. */
export function dhcpVms(t: Topology): TopoPort[] {
  return t.ports.filter((p) => p.node !== '' && p.device !== '' && p.fixedIps.length > 0 && p.addressing === 'dhcp');
}

/** Whether `l` is what the topology gives `p`: its fixed IP, its subnet's gateway, its network's MTU. */
export function leaseMatches(t: Topology, p: TopoPort, l: Lease | null): boolean {
  if (l === null || p.fixedIps.length === 0) return false;
  const sn = t.subnets.find((s) => s.name === p.fixedIps[0].subnet);
  const net = t.networks.find((n) => n.name === p.network);
  return l.ip === p.fixedIps[0].ip && sn !== undefined && l.router === sn.gatewayIp && net !== undefined && l.mtu === net.mtuBytes;
}

/** Each DHCP VM takes its lease, all at once; returns one line per VM, ok (address, gateway, MTU right) or FAIL. */
export async function acquireLeases(t: Topology, st: LabState): Promise<{ lines: string[]; ok: boolean }> {
  const script = clientScript(st);
  fs.mkdirSync(path.join(st.stateDir, 'leases'), { recursive: true });
  const vms = dhcpVms(t);
  const leases = await Promise.all(vms.map((p) => obtainLeaseAsync(vmNs(p), 'eth0', script, leaseFile(st, p), 5)));
  const lines: string[] = [];
  let ok = true;
  vms.forEach((p, i) => {
    const good = leaseMatches(t, p, leases[i]);
    ok = ok && good;
    lines.push(`${good ? 'ok  ' : 'FAIL'} DHCP ${describeLease(t, p, leases[i])}`);
  });
  return { lines, ok };
}

/** `lab status` lines: each DHCP VM's lease as recorded, and each agent's dnsmasq. */
export function dhcpStatusLines(t: Topology, st: LabState): string[] {
  const out: string[] = [];
  for (const p of dhcpVms(t)) out.push(`  lease ${describeLease(t, p, readLease(leaseFile(st, p)))}`);
  for (const p of t.ports.filter((x) => x.addressing === 'static' && x.node !== '')) out.push(`  static ${p.name} (${p.node}): ${p.fixedIps[0]?.ip ?? ''}`);
  for (const d of t.dhcpPorts) {
    const pid = dnsmasqPid(st, d);
    const alive = pid > 0 && fs.existsSync(`/proc/${pid}`);
    out.push(`  dhcp agent ${d.node} network ${d.network}: ${d.fixedIps.map((f) => f.ip).join(' ')} ${d.mac}, dnsmasq ${alive ? `pid ${pid}` : 'NOT running'} in ${dhcpNsPrefix(d.node)}qdhcp-${d.network}`);
  }
  return out;
}

/** Stops a dnsmasq a dead daemon left (by its pid file, only when it is a dnsmasq); for `down`. */
export function stopLeftoverDnsmasq(st: LabState): string[] {
  const done: string[] = [];
  for (const d of st.daemons) {
    const dir = dhcpStateDir(st, d.node);
    if (!fs.existsSync(dir)) continue;
    for (const net of fs.readdirSync(dir)) {
      let pid = 0;
      try { pid = Number(fs.readFileSync(path.join(dir, net, 'pid'), 'utf8').trim()); } catch { continue; }
      let cmd = '';
      try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
      if (!cmd.includes('dnsmasq') || !cmd.includes(dir)) continue;
      try { process.kill(pid, 'SIGCONT'); process.kill(pid, 'SIGTERM'); } catch { continue; }
      done.push(`stopped dnsmasq of ${d.node} network ${net} (pid ${pid})`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return done;
}
