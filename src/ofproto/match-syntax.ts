/**
 * The match part of ovs-ofctl flow text: parse `in_port=1,dl_vlan=5,ip,nw_src=10.0.0.0/8` into a
 * Match (value/mask over packet/flowkey-layout.ts) and print a Match back exactly as
 * `ovs-ofctl dump-flows` prints it (OVS's match_format order: priority, ct_*, the dl_type
 * shorthand, regs, tunnel, metadata, in_port, vlan, dl_src, dl_dst, dl_type, L3, nw_proto,
 * arp_sha/tha, nw_tos/ecn/ttl, nw_frag, L4, tcp_flags).
 *
 * Who calls: flow-syntax.ts (whole flow lines), action-syntax.ts (value parsers, learn specs),
 * trace and dump callers through flow-syntax.ts.
 *
 * Prerequisites: like ovs-ofctl (OVS's ofputil_normalize_match), a field whose prerequisite the
 * flow lacks is accepted while parsing and then silently dropped: `nw_src=1.2.3.4` alone matches
 * everything, `ip,tp_src=80` is just `ip`. normalizeMatch() does this once all fields are in.
 *
 * Also holds the lexical helpers of the dialect (key/value splitting with parenthesis
 * balancing, integers, MACs, IPv4/IPv6 with masks) so action-syntax.ts reads values the same way.
 * Nothing here runs per packet.
 */
import { FlowSyntaxError } from '../errors';
import {
  KEY_WORDS, W_VLAN_DLTYPE, W_NW_MISC, W_TP, W_TCP_FLAGS, W_NW_SRC, W_NW_DST, VLAN_CFI,
  NW_FRAG_ANY, NW_FRAG_LATER,
} from '../packet/flowkey-layout';
import type { Match } from './types';
import {
  FieldDef, fieldByName, setMatchField, clearMatchField, readField, fieldFullMask, FIELDS,
} from './fields';
import {
  OFPP_IN_PORT, OFPP_TABLE, OFPP_NORMAL, OFPP_FLOOD, OFPP_ALL, OFPP_CONTROLLER, OFPP_LOCAL,
  OFPP_NONE,
} from './actions';
import { formatIpv4, formatMac, parseIpv4, parseMac } from '../packet/addr-text';

export const ETH_TYPE_IP = 0x0800;
export const ETH_TYPE_ARP = 0x0806;
export const ETH_TYPE_RARP = 0x8035;
export const ETH_TYPE_IPV6 = 0x86dd;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_SCTP = 132;

/** Default priority of a flow (OFP_DEFAULT_PRIORITY): omitted when printing. */
export const DEFAULT_PRIORITY = 32768;

/** Resolves a port name (as written in flow text) to its OpenFlow port number. */
export type PortResolver = (name: string) => number | undefined;
/** Optional reverse of PortResolver for printing names instead of numbers. */
export type PortNamer = (port: number) => string | undefined;

/** A mutable Match under construction. */
export interface MutableMatch { value: Uint32Array; mask: Uint32Array }

export function newMatch(): MutableMatch {
  return { value: new Uint32Array(KEY_WORDS), mask: new Uint32Array(KEY_WORDS) };
}

export function copyMatch(m: Match): MutableMatch {
  return { value: Uint32Array.from(m.value), mask: Uint32Array.from(m.mask) };
}

export function matchesEqual(a: Match, b: Match): boolean {
  for (let i = 0; i < KEY_WORDS; i++) {
    if (a.value[i] !== b.value[i] || a.mask[i] !== b.mask[i]) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Lexical helpers

/** Where a piece of text sits in the whole flow, for error columns. */
export interface SyntaxCtx {
  /** The whole flow text (quoted in errors). */
  readonly flow: string;
  readonly file?: string;
  readonly line?: number;
  readonly resolvePort?: PortResolver;
}

export function syntaxError(ctx: SyntaxCtx, col0: number, field: string, msg: string): FlowSyntaxError {
  return new FlowSyntaxError(ctx.flow, col0 + 1, field, msg, ctx.file ?? '', ctx.line ?? 0);
}

/** One `key=value`, `key:value`, `key(value)` or bare `key` item of a comma list. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
  /** 0-based offsets into the text the list was cut from. */
  readonly keyCol: number;
  readonly valueCol: number;
  /** The separator after the key: '=', ':', '(' or '' for a bare key. */
  readonly sep: string;
}

const KEY_END = ':=(, \t\r\n';
const VALUE_END = ', \t\r\n';

/**
 * Reads the next item from `text` at `pos` (OVS's ofputil_parse_key_value): leading commas and
 * blanks are skipped; a value runs to the next top-level comma or blank and may hold balanced
 * parentheses. Returns undefined at the end; `next` is where to continue.
 */
export function nextKeyValue(text: string, pos: number, ctx: SyntaxCtx, base = 0):
    { kv: KeyValue; next: number } | undefined {
  let i = pos;
  while (i < text.length && ', \t\r\n'.includes(text[i])) i++;
  if (i >= text.length) return undefined;
  const keyStart = i;
  while (i < text.length && !KEY_END.includes(text[i])) {
    if (text[i] === '"') i = skipQuoted(text, i, ctx, base); else i++;
  }
  const key = text.slice(keyStart, i);
  let sep = '';
  let value = '';
  let valueStart = i;
  if (i < text.length && (text[i] === '=' || text[i] === ':')) {
    sep = text[i];
    i++;
    valueStart = i;
    let depth = 0;
    while (i < text.length) {
      const c = text[i];
      if (c === '"') { i = skipQuoted(text, i, ctx, base); continue; }
      if (c === '(') depth++;
      else if (c === ')') {
        if (depth === 0) throw syntaxError(ctx, base + i, key, 'unbalanced ")"');
        depth--;
      } else if (depth === 0 && VALUE_END.includes(c)) break;
      i++;
    }
    if (depth !== 0) throw syntaxError(ctx, base + valueStart, key, 'expected ")" to close "("');
    value = text.slice(valueStart, i);
  } else if (i < text.length && text[i] === '(') {
    sep = '(';
    i++;
    valueStart = i;
    let depth = 1;
    while (i < text.length && depth > 0) {
      if (text[i] === '"') { i = skipQuoted(text, i, ctx, base); continue; }
      if (text[i] === '(') depth++;
      else if (text[i] === ')') depth--;
      i++;
    }
    if (depth !== 0) throw syntaxError(ctx, base + valueStart - 1, key, 'expected ")" to close "("');
    value = text.slice(valueStart, i - 1);
    // `key(args)->DST` (check_pkt_larger): as OVS, the value runs on to the next delimiter,
    // the ")->" included, and the action splits it.
    if (text.startsWith('->', i)) {
      while (i < text.length && !VALUE_END.includes(text[i])) i++;
      value = text.slice(valueStart, i);
    }
  }
  if (key === '' && sep === '') throw syntaxError(ctx, base + keyStart, '', `unexpected "${text[keyStart]}"`);
  return { kv: { key, value, keyCol: base + keyStart, valueCol: base + valueStart, sep }, next: i };
}

/** Index just past the `"..."` string opening at `i` (backslash escapes honoured). */
function skipQuoted(text: string, i: number, ctx: SyntaxCtx, base: number): number {
  let j = i + 1;
  while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
  if (j >= text.length) throw syntaxError(ctx, base + i, '', 'unterminated quoted string (expected a closing double quote)');
  return j + 1;
}

/** Splits a whole comma list into items (see nextKeyValue). */
export function splitKeyValues(text: string, ctx: SyntaxCtx, base = 0): KeyValue[] {
  const out: KeyValue[] = [];
  let pos = 0;
  for (;;) {
    const r = nextKeyValue(text, pos, ctx, base);
    if (!r) return out;
    out.push(r.kv);
    pos = r.next;
  }
}

/** An unsigned integer in decimal or 0x hex, as a bigint; undefined when it is not one. */
export function parseUint(s: string): bigint | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) return BigInt(s);
  if (/^[0-9]+$/.test(s)) return BigInt(s);
  return undefined;
}

// The address codecs live in packet/addr-text.ts (one of each); flow syntax re-exports them.

/** Length of the prefix if `mask` (of `bits` bits) is a CIDR mask, else -1. */
export function prefixLen(mask: bigint, bits: number): number {
  const all = (1n << BigInt(bits)) - 1n;
  for (let n = 0; n <= bits; n++) {
    const p = n === 0 ? 0n : (all << BigInt(bits - n)) & all;
    if (p === mask) return n;
  }
  return -1;
}

function prefixMask(n: number, bits: number): bigint {
  const all = (1n << BigInt(bits)) - 1n;
  return n === 0 ? 0n : (all << BigInt(bits - n)) & all;
}

/** IPv6 text to a 128-bit bigint, or undefined (accepts `::`, and a dotted IPv4 tail). */
export function parseIpv6(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(':')) return undefined;
  let text = s;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) >= 0) {
    const v4 = parseIpv4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail = [v4 >>> 16, v4 & 0xffff];
    text = text.slice(0, lastColon + 1) + (text[lastColon - 1] === ':' ? '' : '0');
    if (text.endsWith(':0')) text = text.slice(0, -2);
    else if (text.endsWith('::')) { /* keep */ } else if (text.endsWith(':')) text = text.slice(0, -1);
  }
  const dbl = text.split('::');
  if (dbl.length > 2) return undefined;
  const parseGroups = (t: string): number[] | undefined => {
    if (t === '') return [];
    const out: number[] = [];
    for (const g of t.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(dbl[0]);
  const rest = dbl.length === 2 ? parseGroups(dbl[1]) : [];
  if (!head || !rest) return undefined;
  const right = rest.concat(tail);
  let groups: number[];
  if (dbl.length === 2) {
    const fill = 8 - head.length - right.length;
    if (fill < 1) return undefined;
    groups = head.concat(new Array<number>(fill).fill(0), right);
  } else {
    groups = head.concat(right);
  }
  if (groups.length !== 8) return undefined;
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  return v;
}

/** Formats a 128-bit address like inet_ntop (longest run of >= 2 zero groups becomes ::). */
export function formatIpv6(v: bigint): string {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  if (bestLen < 2) bestStart = -1;
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible addresses print their tail dotted.
  if (bestStart === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff))) {
    const v4 = Number(v & 0xffffffffn);
    return (bestLen === 5 ? '::ffff:' : '::') + formatIpv4(v4);
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

// ---------------------------------------------------------------------------------------------
// Parsing match fields

const CT_STATE_BITS: readonly (readonly [string, number])[] = [
  ['new', 0x01], ['est', 0x02], ['rel', 0x04], ['rpl', 0x08], ['inv', 0x10], ['trk', 0x20],
  ['snat', 0x40], ['dnat', 0x80],
];
const TCP_FLAG_BITS: readonly (readonly [string, number])[] = [
  ['fin', 0x001], ['syn', 0x002], ['rst', 0x004], ['psh', 0x008], ['ack', 0x010], ['urg', 0x020],
  ['ece', 0x040], ['cwr', 0x080], ['ns', 0x100], ['[200]', 0x200], ['[400]', 0x400], ['[800]', 0x800],
];

/** Shorthands that set dl_type and maybe nw_proto. */
const SHORTHANDS: Readonly<Record<string, readonly [number, number]>> = {
  ip: [ETH_TYPE_IP, -1], ipv6: [ETH_TYPE_IPV6, -1], arp: [ETH_TYPE_ARP, -1], rarp: [ETH_TYPE_RARP, -1],
  icmp: [ETH_TYPE_IP, IPPROTO_ICMP], tcp: [ETH_TYPE_IP, IPPROTO_TCP], udp: [ETH_TYPE_IP, IPPROTO_UDP],
  sctp: [ETH_TYPE_IP, IPPROTO_SCTP], icmp6: [ETH_TYPE_IPV6, IPPROTO_ICMPV6],
  tcp6: [ETH_TYPE_IPV6, IPPROTO_TCP], udp6: [ETH_TYPE_IPV6, IPPROTO_UDP],
  sctp6: [ETH_TYPE_IPV6, IPPROTO_SCTP],
};

const RESERVED_PORTS: Readonly<Record<string, number>> = {
  IN_PORT: OFPP_IN_PORT, TABLE: OFPP_TABLE, NORMAL: OFPP_NORMAL, FLOOD: OFPP_FLOOD, ALL: OFPP_ALL,
  CONTROLLER: OFPP_CONTROLLER, LOCAL: OFPP_LOCAL, NONE: OFPP_NONE, ANY: OFPP_NONE,
};

/** A reserved port's number from its name (any case), or undefined. */
export function reservedPort(name: string): number | undefined {
  return RESERVED_PORTS[name.toUpperCase()];
}

/**
 * A port as written in flow text: a number, a reserved name (LOCAL, IN_PORT...), or a port
 * name through the context's resolver. Throws a FlowSyntaxError naming `what` otherwise.
 */
export function parsePort(s: string, ctx: SyntaxCtx, col0: number, what: string): number {
  if (s.startsWith('"')) {
    // A quoted port is a name (OVS 2.8+ prints names so when they hold anything but letters and digits).
    const name = unquotePortName(s);
    if (name === undefined) throw syntaxError(ctx, col0, what, `${s}: unterminated quoted port name`);
    const q = ctx.resolvePort?.(name);
    if (q !== undefined) return q;
    throw syntaxError(ctx, col0, what, `unknown port "${name}" (expected a port number or name)`);
  }
  const n = parseUint(s);
  if (n !== undefined) {
    if (n > 0xffffn) throw syntaxError(ctx, col0, what, `port ${s} out of range (expected 0..65535)`);
    return Number(n);
  }
  const r = reservedPort(s);
  if (r !== undefined) return r;
  const named = ctx.resolvePort?.(s);
  if (named !== undefined) return named;
  throw syntaxError(ctx, col0, what, `unknown port "${s}" (expected a port number or name)`);
}

/** A `"quoted"` port name without its quotes and escapes (JSON string rules), or undefined. */
export function unquotePortName(s: string): string | undefined {
  if (s.length < 2 || !s.startsWith('"') || !s.endsWith('"')) return undefined;
  try {
    const v: unknown = JSON.parse(s);
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A port name as OVS prints it (ofputil_format_port with a port map): bare when it is letters
 * and digits starting with a letter and is no reserved name, else in double quotes.
 */
export function formatPortName(name: string): string {
  if (/^[A-Za-z][A-Za-z0-9]*$/.test(name) && reservedPort(name) === undefined) return name;
  return JSON.stringify(name);
}

/** How OVS prints a port number (ofputil_format_port); names, quoted as OVS, when `namer` knows one. */
export function formatPort(port: number, namer?: PortNamer): string {
  for (const [name, num] of Object.entries(RESERVED_PORTS)) {
    if (num === port && name !== 'ANY') return name;
  }
  const n = namer?.(port);
  return n !== undefined ? formatPortName(n) : String(port);
}

function parseFlags(text: string, names: readonly (readonly [string, number])[], maxMask: number,
                    ctx: SyntaxCtx, col0: number, field: string): [bigint, bigint] {
  const num = /^([^/]+)(?:\/(.+))?$/.exec(text);
  if (num) {
    const v = parseUint(num[1]);
    if (v !== undefined) {
      const m = num[2] !== undefined ? parseUint(num[2]) : BigInt(maxMask);
      if (m === undefined) throw syntaxError(ctx, col0, field, `bad mask "${num[2]}" (expected an integer)`);
      return [v & m, m];
    }
  }
  const lookup = (name: string, at: number): number => {
    for (const [n, b] of names) if (n === name) return b;
    throw syntaxError(ctx, col0 + at, field, `unknown flag "${name}" (expected one of ${names.map((x) => x[0]).filter((x) => !x.startsWith('[')).join(', ')})`);
  };
  if (text.startsWith('+') || text.startsWith('-')) {
    let v = 0;
    let m = 0;
    const re = /([+-])([a-z0-9[\]]+)/g;
    let pos = 0;
    let r: RegExpExecArray | null;
    while ((r = re.exec(text)) !== null) {
      if (r.index !== pos) break;
      const b = lookup(r[2], r.index + 1);
      m |= b;
      if (r[1] === '+') v |= b; else v &= ~b;
      pos = re.lastIndex;
    }
    if (pos !== text.length) throw syntaxError(ctx, col0 + pos, field, 'expected "+flag" or "-flag"');
    return [BigInt(v), BigInt(m)];
  }
  let v = 0;
  let at = 0;
  for (const part of text.split('|')) {
    v |= lookup(part, at);
    at += part.length + 1;
  }
  return [BigInt(v), BigInt(maxMask)];
}

/** value/mask of a generic field from text, by the field's format. */
function parseFieldValue(f: FieldDef, text: string, ctx: SyntaxCtx, col0: number, fieldName: string):
    [bigint, bigint] {
  const slash = text.indexOf('/');
  const vs = slash >= 0 ? text.slice(0, slash) : text;
  const ms = slash >= 0 ? text.slice(slash + 1) : undefined;
  const full = fieldFullMask(f);
  const bad = (what: string): FlowSyntaxError => syntaxError(ctx, col0, fieldName, `"${text}": expected ${what}`);
  if (ms !== undefined && !f.maskable) {
    throw syntaxError(ctx, col0 + slash, fieldName, `${text}: invalid mask for field ${fieldName} (field is not maskable)`);
  }
  switch (f.format) {
    case 'mac': {
      const v = parseMac(vs);
      if (v === undefined) throw bad('a MAC address xx:xx:xx:xx:xx:xx');
      let m = full;
      if (ms !== undefined) {
        const mm = parseMac(ms);
        if (mm === undefined) throw syntaxError(ctx, col0 + slash + 1, fieldName, `bad mask "${ms}" (expected a MAC mask xx:xx:xx:xx:xx:xx)`);
        m = BigInt(mm);
      }
      return [BigInt(v) & m, m];
    }
    case 'ipv4': {
      const v = parseIpv4(vs);
      if (v === undefined) throw bad('an IPv4 address a.b.c.d[/len|/mask]');
      let m = full;
      if (ms !== undefined) {
        if (/^\d+$/.test(ms)) {
          const n = Number(ms);
          if (n > 32) throw syntaxError(ctx, col0 + slash + 1, fieldName, `prefix length ${ms} out of range (expected 0..32)`);
          m = prefixMask(n, 32);
        } else {
          const mm = parseIpv4(ms);
          if (mm === undefined) throw syntaxError(ctx, col0 + slash + 1, fieldName, `bad mask "${ms}" (expected a prefix length or a.b.c.d)`);
          m = BigInt(mm);
        }
      }
      return [BigInt(v) & m, m];
    }
    case 'ipv6': {
      const v = parseIpv6(vs);
      if (v === undefined) throw bad('an IPv6 address[/len|/mask]');
      let m = full;
      if (ms !== undefined) {
        if (/^\d+$/.test(ms)) {
          const n = Number(ms);
          if (n > 128) throw syntaxError(ctx, col0 + slash + 1, fieldName, `prefix length ${ms} out of range (expected 0..128)`);
          m = prefixMask(n, 128);
        } else {
          const mm = parseIpv6(ms);
          if (mm === undefined) throw syntaxError(ctx, col0 + slash + 1, fieldName, `bad mask "${ms}" (expected a prefix length or an IPv6 mask)`);
          m = mm;
        }
      }
      return [v & m, m];
    }
    case 'port':
      return [BigInt(parsePort(text, ctx, col0, fieldName)), full];
    case 'tcp_flags':
      return parseFlags(text, TCP_FLAG_BITS, 0x0fff, ctx, col0, fieldName);
    case 'ct_state':
      return parseFlags(text, CT_STATE_BITS, 0xff, ctx, col0, fieldName);
    case 'frag': {
      const frag: Record<string, [number, number]> = {
        no: [0, NW_FRAG_ANY], yes: [NW_FRAG_ANY, NW_FRAG_ANY], first: [NW_FRAG_ANY, NW_FRAG_ANY | NW_FRAG_LATER],
        later: [NW_FRAG_ANY | NW_FRAG_LATER, NW_FRAG_ANY | NW_FRAG_LATER],
        not_later: [0, NW_FRAG_LATER],
      };
      const r = frag[text];
      if (!r) throw bad('one of no, yes, first, later, not_later');
      return [BigInt(r[0]), BigInt(r[1])];
    }
    default: {
      const v = parseUint(vs);
      if (v === undefined) throw bad(`an integer (decimal or 0x hex)${f.maskable ? '[/mask]' : ''}`);
      if (v > full && !(f.name === 'arp_op' && v <= 0xffffn)) {
        throw syntaxError(ctx, col0, fieldName, `value ${vs} too large for ${f.keyBits}-bit field ${fieldName}`);
      }
      let m = full;
      if (ms !== undefined) {
        const mm = parseUint(ms);
        if (mm === undefined) throw syntaxError(ctx, col0 + slash + 1, fieldName, `bad mask "${ms}" (expected an integer)`);
        m = mm & full;
      }
      return [v & m, m];
    }
  }
}

function setWord(m: MutableMatch, w: number, shift: number, bits: number, v: number, mask: number): void {
  const fm = ((bits >= 32 ? 0xffffffff : (1 << bits) - 1) << shift) >>> 0;
  m.mask[w] = ((m.mask[w] & ~fm) | ((mask << shift) & fm)) >>> 0;
  m.value[w] = ((m.value[w] & ~fm) | ((v & mask) << shift & fm)) >>> 0;
}

function getWord(a: Uint32Array, w: number, shift: number, bits: number): number {
  return (a[w] >>> shift) & (bits >= 32 ? 0xffffffff : (1 << bits) - 1);
}

/**
 * Applies one match item (`key`, `value` as split by nextKeyValue) to `m`. Returns false when
 * `key` is not a match field (the caller may know it: table, priority, actions...). Throws a
 * FlowSyntaxError for a known field with a bad value.
 */
export function parseMatchItem(m: MutableMatch, kv: KeyValue, ctx: SyntaxCtx): boolean {
  const { key, value } = kv;
  const sh = SHORTHANDS[key];
  if (sh) {
    if (kv.sep !== '' && value !== '') throw syntaxError(ctx, kv.valueCol, key, `"${key}" takes no value`);
    setWord(m, W_VLAN_DLTYPE, 0, 16, sh[0], 0xffff);
    if (sh[1] >= 0) setWord(m, W_NW_MISC, 24, 8, sh[1], 0xff);
    return true;
  }
  const needValue = (): void => {
    if (kv.sep === '' || value === '') throw syntaxError(ctx, kv.keyCol, key, `missing value (expected ${key}=VALUE)`);
  };
  const uint = (max: number): number => {
    needValue();
    const v = parseUint(value);
    if (v === undefined) throw syntaxError(ctx, kv.valueCol, key, `"${value}": expected an integer (decimal or 0x hex)`);
    if (v > BigInt(max)) throw syntaxError(ctx, kv.valueCol, key, `value ${value} out of range (expected 0..${max})`);
    return Number(v);
  };
  switch (key) {
    case 'dl_vlan': {
      const vid = uint(0xffff);
      if (vid === 0xffff) { setWord(m, W_VLAN_DLTYPE, 16, 16, 0, 0xffff); return true; }
      if (vid > 0xfff) throw syntaxError(ctx, kv.valueCol, key, `value ${value} out of range (expected 0..4095 or 0xffff)`);
      setWord(m, W_VLAN_DLTYPE, 16, 13, VLAN_CFI | vid, 0x1fff);
      return true;
    }
    case 'dl_vlan_pcp': case 'vlan_pcp': {
      const pcp = uint(7);
      setWord(m, W_VLAN_DLTYPE, 16 + 12, 1, 1, 1);
      setWord(m, W_VLAN_DLTYPE, 29, 3, pcp, 7);
      return true;
    }
    case 'vlan_vid': {
      needValue();
      const slash = value.indexOf('/');
      const v = parseUint(slash >= 0 ? value.slice(0, slash) : value);
      const mk = slash >= 0 ? parseUint(value.slice(slash + 1)) : 0x1fffn;
      if (v === undefined || mk === undefined || v > 0x1fffn) {
        throw syntaxError(ctx, kv.valueCol, key, `"${value}": expected an integer 0..0x1fff[/mask] (0x1000 = tag present)`);
      }
      const vv = Number(v);
      const mm = Number(mk) & 0x1fff;
      // OXM's vlan_vid=VID without OFPVID_PRESENT and an exact mask means "no tag" (OVS does so).
      if (mm === 0x1fff && (vv & VLAN_CFI) === 0) setWord(m, W_VLAN_DLTYPE, 16, 16, 0, 0xffff);
      else setWord(m, W_VLAN_DLTYPE, 16, 13, vv, mm);
      return true;
    }
    case 'nw_tos': {
      const tos = uint(255);
      setWord(m, W_NW_MISC, 18, 6, tos >>> 2, 0x3f);
      return true;
    }
    case 'ip_dscp': {
      const d = uint(63);
      setWord(m, W_NW_MISC, 18, 6, d, 0x3f);
      return true;
    }
    case 'nw_ecn': case 'ip_ecn': {
      const e = uint(3);
      setWord(m, W_NW_MISC, 16, 2, e, 3);
      return true;
    }
    case 'icmp_type': case 'icmpv4_type': case 'icmpv6_type':
    case 'icmp_code': case 'icmpv4_code': case 'icmpv6_code':
      // OVS keeps ICMP type/code in the 16-bit tp_src/tp_dst and matches all 16 bits.
      setWord(m, W_TP, key.endsWith('type') ? 16 : 0, 16, uint(255), 0xffff);
      return true;
    case 'tp_src': case 'tp_dst': case 'tcp_src': case 'tcp_dst': case 'udp_src': case 'udp_dst':
    case 'sctp_src': case 'sctp_dst': {
      needValue();
      const f = fieldByName(key) as FieldDef;
      const [v, mk] = parseFieldValue(f, value, ctx, kv.valueCol, key);
      setMatchField(f, m.value, m.mask, v, mk);
      return true;
    }
    default:
      break;
  }
  const f = fieldByName(key);
  if (!f || key === 'in_port_oxm' || f.name === 'vlan_vid') return false;
  needValue();
  const [v, mk] = parseFieldValue(f, value, ctx, kv.valueCol, key);
  if (f.name === 'ct_zone' && value.includes('/')) {
    throw syntaxError(ctx, kv.valueCol, key, `${value}: invalid mask for field ct_zone`);
  }
  setMatchField(f, m.value, m.mask, v, mk);
  return true;
}

/**
 * Drops the fields whose prerequisites the match lacks, as ovs-ofctl does while normalising
 * (OVS's ofputil_normalize_match): L3 addresses need ip or arp, IPv6 addresses need ipv6, L4 ports
 * need tcp/udp/sctp/icmp(v6), ARP hardware addresses need arp, nw_tos/ttl need ip or ipv6.
 * flowd also drops tcp_flags unless the flow is TCP (OVS keeps an invisible mask there).
 */
export function normalizeMatch(m: MutableMatch): void {
  const typeKnown = getWord(m.mask, W_VLAN_DLTYPE, 0, 16) === 0xffff;
  const dlType = typeKnown ? getWord(m.value, W_VLAN_DLTYPE, 0, 16) : -1;
  const protoKnown = getWord(m.mask, W_NW_MISC, 24, 8) === 0xff;
  const proto = getWord(m.value, W_NW_MISC, 24, 8);
  const isIp = dlType === ETH_TYPE_IP;
  const isIp6 = dlType === ETH_TYPE_IPV6;
  const isArp = dlType === ETH_TYPE_ARP || dlType === ETH_TYPE_RARP;
  const mayNwAddr = isIp || isArp;
  const mayProto = isIp || isIp6 || isArp;
  const mayIpVx = isIp || isIp6;
  const mayTp = (isIp && [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_ICMP].includes(proto))
    || (isIp6 && [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_ICMPV6].includes(proto));
  const clear = (name: string): void => {
    const f = fieldByName(name) as FieldDef;
    clearMatchField(f, m.value, m.mask);
  };
  if (!mayNwAddr) { clear('nw_src'); clear('nw_dst'); }
  if (!mayTp) { clear('tp_src'); clear('tp_dst'); }
  if (!mayProto) clear('nw_proto');
  if (!mayIpVx) { setWord(m, W_NW_MISC, 16, 8, 0, 0); clear('nw_ttl'); }
  // ND fields need icmp6 with icmp_type 135 (sll) or 136 (tll) matched exactly (OVS's MFP_ND*).
  // The type's own 8 bits decide (OpenFlow's ICMPV6_TYPE field has 8; text matching sets 16).
  const icmpType = getWord(m.mask, W_TP, 16, 8) === 0xff ? getWord(m.value, W_TP, 16, 16) : -1;
  const nd6 = isIp6 && protoKnown && proto === IPPROTO_ICMPV6;
  const ndNs = nd6 && icmpType === 135, ndNa = nd6 && icmpType === 136;
  if (!isArp && !ndNs) clear('arp_sha');
  if (!isArp && !ndNa) clear('arp_tha');
  if (!ndNs && !ndNa) clear('nd_target');
  if (!isIp6) { clear('ipv6_src'); clear('ipv6_dst'); clear('ipv6_label'); }
  if (!(mayIpVx && protoKnown && proto === IPPROTO_TCP)) clear('tcp_flags');
}

// ---------------------------------------------------------------------------------------------
// Printing

function hexU(v: bigint): string {
  return v === 0n ? '0' : `0x${v.toString(16)}`;
}

function fmtUintMasked(out: string[], name: string, v: bigint, m: bigint, full: bigint): void {
  if (m === 0n) return;
  out.push(m === full ? `${name}=${hexU(v)}` : `${name}=${hexU(v)}/${hexU(m)}`);
}

function fmtU16Masked(out: string[], name: string, v: number, m: number): void {
  if (m === 0) return;
  out.push(m === 0xffff ? `${name}=${v}` : `${name}=0x${v.toString(16)}/0x${m.toString(16)}`);
}

function fmtIpMasked(out: string[], name: string, v: number, m: number): void {
  if (m === 0) return;
  if (m === 0xffffffff) { out.push(`${name}=${formatIpv4(v)}`); return; }
  const p = prefixLen(BigInt(m), 32);
  out.push(p >= 0 ? `${name}=${formatIpv4(v)}/${p}` : `${name}=${formatIpv4(v)}/${formatIpv4(m)}`);
}

function fmtIpv6Masked(out: string[], name: string, v: bigint, m: bigint): void {
  if (m === 0n) return;
  const p = prefixLen(m, 128);
  if (p === 128) out.push(`${name}=${formatIpv6(v)}`);
  else if (p >= 0) out.push(`${name}=${formatIpv6(v)}/${p}`);
  else out.push(`${name}=${formatIpv6(v)}/${formatIpv6(m)}`);
}

function fmtMacMasked(out: string[], name: string, v: bigint, m: bigint): void {
  if (m === 0n) return;
  out.push(m === 0xffffffffffffn ? `${name}=${formatMac(v)}` : `${name}=${formatMac(v)}/${formatMac(m)}`);
}

function fmtFlags(names: readonly (readonly [string, number])[], v: number): string {
  if (v === 0) return '0';
  const parts: string[] = [];
  for (const [n, b] of names) if (v & b) parts.push(n);
  return parts.join('|');
}

function fmtFlagsMasked(names: readonly (readonly [string, number])[], v: number, m: number, max: number): string {
  if (m === max) return fmtFlags(names, v);
  if (m === 0) return '0/0';
  let s = '';
  for (const [n, b] of names) if (m & b) s += `${v & b ? '+' : '-'}${n}`;
  return s;
}

function fv(name: string, a: Uint32Array): bigint {
  return readField(fieldByName(name) as FieldDef, a, 0);
}

/**
 * Prints a match as ovs-ofctl does (OVS's match_format), with `priority=N,` first unless it is
 * the default 32768. Ports print as numbers unless `namer` names them. No trailing comma.
 */
export interface FormatMatchOptions {
  /**
   * Print the tunnel as OVS's flow_format does for a packet (trace "Flow:" lines): the whole
   * tunnel block when tun_src or tun_dst is set, and no tun_id.
   */
  readonly flowTunnel?: boolean;
}

const FLOW_TUNNEL_TAIL = 'tun_ipv6_src=::,tun_ipv6_dst=::,tun_gbp_id=0,tun_gbp_flags=0,tun_tos=0,tun_ttl=0,'
  + 'tun_erspan_ver=0,gtpu_flags=0,gtpu_msgtype=0,tun_flags=0';

export function formatMatch(m: Match, priority: number, namer?: PortNamer, opts: FormatMatchOptions = {}): string {
  const out: string[] = [];
  const V = m.value;
  const M = m.mask;
  if (priority !== DEFAULT_PRIORITY) out.push(`priority=${priority}`);
  fmtUintMasked(out, 'recirc_id', fv('recirc_id', V), fv('recirc_id', M), 0xffffffffn);
  if (fv('conj_id', M)) out.push(`conj_id=${fv('conj_id', V)}`);
  const ctsM = Number(fv('ct_state', M));
  if (ctsM) out.push(`ct_state=${fmtFlagsMasked(CT_STATE_BITS, Number(fv('ct_state', V)), ctsM, 0xff)}`);
  fmtU16Masked(out, 'ct_zone', Number(fv('ct_zone', V)), Number(fv('ct_zone', M)));
  fmtUintMasked(out, 'ct_mark', fv('ct_mark', V), fv('ct_mark', M), 0xffffffffn);

  const typeMask = getWord(M, W_VLAN_DLTYPE, 0, 16);
  const dlType = getWord(V, W_VLAN_DLTYPE, 0, 16);
  const protoMask = getWord(M, W_NW_MISC, 24, 8);
  const proto = getWord(V, W_NW_MISC, 24, 8);
  let skipType = false;
  let skipProto = false;
  if (typeMask) {
    skipType = true;
    if (dlType === ETH_TYPE_IP || dlType === ETH_TYPE_IPV6) {
      const v6 = dlType === ETH_TYPE_IPV6;
      let name = v6 ? 'ipv6' : 'ip';
      if (protoMask) {
        skipProto = true;
        if (!v6 && proto === IPPROTO_ICMP) name = 'icmp';
        else if (v6 && proto === IPPROTO_ICMPV6) name = 'icmp6';
        else if (proto === IPPROTO_TCP) name = v6 ? 'tcp6' : 'tcp';
        else if (proto === IPPROTO_UDP) name = v6 ? 'udp6' : 'udp';
        else if (proto === IPPROTO_SCTP) name = v6 ? 'sctp6' : 'sctp';
        else skipProto = false;
      }
      out.push(name);
    } else if (dlType === ETH_TYPE_ARP) out.push('arp');
    else if (dlType === ETH_TYPE_RARP) out.push('rarp');
    else skipType = false;
  }
  for (let i = 0; i < 16; i++) {
    fmtUintMasked(out, `reg${i}`, fv(`reg${i}`, V), fv(`reg${i}`, M), 0xffffffffn);
  }
  if (opts.flowTunnel === true) {
    const ts = Number(fv('tun_src', V) & fv('tun_src', M)), td = Number(fv('tun_dst', V) & fv('tun_dst', M));
    if (ts !== 0 || td !== 0) out.push(`tun_src=${formatIpv4(ts)},tun_dst=${formatIpv4(td)},${FLOW_TUNNEL_TAIL}`);
    // Without a tunnel (a set_tunnel on the way to a tunnel port), OVS's packet wildcards keep
    // a non-zero tun_id alone (flow_wildcards_init_for_packet).
    else fmtUintMasked(out, 'tun_id', fv('tun_id', V), fv('tun_id', M), 0xffffffffffffffffn);
  } else {
    fmtUintMasked(out, 'tun_id', fv('tun_id', V), fv('tun_id', M), 0xffffffffffffffffn);
    fmtIpMasked(out, 'tun_src', Number(fv('tun_src', V)), Number(fv('tun_src', M)));
    fmtIpMasked(out, 'tun_dst', Number(fv('tun_dst', V)), Number(fv('tun_dst', M)));
  }
  fmtUintMasked(out, 'metadata', fv('metadata', V), fv('metadata', M), 0xffffffffffffffffn);
  if (fv('in_port', M)) out.push(`in_port=${formatPort(Number(fv('in_port', V)), namer)}`);

  const tciM = getWord(M, W_VLAN_DLTYPE, 16, 16);
  const tci = getWord(V, W_VLAN_DLTYPE, 16, 16);
  if (tciM) {
    const vidM = tciM & 0x0fff;
    const pcpM = tciM & 0xe000;
    if ((tciM & VLAN_CFI) && (tci & VLAN_CFI) && (!vidM || vidM === 0x0fff) && (!pcpM || pcpM === 0xe000)
        && (vidM || pcpM)) {
      if (vidM) out.push(`dl_vlan=${tci & 0x0fff}`);
      if (pcpM) out.push(`dl_vlan_pcp=${tci >>> 13}`);
    } else if (tciM === 0xffff) {
      out.push(`vlan_tci=0x${tci.toString(16).padStart(4, '0')}`);
    } else {
      out.push(`vlan_tci=0x${tci.toString(16).padStart(4, '0')}/0x${tciM.toString(16).padStart(4, '0')}`);
    }
  }
  fmtMacMasked(out, 'dl_src', fv('dl_src', V), fv('dl_src', M));
  fmtMacMasked(out, 'dl_dst', fv('dl_dst', V), fv('dl_dst', M));
  if (!skipType && typeMask) out.push(`dl_type=0x${dlType.toString(16).padStart(4, '0')}`);
  const isArp = dlType === ETH_TYPE_ARP || dlType === ETH_TYPE_RARP;
  if (dlType === ETH_TYPE_IPV6) {
    fmtIpv6Masked(out, 'ipv6_src', fv('ipv6_src', V), fv('ipv6_src', M));
    fmtIpv6Masked(out, 'ipv6_dst', fv('ipv6_dst', V), fv('ipv6_dst', M));
    const lm = fv('ipv6_label', M);
    if (lm !== 0n) {
      const lv = `ipv6_label=0x${fv('ipv6_label', V).toString(16).padStart(5, '0')}`;
      out.push(lm === 0xfffffn ? lv : `${lv}/0x${lm.toString(16).padStart(5, '0')}`);
    }
  } else {
    const n = isArp ? ['arp_spa', 'arp_tpa'] : ['nw_src', 'nw_dst'];
    fmtIpMasked(out, n[0], V[W_NW_SRC], M[W_NW_SRC]);
    fmtIpMasked(out, n[1], V[W_NW_DST], M[W_NW_DST]);
  }
  if (!skipProto && protoMask) out.push(`${isArp ? 'arp_op' : 'nw_proto'}=${proto}`);
  if (isArp) {
    fmtMacMasked(out, 'arp_sha', fv('arp_sha', V), fv('arp_sha', M));
    fmtMacMasked(out, 'arp_tha', fv('arp_tha', V), fv('arp_tha', M));
  }
  const tosM = getWord(M, W_NW_MISC, 16, 8);
  const tos = getWord(V, W_NW_MISC, 16, 8);
  if (tosM & 0xfc) out.push(`nw_tos=${tos & 0xfc}`);
  if (tosM & 0x03) out.push(`nw_ecn=${tos & 0x03}`);
  if (getWord(M, W_NW_MISC, 8, 8)) out.push(`nw_ttl=${getWord(V, W_NW_MISC, 8, 8)}`);
  const fragM = getWord(M, W_NW_MISC, 0, 8) & 3;
  const frag = getWord(V, W_NW_MISC, 0, 8);
  if (fragM === 3) {
    out.push(`nw_frag=${frag & NW_FRAG_ANY ? (frag & NW_FRAG_LATER ? 'later' : 'first') : (frag & NW_FRAG_LATER ? '<error>' : 'no')}`);
  } else if (fragM === NW_FRAG_ANY) {
    out.push(`nw_frag=${frag & NW_FRAG_ANY ? 'yes' : 'no'}`);
  } else if (fragM === NW_FRAG_LATER) {
    out.push(`nw_frag=${frag & NW_FRAG_LATER ? 'later' : 'not_later'}`);
  }
  const icmp = (dlType === ETH_TYPE_IP && proto === IPPROTO_ICMP)
    || (dlType === ETH_TYPE_IPV6 && proto === IPPROTO_ICMPV6);
  fmtU16Masked(out, icmp ? 'icmp_type' : 'tp_src', getWord(V, W_TP, 16, 16), getWord(M, W_TP, 16, 16));
  fmtU16Masked(out, icmp ? 'icmp_code' : 'tp_dst', getWord(V, W_TP, 0, 16), getWord(M, W_TP, 0, 16));
  if (dlType === ETH_TYPE_IPV6 && proto === IPPROTO_ICMPV6) {
    fmtIpv6Masked(out, 'nd_target', fv('nd_target', V), fv('nd_target', M));
    fmtMacMasked(out, 'nd_sll', fv('nd_sll', V), fv('nd_sll', M));
    fmtMacMasked(out, 'nd_tll', fv('nd_tll', V), fv('nd_tll', M));
  }
  const tfM = M[W_TCP_FLAGS] & 0x0fff;
  if ((dlType === ETH_TYPE_IP || dlType === ETH_TYPE_IPV6) && proto === IPPROTO_TCP && tfM) {
    out.push(`tcp_flags=${fmtFlagsMasked(TCP_FLAG_BITS, V[W_TCP_FLAGS] & 0x0fff, tfM, 0x0fff)}`);
  }
  return out.join(',');
}

/**
 * Formats one field value as OVS's mf_format does (used by learn's `field=value` specs):
 * MACs and IPs in their notation, ports by name, decimal fields in decimal, others in hex.
 */
export function formatFieldValue(f: FieldDef, v: bigint, namer?: PortNamer): string {
  switch (f.format) {
    case 'mac': return formatMac(v);
    case 'ipv4': return formatIpv4(Number(v));
    case 'ipv6': return formatIpv6(v);
    case 'port': return formatPort(Number(v), namer);
    case 'decimal': return v.toString();
    case 'tcp_flags': return fmtFlags(TCP_FLAG_BITS, Number(v));
    case 'ct_state': return fmtFlags(CT_STATE_BITS, Number(v));
    default: return hexU(v);
  }
}

/** Parses one field value (no mask) as set_field and learn write it. */
export function parseFieldImmediate(f: FieldDef, text: string, ctx: SyntaxCtx, col0: number): [bigint, bigint] {
  return parseFieldValue(f, text, ctx, col0, f.name);
}

/** True for every field name a match accepts (used by learn to tell specs apart). */
export function isMatchFieldName(name: string): boolean {
  return name in SHORTHANDS || ['dl_vlan', 'dl_vlan_pcp', 'vlan_pcp', 'vlan_vid', 'nw_tos', 'ip_dscp', 'nw_ecn', 'ip_ecn'].includes(name)
    || FIELDS.some((f) => f.name === name || f.aliases.includes(name));
}

/** The flow's dl_type if exactly matched, else -1. */
export function matchDlType(m: Match): number {
  return getWord(m.mask, W_VLAN_DLTYPE, 0, 16) === 0xffff ? getWord(m.value, W_VLAN_DLTYPE, 0, 16) : -1;
}

/** The flow's nw_proto if exactly matched, else -1. */
export function matchNwProto(m: Match): number {
  return getWord(m.mask, W_NW_MISC, 24, 8) === 0xff ? getWord(m.value, W_NW_MISC, 24, 8) : -1;
}

/**
 * Does the match guarantee the field's prerequisites (OVS's mf_are_prereqs_ok against a match)?
 * set_field/load/move and ct need this of the rule's match, or the flow is refused.
 */
export function fieldPrereqsOk(f: FieldDef, m: Match): boolean {
  const t = matchDlType(m);
  const p = matchNwProto(m);
  const ip = t === ETH_TYPE_IP;
  const ip6 = t === ETH_TYPE_IPV6;
  switch (f.prereq) {
    case 'none': return true;
    case 'vlan': return (getWord(m.mask, W_VLAN_DLTYPE, 16, 16) & VLAN_CFI) !== 0
      && (getWord(m.value, W_VLAN_DLTYPE, 16, 16) & VLAN_CFI) !== 0;
    case 'ip': return ip;
    case 'ipv6': return ip6;
    case 'ip_any': return ip || ip6;
    case 'arp': return t === ETH_TYPE_ARP || t === ETH_TYPE_RARP;
    case 'tcp': case 'tcp_any': return (ip || ip6) && p === IPPROTO_TCP;
    case 'udp': return (ip || ip6) && p === IPPROTO_UDP;
    case 'sctp': return (ip || ip6) && p === IPPROTO_SCTP;
    case 'icmp': return ip && p === IPPROTO_ICMP;
    case 'icmpv6': return ip6 && p === IPPROTO_ICMPV6;
    case 'nd': case 'nd_ns': case 'nd_na': {
      if (!(ip6 && p === IPPROTO_ICMPV6) || getWord(m.mask, W_TP, 16, 8) !== 0xff) return false;
      const ty = getWord(m.value, W_TP, 16, 16);
      return f.prereq === 'nd' ? ty === 135 || ty === 136 : ty === (f.prereq === 'nd_ns' ? 135 : 136);
    }
    default: return false;
  }
}
