/**
 * Security groups and port security in the topology file, in Neutron's API vocabulary, read
 * and validated; the rest of the file is dvr/topology.ts, which calls readSecurityGroups()
 * before the ports, readPortSecurity() for each port and resolveSecurityGroups() after them.
 *
 *   security_groups:
 *     - name: web
 *       project: demo                      # optional, default "admin" (ports have one too)
 *       rules:
 *         - { direction: ingress, ethertype: IPv4, protocol: tcp,
 *             port_range_min: 80, port_range_max: 80 }          # remote_ip_prefix: 0.0.0.0/0
 *         - { direction: ingress, protocol: icmp, port_range_min: 8,    # icmp: type and code
 *             remote_ip_prefix: 203.0.113.0/24 }
 *         - { direction: ingress, protocol: tcp, port_range_min: 5000,
 *             port_range_max: 5000, remote_group: web }          # members of a group
 *   ports:
 *     - { name: VM1, ..., project: demo, security_groups: [web],
 *         port_security_enabled: true,                               # default true
 *         allowed_address_pairs: [{ ip_address: 10.0.1.100, mac_address: fa:16:3e:00:01:10 }] }
 *
 * Defaults as Neutron's: a port without `security_groups` (and port security on) is in its
 * project's group `default`; a project's `default` group that the file does not declare is
 * made with Neutron's default rules (egress everything, IPv4 and IPv6; ingress from members of
 * `default`). A rule without ethertype is IPv4; `protocol` absent or `any` matches every
 * protocol; `icmp` under IPv6 is ICMPv6 (58), as Neutron maps it.
 *
 * Invariants after resolveSecurityGroups(): every group a port names and every remote group
 * exists in the same project (a reference into another project is an error naming both); a
 * port with port security off has no groups and no allowed address pairs.
 */
import { isScalar, Node as YNode, YAMLMap } from 'yaml';
import * as ipaddr from 'ipaddr.js';
import type { YamlReader } from '../control/yaml-reader';

export const DEFAULT_PROJECT = 'admin';
export const DEFAULT_GROUP = 'default';

export type SgDirection = 'ingress' | 'egress';
export type SgEthertype = 'IPv4' | 'IPv6';

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_SCTP = 132;

export interface SgRule {
  direction: SgDirection;
  ethertype: SgEthertype;
  /** IP protocol number, or null for any. */
  protocol: number | null;
  /** tcp/udp/sctp: destination port range; icmp: type (min) and code (max). null when absent. */
  portRangeMin: number | null;
  portRangeMax: number | null;
  /** Prefix text ("10.0.0.0/8"), '' when absent; a /0 prefix is kept as given. */
  remoteIpPrefix: string;
  /** Name of a group of the same project, '' when absent. */
  remoteGroup: string;
  line: number;
}

export interface SecurityGroup {
  name: string;
  project: string;
  rules: SgRule[];
  /** 0 for a `default` group made because the file does not declare it. */
  line: number;
}

export interface AllowedAddressPair {
  /** An IPv4 address or prefix as written ("10.0.1.100" or "10.0.1.96/28"). */
  ipAddress: string;
  /** The MAC allowed with it: the port's own MAC when the pair gives none. */
  macAddress: string;
}

/** What a port carries of Neutron's port security (dvr/topology.ts TopoPort extends it). */
export interface PortSecurity {
  project: string;
  /** Group names in the port's project; empty when port security is off. */
  securityGroups: string[];
  portSecurityEnabled: boolean;
  allowedAddressPairs: AllowedAddressPair[];
}

const PROTOCOL_NAMES: Record<string, number> = { tcp: IPPROTO_TCP, udp: IPPROTO_UDP, icmp: IPPROTO_ICMP, sctp: IPPROTO_SCTP, icmpv6: IPPROTO_ICMPV6, 'ipv6-icmp': IPPROTO_ICMPV6 };
const PORT_PROTOCOLS = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP];

export function isIcmpProtocol(p: number | null): boolean {
  return p === IPPROTO_ICMP || p === IPPROTO_ICMPV6;
}

/** Group key unique in the file: "project/name". */
export function groupKey(project: string, name: string): string {
  return `${project}/${name}`;
}

/** Neutron's default group: egress to anywhere, ingress from the group's own members. */
export function defaultGroup(project: string): SecurityGroup {
  const rules: SgRule[] = [];
  for (const ethertype of ['IPv4', 'IPv6'] as const) {
    rules.push({ direction: 'egress', ethertype, protocol: null, portRangeMin: null, portRangeMax: null, remoteIpPrefix: '', remoteGroup: '', line: 0 });
    rules.push({ direction: 'ingress', ethertype, protocol: null, portRangeMin: null, portRangeMax: null, remoteIpPrefix: '', remoteGroup: DEFAULT_GROUP, line: 0 });
  }
  return { name: DEFAULT_GROUP, project, rules, line: 0 };
}

function entryName(m: YAMLMap, i: number): string {
  const n = m.get('name', true) as YNode | undefined;
  return isScalar(n) && (typeof n.value === 'string' || typeof n.value === 'number') ? String(n.value) : String(i);
}

function optInt(r: YamlReader, m: YAMLMap, key: string, field: string, lo: number, hi: number): number | null {
  return r.has(m, key) ? r.int(m, key, field, lo, hi) : null;
}

function readRule(r: YamlReader, it: unknown, w: string, parent: YNode): SgRule {
  const m = r.map(it, w, parent);
  r.checkKeys(m, ['direction', 'ethertype', 'protocol', 'port_range_min', 'port_range_max', 'remote_ip_prefix', 'remote_group'], w);
  const direction = r.str(m, 'direction', `${w}.direction`);
  if (direction !== 'ingress' && direction !== 'egress') {
    throw r.err(r.node(m, 'direction'), `${w}.direction`, `expected ingress or egress, got "${direction}"`);
  }
  const ethertype = r.str(m, 'ethertype', `${w}.ethertype`, 'IPv4');
  if (ethertype !== 'IPv4' && ethertype !== 'IPv6') {
    throw r.err(r.node(m, 'ethertype'), `${w}.ethertype`, `expected IPv4 or IPv6, got "${ethertype}"`);
  }
  const protoText = r.str(m, 'protocol', `${w}.protocol`, 'any').toLowerCase();
  let protocol: number | null;
  if (protoText === 'any') protocol = null;
  else if (PROTOCOL_NAMES[protoText] !== undefined) protocol = PROTOCOL_NAMES[protoText];
  else if (/^\d+$/.test(protoText) && Number(protoText) <= 255) protocol = Number(protoText);
  else throw r.err(r.node(m, 'protocol'), `${w}.protocol`, `expected tcp, udp, icmp, sctp, any or a number 0..255, got "${protoText}"`);
  if (ethertype === 'IPv6' && protocol === IPPROTO_ICMP) protocol = IPPROTO_ICMPV6;
  if (ethertype === 'IPv4' && protocol === IPPROTO_ICMPV6) {
    throw r.err(r.node(m, 'protocol'), `${w}.protocol`, 'ICMPv6 needs ethertype IPv6');
  }

  let portRangeMin: number | null;
  let portRangeMax: number | null;
  const hasRange = r.has(m, 'port_range_min') || r.has(m, 'port_range_max');
  if (hasRange && (protocol === null || (!PORT_PROTOCOLS.includes(protocol) && !isIcmpProtocol(protocol)))) {
    const k = r.has(m, 'port_range_min') ? 'port_range_min' : 'port_range_max';
    throw r.err(r.node(m, k), `${w}.${k}`, `a port range needs protocol tcp, udp, sctp or icmp (protocol is ${protoText})`);
  }
  if (isIcmpProtocol(protocol)) {
    // Neutron: port_range_min is the ICMP type, port_range_max the code; a code needs a type.
    portRangeMin = optInt(r, m, 'port_range_min', `${w}.port_range_min`, 0, 255);
    portRangeMax = optInt(r, m, 'port_range_max', `${w}.port_range_max`, 0, 255);
    if (portRangeMax !== null && portRangeMin === null) {
      throw r.err(r.node(m, 'port_range_max'), `${w}.port_range_max`, 'an ICMP code (port_range_max) needs a type (port_range_min)');
    }
  } else {
    portRangeMin = optInt(r, m, 'port_range_min', `${w}.port_range_min`, 1, 65535);
    portRangeMax = optInt(r, m, 'port_range_max', `${w}.port_range_max`, 1, 65535);
    if (portRangeMin !== null && portRangeMax === null) portRangeMax = portRangeMin;
    if (portRangeMax !== null && portRangeMin === null) {
      throw r.err(r.node(m, 'port_range_max'), `${w}.port_range_max`, 'port_range_max needs port_range_min');
    }
    if (portRangeMin !== null && portRangeMax !== null && portRangeMin > portRangeMax) {
      throw r.err(r.node(m, 'port_range_max'), `${w}.port_range_max`, `${portRangeMax} is below port_range_min ${portRangeMin}`);
    }
  }

  const remoteIpPrefix = r.str(m, 'remote_ip_prefix', `${w}.remote_ip_prefix`, '');
  const remoteGroup = r.str(m, 'remote_group', `${w}.remote_group`, '');
  if (remoteIpPrefix !== '' && remoteGroup !== '') {
    throw r.err(r.node(m, 'remote_group'), `${w}.remote_group`, 'a rule has remote_ip_prefix or remote_group, not both');
  }
  if (remoteIpPrefix !== '') {
    const ok = ethertype === 'IPv4' ? validPrefix(remoteIpPrefix, 4) : validPrefix(remoteIpPrefix, 6);
    if (!ok) throw r.err(r.node(m, 'remote_ip_prefix'), `${w}.remote_ip_prefix`, `expected an ${ethertype} prefix with host bits zero, got "${remoteIpPrefix}"`);
  }
  return { direction, ethertype, protocol, portRangeMin, portRangeMax, remoteIpPrefix, remoteGroup, line: r.line(m) };
}

/** "10.0.0.0/8" (host bits zero) or a bare address (taken as /32 or /128). */
function validPrefix(s: string, version: 4 | 6): boolean {
  try {
    const [addr, len] = s.includes('/') ? ipaddr.parseCIDR(s) : [ipaddr.parse(s), version === 4 ? 32 : 128];
    if (addr.kind() !== (version === 4 ? 'ipv4' : 'ipv6')) return false;
    const net = version === 4 ? ipaddr.IPv4.networkAddressFromCIDR(`${addr.toString()}/${len}`) : ipaddr.IPv6.networkAddressFromCIDR(`${addr.toString()}/${len}`);
    return net.toString() === addr.toString();
  } catch {
    return false;
  }
}

/** Equal rules (all fields but the line) are refused, as Neutron refuses a duplicate rule. */
function sameRule(a: SgRule, b: SgRule): boolean {
  return a.direction === b.direction && a.ethertype === b.ethertype && a.protocol === b.protocol &&
    a.portRangeMin === b.portRangeMin && a.portRangeMax === b.portRangeMax &&
    a.remoteIpPrefix === b.remoteIpPrefix && a.remoteGroup === b.remoteGroup;
}

/** The top-level `security_groups` list, in file order (names unique per project). */
export function readSecurityGroups(r: YamlReader, root: YAMLMap): SecurityGroup[] {
  const seq = r.seq(root, 'security_groups', 'security_groups');
  const out: SecurityGroup[] = [];
  for (let i = 0; i < seq.items.length; i++) {
    const m = r.map(seq.items[i], `security_groups[${i}]`, seq);
    const w = `security_groups[${entryName(m, i)}]`;
    r.checkKeys(m, ['name', 'project', 'rules'], w);
    const name = r.str(m, 'name', `${w}.name`);
    const project = r.str(m, 'project', `${w}.project`, DEFAULT_PROJECT);
    if (out.some((g) => g.name === name && g.project === project)) {
      throw r.err(r.node(m, 'name'), `${w}.name`, `security group "${name}" of project ${project} is defined twice`);
    }
    const g: SecurityGroup = { name, project, rules: [], line: r.line(m) };
    const rs = r.seq(m, 'rules', `${w}.rules`);
    for (let j = 0; j < rs.items.length; j++) {
      const rule = readRule(r, rs.items[j], `${w}.rules[${j}]`, rs);
      const dup = g.rules.findIndex((x) => sameRule(x, rule));
      if (dup >= 0) throw r.err(rs.items[j] as YNode, `${w}.rules[${j}]`, `the same rule as rules[${dup}]`);
      g.rules.push(rule);
    }
    out.push(g);
  }
  return out;
}

/** A port's project, groups, port_security_enabled and allowed_address_pairs. */
export function readPortSecurity(r: YamlReader, m: YAMLMap, w: string, portMac: string): PortSecurity {
  const project = r.str(m, 'project', `${w}.project`, DEFAULT_PROJECT);
  const enabled = r.bool(m, 'port_security_enabled', `${w}.port_security_enabled`, true);
  const hasGroups = r.has(m, 'security_groups');
  const gs = r.seq(m, 'security_groups', `${w}.security_groups`);
  const groups: string[] = [];
  for (let j = 0; j < gs.items.length; j++) {
    const n = gs.items[j] as YNode;
    if (!isScalar(n) || typeof n.value !== 'string') throw r.err(n, `${w}.security_groups[${j}]`, 'expected a group name');
    if (groups.includes(n.value)) throw r.err(n, `${w}.security_groups[${j}]`, `group ${n.value} is listed twice`);
    groups.push(n.value);
  }
  if (!enabled && groups.length > 0) {
    throw r.err(r.node(m, 'port_security_enabled'), `${w}.port_security_enabled`,
      `port security cannot be turned off on a port with security groups (${groups.join(', ')}): give it security_groups: []`);
  }
  if (enabled && !hasGroups) groups.push(DEFAULT_GROUP);
  const pairs: AllowedAddressPair[] = [];
  const ps = r.seq(m, 'allowed_address_pairs', `${w}.allowed_address_pairs`);
  for (let j = 0; j < ps.items.length; j++) {
    const pw = `${w}.allowed_address_pairs[${j}]`;
    const pm = r.map(ps.items[j], pw, ps);
    r.checkKeys(pm, ['ip_address', 'mac_address'], pw);
    const ip = r.str(pm, 'ip_address', `${pw}.ip_address`);
    if (!validPrefix(ip, 4)) throw r.err(r.node(pm, 'ip_address'), `${pw}.ip_address`, `expected an IPv4 address or prefix with host bits zero, got "${ip}"`);
    pairs.push({ ipAddress: ip, macAddress: r.mac(pm, 'mac_address', `${pw}.mac_address`, portMac) });
  }
  if (!enabled && pairs.length > 0) {
    throw r.err(r.node(m, 'allowed_address_pairs'), `${w}.allowed_address_pairs`, 'allowed address pairs need port security');
  }
  return { project, securityGroups: groups, portSecurityEnabled: enabled, allowedAddressPairs: pairs };
}

/** Where a port's entry sits in the file, for errors of resolveSecurityGroups(). */
export interface PortPlace { name: string; node: YAMLMap; sec: PortSecurity }

/**
 * Checks every group reference (ports' groups, rules' remote groups) against the groups of
 * the same project, adds the implicit `default` groups, and returns the full list: declared
 * groups in file order, then the implicit ones in order of first use.
 */
export function resolveSecurityGroups(r: YamlReader, root: YAMLMap, declared: SecurityGroup[], ports: PortPlace[]): SecurityGroup[] {
  const all = declared.slice();
  const find = (project: string, name: string): SecurityGroup | undefined => all.find((g) => g.project === project && g.name === name);
  for (const p of ports) {
    if (p.sec.securityGroups.includes(DEFAULT_GROUP) && find(p.sec.project, DEFAULT_GROUP) === undefined) all.push(defaultGroup(p.sec.project));
  }
  const refError = (n: YNode | undefined, field: string, name: string, project: string, who: string): Error => {
    const other = all.find((g) => g.name === name);
    if (other !== undefined) {
      return r.err(n, field, `security group "${name}" belongs to project ${other.project}, but ${who} is in project ${project}`);
    }
    return r.err(n, field, `unknown security group "${name}" in project ${project}`);
  };
  for (const p of ports) {
    const gs = r.seq(p.node, 'security_groups', `ports[${p.name}].security_groups`);
    for (let j = 0; j < p.sec.securityGroups.length; j++) {
      const name = p.sec.securityGroups[j];
      if (find(p.sec.project, name) !== undefined) continue;
      const n = (gs.items[j] as YNode | undefined) ?? p.node;
      throw refError(n, `ports[${p.name}].security_groups[${j}]`, name, p.sec.project, `port ${p.name}`);
    }
  }
  const seq = r.seq(root, 'security_groups', 'security_groups');
  for (let i = 0; i < declared.length; i++) {
    const g = declared[i];
    const gm = seq.items[i] as YAMLMap;
    const rs = r.seq(gm, 'rules', '');
    for (let j = 0; j < g.rules.length; j++) {
      const rule = g.rules[j];
      if (rule.remoteGroup === '' || find(g.project, rule.remoteGroup) !== undefined) continue;
      // A remote `default` of a project that has ports in it exists implicitly.
      const field = `security_groups[${g.name}].rules[${j}].remote_group`;
      throw refError(r.node(rs.items[j] as YAMLMap, 'remote_group'), field, rule.remoteGroup, g.project, `group ${g.name}`);
    }
  }
  return all;
}
