/**
 * Whole flow lines in ovs-ofctl syntax, and flows files.
 *
 * A line is `[table=T,][priority=P,][cookie=C[/M],][idle_timeout=S,][hard_timeout=S,][importance=I,]
 * [flags,] <match fields>[,actions=ACTIONS]` in any order, items separated by commas or blanks; the
 * actions, when present, are the rest of the line. Lines printed by `ovs-ofctl dump-flows`
 * (and by dump.ts) parse too: their `duration=`, `n_packets=`, `n_bytes=`, `idle_age=` and
 * `hard_age=` items are kept in `stats`, so dump output round-trips.
 *
 * What a line may hold depends on the command, as in ovs-ofctl: `add` needs actions and takes
 * no cookie mask; `del` takes no actions but may take `cookie=V/M` and `out_port=`;
 * `mod` takes actions and a cookie mask; only `add` takes `importance=` (ovs-ofctl answers
 * "unknown keyword importance" for the others).
 *
 * Who calls: bridge.ts (flow-mods, replace/diff-flows), control/ and cli/ (flowctl), tests.
 * Errors are FlowSyntaxError naming the flow, the 1-based column, what was expected and, for
 * files, the file name and line number. Nothing here runs per packet.
 */
import type { Match } from './types';
import type { Action } from './actions';
import { OFPP_NONE } from './actions';
import {
  SyntaxCtx, PortResolver, newMatch, nextKeyValue, parseMatchItem, normalizeMatch, syntaxError,
  parseUint, parsePort, DEFAULT_PRIORITY,
} from './match-syntax';
import { parseActions } from './action-syntax';

/** OpenFlow flow-mod flags (OVS's OFPUTIL_FF_*). */
export const FF_SEND_FLOW_REM = 1;
export const FF_CHECK_OVERLAP = 2;
export const FF_RESET_COUNTS = 4;
export const FF_NO_PKT_COUNTS = 8;
export const FF_NO_BYT_COUNTS = 16;

const FLAG_NAMES: Readonly<Record<string, number>> = {
  send_flow_rem: FF_SEND_FLOW_REM, check_overlap: FF_CHECK_OVERLAP, reset_counts: FF_RESET_COUNTS,
  no_packet_counts: FF_NO_PKT_COUNTS, no_byte_counts: FF_NO_BYT_COUNTS,
};

/** Table id meaning "every table" (OFPTT_ALL) for del/mod without table=. */
export const TABLE_ALL = 255;

export type FlowCommand = 'add' | 'mod' | 'del';

/** Statistics read back from a dump-flows line. */
export interface FlowStats {
  readonly durationMs: number;
  readonly nPackets: number;
  readonly nBytes: number;
  readonly idleAgeS: number;
  /** -1 when the line had none (OVS omits it when equal to the duration). */
  readonly hardAgeS: number;
}

/** One parsed flow line. */
export interface FlowSpec {
  readonly text: string;
  readonly match: Match;
  readonly priority: number;
  /** TABLE_ALL when not given (del/mod act on every table, add uses table 0). */
  readonly tableId: number;
  readonly cookie: bigint;
  /** Selects rules by cookie (mod/del `cookie=V/M`); all ones for add, 0 when not given. */
  readonly cookieMask: bigint;
  /** `cookie=V` without mask: the cookie to set (add/mod); null when not given. */
  readonly newCookie: bigint | null;
  readonly idleTimeoutS: number;
  readonly hardTimeoutS: number;
  /** importance= of add (0 when not given; OpenFlow 1.4's flow_mod field). */
  readonly importance: number;
  readonly flags: number;
  /** out_port= of del-flows (OFPP_NONE: any). */
  readonly outPort: number;
  readonly actions: readonly Action[];
  readonly hasActions: boolean;
  readonly stats: FlowStats | null;
}

export interface FlowParseOptions {
  readonly command?: FlowCommand;
  readonly resolvePort?: PortResolver;
  readonly file?: string;
  readonly line?: number;
}

const U64 = 0xffffffffffffffffn;

/** Finds `actions=` (or `action=`) at a top-level item boundary; -1 if absent. */
function findActions(text: string): { at: number; valueAt: number } | { at: -1; valueAt: -1 } {
  const re = /(^|[\s,])(actions?)\s*[=:]/g;
  let depth = 0;
  let lastScan = 0;
  let r: RegExpExecArray | null;
  while ((r = re.exec(text)) !== null) {
    for (let i = lastScan; i < r.index; i++) {
      if (text[i] === '(') depth++;
      else if (text[i] === ')') depth--;
    }
    lastScan = r.index;
    if (depth === 0) {
      const at = r.index + r[1].length;
      return { at, valueAt: r.index + r[0].length };
    }
  }
  return { at: -1, valueAt: -1 };
}

function parseDurationMs(v: string): number | undefined {
  const m = /^(\d+)(?:\.(\d+))?s$/.exec(v);
  if (!m) return undefined;
  const frac = (m[2] ?? '').padEnd(3, '0').slice(0, 3);
  return Number(m[1]) * 1000 + Number(frac);
}

/**
 * Parses one flow line for `command` (default 'add'). Missing prerequisites are dropped as
 * ovs-ofctl does; actions are checked against the match as ovs-ofctl checks them.
 */
export function parseFlow(text: string, opts: FlowParseOptions = {}): FlowSpec {
  const command = opts.command ?? 'add';
  const ctx: SyntaxCtx = { flow: text, file: opts.file, line: opts.line, resolvePort: opts.resolvePort };
  const act = findActions(text);
  const head = act.at >= 0 ? text.slice(0, act.at) : text;
  const m = newMatch();
  let priority = DEFAULT_PRIORITY;
  let tableId = TABLE_ALL;
  let cookie = 0n;
  let cookieMask = command === 'add' ? U64 : 0n;
  let newCookie: bigint | null = null;
  let idle = 0;
  let hard = 0;
  let importance = 0;
  let flags = 0;
  let outPort = OFPP_NONE;
  let durationMs = -1;
  let nPackets = -1;
  let nBytes = -1;
  let idleAge = -1;
  let hardAge = -1;
  let pos = 0;
  for (;;) {
    const r = nextKeyValue(head, pos, ctx);
    if (!r) break;
    pos = r.next;
    const kv = r.kv;
    const num = (max: bigint, what: string): number => {
      const v = parseUint(kv.value);
      if (kv.value === '' || v === undefined || v > max) {
        throw syntaxError(ctx, kv.value === '' ? kv.keyCol : kv.valueCol, kv.key, `"${kv.value}": expected ${what}`);
      }
      return Number(v);
    };
    switch (kv.key) {
      case 'table': tableId = num(254n, 'a table number 0..254'); continue;
      case 'priority': priority = num(65535n, 'a priority 0..65535'); continue;
      case 'idle_timeout': idle = num(65535n, 'a timeout in seconds 0..65535'); continue;
      case 'hard_timeout': hard = num(65535n, 'a timeout in seconds 0..65535'); continue;
      case 'importance':
        if (command !== 'add') throw syntaxError(ctx, kv.keyCol, 'importance', 'importance is only valid for add-flow(s), as in ovs-ofctl');
        importance = num(65535n, 'an importance 0..65535');
        continue;
      case 'cookie': {
        const slash = kv.value.indexOf('/');
        const vs = slash >= 0 ? kv.value.slice(0, slash) : kv.value;
        const v = parseUint(vs);
        if (kv.value === '' || v === undefined || v > U64) {
          throw syntaxError(ctx, kv.value === '' ? kv.keyCol : kv.valueCol, 'cookie', `"${kv.value}": expected a 64-bit cookie[/mask]`);
        }
        if (slash >= 0) {
          // A mask means the cookie selects rules (mod/del only).
          if (command === 'add') {
            throw syntaxError(ctx, kv.valueCol + slash, 'cookie', 'flow additions cannot use a cookie mask (expected cookie=VALUE)');
          }
          const ms = kv.value.slice(slash + 1);
          const mk = ms === '-1' ? U64 : parseUint(ms);
          if (mk === undefined || mk > U64) throw syntaxError(ctx, kv.valueCol + slash + 1, 'cookie', `"${ms}": expected a 64-bit cookie mask`);
          cookieMask = mk;
          cookie = v & mk;
        } else {
          // No mask means the cookie is being set (add/mod only).
          if (command === 'del') {
            throw syntaxError(ctx, kv.valueCol, 'cookie', `cannot set cookie (to match on a cookie, specify a mask, e.g. cookie=${vs}/-1)`);
          }
          if (command === 'add') cookie = v;
          newCookie = v;
        }
        continue;
      }
      case 'out_port':
        if (command !== 'del') throw syntaxError(ctx, kv.keyCol, 'out_port', 'out_port is only valid for del-flows');
        outPort = parsePort(kv.value, ctx, kv.valueCol, 'out_port');
        continue;
      case 'duration': {
        const d = parseDurationMs(kv.value);
        if (d === undefined) throw syntaxError(ctx, kv.valueCol, 'duration', `"${kv.value}": expected seconds like 1.234s`);
        durationMs = d;
        continue;
      }
      case 'n_packets': nPackets = num(BigInt(Number.MAX_SAFE_INTEGER), 'a packet count'); continue;
      case 'n_bytes': nBytes = num(BigInt(Number.MAX_SAFE_INTEGER), 'a byte count'); continue;
      case 'idle_age': idleAge = num(0xffffffffn, 'an age in seconds'); continue;
      case 'hard_age': hardAge = num(0xffffffffn, 'an age in seconds'); continue;
      default: break;
    }
    if (kv.sep === '' && FLAG_NAMES[kv.key] !== undefined) { flags |= FLAG_NAMES[kv.key]; continue; }
    if (!parseMatchItem(m, kv, ctx)) {
      throw syntaxError(ctx, kv.keyCol, kv.key, `unknown field "${kv.key}" (expected a match field, table, priority, cookie, idle_timeout, hard_timeout or actions)`);
    }
  }
  normalizeMatch(m);
  let actions: Action[] = [];
  const hasActions = act.at >= 0;
  if (command === 'del' && hasActions) {
    throw syntaxError(ctx, act.at, 'actions', 'del-flows takes no actions (expected only match fields)');
  }
  if (command !== 'del' && !hasActions) {
    throw syntaxError(ctx, text.length, 'actions', 'must specify an action (expected ...,actions=ACTIONS at the end)');
  }
  if (hasActions) actions = parseActions(text.slice(act.valueAt), ctx, act.valueAt, m);
  const stats = durationMs >= 0 || nPackets >= 0 || nBytes >= 0
    ? { durationMs: Math.max(durationMs, 0), nPackets: Math.max(nPackets, 0), nBytes: Math.max(nBytes, 0),
        idleAgeS: idleAge, hardAgeS: hardAge }
    : null;
  return { text, match: m, priority, tableId, cookie, cookieMask, newCookie, idleTimeoutS: idle,
           hardTimeoutS: hard, importance, flags, outPort, actions, hasActions, stats };
}

/**
 * Parses a flows file (as `ovs-ofctl add-flows` reads it): one flow per line, blank lines and
 * lines starting with `#` skipped. Errors name the file and the 1-based line.
 */
export function parseFlowsFile(content: string, fileName: string,
                               opts: Omit<FlowParseOptions, 'file' | 'line'> = {}): FlowSpec[] {
  const out: FlowSpec[] = [];
  const lines = content.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const t = raw.trim();
    if (t === '' || t.startsWith('#')) continue;
    out.push(parseFlow(raw, { ...opts, file: fileName, line: i + 1 }));
  }
  return out;
}

