/**
 * Firewall drops per VM port by reason, read from the counters of the firewall's drop flows
 * (dvr/firewall-flows.ts gives each a cookie per reason and a reg5 or in_port match naming
 * its port). Called by: control/commands.ts (flowctl dump-ports and stats). Pure: reads the
 * rules it is given, owns nothing.
 */
import { W_IN_PORT, W_REG0 } from '../packet/flowkey-layout';
import { DROP_COOKIE } from './firewall-flows';
import { REG_PORT } from './tables';

export type FirewallDropReason = 'spoofed' | 'no_rule' | 'invalid' | 'killed';

const REASON_OF = new Map<bigint, FirewallDropReason>([
  [BigInt(DROP_COOKIE.spoofed), 'spoofed'],
  [BigInt(DROP_COOKIE.noRule), 'no_rule'],
  [BigInt(DROP_COOKIE.invalid), 'invalid'],
  [BigInt(DROP_COOKIE.killed), 'killed'],
]);

/** What this module reads of a rule (ofproto/rule.ts Rule has it). */
export interface CountedRule {
  readonly cookie: bigint;
  readonly nPackets: number;
  readonly match: { readonly value: Uint32Array; readonly mask: Uint32Array };
}

/** ofport -> reason -> packets, for every port that has firewall drop flows (zeros included). */
export function firewallDropsByPort(rules: Iterable<CountedRule>): Map<number, Record<FirewallDropReason, number>> {
  const out = new Map<number, Record<FirewallDropReason, number>>();
  const reg = W_REG0 + REG_PORT;
  for (const r of rules) {
    const reason = REASON_OF.get(r.cookie);
    if (reason === undefined) continue;
    let port = 0;
    if (r.match.mask[reg] === 0xffffffff) port = r.match.value[reg];
    else if (r.match.mask[W_IN_PORT] !== 0) port = r.match.value[W_IN_PORT];
    if (port === 0) continue;
    let row = out.get(port);
    if (row === undefined) { row = { spoofed: 0, no_rule: 0, invalid: 0, killed: 0 }; out.set(port, row); }
    row[reason] += r.nPackets;
  }
  return out;
}
