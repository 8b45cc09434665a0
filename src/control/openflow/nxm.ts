/**
 * NXM (Nicira extended match, OpenFlow 1.0) and OXM (OpenFlow 1.2+) match codec: a list of
 * TLVs `header(4) value [mask]` <-> a flowd Match (ofproto/types.ts) over the flow-key layout.
 *
 * Who calls: of10.ts (NXT_FLOW_MOD, NXST_FLOW), of13.ts (OFPT_FLOW_MOD, multipart flow stats),
 * action-codec.ts (the field headers of load/move/learn/ct), async-msgs.ts (the NXM and OXM
 * matches of packet-ins and flow-removeds), tests.
 *
 * Header (nicira-ext.h, OpenFlow 1.3 s7.2.3.2): class(16) field(7) hasmask(1) length(8);
 * `length` counts value and mask bytes. Classes: 0x0000 NXM_OF, 0x0001 NXM_NX, 0x8000
 * OXM_OF_BASIC. A field appears once; its prerequisites (eth_type, ip_proto) must be matched
 * too; a value has no 1-bits where the mask has 0-bits. Decoding checks all of this and throws
 * OfError with Open vSwitch's codes (NXBRC_NXM_*), so the client learns what was wrong.
 *
 * Fields that share bits of the flow key (ARP spa and IPv4 src; tcp/udp/icmp ports and
 * types) are told apart on encode by the match's eth_type and ip_proto, as the wire demands.
 * The NXM_NX_COOKIE pseudo-field (cookie selection of mod/del) is returned beside the match.
 */
import {
  FieldDef, fieldByName, fieldFullMask, readField, setMatchField,
} from '../../ofproto/fields';
import type { Match } from '../../ofproto/types';
import {
  newMatch, fieldPrereqsOk, matchDlType, matchNwProto, MutableMatch, ETH_TYPE_IP, ETH_TYPE_IPV6, ETH_TYPE_ARP,
  ETH_TYPE_RARP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP,
} from '../../ofproto/match-syntax';
import {
  OfError, Writer, readUintN, OFPET_BAD_REQUEST, NXBRC_NXM_INVALID, NXBRC_NXM_BAD_TYPE,
  NXBRC_NXM_BAD_MASK, NXBRC_NXM_BAD_PREREQ, NXBRC_NXM_DUP_TYPE, NXBRC_NXM_BAD_VALUE,
} from './wire';

export const NXM_OF = 0x0000;
export const NXM_NX = 0x0001;
export const OXM_OF = 0x8000;

/** How a wire value maps onto key bits beyond a plain copy. */
type Conv = 'none' | 'tos' | 'port32';

/** One field as it travels on the wire. */
export interface WireField {
  readonly cls: number;
  readonly field: number;
  /** Value bytes on the wire (mask, when present, has as many). */
  readonly bytes: number;
  /** The flowd field it fills; null for NXM_NX_COOKIE. */
  readonly def: FieldDef | null;
  readonly maskable: boolean;
  readonly conv: Conv;
  /** The name Open vSwitch gives the header (NXM_OF_ETH_SRC...). */
  readonly name: string;
}

function fd(name: string): FieldDef {
  const f = fieldByName(name);
  if (f === undefined) throw new Error(`nxm.ts: no field ${name}`);
  return f;
}

function wf(cls: number, field: number, bytes: number, def: string | null, name: string,
            maskable = true, conv: Conv = 'none'): WireField {
  return { cls, field, bytes, def: def === null ? null : fd(def), maskable, conv, name };
}

/** Every header flowd decodes, NXM and OXM. */
const ALL: readonly WireField[] = (() => {
  const t: WireField[] = [
    wf(NXM_OF, 0, 2, 'in_port', 'NXM_OF_IN_PORT', false),
    wf(NXM_OF, 1, 6, 'dl_dst', 'NXM_OF_ETH_DST'),
    wf(NXM_OF, 2, 6, 'dl_src', 'NXM_OF_ETH_SRC'),
    wf(NXM_OF, 3, 2, 'dl_type', 'NXM_OF_ETH_TYPE', false),
    wf(NXM_OF, 4, 2, 'vlan_tci', 'NXM_OF_VLAN_TCI'),
    wf(NXM_OF, 5, 1, 'ip_dscp', 'NXM_OF_IP_TOS', false, 'tos'),
    wf(NXM_OF, 6, 1, 'nw_proto', 'NXM_OF_IP_PROTO', false),
    wf(NXM_OF, 7, 4, 'nw_src', 'NXM_OF_IP_SRC'),
    wf(NXM_OF, 8, 4, 'nw_dst', 'NXM_OF_IP_DST'),
    wf(NXM_OF, 9, 2, 'tcp_src', 'NXM_OF_TCP_SRC'),
    wf(NXM_OF, 10, 2, 'tcp_dst', 'NXM_OF_TCP_DST'),
    wf(NXM_OF, 11, 2, 'udp_src', 'NXM_OF_UDP_SRC'),
    wf(NXM_OF, 12, 2, 'udp_dst', 'NXM_OF_UDP_DST'),
    wf(NXM_OF, 13, 1, 'icmp_type', 'NXM_OF_ICMP_TYPE', false),
    wf(NXM_OF, 14, 1, 'icmp_code', 'NXM_OF_ICMP_CODE', false),
    wf(NXM_OF, 15, 2, 'arp_op', 'NXM_OF_ARP_OP', false),
    wf(NXM_OF, 16, 4, 'arp_spa', 'NXM_OF_ARP_SPA'),
    wf(NXM_OF, 17, 4, 'arp_tpa', 'NXM_OF_ARP_TPA'),
    wf(NXM_NX, 16, 8, 'tun_id', 'NXM_NX_TUN_ID'),
    wf(NXM_NX, 17, 6, 'arp_sha', 'NXM_NX_ARP_SHA'),
    wf(NXM_NX, 18, 6, 'arp_tha', 'NXM_NX_ARP_THA'),
    wf(NXM_NX, 19, 16, 'ipv6_src', 'NXM_NX_IPV6_SRC'),
    wf(NXM_NX, 20, 16, 'ipv6_dst', 'NXM_NX_IPV6_DST'),
    wf(NXM_NX, 21, 1, 'icmpv6_type', 'NXM_NX_ICMPV6_TYPE', false),
    wf(NXM_NX, 22, 1, 'icmpv6_code', 'NXM_NX_ICMPV6_CODE', false),
    wf(NXM_NX, 23, 16, 'nd_target', 'NXM_NX_ND_TARGET'),
    wf(NXM_NX, 24, 6, 'nd_sll', 'NXM_NX_ND_SLL'),
    wf(NXM_NX, 25, 6, 'nd_tll', 'NXM_NX_ND_TLL'),
    wf(NXM_NX, 27, 4, 'ipv6_label', 'NXM_NX_IPV6_LABEL'),
    wf(NXM_NX, 26, 1, 'nw_frag', 'NXM_NX_IP_FRAG'),
    wf(NXM_NX, 28, 1, 'nw_ecn', 'NXM_NX_IP_ECN', false),
    wf(NXM_NX, 29, 1, 'nw_ttl', 'NXM_NX_IP_TTL', false),
    wf(NXM_NX, 30, 8, null, 'NXM_NX_COOKIE'),
    wf(NXM_NX, 31, 4, 'tun_src', 'NXM_NX_TUN_IPV4_SRC'),
    wf(NXM_NX, 32, 4, 'tun_dst', 'NXM_NX_TUN_IPV4_DST'),
    wf(NXM_NX, 34, 2, 'tcp_flags', 'NXM_NX_TCP_FLAGS'),
    wf(NXM_NX, 36, 4, 'recirc_id', 'NXM_NX_RECIRC_ID', false),
    wf(NXM_NX, 37, 4, 'conj_id', 'NXM_NX_CONJ_ID', false),
    wf(NXM_NX, 105, 4, 'ct_state', 'NXM_NX_CT_STATE'),
    wf(NXM_NX, 106, 2, 'ct_zone', 'NXM_NX_CT_ZONE', false),
    wf(NXM_NX, 107, 4, 'ct_mark', 'NXM_NX_CT_MARK'),
    wf(OXM_OF, 0, 4, 'in_port', 'OXM_OF_IN_PORT', false, 'port32'),
    wf(OXM_OF, 2, 8, 'metadata', 'OXM_OF_METADATA'),
    wf(OXM_OF, 3, 6, 'dl_dst', 'OXM_OF_ETH_DST'),
    wf(OXM_OF, 4, 6, 'dl_src', 'OXM_OF_ETH_SRC'),
    wf(OXM_OF, 5, 2, 'dl_type', 'OXM_OF_ETH_TYPE', false),
    wf(OXM_OF, 6, 2, 'vlan_vid', 'OXM_OF_VLAN_VID'),
    wf(OXM_OF, 7, 1, 'dl_vlan_pcp', 'OXM_OF_VLAN_PCP', false),
    wf(OXM_OF, 8, 1, 'ip_dscp', 'OXM_OF_IP_DSCP', false),
    wf(OXM_OF, 9, 1, 'nw_ecn', 'OXM_OF_IP_ECN', false),
    wf(OXM_OF, 10, 1, 'nw_proto', 'OXM_OF_IP_PROTO', false),
    wf(OXM_OF, 11, 4, 'nw_src', 'OXM_OF_IPV4_SRC'),
    wf(OXM_OF, 12, 4, 'nw_dst', 'OXM_OF_IPV4_DST'),
    wf(OXM_OF, 13, 2, 'tcp_src', 'OXM_OF_TCP_SRC'),
    wf(OXM_OF, 14, 2, 'tcp_dst', 'OXM_OF_TCP_DST'),
    wf(OXM_OF, 15, 2, 'udp_src', 'OXM_OF_UDP_SRC'),
    wf(OXM_OF, 16, 2, 'udp_dst', 'OXM_OF_UDP_DST'),
    wf(OXM_OF, 17, 2, 'sctp_src', 'OXM_OF_SCTP_SRC'),
    wf(OXM_OF, 18, 2, 'sctp_dst', 'OXM_OF_SCTP_DST'),
    wf(OXM_OF, 19, 1, 'icmp_type', 'OXM_OF_ICMPV4_TYPE', false),
    wf(OXM_OF, 20, 1, 'icmp_code', 'OXM_OF_ICMPV4_CODE', false),
    wf(OXM_OF, 21, 2, 'arp_op', 'OXM_OF_ARP_OP', false),
    wf(OXM_OF, 22, 4, 'arp_spa', 'OXM_OF_ARP_SPA'),
    wf(OXM_OF, 23, 4, 'arp_tpa', 'OXM_OF_ARP_TPA'),
    wf(OXM_OF, 24, 6, 'arp_sha', 'OXM_OF_ARP_SHA'),
    wf(OXM_OF, 25, 6, 'arp_tha', 'OXM_OF_ARP_THA'),
    wf(OXM_OF, 26, 16, 'ipv6_src', 'OXM_OF_IPV6_SRC'),
    wf(OXM_OF, 27, 16, 'ipv6_dst', 'OXM_OF_IPV6_DST'),
    wf(OXM_OF, 29, 1, 'icmpv6_type', 'OXM_OF_ICMPV6_TYPE', false),
    wf(OXM_OF, 30, 1, 'icmpv6_code', 'OXM_OF_ICMPV6_CODE', false),
    wf(OXM_OF, 28, 4, 'ipv6_label', 'OXM_OF_IPV6_FLABEL'),
    wf(OXM_OF, 31, 16, 'nd_target', 'OXM_OF_IPV6_ND_TARGET'),
    wf(OXM_OF, 32, 6, 'nd_sll', 'OXM_OF_IPV6_ND_SLL'),
    wf(OXM_OF, 33, 6, 'nd_tll', 'OXM_OF_IPV6_ND_TLL'),
    wf(OXM_OF, 38, 8, 'tun_id', 'OXM_OF_TUNNEL_ID'),
  ];
  for (let i = 0; i < 16; i++) t.push(wf(NXM_NX, i, 4, `reg${i}`, `NXM_NX_REG${i}`));
  return t;
})();

const byKey = new Map<number, WireField>();
for (const f of ALL) byKey.set(f.cls * 128 + f.field, f);

/** The wire field of header class+field, or undefined. */
export function wireFieldOf(cls: number, field: number): WireField | undefined {
  return byKey.get(cls * 128 + field);
}

/** The OXM headers flowd decodes (table features announce them), without mask. */
export function oxmHeaders(): number[] {
  return ALL.filter((w) => w.cls === OXM_OF).map((w) => headerOf(w));
}

/** The 32-bit header (without mask) of `w`. */
export function headerOf(w: WireField, hasMask = false): number {
  return ((w.cls << 16) | (w.field << 9) | (hasMask ? 0x100 : 0) | (hasMask ? 2 * w.bytes : w.bytes)) >>> 0;
}

/**
 * The wire field that names flowd field `def` in NXM (OpenFlow 1.0) or OXM: the NXM header
 * for load/move/learn subfields, preferring what Open vSwitch sends for each version.
 */
export function wireFieldForDef(def: FieldDef, oxm: boolean): WireField | undefined {
  let nx: WireField | undefined;
  let ox: WireField | undefined;
  for (const w of ALL) {
    if (w.def !== def && !(def.name === 'in_port_oxm' && w.conv === 'port32')) continue;
    if (w.cls === OXM_OF) ox ??= w; else nx ??= w;
  }
  return oxm ? (ox ?? nx) : (nx ?? ox);
}

/** A decoded header: the field and the bit offset it names inside a 32-bit header. */
export function decodeHeader(h: number): WireField {
  const w = byKey.get((h >>> 16) * 128 + ((h >>> 9) & 0x7f));
  if (w === undefined || w.def === null) {
    throw new OfError(OFPET_BAD_REQUEST, NXBRC_NXM_BAD_TYPE, `unknown field header 0x${h.toString(16)}`);
  }
  return w;
}

/** OpenFlow 1.1+ 32-bit port numbers <-> the 16-bit ones flowd stores (reserved ports moved). */
export function port32to16(p: number): number {
  if (p >= 0xffffff00) return p - 0xffff0000;
  if (p >= 0xff00) return -1;
  return p;
}
export function port16to32(p: number): number {
  return p >= 0xff00 ? (p + 0xffff0000) >>> 0 : p;
}

export interface DecodedMatch {
  readonly match: Match;
  /** NXM_NX_COOKIE value and mask (0n/0n when absent). */
  readonly cookie: bigint;
  readonly cookieMask: bigint;
}

function toKey(w: WireField, v: bigint): bigint {
  if (w.conv === 'tos') return v >> 2n;
  if (w.conv === 'port32') {
    const p = port32to16(Number(v));
    if (p < 0) throw new OfError(OFPET_BAD_REQUEST, NXBRC_NXM_BAD_VALUE, `in_port ${v} out of range`);
    return BigInt(p);
  }
  return v;
}

/**
 * Decodes `len` bytes of TLVs at `off` of `b` (padding excluded). OXM (`oxm` true) and NXM
 * share the format; only the checks of which classes are allowed differ (both accepted here).
 */
export function decodeMatch(b: Uint8Array, off: number, len: number): DecodedMatch {
  const m: MutableMatch = newMatch();
  const seen = new Set<WireField>();
  const decoded: WireField[] = [];
  let cookie = 0n;
  let cookieMask = 0n;
  let p = off;
  const end = off + len;
  while (p < end) {
    if (end - p < 4) throw new OfError(OFPET_BAD_REQUEST, NXBRC_NXM_INVALID, 'match ends inside a header');
    const h = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
    const hasMask = (h & 0x100) !== 0;
    const tlen = h & 0xff;
    if (end - p - 4 < tlen) throw new OfError(OFPET_BAD_REQUEST, NXBRC_NXM_INVALID, 'match field runs past the match');
    const w = byKey.get((h >>> 16) * 128 + ((h >>> 9) & 0x7f));
    if (w === undefined) throw new OfError(OFPET_BAD_REQUEST, NXBRC_NXM_BAD_TYPE, `unknown field header 0x${h.toString(16)}`);
    if (tlen !== (hasMask ? 2 : 1) * w.bytes) throw new OfError(OFPET_BAD_REQUEST, NXBRC_NXM_BAD_TYPE, `${w.name}: length ${tlen}`);
    if (hasMask && !w.maskable) throw new OfError(OFPET_BAD_REQUEST, NXBRC_NXM_BAD_MASK, `${w.name} cannot be masked`);
    if (seen.has(w)) throw new OfError(OFPET_BAD_REQUEST, NXBRC_NXM_DUP_TYPE, `${w.name} twice`);
    seen.add(w);
    const v = readUintN(b, p + 4, w.bytes);
    const full = (1n << BigInt(8 * w.bytes)) - 1n;
    const mk = hasMask ? readUintN(b, p + 4 + w.bytes, w.bytes) : full;
    if ((v & ~mk) !== 0n) throw new OfError(OFPET_BAD_REQUEST, NXBRC_NXM_BAD_VALUE, `${w.name}: value has bits outside the mask`);
    if (w.def === null) {
      cookie = v;
      cookieMask = mk;
    } else {
      const d = w.def;
      if (d.keyBits < 8 * w.bytes && w.conv === 'none' && (v >> BigInt(d.keyBits)) !== 0n) {
        throw new OfError(OFPET_BAD_REQUEST, NXBRC_NXM_BAD_VALUE, `${w.name}: value 0x${v.toString(16)} too wide`);
      }
      const km = w.conv === 'tos' ? (mk >> 2n) : (w.conv === 'port32' ? (mk === full ? fieldFullMask(d) : 0n) : mk);
      setMatchField(d, m.value, m.mask, toKey(w, v), km);
      decoded.push(w);
    }
    p += 4 + tlen;
  }
  for (const w of decoded) {
    if (w.def !== null && !fieldPrereqsOk(w.def, m)) {
      throw new OfError(OFPET_BAD_REQUEST, NXBRC_NXM_BAD_PREREQ, `${w.name}: prerequisite not matched`);
    }
  }
  return { match: m, cookie, cookieMask };
}

function put(wr: Writer, w: WireField, v: bigint, mk: bigint, full: bigint): void {
  if (mk === full || !w.maskable) {
    wr.u32(headerOf(w, false)).uintN(v, w.bytes);
  } else {
    wr.u32(headerOf(w, true)).uintN(v & mk, w.bytes).uintN(mk, w.bytes);
  }
}

/** Appends `def`'s TLV when the match looks at it; `w` says how it goes on the wire. */
function putField(wr: Writer, m: Match, w: WireField | undefined): void {
  if (w === undefined || w.def === null) return;
  const d = w.def;
  let mk = readField(d, m.mask);
  if (mk === 0n) return;
  let v = readField(d, m.value);
  const keyFull = fieldFullMask(d);
  let full = (1n << BigInt(8 * w.bytes)) - 1n;
  if (w.conv === 'tos') { v <<= 2n; mk = (mk << 2n) & 0xfcn; full = 0xfcn; }
  else if (w.conv === 'port32') { v = BigInt(port16to32(Number(v))); mk = full; }
  else if (mk === keyFull) mk = full;
  put(wr, w, v, mk, full);
}

const W = (cls: number, field: number): WireField | undefined => wireFieldOf(cls, field);

/**
 * Encodes `m` as NXM (oxm false) or OXM TLVs, prerequisites first; returns the bytes written
 * (no padding). `cookie`/`cookieMask` add NXM_NX_COOKIE when the mask is nonzero (NXM only).
 */
export function encodeMatch(wr: Writer, m: Match, oxm: boolean, cookie = 0n, cookieMask = 0n): number {
  const start = wr.len;
  const c = oxm ? OXM_OF : NXM_OF;
  putField(wr, m, oxm ? W(OXM_OF, 0) : W(NXM_OF, 0));
  if (oxm) putField(wr, m, W(OXM_OF, 2));
  putField(wr, m, W(c, oxm ? 3 : 1));
  putField(wr, m, W(c, oxm ? 4 : 2));
  putField(wr, m, W(c, oxm ? 5 : 3));
  if (oxm) {
    putField(wr, m, W(OXM_OF, 6));
    putField(wr, m, W(OXM_OF, 7));
  } else {
    putField(wr, m, W(NXM_OF, 4));
  }
  const t = matchDlType(m);
  const proto = matchNwProto(m);
  if (t === ETH_TYPE_IP || t === ETH_TYPE_IPV6) {
    putField(wr, m, W(c, oxm ? 10 : 6));
    putField(wr, m, oxm ? W(OXM_OF, 8) : W(NXM_OF, 5));
    putField(wr, m, oxm ? W(OXM_OF, 9) : W(NXM_NX, 28));
    putField(wr, m, W(NXM_NX, 29));
    putField(wr, m, W(NXM_NX, 26));
    if (t === ETH_TYPE_IP) {
      putField(wr, m, W(c, oxm ? 11 : 7));
      putField(wr, m, W(c, oxm ? 12 : 8));
    } else {
      putField(wr, m, oxm ? W(OXM_OF, 26) : W(NXM_NX, 19));
      putField(wr, m, oxm ? W(OXM_OF, 27) : W(NXM_NX, 20));
      putField(wr, m, oxm ? W(OXM_OF, 28) : W(NXM_NX, 27));
    }
    if (proto === IPPROTO_TCP) {
      putField(wr, m, W(c, oxm ? 13 : 9));
      putField(wr, m, W(c, oxm ? 14 : 10));
      putField(wr, m, W(NXM_NX, 34));
    } else if (proto === IPPROTO_UDP) {
      putField(wr, m, W(c, oxm ? 15 : 11));
      putField(wr, m, W(c, oxm ? 16 : 12));
    } else if (proto === IPPROTO_SCTP && oxm) {
      putField(wr, m, W(OXM_OF, 17));
      putField(wr, m, W(OXM_OF, 18));
    } else if (proto === IPPROTO_ICMP && t === ETH_TYPE_IP) {
      putField(wr, m, W(c, oxm ? 19 : 13));
      putField(wr, m, W(c, oxm ? 20 : 14));
    } else if (proto === IPPROTO_ICMPV6 && t === ETH_TYPE_IPV6) {
      putField(wr, m, oxm ? W(OXM_OF, 29) : W(NXM_NX, 21));
      putField(wr, m, oxm ? W(OXM_OF, 30) : W(NXM_NX, 22));
      // ND fields (the match parser keeps them only for icmp_type 135/136; sll/tll share the
      // ARP hardware address words, which an IPv6 match uses for nothing else).
      putField(wr, m, oxm ? W(OXM_OF, 31) : W(NXM_NX, 23));
      putField(wr, m, oxm ? W(OXM_OF, 32) : W(NXM_NX, 24));
      putField(wr, m, oxm ? W(OXM_OF, 33) : W(NXM_NX, 25));
    }
  } else if (t === ETH_TYPE_ARP || t === ETH_TYPE_RARP) {
    putField(wr, m, W(c, oxm ? 21 : 15));
    putField(wr, m, W(c, oxm ? 22 : 16));
    putField(wr, m, W(c, oxm ? 23 : 17));
    putField(wr, m, oxm ? W(OXM_OF, 24) : W(NXM_NX, 17));
    putField(wr, m, oxm ? W(OXM_OF, 25) : W(NXM_NX, 18));
  }
  putField(wr, m, oxm ? W(OXM_OF, 38) : W(NXM_NX, 16));
  putField(wr, m, W(NXM_NX, 31));
  putField(wr, m, W(NXM_NX, 32));
  if (!oxm) putField(wr, m, W(OXM_OF, 2));
  for (let i = 0; i < 16; i++) putField(wr, m, W(NXM_NX, i));
  putField(wr, m, W(NXM_NX, 105));
  putField(wr, m, W(NXM_NX, 106));
  putField(wr, m, W(NXM_NX, 107));
  putField(wr, m, W(NXM_NX, 36));
  putField(wr, m, W(NXM_NX, 37));
  if (cookieMask !== 0n) {
    const ck = W(NXM_NX, 30) as WireField;
    put(wr, ck, cookie, cookieMask, 0xffffffffffffffffn);
  }
  return wr.len - start;
}
