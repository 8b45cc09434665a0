/**
 * ICMPv4 (RFC 792) and the ICMPv6 messages flowd matches (RFC 4443), over Uint8Array.
 *
 * Who calls: packet/flowkey.ts (constants), dvr/ and dpif/ when the router answers pings or
 * reports errors (writeIcmpEcho, writeIcmpError into a preallocated frame), tests and tools.
 *
 * Layout (8-byte header for every message flowd builds):
 *   0 type  1 code  2 checksum  4 rest of header: echo id(2)+seq(2); unreachable unused(2) +
 *   next-hop MTU(2) for "fragmentation needed" (RFC 1191 s4); unused(4) otherwise.
 *   8 data: echo payload, or for errors the offending IP header + first 64 bits of its data
 *   (RFC 792 "Destination Unreachable Message ... Internet Header + 64 bits of Data Datagram").
 * The ICMPv4 checksum covers the ICMP message only (no pseudo-header); ICMPv6's covers the
 * IPv6 pseudo-header too (RFC 4443 s2.3), see checksum.ts.
 */
import { Stop } from './stop';
import { checksum } from './checksum';
import { IP_PROTO_ICMP, IP_PROTO_ICMPV6 } from './ipv4';
import { Ip4FrameSpec, Ip6FrameSpec, buildIpv4Frame, buildIpv6Frame } from './build';

export const ICMP_HLEN = 8;
export const ICMP_OFF_TYPE = 0;
export const ICMP_OFF_CODE = 1;
export const ICMP_OFF_CSUM = 2;
export const ICMP_OFF_ID = 4;
export const ICMP_OFF_SEQ = 6;
export const ICMP_OFF_MTU = 6;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;

export const ICMP_NET_UNREACH = 0;
export const ICMP_HOST_UNREACH = 1;
export const ICMP_PROTO_UNREACH = 2;
export const ICMP_PORT_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4;
export const ICMP_EXC_TTL = 0;
export const ICMP_EXC_FRAGTIME = 1;

export const ICMPV6_DEST_UNREACH = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;
export const ICMPV6_ROUTER_SOLICIT = 133;
export const ICMPV6_ROUTER_ADVERT = 134;
export const ICMPV6_NEIGHBOR_SOLICIT = 135;
export const ICMPV6_NEIGHBOR_ADVERT = 136;

/** RFC 792 quotes the IP header plus this many bytes of the original datagram's data. */
export const ICMP_QUOTE_DATA_BYTES = 8;

export function icmpType(b: Uint8Array, off: number): number { return b[off]; }
export function icmpCode(b: Uint8Array, off: number): number { return b[off + 1]; }
export function icmpEchoId(b: Uint8Array, off: number): number { return (b[off + 4] << 8) | b[off + 5]; }
export function icmpEchoSeq(b: Uint8Array, off: number): number { return (b[off + 6] << 8) | b[off + 7]; }
/** Next-hop MTU of a "fragmentation needed" message (RFC 1191 s4). */
export function icmpNextHopMtu(b: Uint8Array, off: number): number { return (b[off + 6] << 8) | b[off + 7]; }

/** Checks an ICMPv4 header in b[off, off+len) (len = IP payload left). */
export function icmpCheck(b: Uint8Array, off: number, len: number): Stop {
  return len < ICMP_HLEN ? Stop.TruncatedIcmp : Stop.Ok;
}

/** Checks an ICMPv6 header in b[off, off+len) (len = IPv6 payload left). */
export function icmp6Check(b: Uint8Array, off: number, len: number): Stop {
  return len < ICMP_HLEN ? Stop.TruncatedIcmpv6 : Stop.Ok;
}

/** Fills the ICMPv4 checksum of the message b[off, off+len). */
export function icmpSetChecksum(b: Uint8Array, off: number, len: number): void {
  b[off + 2] = 0;
  b[off + 3] = 0;
  const c = checksum(b, off, len);
  b[off + 2] = c >>> 8;
  b[off + 3] = c & 0xff;
}

/**
 * Writes an echo header (type, code 0, checksum 0, id, seq) at `off`; returns 8. The caller
 * places the payload after it and fills the checksum (icmpSetChecksum, or l4SetChecksum6
 * for ICMPv6).
 */
export function writeIcmpEcho(b: Uint8Array, off: number, type: number, id: number,
                              seq: number): number {
  b[off] = type; b[off + 1] = 0; b[off + 2] = 0; b[off + 3] = 0;
  b[off + 4] = (id >>> 8) & 0xff; b[off + 5] = id & 0xff;
  b[off + 6] = (seq >>> 8) & 0xff; b[off + 7] = seq & 0xff;
  return ICMP_HLEN;
}

/**
 * Bytes of an offending IPv4 datagram at orig[origOff, origOff+origLen) that an ICMPv4 error
 * quotes: its header (IHL*4) plus 8 bytes of data, never more than the datagram has.
 */
export function icmpQuoteLen(orig: Uint8Array, origOff: number, origLen: number): number {
  let hl = (orig[origOff] & 0x0f) << 2;
  if (hl < 20) hl = 20;
  const want = hl + ICMP_QUOTE_DATA_BYTES;
  return origLen < want ? origLen : want;
}

/**
 * Writes an ICMPv4 error (destination unreachable, time exceeded) at `off`: type, code, the
 * 32-bit `rest` word (next-hop MTU for fragmentation needed, else 0), then the quote of the
 * offending datagram (header + 8 bytes, RFC 792), and the checksum. `b` must have room for
 * 8 + icmpQuoteLen(...) bytes. Returns the message length.
 */
export function writeIcmpError(b: Uint8Array, off: number, type: number, code: number,
                               rest: number, orig: Uint8Array, origOff: number,
                               origLen: number): number {
  const q = icmpQuoteLen(orig, origOff, origLen);
  b[off] = type; b[off + 1] = code; b[off + 2] = 0; b[off + 3] = 0;
  b[off + 4] = rest >>> 24; b[off + 5] = (rest >>> 16) & 0xff;
  b[off + 6] = (rest >>> 8) & 0xff; b[off + 7] = rest & 0xff;
  // The quote may come from the same buffer (an error built in place of the original).
  if (orig === b) b.copyWithin(off + ICMP_HLEN, origOff, origOff + q);
  else copyBytes(b, off + ICMP_HLEN, orig, origOff, q);
  icmpSetChecksum(b, off, ICMP_HLEN + q);
  return ICMP_HLEN + q;
}

function copyBytes(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, n: number): void {
  for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i];
}

export interface IcmpEchoSpec {
  /** ICMP_ECHO_REQUEST (default) or ICMP_ECHO_REPLY (ICMPv6: 128 / 129). */
  icmpType?: number;
  echoId: number;
  echoSeq: number;
  payload?: Uint8Array;
}

function echoSegment(type: number, e: IcmpEchoSpec): Uint8Array {
  const payload = e.payload ?? new Uint8Array(0);
  const seg = new Uint8Array(ICMP_HLEN + payload.length);
  writeIcmpEcho(seg, 0, type, e.echoId, e.echoSeq);
  seg.set(payload, ICMP_HLEN);
  return seg;
}

/** Allocates Ethernet + IPv4 + ICMP echo with checksums. Not for the hot path. */
export function buildIcmp4EchoFrame(spec: Ip4FrameSpec & IcmpEchoSpec): Uint8Array {
  return buildIpv4Frame(spec, IP_PROTO_ICMP, echoSegment(spec.icmpType ?? ICMP_ECHO_REQUEST, spec));
}

/** Allocates Ethernet + IPv6 + ICMPv6 echo with its checksum. Not for the hot path. */
export function buildIcmp6EchoFrame(spec: Ip6FrameSpec & IcmpEchoSpec): Uint8Array {
  return buildIpv6Frame(spec, IP_PROTO_ICMPV6,
    echoSegment(spec.icmpType ?? ICMPV6_ECHO_REQUEST, spec));
}

export interface IcmpErrorSpec {
  icmpType: number;
  icmpCode: number;
  /** Next-hop MTU, for ICMP_DEST_UNREACH / ICMP_FRAG_NEEDED (RFC 1191 s4). */
  mtu?: number;
  /** The offending IPv4 datagram, starting at its IP header. */
  orig: Uint8Array;
}

/** Allocates Ethernet + IPv4 + an ICMPv4 error quoting `orig`. Not for the hot path. */
export function buildIcmp4ErrorFrame(spec: Ip4FrameSpec & IcmpErrorSpec): Uint8Array {
  const q = icmpQuoteLen(spec.orig, 0, spec.orig.length);
  const seg = new Uint8Array(ICMP_HLEN + q);
  writeIcmpError(seg, 0, spec.icmpType, spec.icmpCode, (spec.mtu ?? 0) & 0xffff,
    spec.orig, 0, spec.orig.length);
  return buildIpv4Frame(spec, IP_PROTO_ICMP, seg);
}
