/**
 * Security-group rules -> the match and priority of their br-int flows, as Neutron's OVS
 * firewall driver computes them (neutron-firewall.md, "Rules become flows"): priority 70 +
 * offset, port ranges as value/mask pairs, ICMP type and code, remote prefixes; conjunction ids
 * for remote groups; one cookie per rule.
 * Called by: dvr/firewall-flows.ts. Pure functions; no flow is added here.
 */
import { fnv1a32 } from './addr';
import { isIcmpProtocol, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, SecurityGroup, SgRule } from './topology-sg';

/** Neutron's two conntrack states of accepting flows: established (not reply), then new. */
export const CT_EST_NOT_REPLY = '+est-rel-rpl';
export const CT_NEW_NOT_EST = '+new-est';
export const ACCEPT_CT_STATES = [CT_EST_NOT_REPLY, CT_NEW_NOT_EST] as const;

export const RULE_PRIORITY_BASE = 70;

/**
 * Neutron's flow_priority_offset: 0 for a remote-group rule (conjunctive), 4 otherwise; then
 * +1 for ICMP without type, +2 for ICMP with a type and no code, +3 for any other rule with a
 * protocol; a rule without protocol adds nothing. More specific rules win.
 */
export function rulePriorityOffset(rule: SgRule): number {
  const base = rule.remoteGroup !== '' ? 0 : 4;
  if (rule.protocol === null) return base;
  if (isIcmpProtocol(rule.protocol)) {
    if (rule.portRangeMin === null) return base + 1;
    if (rule.portRangeMax === null) return base + 2;
  }
  return base + 3;
}

/**
 * The fewest value/mask pairs that cover [min, max] exactly ("0x0060/0xffe0"; a single port
 * is its number): each is the largest aligned power-of-two block starting at the next port.
 */
export function portRangeMasks(min: number, max: number): string[] {
  const out: string[] = [];
  let p = min;
  while (p <= max) {
    let size = 1;
    while (size < 0x10000 && (p & (size * 2 - 1)) === 0 && p + size * 2 - 1 <= max) size *= 2;
    out.push(size === 1 ? String(p) : `0x${p.toString(16).padStart(4, '0')}/0x${(0xffff & ~(size - 1)).toString(16).padStart(4, '0')}`);
    p += size;
  }
  return out;
}

const PROTO_KEYWORD: Record<string, Record<number, string>> = {
  IPv4: { [IPPROTO_TCP]: 'tcp', [IPPROTO_UDP]: 'udp', [IPPROTO_ICMP]: 'icmp', [IPPROTO_SCTP]: 'sctp' },
  IPv6: { [IPPROTO_TCP]: 'tcp6', [IPPROTO_UDP]: 'udp6', [IPPROTO_ICMPV6]: 'icmp6', [IPPROTO_SCTP]: 'sctp6' },
};

/** The dl_type/nw_proto part of a match: "tcp", "ip,nw_proto=47", "ipv6". */
export function protocolMatch(ethertype: SgRule['ethertype'], protocol: number | null): string {
  const l3 = ethertype === 'IPv4' ? 'ip' : 'ipv6';
  if (protocol === null) return l3;
  return PROTO_KEYWORD[ethertype][protocol] ?? `${l3},nw_proto=${protocol}`;
}

/** True when the prefix is every address (0.0.0.0/0, ::/0): Neutron adds no match for it. */
function isAnyPrefix(p: string): boolean {
  return p === '' || /\/0$/.test(p);
}

/**
 * The protocol, port and remote-prefix parts of a rule's flows: one string per flow (several
 * when a port range needs several value/mask pairs), without ct_state and registers.
 */
export function ruleMatches(rule: SgRule): string[] {
  let base = protocolMatch(rule.ethertype, rule.protocol);
  if (!isAnyPrefix(rule.remoteIpPrefix)) {
    const field = rule.ethertype === 'IPv4' ? (rule.direction === 'ingress' ? 'nw_src' : 'nw_dst')
      : (rule.direction === 'ingress' ? 'ipv6_src' : 'ipv6_dst');
    base += `,${field}=${rule.remoteIpPrefix}`;
  }
  if (isIcmpProtocol(rule.protocol)) {
    if (rule.portRangeMin !== null) base += `,icmp_type=${rule.portRangeMin}`;
    if (rule.portRangeMax !== null) base += `,icmp_code=${rule.portRangeMax}`;
    return [base];
  }
  if (rule.portRangeMin === null || rule.portRangeMax === null) return [base];
  return portRangeMasks(rule.portRangeMin, rule.portRangeMax).map((m) => `${base},tp_dst=${m}`);
}

/** The cookie of a rule's flows: "0x5347" + FNV-1a of the group and the rule's content. */
export function ruleCookie(group: SecurityGroup, rule: SgRule): string {
  const text = [group.project, group.name, rule.direction, rule.ethertype, rule.protocol, rule.portRangeMin,
    rule.portRangeMax, rule.remoteIpPrefix, rule.remoteGroup].join('|');
  return `0x5347${fnv1a32(text).toString(16).padStart(8, '0')}`;
}

/**
 * Conjunction ids of a node: one base id, a multiple of 8, per (group, remote group, direction,
 * ethertype) as Neutron's ConjIdMap; the rule's priority offset picks base + 2 * offset and the
 * new-connection flows use that + 1. Bases come from FNV-1a of the key (probing on collision),
 * so they stay put when other rules come and go.
 */
export class ConjIds {
  private readonly byKey = new Map<string, number>();
  private readonly used = new Set<number>();

  base(group: SecurityGroup, rule: SgRule): number {
    const key = [group.project, group.name, rule.remoteGroup, rule.direction, rule.ethertype].join('|');
    const have = this.byKey.get(key);
    if (have !== undefined) return have;
    let slot = (fnv1a32(key) & 0x0fffffff) || 1;
    while (this.used.has(slot)) slot = (slot + 1) & 0x0fffffff || 1;
    this.used.add(slot);
    this.byKey.set(key, slot * 8);
    return slot * 8;
  }
}
