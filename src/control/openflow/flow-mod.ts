/**
 * A decoded flow-mod or flow-stats request, version-independent, and how it changes or reads
 * a bridge's tables: through ofproto/bridge.ts's addFlow/modFlows/delFlows/selectRules, the
 * same calls flowctl and the topology make, so the same listeners revalidate the datapath's
 * caches. Called by of10.ts and of13.ts after they decode the wire form.
 *
 * Semantics are those of Open vSwitch for the same messages: ADD replaces an identical
 * match+priority rule; MODIFY(_STRICT) changes actions (and the cookie when the request carries
 * one other than all-ones, never the importance) and adds when nothing matched and no cookie mask was given; DELETE
 * honours out_port and cookie masks; table 255 means every table for mod/del.
 */
import type { Bridge } from '../../ofproto/bridge';
import type { Rule } from '../../ofproto/rule';
import type { Match } from '../../ofproto/types';
import type { Action } from '../../ofproto/actions';
import { OFPP_NONE } from '../../ofproto/actions';
import { FlowSpec, TABLE_ALL } from '../../ofproto/flow-syntax';
import {
  OfError, OFPFC_ADD, OFPFC_MODIFY, OFPFC_MODIFY_STRICT, OFPFC_DELETE, OFPFC_DELETE_STRICT,
} from './wire';

export const COOKIE_ALL_ONES = 0xffffffffffffffffn;

export interface FlowMod {
  readonly command: number;
  /** 0..254, or 255 (all tables for mod/del; table 0 for add). */
  readonly tableId: number;
  readonly match: Match;
  readonly priority: number;
  readonly cookie: bigint;
  readonly cookieMask: bigint;
  /** The cookie field of the message (for add, and for mod unless all-ones). */
  readonly newCookie: bigint;
  readonly idleTimeoutS: number;
  readonly hardTimeoutS: number;
  /** OpenFlow 1.4+ importance; 0 from earlier versions, whose flow_mod has no such field. */
  readonly importance: number;
  readonly flags: number;
  /** 16-bit port (OFPP_NONE = any). */
  readonly outPort: number;
  readonly actions: readonly Action[];
}

function specOf(fm: FlowMod, isAdd: boolean): FlowSpec {
  return {
    text: '(OpenFlow flow_mod)', match: fm.match, priority: fm.priority,
    tableId: isAdd && fm.tableId === TABLE_ALL ? 0 : fm.tableId,
    cookie: isAdd ? fm.newCookie : fm.cookie, cookieMask: isAdd ? COOKIE_ALL_ONES : fm.cookieMask,
    newCookie: fm.newCookie === COOKIE_ALL_ONES ? null : fm.newCookie,
    idleTimeoutS: fm.idleTimeoutS, hardTimeoutS: fm.hardTimeoutS, importance: fm.importance, flags: fm.flags,
    outPort: fm.outPort, actions: fm.actions, hasActions: true, stats: null,
  };
}

/**
 * Checks what applying `fm` needs (a known command, a table that exists) without changing
 * anything; bundles call this for every message before committing any.
 */
export function checkFlowMod(fm: FlowMod, badCommand: OfError): void {
  if (fm.command > OFPFC_DELETE_STRICT) throw badCommand;
}

/** Applies `fm` to `bridge`; returns the number of rules added, changed or removed. */
export function applyFlowMod(bridge: Bridge, fm: FlowMod, nowMs: number, badCommand: OfError): number {
  switch (fm.command) {
    case OFPFC_ADD: bridge.addFlow(specOf(fm, true), nowMs); return 1;
    case OFPFC_MODIFY: case OFPFC_MODIFY_STRICT:
      return bridge.modFlows(specOf(fm, false), fm.command === OFPFC_MODIFY_STRICT, nowMs).length;
    case OFPFC_DELETE: case OFPFC_DELETE_STRICT:
      return bridge.delFlows(specOf(fm, false), fm.command === OFPFC_DELETE_STRICT).length;
    default: throw badCommand;
  }
}

/** The rules a flow or aggregate stats request selects (non-strict, as OVS). */
export function selectForStats(bridge: Bridge, tableId: number, match: Match, outPort: number,
                               cookie: bigint, cookieMask: bigint): Rule[] {
  const spec: FlowSpec = {
    text: '(OpenFlow stats request)', match, priority: 0, tableId, cookie, cookieMask, newCookie: null,
    idleTimeoutS: 0, hardTimeoutS: 0, importance: 0, flags: 0, outPort: outPort === OFPP_NONE ? OFPP_NONE : outPort,
    actions: [], hasActions: false, stats: null,
  };
  return bridge.selectRules(spec, false);
}

/** Durations of a rule as flow stats carry them: seconds, nanoseconds, and ages + 1 (0 = unknown). */
export function ruleTimes(r: Rule, nowMs: number): { sec: number; nsec: number; idleAge: number; hardAge: number } {
  const d = Math.max(0, nowMs - r.createdMs);
  return {
    sec: Math.floor(d / 1000), nsec: (d % 1000) * 1e6,
    idleAge: Math.min(0xffff, Math.floor(Math.max(0, nowMs - r.lastUsedMs) / 1000) + 1),
    hardAge: Math.min(0xffff, Math.floor(Math.max(0, nowMs - r.modifiedMs) / 1000) + 1),
  };
}
