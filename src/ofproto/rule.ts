/**
 * One OpenFlow rule as a bridge table holds it: match + priority (the classifier's identity),
 * cookie, actions, timeouts, importance, times and counters.
 *
 * Who uses it: bridge.ts creates and replaces rules (flow-mods, learn, expiry); the classifier
 * (classifier.ts) indexes them by match and priority; xlate.ts reads actions; dpif/ credits
 * counters per batch through credit(); dump.ts prints them.
 *
 * Invariants: `match` and `priority` never change after creation (the classifier keys on them);
 * mod-flows changes `actions` (and maybe `cookie`) in place and bumps `modifiedMs`.
 * Times are milliseconds of the caller's clock (bridge callers pass nowMs), never read here.
 */
import type { ClassifierRule, ConjClause, Match } from './types';
import type { Action } from './actions';
import { OFPP_CONTROLLER, OFPP_NONE } from './actions';
import { countersAsDoubles } from '../counters';

export class Rule implements ClassifierRule {
  readonly match: Match;
  readonly priority: number;
  readonly tableId: number;
  cookie: bigint;
  private acts: readonly Action[];
  private conjClauses: readonly ConjClause[] | null;
  idleTimeoutS: number;
  hardTimeoutS: number;
  /** FF_* flow-mod flags (flow-syntax.ts). */
  flags: number;
  /**
   * OpenFlow 1.4 importance (0..65535), set by the add that created the rule and kept by
   * modify, as OVS does. OVS reads it to pick rules to evict from a table at its flow limit;
   * flowd has no flow limits, so it is only kept and reported (dump-flows, OpenFlow 1.4 flow
   * stats, diff/replace-flows).
   */
  readonly importance: number;
  createdMs: number;
  /** Last add/mod of this rule; the hard timeout and hard_age count from here (as OVS). */
  modifiedMs: number;
  /** Last time a packet hit the rule; the idle timeout and idle_age count from here. */
  lastUsedMs: number;
  nPackets: number;
  nBytes: number;

  constructor(tableId: number, match: Match, priority: number, cookie: bigint,
              actions: readonly Action[], idleTimeoutS: number, hardTimeoutS: number,
              flags: number, nowMs: number, importance = 0) {
    this.match = match;
    this.priority = priority;
    this.tableId = tableId;
    this.cookie = cookie;
    this.acts = actions;
    this.conjClauses = conjClausesOf(actions);
    this.idleTimeoutS = idleTimeoutS;
    this.hardTimeoutS = hardTimeoutS;
    this.flags = flags;
    this.importance = importance;
    this.createdMs = nowMs;
    this.modifiedMs = nowMs;
    this.lastUsedMs = nowMs;
    this.nPackets = 0;
    this.nBytes = 0;
    countersAsDoubles<Rule>(this, 'nPackets', 'nBytes');
  }

  get actions(): readonly Action[] { return this.acts; }

  /** mod-flows: new actions (and so maybe a new conjunction membership, as OVS). */
  set actions(a: readonly Action[]) {
    this.acts = a;
    this.conjClauses = conjClausesOf(a);
  }

  /** The conjunction clauses of the actions, or null when the rule is not a clause. */
  get conj(): readonly ConjClause[] | null { return this.conjClauses; }

  /** Adds traffic seen by the slow or fast path; called once per batch per rule. */
  credit(nPackets: number, nBytes: number, nowMs: number): void {
    this.nPackets += nPackets;
    this.nBytes += nBytes;
    if (nowMs > this.lastUsedMs) this.lastUsedMs = nowMs;
  }

  /** Why the rule is past a timeout at `nowMs` ('idle' / 'hard'), or null. */
  expiredReason(nowMs: number): 'idle' | 'hard' | null {
    if (this.hardTimeoutS && nowMs - this.modifiedMs >= this.hardTimeoutS * 1000) return 'hard';
    if (this.idleTimeoutS && nowMs - this.lastUsedMs >= this.idleTimeoutS * 1000) return 'idle';
    return null;
  }

  /** Does any action output to `port` (del-flows out_port=)? OFPP_NONE matches every rule. */
  outputsTo(port: number): boolean {
    if (port === OFPP_NONE) return true;
    for (const a of this.actions) {
      if (a.kind === 'output' && a.port === port) return true;
      if (a.kind === 'controller' && port === OFPP_CONTROLLER) return true;
    }
    return false;
  }
}

/** conjunction(id,k/n) actions as classifier clauses (k - 1), or null when there are none. */
export function conjClausesOf(actions: readonly Action[]): readonly ConjClause[] | null {
  let out: ConjClause[] | null = null;
  for (const a of actions) {
    if (a.kind !== 'conjunction') continue;
    if (out === null) out = [];
    out.push({ id: a.id, clause: a.clause - 1, nClauses: a.nClauses });
  }
  return out;
}
