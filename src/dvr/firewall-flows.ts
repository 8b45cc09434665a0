/**
 * br-int flows of Neutron's OVS firewall driver for one node's VM ports: tables 60 (which
 * port, which direction), 71 (egress anti-spoofing), 72 (egress rules), 73 (accept, or hand a
 * local destination to its ingress filter), 81 (ingress base), 82 (ingress rules), 91-94
 * (accepted egress, accepted ingress, dropped, accepted egress to NORMAL). reg5 = the VM's
 * OpenFlow port, reg6 = its network's local VLAN, which is the conntrack zone of every ct().
 * Facts: neutron-firewall.md; table and priority numbers as Neutron's, so an operator reads
 * the flows they know. Called by: dvr/flows-int.ts when the node's firewall_driver is
 * openvswitch (plan.firewall). Pure function of the plan.
 *
 * Where flowd differs from Neutron (and why):
 * - Frames for the distributed router leave table 94 to flowd's router tables instead of
 *   NORMAL to a qr- port (node-plan.ts vmFrameEntry); routed frames come back through table
 *   60 priority 90, so they are filtered on ingress at the destination node.
 * - Table 60 priority 100 matches only untagged frames (FROM_VM below).
 * - Table 60 priority 90 clears conntrack state first (ct_clear): the router's NAT ran in the
 *   same datapath, where Neutron's ran in a namespace, and its zone's state must not reach
 *   table 81.
 * - A port with port security off gets Neutron's unfiltered flows (60 priority 100 to 73, 73
 *   priority 80 to 94) and keeps flowd's direct delivery in table 60 priority 20.
 *
 * - Table 72/82's invalid-state drop is one flow per port (reg5), to count drops per port.
 *
 * Invariants: every flow that names one port matches reg5 (or in_port) of it, so a change to
 * one port's groups changes only that port's flows; a rule's flows carry the rule's cookie.
 */
import { macFromString } from '../packet/ethernet';
import { FlowList } from './flow-text';
import { ACCEPT_CT_STATES, ConjIds, CT_NEW_NOT_EST, protocolMatch, RULE_PRIORITY_BASE, ruleCookie, ruleMatches, rulePriorityOffset } from './firewall-rules';
import { NodePlan, PlanPort } from './node-plan';
import * as T from './tables';
import { SecurityGroup, SgRule } from './topology-sg';

const ZONE = `zone=NXM_NX_REG${T.REG_NET}[0..15]`;
const RP = `reg${T.REG_PORT}`;
const RN = `reg${T.REG_NET}`;
const CT_MARK_INVALID = '0x1';
/**
 * Cookies of the flows that send a frame to the drop table 93, one per reason ("FW" + the
 * reason), so dump-flows counters and a trace say why the firewall dropped a frame.
 */
export const DROP_COOKIE = {
  spoofed: '0x4657000000000001',
  noRule: '0x4657000000000002',
  invalid: '0x4657000000000003',
  killed: '0x4657000000000004',
} as const;
/**
 * A VM's own frames: untagged on its access port. The distributed router delivers a routed
 * frame to a local VM with the VM port still as in_port but tagged with the local VLAN, so it
 * takes the ingress side (priority 90), as a frame from Neutron's qr- port would.
 */
const FROM_VM = 'vlan_tci=0x0000/0x1fff';

/** (MAC, IPv4 address or prefix) pairs a port may send from: its fixed IPs, then its allowed pairs. */
export function allowedPairs(lp: PlanPort): { mac: string; ip: string }[] {
  const out = lp.port.fixedIps.map((f) => ({ mac: lp.port.mac, ip: f.ip }));
  for (const p of lp.port.allowedAddressPairs) {
    if (!out.some((o) => o.mac === p.macAddress && o.ip === p.ipAddress)) out.push({ mac: p.macAddress, ip: p.ipAddress });
  }
  return out;
}

function allowedMacs(lp: PlanPort): string[] {
  const out = [lp.port.mac];
  for (const p of lp.port.allowedAddressPairs) if (!out.includes(p.macAddress)) out.push(p.macAddress);
  return out;
}

/** IPv6 link-local address of a MAC (EUI-64), which Neutron always allows for neighbour discovery. */
export function linkLocalOf(mac: string): string {
  const b = macFromString(mac);
  const w = [(b[0] ^ 2) << 8 | b[1], b[2] << 8 | 0xff, 0xfe << 8 | b[3], b[4] << 8 | b[5]];
  return `fe80::${w.map((x) => x.toString(16)).join(':')}`;
}

export function firewallFlows(plan: NodePlan, f: FlowList): void {
  const filtered = plan.localPorts.filter((lp) => lp.port.portSecurityEnabled);
  const open = plan.localPorts.filter((lp) => !lp.port.portSecurityEnabled);

  // Common flows (Neutron's _initialize_common_flows and third-party tables).
  f.add(T.INT_BASE_EGRESS, 110, 'ct_state=+trk', `ct_clear,resubmit(,${T.INT_BASE_EGRESS})`);
  for (const t of [T.INT_BASE_EGRESS, T.INT_RULES_EGRESS, T.INT_ACCEPT_OR_INGRESS, T.INT_BASE_INGRESS, T.INT_RULES_INGRESS]) {
    f.add(t, 0, '', 'drop');
  }
  f.add(T.INT_ACCEPTED_EGRESS, 1, '', `resubmit(,${T.INT_ACCEPTED_EGRESS_NORMAL})`);
  f.add(T.INT_ACCEPTED_INGRESS, 0, '', 'drop');
  f.add(T.INT_DROPPED, 0, '', 'drop');
  f.add(T.INT_ACCEPTED_EGRESS_NORMAL, 1, '', 'NORMAL');

  for (const lp of open) {
    f.add(T.INT_TRANSIENT, 100, `in_port=${lp.ofport},${FROM_VM}`, `set_field:${lp.ofport}->${RP},set_field:${lp.lv}->${RN},resubmit(,${T.INT_ACCEPT_OR_INGRESS})`);
    f.add(T.INT_ACCEPT_OR_INGRESS, 80, `${RP}=${lp.ofport}`, `resubmit(,${T.INT_ACCEPTED_EGRESS_NORMAL})`);
  }
  for (const lp of filtered) portBaseFlows(lp, f);
  // A frame between two local VMs is filtered on the way out and again on the way in.
  for (const lp of filtered) {
    for (const mac of allowedMacs(lp)) {
      f.add(T.INT_ACCEPT_OR_INGRESS, 100, `${RN}=${lp.lv},dl_dst=${mac}`, `set_field:${lp.ofport}->${RP},resubmit(,${T.INT_BASE_INGRESS})`);
    }
  }
  ruleFlows(plan, filtered, f);
}

/** Tables 60, 71, 73, 81 and the state flows of 72/82 for one filtered port. */
function portBaseFlows(lp: PlanPort, f: FlowList): void {
  const P = lp.ofport;
  const V = lp.lv;
  const me = `${RP}=${P},in_port=${P}`;
  f.add(T.INT_TRANSIENT, 100, `in_port=${P},${FROM_VM}`, `set_field:${P}->${RP},set_field:${V}->${RN},resubmit(,${T.INT_BASE_EGRESS})`);
  for (const mac of allowedMacs(lp)) {
    f.add(T.INT_TRANSIENT, 90, `dl_vlan=${V},dl_dst=${mac}`,
      `set_field:${P}->${RP},set_field:${V}->${RN},strip_vlan,ct_clear,resubmit(,${T.INT_BASE_INGRESS})`);
  }

  // Table 71: what the VM may send from which addresses.
  const pairs = allowedPairs(lp);
  for (const p of pairs) {
    f.add(T.INT_BASE_EGRESS, 95, `arp,${me},dl_src=${p.mac},arp_spa=${p.ip}`, `resubmit(,${T.INT_ACCEPTED_EGRESS_NORMAL})`);
    f.add(T.INT_BASE_EGRESS, 65, `ip,${me},dl_src=${p.mac},nw_src=${p.ip}`, `ct(table=${T.INT_RULES_EGRESS},${ZONE})`);
  }
  for (const mac of allowedMacs(lp)) {
    f.add(T.INT_BASE_EGRESS, 95, `rarp,${me},dl_src=${mac}`, `resubmit(,${T.INT_ACCEPTED_EGRESS_NORMAL})`);
    // Neighbour discovery from the link-local address (MLD report 130, RS 133, NS 135).
    const lla = linkLocalOf(mac);
    for (const t of [130, 133, 135]) {
      f.add(T.INT_BASE_EGRESS, 95, `icmp6,${me},dl_src=${mac},ipv6_src=${lla},icmp_type=${t}`, `resubmit(,${T.INT_ACCEPTED_EGRESS_NORMAL})`);
    }
  }
  for (const p of [...pairs, { mac: lp.port.mac, ip: '0.0.0.0' }]) {
    f.add(T.INT_BASE_EGRESS, 80, `udp,${me},dl_src=${p.mac},nw_src=${p.ip},tp_src=68,tp_dst=67`, `resubmit(,${T.INT_ACCEPT_OR_INGRESS})`);
  }
  // No DHCP server and no router advertisements from a VM.
  f.add(T.INT_BASE_EGRESS, 70, `udp,${me},tp_src=67,tp_dst=68`, `resubmit(,${T.INT_DROPPED})`, DROP_COOKIE.spoofed);
  f.add(T.INT_BASE_EGRESS, 70, `udp6,${me},tp_src=547,tp_dst=546`, `resubmit(,${T.INT_DROPPED})`, DROP_COOKIE.spoofed);
  f.add(T.INT_BASE_EGRESS, 70, `icmp6,${me},icmp_type=134`, `resubmit(,${T.INT_DROPPED})`, DROP_COOKIE.spoofed);
  f.add(T.INT_BASE_EGRESS, 10, me, `ct_clear,resubmit(,${T.INT_DROPPED})`, DROP_COOKIE.spoofed);

  // Table 73: a new connection the egress rules accepted is committed.
  for (const l3 of ['ip', 'ipv6']) {
    f.add(T.INT_ACCEPT_OR_INGRESS, 90, `ct_state=${CT_NEW_NOT_EST},${l3},${RP}=${P}`, `ct(commit,${ZONE}),resubmit(,${T.INT_ACCEPTED_EGRESS})`);
  }
  f.add(T.INT_ACCEPT_OR_INGRESS, 80, `${RP}=${P}`, `resubmit(,${T.INT_ACCEPTED_EGRESS_NORMAL})`);

  // Table 81: ARP, neighbour discovery and DHCP replies pass; IP goes through conntrack.
  f.add(T.INT_BASE_INGRESS, 100, `arp,${RP}=${P}`, `output:${P}`);
  for (const t of [130, 131, 132, 134, 135, 136]) f.add(T.INT_BASE_INGRESS, 100, `icmp6,${RP}=${P},icmp_type=${t}`, `output:${P}`);
  f.add(T.INT_BASE_INGRESS, 95, `udp,${RP}=${P},tp_src=67,tp_dst=68`, `output:${P}`);
  f.add(T.INT_BASE_INGRESS, 95, `udp6,${RP}=${P},tp_src=547,tp_dst=546`, `output:${P}`);
  for (const l3 of ['ip', 'ipv6']) f.add(T.INT_BASE_INGRESS, 90, `ct_state=-trk,${l3},${RP}=${P}`, `ct(table=${T.INT_RULES_INGRESS},${ZONE})`);
  f.add(T.INT_BASE_INGRESS, 80, `ct_state=+trk,${RP}=${P}`, `resubmit(,${T.INT_RULES_INGRESS})`);

  // Tables 72 and 82 below the rules: conntrack state decides.
  for (const [table, accept] of [[T.INT_RULES_EGRESS, `resubmit(,${T.INT_ACCEPTED_EGRESS_NORMAL})`], [T.INT_RULES_INGRESS, `output:${P}`]] as const) {
    // Neutron's is one flow without reg5; one per port counts invalid drops per port.
    f.add(table, 50, `ct_state=+inv+trk,${RP}=${P}`, `resubmit(,${T.INT_DROPPED})`, DROP_COOKIE.invalid);
    f.add(table, 50, `${RP}=${P},ct_mark=${CT_MARK_INVALID}`, `resubmit(,${T.INT_DROPPED})`, DROP_COOKIE.killed);
    f.add(table, 50, `ct_state=+est-rel+rpl,ct_zone=${V},ct_mark=0,${RP}=${P}`, accept);
    f.add(table, 50, `ct_state=-new-est+rel-inv,ct_zone=${V},ct_mark=0,${RP}=${P}`, accept);
    f.add(table, 40, `ct_state=-est,${RP}=${P}`, `resubmit(,${T.INT_DROPPED})`, DROP_COOKIE.noRule);
    // An established connection no rule accepts any more is killed: marked, then dropped.
    for (const l3 of ['ip', 'ipv6']) {
      f.add(table, 40, `ct_state=+est,${l3},${RP}=${P}`, `ct(commit,${ZONE},exec(set_field:${CT_MARK_INVALID}->ct_mark))`, DROP_COOKIE.killed);
    }
  }
}

interface GroupRule { group: SecurityGroup; rule: SgRule }

/** The rules a port's groups hold, groups in the port's order. */
function portRules(plan: NodePlan, lp: PlanPort): GroupRule[] {
  const out: GroupRule[] = [];
  for (const name of lp.port.securityGroups) {
    const g = plan.topo.securityGroups.find((x) => x.project === lp.port.project && x.name === name)!;
    for (const rule of g.rules) out.push({ group: g, rule });
  }
  return out;
}

/** The accepting action of a rule flow in `direction` for ct state index `i` (0 est, 1 new). */
function acceptActions(direction: SgRule['direction'], P: number, i: number): string {
  if (direction === 'egress') return `resubmit(,${T.INT_ACCEPT_OR_INGRESS})`;
  return i === 0 ? `output:${P}` : `ct(commit,${ZONE}),output:${P},resubmit(,${T.INT_ACCEPTED_INGRESS})`;
}

/** Addresses of the members of a group (ports in it with port security), as match values. */
function memberAddresses(plan: NodePlan, project: string, name: string): string[] {
  const out: string[] = [];
  for (const p of plan.topo.ports) {
    if (p.project !== project || !p.portSecurityEnabled || !p.securityGroups.includes(name)) continue;
    for (const fip of p.fixedIps) if (!out.includes(fip.ip)) out.push(fip.ip);
    for (const a of p.allowedAddressPairs) if (!out.includes(a.ipAddress)) out.push(a.ipAddress);
  }
  return out;
}

/**
 * Tables 72 and 82 above priority 50: the rules of each filtered port. A rule with a remote
 * prefix (or none) is two flows per match, established then new; a remote-group rule is a
 * conjunction: dimension 2/2 per port (reg5 + protocol/ports), dimension 1/2 per network on
 * this node (reg6 + a member's address), and an accepting flow on conj_id per port.
 */
function ruleFlows(plan: NodePlan, filtered: PlanPort[], f: FlowList): void {
  const conj = new ConjIds();
  // Conjunctive flows with the same match are one flow with every conjunction() action.
  const conjFlows = new Map<string, { table: number; priority: number; match: string; actions: string[]; cookie: string }>();
  const addConj = (table: number, priority: number, match: string, action: string, cookie: string): void => {
    const k = `${table}/${priority}/${match}`;
    const have = conjFlows.get(k);
    if (have === undefined) conjFlows.set(k, { table, priority, match, actions: [action], cookie });
    else if (!have.actions.includes(action)) have.actions.push(action);
  };
  const memberVlans = new Map<string, { group: SecurityGroup; rule: SgRule; id: number; lv: number }>();

  for (const lp of filtered) {
    const P = lp.ofport;
    const accepts = new Map<number, { rule: SgRule; cookie: string }>();
    for (const { group, rule } of portRules(plan, lp)) {
      const table = rule.direction === 'ingress' ? T.INT_RULES_INGRESS : T.INT_RULES_EGRESS;
      const priority = RULE_PRIORITY_BASE + rulePriorityOffset(rule);
      const cookie = ruleCookie(group, rule);
      if (rule.remoteGroup === '') {
        for (const m of ruleMatches(rule)) {
          for (let i = 0; i < 2; i++) {
            f.add(table, priority, `ct_state=${ACCEPT_CT_STATES[i]},${m},${RP}=${P}`, acceptActions(rule.direction, P, i), cookie);
          }
        }
        continue;
      }
      const id = conj.base(group, rule) + 2 * rulePriorityOffset(rule);
      for (const m of ruleMatches(rule)) {
        for (let i = 0; i < 2; i++) addConj(table, priority, `ct_state=${ACCEPT_CT_STATES[i]},${m},${RP}=${P}`, `conjunction(${id + i},2/2)`, cookie);
      }
      if (!accepts.has(id)) accepts.set(id, { rule, cookie });
      memberVlans.set(`${id}/${lp.lv}`, { group, rule, id, lv: lp.lv });
    }
    for (const [id, { rule, cookie }] of accepts) {
      const table = rule.direction === 'ingress' ? T.INT_RULES_INGRESS : T.INT_RULES_EGRESS;
      const priority = RULE_PRIORITY_BASE + rulePriorityOffset(rule);
      const l3 = protocolMatch(rule.ethertype, null);
      for (let i = 0; i < 2; i++) {
        f.add(table, priority, `conj_id=${id + i},ct_state=${ACCEPT_CT_STATES[i]},${l3},${RP}=${P}`,
          `set_field:${id + i}->reg${T.REG_REMOTE_GROUP},${acceptActions(rule.direction, P, i)}`, cookie);
      }
    }
  }
  for (const { group, rule, id, lv } of memberVlans.values()) {
    if (rule.ethertype !== 'IPv4') continue; // ports have IPv4 addresses only
    const table = rule.direction === 'ingress' ? T.INT_RULES_INGRESS : T.INT_RULES_EGRESS;
    const priority = RULE_PRIORITY_BASE + rulePriorityOffset(rule);
    const field = rule.direction === 'ingress' ? 'nw_src' : 'nw_dst';
    for (const addr of memberAddresses(plan, group.project, rule.remoteGroup)) {
      for (let i = 0; i < 2; i++) {
        addConj(table, priority, `ct_state=${ACCEPT_CT_STATES[i]},ip,${RN}=${lv},${field}=${addr}`, `conjunction(${id + i},1/2)`, '');
      }
    }
  }
  for (const c of conjFlows.values()) f.add(c.table, c.priority, c.match, c.actions.join(','), c.cookie);
}

