/**
 * What a topology's security groups allow, evaluated from the topology alone (not from the
 * flows): the lab's security-group checks (lab/lab-check-sg.ts) derive their scenarios and
 * expectations from it, and the east-west and north-south pings skip what it denies
 * (lab/lab-check.ts, lab/lab.ts). IPv4 only, as the lab's probes are.
 *
 * Semantics as Neutron's (neutron-firewall.md): a port is filtered when its node runs
 * firewall_driver openvswitch and its port security is on; a filtered port sends what one of
 * its groups' egress rules accepts and receives what one of their ingress rules accepts; a
 * remote group's members are the addresses (fixed IPs and allowed pairs) of its ports with port
 * security on; the return traffic of an accepted connection needs no rule.
 * Pure functions; owns nothing.
 */
import * as ipaddr from 'ipaddr.js';
import type { Topology, TopoPort } from '../dvr/topology';
import { IPPROTO_ICMP, IPPROTO_TCP, SecurityGroup, SgDirection, SgRule } from '../dvr/topology-sg';

/** One IPv4 packet as a rule sees it: protocol, destination port (tcp/udp) or ICMP type. */
export interface SgPacket {
  proto: number;
  /** tcp/udp destination port, or the ICMP type. */
  port: number;
  srcIp: string;
  dstIp: string;
}

/** Rules left out of the evaluation (a rule the check deletes from the file). */
export type SkipRule = (g: SecurityGroup, r: SgRule) => boolean;
const NONE: SkipRule = () => false;

export function isFiltered(t: Topology, p: TopoPort): boolean {
  const n = t.nodes.find((x) => x.name === p.node);
  return n !== undefined && n.firewallDriver === 'openvswitch' && p.portSecurityEnabled;
}

export function groupsOf(t: Topology, p: TopoPort): SecurityGroup[] {
  return p.securityGroups.map((name) => t.securityGroups.find((g) => g.project === p.project && g.name === name))
    .filter((g): g is SecurityGroup => g !== undefined);
}

function inPrefix(ip: string, prefix: string): boolean {
  if (prefix === '') return true;
  try {
    const a = ipaddr.parse(ip);
    if (!prefix.includes('/')) return a.toString() === ipaddr.parse(prefix).toString();
    const [net, len] = ipaddr.parseCIDR(prefix);
    return a.kind() === net.kind() && a.match(net, len);
  } catch {
    return false;
  }
}

/** Addresses (and prefixes) of a group's members: fixed IPs and allowed pairs of its ports with port security. */
export function memberPrefixes(t: Topology, project: string, group: string): string[] {
  const out: string[] = [];
  for (const p of t.ports) {
    if (p.project !== project || !p.portSecurityEnabled || !p.securityGroups.includes(group)) continue;
    for (const f of p.fixedIps) out.push(f.ip);
    for (const a of p.allowedAddressPairs) out.push(a.ipAddress);
  }
  return out;
}

/** Does `r` of group `g` accept packet `k` in direction `dir`? */
export function ruleAccepts(t: Topology, g: SecurityGroup, r: SgRule, dir: SgDirection, k: SgPacket): boolean {
  if (r.direction !== dir || r.ethertype !== 'IPv4') return false;
  if (r.protocol !== null && r.protocol !== k.proto) return false;
  if (r.protocol === IPPROTO_ICMP) {
    if (r.portRangeMin !== null && r.portRangeMin !== k.port) return false;
    if (r.portRangeMax !== null && r.portRangeMax !== 0) return false; // the probes send code 0
  } else if (r.protocol !== null && r.portRangeMin !== null) {
    if (k.port < r.portRangeMin || k.port > (r.portRangeMax ?? r.portRangeMin)) return false;
  }
  const remote = dir === 'ingress' ? k.srcIp : k.dstIp;
  if (!inPrefix(remote, r.remoteIpPrefix)) return false;
  if (r.remoteGroup !== '' && !memberPrefixes(t, g.project, r.remoteGroup).some((m) => inPrefix(remote, m))) return false;
  return true;
}

/** The first rule of `p`'s groups that accepts `k` in `dir`, or null (also null for an unfiltered port). */
export function acceptingRule(t: Topology, p: TopoPort, dir: SgDirection, k: SgPacket,
                              skip: SkipRule = NONE): { group: SecurityGroup; rule: SgRule } | null {
  for (const g of groupsOf(t, p)) {
    for (const r of g.rules) if (!skip(g, r) && ruleAccepts(t, g, r, dir, k)) return { group: g, rule: r };
  }
  return null;
}

export function egressAllows(t: Topology, p: TopoPort, k: SgPacket, skip: SkipRule = NONE): boolean {
  return !isFiltered(t, p) || acceptingRule(t, p, 'egress', k, skip) !== null;
}

export function ingressAllows(t: Topology, p: TopoPort, k: SgPacket, skip: SkipRule = NONE): boolean {
  return !isFiltered(t, p) || acceptingRule(t, p, 'ingress', k, skip) !== null;
}

/** A new connection (or ping) from VM `a` to VM `b`'s first fixed IP: both ends' rules. */
export function allows(t: Topology, a: TopoPort, b: TopoPort, proto: number, port: number, skip: SkipRule = NONE): boolean {
  const k: SgPacket = { proto, port, srcIp: a.fixedIps[0].ip, dstIp: b.fixedIps[0].ip };
  return egressAllows(t, a, k, skip) && ingressAllows(t, b, k, skip);
}

/** Does any ingress rule of `p` accept `proto` from `srcIp` to some port in [lo, hi]? */
export function ingressOpensRange(t: Topology, p: TopoPort, proto: number, srcIp: string, lo: number, hi: number): boolean {
  if (!isFiltered(t, p)) return true;
  for (const g of groupsOf(t, p)) {
    for (const r of g.rules) {
      const lo2 = r.portRangeMin ?? 0;
      const hi2 = r.portRangeMin === null ? 65535 : (r.portRangeMax ?? r.portRangeMin);
      if (hi2 < lo || lo2 > hi) continue;
      const port = Math.max(lo, lo2);
      if (ruleAccepts(t, g, r, 'ingress', { proto, port, srcIp, dstIp: p.fixedIps[0].ip })) return true;
    }
  }
  return false;
}

/** TCP ports the ingress rules of `p` name (each range's first port), sorted. */
export function tcpRulePorts(t: Topology, p: TopoPort): number[] {
  const out = new Set<number>();
  for (const g of groupsOf(t, p)) {
    for (const r of g.rules) if (r.direction === 'ingress' && r.protocol === IPPROTO_TCP && r.portRangeMin !== null) out.add(r.portRangeMin);
  }
  return [...out].sort((x, y) => x - y);
}

/** Same network, or networks one router joins: the lab's VMs that can talk at all. */
export function reachable(t: Topology, a: TopoPort, b: TopoPort): boolean {
  if (a.network === b.network) return true;
  return t.routers.some((r) => {
    const nets = r.interfaces.map((i) => t.subnets.find((s) => s.name === i.subnet)?.network);
    return nets.includes(a.network) && nets.includes(b.network);
  });
}

/** Every address the topology gives out on `p`'s subnet: ports, pairs, gateway, DHCP, SNAT. */
function usedAddresses(t: Topology): Set<string> {
  const used = new Set<string>();
  for (const p of [...t.ports, ...t.dhcpPorts]) {
    for (const f of p.fixedIps) used.add(f.ip);
    for (const a of p.allowedAddressPairs) used.add(a.ipAddress.split('/')[0]);
  }
  for (const s of t.subnets) used.add(s.gatewayIp);
  for (const r of t.routers) for (const i of r.interfaces) if (i.snatIp !== '') used.add(i.snatIp);
  return used;
}

/** An address of `p`'s subnet nobody owns and no allowed pair covers (from the top down), '' if none. */
export function unusedAddress(t: Topology, p: TopoPort): string {
  const sn = t.subnets.find((s) => s.name === p.fixedIps[0]?.subnet);
  if (sn === undefined) return '';
  const used = usedAddresses(t);
  const pairs = t.ports.flatMap((x) => x.allowedAddressPairs.map((a) => a.ipAddress));
  const [net, len] = ipaddr.IPv4.parseCIDR(`${sn.gatewayIp}/${sn.cidr.prefixLen}`);
  const base = ipaddr.IPv4.networkAddressFromCIDR(`${net.toString()}/${len}`).toByteArray()
    .reduce((x, b) => x * 256 + b, 0);
  const size = 2 ** (32 - len);
  for (let k = size - 2; k >= 1; k--) {
    const v = base + k;
    const ip = [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
    if (!used.has(ip) && !pairs.some((pr) => inPrefix(ip, pr))) return ip;
  }
  return '';
}
