/**
 * IPv6 fixed header (RFC 8200 s3) and the common extension headers (s4), over Uint8Array.
 *
 * Who calls: packet/flowkey.ts (ipv6Walk, once per IPv6 frame), dpif/ actions (hop limit),
 * tests and tools (writeIpv6, buildIpv6Frame).
 *
 * flowd passes and matches IPv6; it does not reassemble or route it. ipv6Walk follows the
 * next-header chain through hop-by-hop (0, first only), routing (43), fragment (44),
 * destination options (60) and AH (51) to the upper protocol, the way OVS's
 * parse_ipv6_ext_hdrs does, and reports fragment state with OVS's nw_frag bits.
 *
 * Layout: 0 ver(4)|traffic class(8)|flow label(20)  4 payload length  6 next header
 *         7 hop limit  8 source(16)  24 destination(16)  40 extension headers / payload
 */
import ipaddr from 'ipaddr.js';
import { Stop } from './stop';
import { NW_FRAG_ANY, NW_FRAG_LATER } from './flowkey-layout';

export const IPV6_HLEN = 40;
export const IPV6_OFF_PLEN = 4;
export const IPV6_OFF_NEXT = 6;
export const IPV6_OFF_HLIM = 7;
export const IPV6_OFF_SRC = 8;
export const IPV6_OFF_DST = 24;

export const IPV6_NH_HOPOPTS = 0;
export const IPV6_NH_ROUTING = 43;
export const IPV6_NH_FRAGMENT = 44;
export const IPV6_NH_AH = 51;
export const IPV6_NH_NONE = 59;
export const IPV6_NH_DSTOPTS = 60;
export const IPV6_FRAG_HLEN = 8;

/** Indices of the result array filled by ipv6Walk. */
export const WALK_PROTO = 0;
export const WALK_L4_OFF = 1;
export const WALK_FRAG = 2;
export const WALK_END = 3;
export const WALK_WORDS = 4;

export function ipv6TrafficClass(b: Uint8Array, off: number): number {
  return ((b[off] & 0x0f) << 4) | (b[off + 1] >>> 4);
}
export function ipv6FlowLabel(b: Uint8Array, off: number): number {
  return ((b[off + 1] & 0x0f) << 16) | (b[off + 2] << 8) | b[off + 3];
}
export function ipv6PayloadLen(b: Uint8Array, off: number): number {
  return (b[off + 4] << 8) | b[off + 5];
}
export function ipv6NextHeader(b: Uint8Array, off: number): number { return b[off + 6]; }
export function ipv6HopLimit(b: Uint8Array, off: number): number { return b[off + 7]; }

/**
 * Validates the IPv6 header at `off` (len = bytes left in the frame) and walks its
 * extension headers. On Ok or LaterFragment, `res` holds: WALK_PROTO the upper protocol
 * (for a later fragment: the fragment header's next header), WALK_L4_OFF the absolute
 * offset of the upper header (meaningless for a later fragment), WALK_FRAG nw_frag bits,
 * WALK_END the absolute end of the IPv6 payload (payload length bounds everything).
 * Never reads outside b[off, off+len).
 */
export function ipv6Walk(b: Uint8Array, off: number, len: number, res: Int32Array): Stop {
  if (len < IPV6_HLEN) return Stop.TruncatedIpv6;               // RFC 8200 s3: 40 bytes
  if ((b[off] >>> 4) !== 6) return Stop.BadIpv6Version;
  const plen = (b[off + 4] << 8) | b[off + 5];
  if (IPV6_HLEN + plen > len) return Stop.BadIpv6PayloadLength;   // s3 "Payload Length"
  const end = off + IPV6_HLEN + plen;
  let nh = b[off + 6];
  let p = off + IPV6_HLEN;
  let frag = 0;
  let first = true;
  res[WALK_END] = end;
  for (;;) {
    if (nh === IPV6_NH_HOPOPTS || nh === IPV6_NH_ROUTING || nh === IPV6_NH_DSTOPTS) {
      if (nh === IPV6_NH_HOPOPTS && !first) return Stop.BadIpv6ExtHeader; // s4.3
      if (end - p < 8) return Stop.TruncatedIpv6;                // s4.3-4.6: >= 8 octets
      const hl = (b[p + 1] + 1) << 3;                            // "Hdr Ext Len" + 1, 8-octet units
      if (end - p < hl) return Stop.TruncatedIpv6;
      nh = b[p];
      p += hl;
    } else if (nh === IPV6_NH_AH) {
      if (end - p < 8) return Stop.TruncatedIpv6;
      const hl = (b[p + 1] + 2) << 2;                            // RFC 4302 s2.2: 4-octet units - 2
      if (end - p < hl) return Stop.TruncatedIpv6;
      nh = b[p];
      p += hl;
    } else if (nh === IPV6_NH_FRAGMENT) {
      if (end - p < IPV6_FRAG_HLEN) return Stop.TruncatedIpv6;  // s4.5: 8 octets
      const offBytes = ((b[p + 2] << 8) | b[p + 3]) & 0xfff8;    // 13-bit offset, 8-octet units
      nh = b[p];
      p += IPV6_FRAG_HLEN;
      // s4.5: a fragment must not extend the original packet past 65535 octets.
      if (offBytes + (end - p) > 65535) return Stop.BadFragment;
      frag |= NW_FRAG_ANY;
      if (offBytes !== 0) {
        res[WALK_PROTO] = nh;
        res[WALK_L4_OFF] = p;
        res[WALK_FRAG] = frag | NW_FRAG_LATER;
        return Stop.LaterFragment;
      }
    } else {
      break;
    }
    first = false;
  }
  res[WALK_PROTO] = nh;
  res[WALK_L4_OFF] = p;
  res[WALK_FRAG] = frag;
  return Stop.Ok;
}

export interface Ipv6HeaderSpec {
  src: Uint8Array | string;
  dst: Uint8Array | string;
  nextHeader: number;
  payloadLen: number;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
}

/** Parses an IPv6 address to 16 bytes (control plane and builders; throws on bad syntax). */
export function ipv6FromString(s: string): Uint8Array {
  return Uint8Array.from(ipaddr.IPv6.parse(s).toByteArray());
}

/** Formats 16 bytes at b[off] as an IPv6 address (RFC 5952 form). */
export function ipv6ToString(b: Uint8Array, off = 0): string {
  return ipaddr.fromByteArray(Array.from(b.subarray(off, off + 16))).toString();
}

export function toIpv6(a: Uint8Array | string): Uint8Array {
  return typeof a === 'string' ? ipv6FromString(a) : a;
}

/** Writes an IPv6 fixed header at `off`; returns 40. */
export function writeIpv6(b: Uint8Array, off: number, h: Ipv6HeaderSpec): number {
  const tc = h.trafficClass ?? 0;
  const fl = h.flowLabel ?? 0;
  b[off] = 0x60 | (tc >>> 4);
  b[off + 1] = ((tc & 0x0f) << 4) | ((fl >>> 16) & 0x0f);
  b[off + 2] = (fl >>> 8) & 0xff;
  b[off + 3] = fl & 0xff;
  b[off + 4] = (h.payloadLen >>> 8) & 0xff;
  b[off + 5] = h.payloadLen & 0xff;
  b[off + 6] = h.nextHeader;
  b[off + 7] = h.hopLimit ?? 64;
  b.set(toIpv6(h.src), off + IPV6_OFF_SRC);
  b.set(toIpv6(h.dst), off + IPV6_OFF_DST);
  return IPV6_HLEN;
}

/** Writes a fragment extension header at `off` (RFC 8200 s4.5); returns 8. */
export function writeIpv6Frag(b: Uint8Array, off: number, nextHeader: number,
                              fragOffsetBytes: number, more: boolean, ident: number): number {
  const w = (fragOffsetBytes & 0xfff8) | (more ? 1 : 0);
  b[off] = nextHeader;
  b[off + 1] = 0;
  b[off + 2] = w >>> 8;
  b[off + 3] = w & 0xff;
  b[off + 4] = ident >>> 24;
  b[off + 5] = (ident >>> 16) & 0xff;
  b[off + 6] = (ident >>> 8) & 0xff;
  b[off + 7] = ident & 0xff;
  return IPV6_FRAG_HLEN;
}
