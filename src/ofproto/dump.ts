/**
 * `dump-flows` text: one line per rule in the shape `ovs-ofctl dump-flows` prints (OVS's
 * ofputil_flow_stats_format), e.g.
 *   ` cookie=0x0, duration=1.234s, table=0, n_packets=0, n_bytes=0, idle_timeout=10, idle_age=0, priority=1,in_port=1 actions=output:2`
 * - duration prints whole seconds, or 3 decimals when there are milliseconds;
 * - idle_timeout/hard_timeout only when set; idle_age always; hard_age only when it differs
 *   from the duration's whole seconds (i.e. after a mod-flows), as OVS does;
 * - importance only when set, before idle_age, where `ovs-ofctl -O OpenFlow15 dump-flows`
 *   prints it (OpenFlow 1.0/NXM stats cannot carry it, so ovs-ofctl's default dump never shows
 *   it; flowctl holds the rule itself and shows it rather than hide what add-flow set);
 * - flow-mod flags (send_flow_rem, reset_counts...) are not printed: ovs-ofctl's default
 *   OpenFlow 1.0/NXM flow stats do not carry them;
 * - no "NXST_FLOW reply" header line.
 * Order: table ascending, then priority descending, then insertion order. OVS prints in its
 * internal hash order unless --sort; flowd picks a stable order a reader can scan.
 *
 * Also formats the flow text of diff-flows (OVS's fte_version_format shape).
 * Who calls: control/ (flowctl dump-flows, diff-flows), tests. Not on the packet path.
 */
import type { Bridge } from './bridge';
import type { Rule } from './rule';
import type { Action } from './actions';
import type { Match } from './types';
import { formatMatch, PortNamer } from './match-syntax';
import { formatActions } from './action-syntax';
import type { FlowSpec } from './flow-syntax';
import { TABLE_ALL } from './flow-syntax';

/** ofp_print_duration: "5s", "1.234s". */
export function formatDuration(ms: number): string {
  const d = Math.max(0, Math.floor(ms));
  const s = Math.floor(d / 1000);
  const frac = d % 1000;
  return frac ? `${s}.${String(frac).padStart(3, '0')}s` : `${s}s`;
}

/** One rule as a dump-flows line (with the leading space OVS prints). */
export function formatRuleStats(rule: Rule, nowMs: number, namer?: PortNamer): string {
  const durMs = nowMs - rule.createdMs;
  const durS = Math.floor(Math.max(0, durMs) / 1000);
  let s = ` cookie=0x${rule.cookie.toString(16)}, duration=${formatDuration(durMs)}, table=${rule.tableId}, `;
  s += `n_packets=${rule.nPackets}, n_bytes=${rule.nBytes}, `;
  if (rule.idleTimeoutS) s += `idle_timeout=${rule.idleTimeoutS}, `;
  if (rule.hardTimeoutS) s += `hard_timeout=${rule.hardTimeoutS}, `;
  if (rule.importance) s += `importance=${rule.importance}, `;
  s += `idle_age=${Math.floor(Math.max(0, nowMs - rule.lastUsedMs) / 1000)}, `;
  const hardAge = Math.floor(Math.max(0, nowMs - rule.modifiedMs) / 1000);
  if (hardAge !== durS) s += `hard_age=${hardAge}, `;
  const m = formatMatch(rule.match, rule.priority, namer);
  return `${s}${m}${m ? ' ' : ''}actions=${formatActions(rule.actions, namer)}`;
}

/** What a dump may be limited to: a table and/or the rules a del-flows-like spec selects. */
export interface DumpFilter {
  readonly tableId?: number;
  readonly spec?: FlowSpec;
}

/** All rules of `bridge` as dump-flows lines, table ascending, priority descending. */
export function dumpFlows(bridge: Bridge, nowMs: number, filter: DumpFilter = {}, namer?: PortNamer): string[] {
  const rules = filter.spec ? bridge.selectRules(filter.spec, false) : bridge.allRules();
  const out: string[] = [];
  for (const r of rules) {
    if (filter.tableId !== undefined && filter.tableId !== TABLE_ALL && r.tableId !== filter.tableId) continue;
    out.push(formatRuleStats(r, nowMs, namer));
  }
  return out;
}

/** What diff-flows prints of one version of a flow besides its match and actions. */
export interface FlowVersion {
  readonly cookie: bigint;
  readonly idleTimeoutS: number;
  readonly hardTimeoutS: number;
  readonly importance: number;
}

/**
 * A flow without statistics, as diff-flows prints one version of it: `ovs-ofctl diff-flows`'s
 * shape (OVS's fte_version_format), `[table=T ]MATCH[ cookie=C][ idle_timeout=S][ hard_timeout=S]
 * [ importance=I] actions=A`; a catch-all in table 0 prints as " actions=A", one in table T as
 * "table=T  actions=A", as ovs-ofctl does.
 */
export function formatFlowText(tableId: number, v: FlowVersion, match: Match, priority: number,
                               actions: readonly Action[], namer?: PortNamer): string {
  let s = tableId ? `table=${tableId} ` : '';
  s += formatMatch(match, priority, namer);
  if (v.cookie) s += ` cookie=0x${v.cookie.toString(16)}`;
  if (v.idleTimeoutS) s += ` idle_timeout=${v.idleTimeoutS}`;
  if (v.hardTimeoutS) s += ` hard_timeout=${v.hardTimeoutS}`;
  if (v.importance) s += ` importance=${v.importance}`;
  return `${s} actions=${formatActions(actions, namer)}`;
}
