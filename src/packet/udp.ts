/**
 * UDP header (RFC 768) over Uint8Array, no copying.
 *
 * Who calls: packet/flowkey.ts (constants), dpif/ actions (port rewrite with incremental
 * checksum), netdev/vxlan encap (outer UDP template), tests and tools (builders).
 *
 * Layout: 0 source port  2 destination port  4 length (header + data)  6 checksum
 * Checksum 0 means "none" over IPv4 (RFC 768); over IPv6 it is mandatory (RFC 8200 s8.1).
 */
import { Stop } from './stop';
import { udpCsumPatch16 } from './checksum';
import { IP_PROTO_UDP } from './ipv4';
import { Ip4FrameSpec, Ip6FrameSpec, buildIpv4Frame, buildIpv6Frame } from './build';

export const UDP_HLEN = 8;
export const UDP_OFF_SPORT = 0;
export const UDP_OFF_DPORT = 2;
export const UDP_OFF_LEN = 4;
export const UDP_OFF_CSUM = 6;

export function udpSrcPort(b: Uint8Array, off: number): number { return (b[off] << 8) | b[off + 1]; }
export function udpDstPort(b: Uint8Array, off: number): number { return (b[off + 2] << 8) | b[off + 3]; }
export function udpLength(b: Uint8Array, off: number): number { return (b[off + 4] << 8) | b[off + 5]; }
export function udpChecksumField(b: Uint8Array, off: number): number { return (b[off + 6] << 8) | b[off + 7]; }

/**
 * Checks a UDP header in b[off, off+len) where len is the IP payload left: 8 bytes and a
 * length field between 8 and len (RFC 768 "Length ... minimum value of the length is eight").
 */
export function udpCheck(b: Uint8Array, off: number, len: number): Stop {
  if (len < UDP_HLEN) return Stop.TruncatedUdp;
  const ulen = (b[off + 4] << 8) | b[off + 5];
  if (ulen < UDP_HLEN || ulen > len) return Stop.BadUdpLength;
  return Stop.Ok;
}

/** Writes a UDP header with checksum 0 at `off`; `payloadLen` excludes the header. Returns 8. */
export function writeUdp(b: Uint8Array, off: number, sport: number, dport: number,
                         payloadLen: number): number {
  const ulen = UDP_HLEN + payloadLen;
  b[off] = sport >>> 8; b[off + 1] = sport & 0xff;
  b[off + 2] = dport >>> 8; b[off + 3] = dport & 0xff;
  b[off + 4] = (ulen >>> 8) & 0xff; b[off + 5] = ulen & 0xff;
  b[off + 6] = 0; b[off + 7] = 0;
  return UDP_HLEN;
}

/** Sets the source port of the UDP header at `off`, patching its checksum (0 stays 0). */
export function udpSetSrcPort(b: Uint8Array, off: number, port: number): void {
  const old = (b[off] << 8) | b[off + 1];
  b[off] = port >>> 8; b[off + 1] = port & 0xff;
  udpCsumPatch16(b, off + 6, old, port);
}

/** Sets the destination port of the UDP header at `off`, patching its checksum (0 stays 0). */
export function udpSetDstPort(b: Uint8Array, off: number, port: number): void {
  const old = (b[off + 2] << 8) | b[off + 3];
  b[off + 2] = port >>> 8; b[off + 3] = port & 0xff;
  udpCsumPatch16(b, off + 6, old, port);
}

export interface UdpSpec {
  sport: number;
  dport: number;
  payload?: Uint8Array;
  /** Leave the checksum 0 ("none"), IPv4 only. */
  noChecksum?: boolean;
}

function udpSegment(u: UdpSpec): Uint8Array {
  const payload = u.payload ?? new Uint8Array(0);
  const seg = new Uint8Array(UDP_HLEN + payload.length);
  writeUdp(seg, 0, u.sport, u.dport, payload.length);
  seg.set(payload, UDP_HLEN);
  return seg;
}

/** Allocates Ethernet + IPv4 + UDP with both checksums. Not for the hot path. */
export function buildUdp4Frame(spec: Ip4FrameSpec & UdpSpec): Uint8Array {
  return buildIpv4Frame(spec, IP_PROTO_UDP, udpSegment(spec), spec.noChecksum !== true);
}

/** Allocates Ethernet + IPv6 + UDP with its checksum. Not for the hot path. */
export function buildUdp6Frame(spec: Ip6FrameSpec & UdpSpec): Uint8Array {
  return buildIpv6Frame(spec, IP_PROTO_UDP, udpSegment(spec));
}
