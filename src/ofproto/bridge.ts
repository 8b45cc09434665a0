/**
 * A bridge's OpenFlow state: its ports and tables 0..254 of rules, changed only by flow-mods
 * with ovs-ofctl semantics (add, mod, del, strict and not, replace-flows, diff-flows) and by
 * timeouts. Packet processing lives elsewhere (xlate.ts, dpif/); this is the source of truth
 * they read.
 *
 * Semantics, as Open vSwitch (checked against its ofproto.c and ovs-ofctl):
 * - add: a rule with identical match and priority in the table is replaced; its counters and
 *   creation time are reset (ovs-ofctl speaks OpenFlow 1.0, where add implies reset_counts).
 * - mod (strict: identical match+priority; non-strict: every rule at least as specific as the
 *   given match, any priority): actions replaced, counters kept unless reset_counts, cookie set
 *   when `cookie=V` was given without mask, hard timeout restarted. When nothing is selected and
 *   no cookie mask was given, mod adds the flow (OpenFlow 1.0 "MODIFY acts like ADD").
 * - del (strict / non-strict likewise), honouring table=, cookie=V/M and out_port=.
 * - A new bridge's table 0 holds `priority=0 actions=NORMAL`; a table miss is a drop.
 * - expire(nowMs) removes rules past their idle or hard timeout and returns them.
 * - Rules that leave for good (deleted, expired; not replaced by an add) are reported to the
 *   onRuleRemoved listeners with the reason; ports added or removed to onPortsChanged.
 *
 * Every change bumps `version` and calls the onRulesChanged listeners with the rules added and
 * removed (a modified rule appears in `modified`), so dpif can revalidate its caches.
 * Who calls: control/ (flowctl), dvr/ (generated flows), xlate.ts (learn), tests.
 */
import { CommandError } from '../errors';
import { Classifier } from './classifier';
import { Rule } from './rule';
import type { Match } from './types';
import { Action, OFPP_NORMAL } from './actions';
import {
  FlowSpec, parseFlow, parseFlowsFile, FlowCommand, TABLE_ALL, FF_RESET_COUNTS,
} from './flow-syntax';
import { newMatch, matchesEqual, PortNamer } from './match-syntax';
import { formatActions } from './action-syntax';
import { formatFlowText } from './dump';

export const N_TABLES = 255;

export type PortKind = 'afpacket' | 'tap' | 'internal' | 'patch' | 'vxlan' | 'gre' | 'pcap' | 'dummy';

export interface BridgePort {
  readonly name: string;
  readonly ofport: number;
  readonly kind: PortKind;
  /** Access VLAN (OVS's tag): NORMAL tags frames from this port and untags them to it. */
  readonly tag?: number;
  /** For patch ports: the peer bridge and port names. */
  readonly peerBridge?: string;
  readonly peerPort?: string;
}

/** What one flow-mod changed. */
export interface RulesChange {
  readonly added: readonly Rule[];
  readonly removed: readonly Rule[];
  readonly modified: readonly Rule[];
}

export type RulesListener = (change: RulesChange, version: number) => void;

/** Why a rule left its table for good (not replaced by an add): OpenFlow's flow-removed reasons. */
export type RemovalReason = 'idle' | 'hard' | 'delete';
/** Called for every rule deleted or expired (the OpenFlow layer sends FLOW_REMOVED from it). */
export type RemovalListener = (rule: Rule, reason: RemovalReason) => void;
/** Called when a port is added to or removed from the bridge. */
export type PortListener = (port: BridgePort, added: boolean) => void;

/** True when `rule`'s match is at least as specific as `m` (non-strict flow-mod selection). */
export function matchCovers(m: Match, rule: Match): boolean {
  const mv = m.value, mm = m.mask, rv = rule.value, rm = rule.mask;
  for (let w = 0; w < mm.length; w++) {
    const k = mm[w];
    if (k === 0) continue;
    // >>> 0: `&` yields a signed int32, which never equals a Uint32 word with bit 31 set.
    if (((rm[w] & k) >>> 0) !== k || ((rv[w] & k) >>> 0) !== mv[w]) return false;
  }
  return true;
}

export class Bridge {
  readonly name: string;
  readonly tables: Classifier<Rule>[] = [];
  /** Bumped on every change to any table. */
  version = 0;
  /** Bumped on every port added or removed (views of the bridge re-read its ports). */
  portsVersion = 0;
  private readonly portsByName = new Map<string, BridgePort>();
  private readonly portsByNumber = new Map<number, BridgePort>();
  private readonly listeners: RulesListener[] = [];
  private readonly removalListeners: RemovalListener[] = [];
  private readonly portListeners: PortListener[] = [];
  /** NORMAL forwards frames for reserved multicast addresses (OVS other-config:forward-bpdu). */
  forwardBpdu = false;

  constructor(name: string, nowMs = 0, opts: { defaultFlow?: boolean } = {}) {
    this.name = name;
    for (let t = 0; t < N_TABLES; t++) this.tables.push(new Classifier<Rule>());
    if (opts.defaultFlow !== false) {
      this.tables[0].insert(new Rule(0, newMatch(), 0, 0n, [{ kind: 'output', port: OFPP_NORMAL, maxLen: 0 }],
        0, 0, 0, nowMs));
    }
  }

  // ---- ports --------------------------------------------------------------------------------

  /** Adds a port; ofport 0 picks the lowest free number from 1. */
  addPort(p: BridgePort): BridgePort {
    if (this.portsByName.has(p.name)) throw new CommandError(`${this.name}: port ${p.name} already exists`);
    let ofport = p.ofport;
    if (!ofport) { ofport = 1; while (this.portsByNumber.has(ofport)) ofport++; }
    if (this.portsByNumber.has(ofport)) throw new CommandError(`${this.name}: ofport ${ofport} already in use`);
    const port = { ...p, ofport };
    this.portsByName.set(port.name, port);
    this.portsByNumber.set(ofport, port);
    this.portsVersion++;
    for (const cb of this.portListeners.slice()) cb(port, true);
    return port;
  }

  removePort(name: string): boolean {
    const p = this.portsByName.get(name);
    if (!p) return false;
    this.portsByName.delete(name);
    this.portsByNumber.delete(p.ofport);
    this.portsVersion++;
    for (const cb of this.portListeners.slice()) cb(p, false);
    return true;
  }

  port(name: string): BridgePort | undefined { return this.portsByName.get(name); }
  portByNumber(ofport: number): BridgePort | undefined { return this.portsByNumber.get(ofport); }
  ports(): BridgePort[] { return [...this.portsByNumber.values()].sort((a, b) => a.ofport - b.ofport); }

  /** Port name -> number, for flow parsing. */
  readonly resolvePort = (name: string): number | undefined => this.portsByName.get(name)?.ofport;
  /** Port number -> name, for printing with names. */
  readonly portName: PortNamer = (n: number) => this.portsByNumber.get(n)?.name;

  // ---- listeners ------------------------------------------------------------------------------

  /** Registers `cb` for every change; returns a function that unregisters it. */
  onRulesChanged(cb: RulesListener): () => void {
    this.listeners.push(cb);
    return () => {
      const i = this.listeners.indexOf(cb);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Registers `cb` for every rule deleted or expired; returns a function that unregisters it. */
  onRuleRemoved(cb: RemovalListener): () => void {
    return Bridge.listen(this.removalListeners, cb);
  }

  /** Registers `cb` for every port added or removed; returns a function that unregisters it. */
  onPortsChanged(cb: PortListener): () => void {
    return Bridge.listen(this.portListeners, cb);
  }

  private static listen<T>(list: T[], cb: T): () => void {
    list.push(cb);
    return () => {
      const i = list.indexOf(cb);
      if (i >= 0) list.splice(i, 1);
    };
  }

  private removedFor(rules: readonly Rule[], reason: (r: Rule) => RemovalReason): void {
    if (this.removalListeners.length === 0) return;
    for (const r of rules) for (const cb of this.removalListeners.slice()) cb(r, reason(r));
  }

  private changed(added: Rule[], removed: Rule[], modified: Rule[]): void {
    if (!added.length && !removed.length && !modified.length) return;
    this.version++;
    const change = { added, removed, modified };
    for (const cb of this.listeners.slice()) cb(change, this.version);
  }

  // ---- reading ------------------------------------------------------------------------------

  /** Every rule, table ascending, priority descending, then insertion order. */
  allRules(): Rule[] {
    const out: Rule[] = [];
    for (let t = 0; t < N_TABLES; t++) if (this.tables[t].size) out.push(...this.tables[t].rules());
    return out;
  }

  get nRules(): number {
    let n = 0;
    for (const t of this.tables) n += t.size;
    return n;
  }

  /** The rules a mod/del `spec` selects (strict: identical match and priority). */
  selectRules(spec: FlowSpec, strict: boolean): Rule[] {
    const out: Rule[] = [];
    const first = spec.tableId === TABLE_ALL ? 0 : spec.tableId;
    const last = spec.tableId === TABLE_ALL ? N_TABLES - 1 : spec.tableId;
    for (let t = first; t <= last; t++) {
      const cls = this.tables[t];
      if (!cls.size) continue;
      if (strict) {
        const r = cls.findExact(spec.match, spec.priority);
        if (r && this.cookieAndPortOk(r, spec)) out.push(r);
        continue;
      }
      for (const r of cls.rules()) {
        if (matchCovers(spec.match, r.match) && this.cookieAndPortOk(r, spec)) out.push(r);
      }
    }
    return out;
  }

  private cookieAndPortOk(r: Rule, spec: FlowSpec): boolean {
    if (((r.cookie ^ spec.cookie) & spec.cookieMask) !== 0n) return false;
    return r.outputsTo(spec.outPort);
  }

  private parse(flow: FlowSpec | string, command: FlowCommand): FlowSpec {
    return typeof flow === 'string' ? parseFlow(flow, { command, resolvePort: this.resolvePort }) : flow;
  }

  // ---- flow-mods ------------------------------------------------------------------------------

  private insertRule(spec: FlowSpec, nowMs: number, added: Rule[], removed: Rule[]): Rule {
    const table = spec.tableId === TABLE_ALL ? 0 : spec.tableId;
    const rule = new Rule(table, spec.match, spec.priority, spec.cookie & 0xffffffffffffffffn,
      spec.actions, spec.idleTimeoutS, spec.hardTimeoutS, spec.flags, nowMs, spec.importance);
    const old = this.tables[table].insert(rule);
    if (old) removed.push(old);
    added.push(rule);
    return rule;
  }

  /** add-flow: inserts, replacing an identical match+priority rule (counters reset). */
  addFlow(flow: FlowSpec | string, nowMs: number): Rule {
    const spec = this.parse(flow, 'add');
    const added: Rule[] = [];
    const removed: Rule[] = [];
    const r = this.insertRule(spec, nowMs, added, removed);
    this.changed(added, removed, []);
    return r;
  }

  /**
   * A flow installed by a learn action (OVS's learn semantics): an identical rule (match,
   * priority, actions) already in the table only has its timeouts restarted, keeping its
   * counters and not notifying listeners (no cached decision can change); otherwise the flow
   * is added like add-flow, replacing a same match+priority rule. Returns true when a rule was
   * added (the rules changed), false when an identical one was only refreshed.
   */
  learnFlow(tableId: number, match: Match, priority: number, cookie: bigint, actions: readonly Action[],
            idleTimeoutS: number, hardTimeoutS: number, nowMs: number, flags = 0): boolean {
    const old = this.tables[tableId].findExact(match, priority);
    // A cached megaflow re-learns per packet (ofproto/upcall.ts) with the very action list it
    // learned first: the rule keeps that list once the texts agree, so later checks are one
    // reference comparison.
    if (old && old.idleTimeoutS === idleTimeoutS && old.hardTimeoutS === hardTimeoutS &&
        (old.actions === actions || formatActions(old.actions) === formatActions(actions))) {
      if (old.actions !== actions) old.actions = actions;
      old.modifiedMs = nowMs;
      old.lastUsedMs = nowMs;
      return false;
    }
    const rule = new Rule(tableId, match, priority, cookie, actions, idleTimeoutS, hardTimeoutS, flags, nowMs);
    const replaced = this.tables[tableId].insert(rule);
    this.changed([rule], replaced ? [replaced] : [], []);
    return true;
  }

  /** add-flows: a list of specs, or flows-file text (then `fileName` names it in errors). */
  addFlows(flows: readonly FlowSpec[] | string, nowMs: number, fileName = '-'): Rule[] {
    const specs = typeof flows === 'string' ? parseFlowsFile(flows, fileName, { command: 'add', resolvePort: this.resolvePort }) : flows;
    const added: Rule[] = [];
    const removed: Rule[] = [];
    for (const s of specs) this.insertRule(s, nowMs, added, removed);
    this.changed(added, removed, []);
    return added;
  }

  /** mod-flows: replaces the actions of the selected rules; returns them (or the added rule). */
  modFlows(flow: FlowSpec | string, strict: boolean, nowMs: number): Rule[] {
    const spec = this.parse(flow, 'mod');
    const sel = this.selectRules(spec, strict);
    if (sel.length === 0) {
      if (spec.cookieMask !== 0n) return [];
      return [this.addFlow({ ...spec, cookie: spec.newCookie ?? 0n }, nowMs)];
    }
    for (const r of sel) {
      r.actions = spec.actions;
      r.modifiedMs = nowMs;
      if (spec.newCookie !== null) r.cookie = spec.newCookie;
      if (spec.flags & FF_RESET_COUNTS) { r.nPackets = 0; r.nBytes = 0; }
    }
    this.changed([], [], sel);
    return sel;
  }

  /** del-flows: removes the selected rules (every rule when `flow` is undefined); returns them. */
  delFlows(flow: FlowSpec | string | undefined, strict: boolean): Rule[] {
    const spec = flow === undefined ? this.parse('', 'del') : this.parse(flow, 'del');
    const sel = this.selectRules(spec, strict);
    for (const r of sel) this.tables[r.tableId].remove(r);
    this.changed([], sel, []);
    this.removedFor(sel, () => 'delete');
    return sel;
  }

  /** Removes and returns the rules past their idle or hard timeout at `nowMs`. */
  expire(nowMs: number): Rule[] {
    const gone: Rule[] = [];
    for (const cls of this.tables) {
      if (!cls.size) continue;
      for (const r of cls.rules()) if (r.expiredReason(nowMs)) gone.push(r);
    }
    for (const r of gone) this.tables[r.tableId].remove(r);
    this.changed([], gone, []);
    this.removedFor(gone, (r) => r.expiredReason(nowMs) ?? 'hard');
    return gone;
  }

  // ---- replace-flows / diff-flows ---------------------------------------------------------------

  private static sameVersion(r: Rule, s: FlowSpec): boolean {
    return r.cookie === s.cookie && r.idleTimeoutS === s.idleTimeoutS && r.hardTimeoutS === s.hardTimeoutS
      && r.importance === s.importance && formatActions(r.actions) === formatActions(s.actions);
  }

  private static findSpec(specs: readonly FlowSpec[], r: Rule): FlowSpec | undefined {
    for (const s of specs) {
      const t = s.tableId === TABLE_ALL ? 0 : s.tableId;
      if (t === r.tableId && s.priority === r.priority && matchesEqual(s.match, r.match)) return s;
    }
    return undefined;
  }

  /**
   * replace-flows: afterwards the bridge holds exactly `flows` (specs or flows-file text).
   * Rules whose cookie, timeouts, importance and actions already agree are left alone (counters kept);
   * others are deleted or (re)added. Returns what changed.
   */
  replaceFlows(flows: readonly FlowSpec[] | string, nowMs: number, fileName = '-'): RulesChange {
    const specs = typeof flows === 'string' ? parseFlowsFile(flows, fileName, { command: 'add', resolvePort: this.resolvePort }) : flows;
    const removed: Rule[] = [];
    const added: Rule[] = [];
    const deleted: Rule[] = [];
    for (const r of this.allRules()) {
      if (!Bridge.findSpec(specs, r)) { this.tables[r.tableId].remove(r); removed.push(r); deleted.push(r); }
    }
    for (const s of specs) {
      const t = s.tableId === TABLE_ALL ? 0 : s.tableId;
      const cur = this.tables[t].findExact(s.match, s.priority);
      if (cur && Bridge.sameVersion(cur, s)) continue;
      this.insertRule(s, nowMs, added, removed);
    }
    this.changed(added, removed, []);
    this.removedFor(deleted, () => 'delete');
    return { added, removed, modified: [] };
  }

  /**
   * diff-flows between the bridge (old, "-") and `flows` (new, "+"): for each flow present on
   * one side only or differing in cookie/timeouts/importance/actions, a "-" line and/or a "+" line, as
   * `ovs-ofctl diff-flows` prints them. Empty when they agree.
   */
  diffFlows(flows: readonly FlowSpec[] | string, fileName = '-'): string[] {
    const specs = typeof flows === 'string' ? parseFlowsFile(flows, fileName, { command: 'add', resolvePort: this.resolvePort }) : flows;
    const out: string[] = [];
    const ruleText = (r: Rule): string => formatFlowText(r.tableId, r, r.match, r.priority, r.actions);
    const specText = (s: FlowSpec): string => formatFlowText(s.tableId === TABLE_ALL ? 0 : s.tableId, s, s.match,
      s.priority, s.actions);
    for (const r of this.allRules()) {
      const s = Bridge.findSpec(specs, r);
      if (!s) out.push(`-${ruleText(r)}`);
      else if (!Bridge.sameVersion(r, s)) { out.push(`-${ruleText(r)}`); out.push(`+${specText(s)}`); }
    }
    for (const s of specs) {
      const t = s.tableId === TABLE_ALL ? 0 : s.tableId;
      if (!this.tables[t].findExact(s.match, s.priority)) out.push(`+${specText(s)}`);
    }
    return out;
  }
}

