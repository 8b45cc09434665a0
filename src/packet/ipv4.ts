/**
 * IPv4 header (RFC 791 s3.1) over Uint8Array, no copying.
 *
 * Who calls: packet/flowkey.ts (constants, ipv4Check), dpif/ actions (TTL decrement, NAT
 * address rewrite with incremental checksums), netdev/ tunnel encap (outer header template),
 * packet/icmp.ts (error quotes), tests and tools (builders).
 *
 * Layout:  0 ver|IHL  1 TOS (DSCP|ECN)  2 total length  4 id  6 flags|frag offset (8-byte units)
 *          8 TTL  9 protocol  10 header checksum  12 source  16 destination  20 options
 * Addresses are host-order unsigned numbers (10.0.0.1 = 0x0a000001). Offsets are absolute.
 * The rewrite helpers patch the header checksum (and the TCP/UDP checksum when told where the
 * L4 header is) incrementally per RFC 1624, so they cost O(1) per packet.
 */
import { Stop } from './stop';
import {
  csumPatch16, csumPatch32, ipv4SetChecksum, udpCsumPatch32,
} from './checksum';
import { formatIpv4, parseIpv4 } from './addr-text';
import { wr32 } from './bytes';

export const IPV4_MIN_HLEN = 20;
export const IPV4_MAX_HLEN = 60;
export const IPV4_OFF_VER_IHL = 0;
export const IPV4_OFF_TOS = 1;
export const IPV4_OFF_TOTAL_LEN = 2;
export const IPV4_OFF_ID = 4;
export const IPV4_OFF_FRAG = 6;
export const IPV4_OFF_TTL = 8;
export const IPV4_OFF_PROTO = 9;
export const IPV4_OFF_CSUM = 10;
export const IPV4_OFF_SRC = 12;
export const IPV4_OFF_DST = 16;

/** Flags/fragment-offset word bits (RFC 791 s3.1 "Flags"). */
export const IPV4_DF = 0x4000;
export const IPV4_MF = 0x2000;
export const IPV4_FRAG_OFF_MASK = 0x1fff;

export const IP_PROTO_ICMP = 1;
export const IP_PROTO_TCP = 6;
export const IP_PROTO_UDP = 17;
export const IP_PROTO_GRE = 47;
export const IP_PROTO_ESP = 50;
export const IP_PROTO_AH = 51;
export const IP_PROTO_ICMPV6 = 58;
export const IP_PROTO_SCTP = 132;

export function ipv4Version(b: Uint8Array, off: number): number { return b[off] >>> 4; }
/** Header length in bytes (IHL * 4). */
export function ipv4HeaderLen(b: Uint8Array, off: number): number { return (b[off] & 0x0f) << 2; }
export function ipv4Tos(b: Uint8Array, off: number): number { return b[off + 1]; }
export function ipv4TotalLen(b: Uint8Array, off: number): number { return (b[off + 2] << 8) | b[off + 3]; }
export function ipv4Id(b: Uint8Array, off: number): number { return (b[off + 4] << 8) | b[off + 5]; }
/** The whole flags/fragment-offset word. */
export function ipv4FragWord(b: Uint8Array, off: number): number { return (b[off + 6] << 8) | b[off + 7]; }
/** Fragment offset in bytes (the field is in 8-byte units). */
export function ipv4FragOffsetBytes(b: Uint8Array, off: number): number {
  return (ipv4FragWord(b, off) & IPV4_FRAG_OFF_MASK) << 3;
}
export function ipv4Df(b: Uint8Array, off: number): boolean { return (b[off + 6] & 0x40) !== 0; }
export function ipv4Mf(b: Uint8Array, off: number): boolean { return (b[off + 6] & 0x20) !== 0; }
export function ipv4Ttl(b: Uint8Array, off: number): number { return b[off + 8]; }
export function ipv4Proto(b: Uint8Array, off: number): number { return b[off + 9]; }
export function ipv4Src(b: Uint8Array, off: number): number { return get32(b, off + 12); }
export function ipv4Dst(b: Uint8Array, off: number): number { return get32(b, off + 16); }

export function get32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}


/**
 * Validates the IPv4 header in b[off, off+len) (len = bytes left in the frame):
 * RFC 791 s3.1 version 4, IHL >= 5, the header fits, IHL*4 <= total length <= len, and
 * (RFC 791 s3.2 "Fragmentation") fragment offset + payload <= 65535.
 */
export function ipv4Check(b: Uint8Array, off: number, len: number): Stop {
  if (len < IPV4_MIN_HLEN) return Stop.TruncatedIpv4;
  if ((b[off] >>> 4) !== 4) return Stop.BadIpv4Version;
  const hl = (b[off] & 0x0f) << 2;
  if (hl < IPV4_MIN_HLEN) return Stop.BadIhl;
  if (hl > len) return Stop.TruncatedIpv4;
  const total = (b[off + 2] << 8) | b[off + 3];
  if (total < hl || total > len) return Stop.BadIpv4TotalLength;
  const fragBytes = (((b[off + 6] << 8) | b[off + 7]) & IPV4_FRAG_OFF_MASK) << 3;
  if (fragBytes + total - hl > 65535) return Stop.BadFragment;
  return Stop.Ok;
}

export interface Ipv4HeaderSpec {
  src: number;
  dst: number;
  proto: number;
  /** Bytes of L4 header + payload that follow the header (total length = hlen + this). */
  payloadLen: number;
  ttl?: number;
  tos?: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  /** Fragment offset in bytes; must be a multiple of 8. */
  fragOffsetBytes?: number;
  /** Options, padded by the caller to a multiple of 4 bytes (at most 40). */
  options?: Uint8Array;
}

/** Writes an IPv4 header with a correct checksum at `off`; returns the header length. */
export function writeIpv4(b: Uint8Array, off: number, h: Ipv4HeaderSpec): number {
  const optLen = h.options === undefined ? 0 : h.options.length;
  const hl = IPV4_MIN_HLEN + optLen;
  const total = hl + h.payloadLen;
  const frag = (h.df === true ? IPV4_DF : 0) | (h.mf === true ? IPV4_MF : 0) |
    (((h.fragOffsetBytes ?? 0) >>> 3) & IPV4_FRAG_OFF_MASK);
  b[off] = 0x40 | (hl >>> 2);
  b[off + 1] = h.tos ?? 0;
  b[off + 2] = (total >>> 8) & 0xff; b[off + 3] = total & 0xff;
  const id = h.id ?? 0;
  b[off + 4] = (id >>> 8) & 0xff; b[off + 5] = id & 0xff;
  b[off + 6] = frag >>> 8; b[off + 7] = frag & 0xff;
  b[off + 8] = h.ttl ?? 64;
  b[off + 9] = h.proto;
  b[off + 10] = 0; b[off + 11] = 0;
  wr32(b, off + 12, h.src);
  wr32(b, off + 16, h.dst);
  if (h.options !== undefined) b.set(h.options, off + IPV4_MIN_HLEN);
  ipv4SetChecksum(b, off);
  return hl;
}

/** Sets the TTL of the header at `off`, patching the header checksum (RFC 1624). */
export function ipv4SetTtl(b: Uint8Array, off: number, ttl: number): void {
  const old = (b[off + 8] << 8) | b[off + 9];
  b[off + 8] = ttl;
  csumPatch16(b, off + 10, old, (ttl << 8) | b[off + 9]);
}

/** Sets the TOS byte (DSCP|ECN) of the header at `off`, patching the header checksum. */
export function ipv4SetTos(b: Uint8Array, off: number, tos: number): void {
  const old = (b[off] << 8) | b[off + 1];
  b[off + 1] = tos;
  csumPatch16(b, off + 10, old, (b[off] << 8) | tos);
}

/**
 * Rewrites the source (`fieldOff` = IPV4_OFF_SRC) or destination (IPV4_OFF_DST) address of
 * the header at `ipOff` to `addr`, patching the header checksum and, when `l4Off` >= 0 (the
 * first fragment or an unfragmented packet carrying TCP or UDP), the L4 checksum whose
 * pseudo-header covers the address. ICMP has no pseudo-header, so it is left alone.
 * Returns the old address.
 */
export function ipv4SetAddr(b: Uint8Array, ipOff: number, fieldOff: number, addr: number,
                            l4Off: number): number {
  const old = get32(b, ipOff + fieldOff);
  wr32(b, ipOff + fieldOff, addr);
  csumPatch32(b, ipOff + IPV4_OFF_CSUM, old, addr);
  if (l4Off >= 0) {
    const proto = b[ipOff + 9];
    if (proto === IP_PROTO_TCP) csumPatch32(b, l4Off + 16, old, addr);
    else if (proto === IP_PROTO_UDP) udpCsumPatch32(b, l4Off + 6, old, addr);
  }
  return old;
}

/** Parses dotted-quad "10.0.0.1" to 0x0a000001; throws on bad syntax (control plane). */
export function ipv4FromString(s: string): number {
  const v = parseIpv4(s);
  if (v === undefined) throw new Error(`bad IPv4 address "${s}"`);
  return v;
}

/** Formats a host-order IPv4 address as dotted quad (packet/addr-text.ts formatIpv4). */
export const ipv4ToString = formatIpv4;

/** Accepts an address as a number or a dotted quad (builders only). */
export function toIpv4(a: number | string): number {
  return typeof a === 'string' ? ipv4FromString(a) : a >>> 0;
}
