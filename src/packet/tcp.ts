/**
 * TCP header (RFC 793 s3.1, RFC 9293 s3.1) over Uint8Array, no copying.
 *
 * Who calls: packet/flowkey.ts (constants), dpif/ actions and conntrack (ports, flags, port
 * rewrite with incremental checksum), tests and tools (builders).
 *
 * Layout: 0 sport  2 dport  4 seq  8 ack  12 data offset(4)|reserved(3)|NS  13 flags
 *         14 window  16 checksum  18 urgent pointer  20 options
 * tcp_flags as OVS keeps them: the low 12 bits of the 16-bit word at +12 (NS and the
 * reserved bits included), so FIN = 0x001, SYN = 0x002, RST = 0x004, ACK = 0x010.
 */
import { Stop } from './stop';
import { csumPatch16 } from './checksum';
import { IP_PROTO_TCP } from './ipv4';
import { Ip4FrameSpec, Ip6FrameSpec, buildIpv4Frame, buildIpv6Frame } from './build';

export const TCP_MIN_HLEN = 20;
export const TCP_OFF_SPORT = 0;
export const TCP_OFF_DPORT = 2;
export const TCP_OFF_SEQ = 4;
export const TCP_OFF_ACK = 8;
export const TCP_OFF_DOFF = 12;
export const TCP_OFF_FLAGS = 13;
export const TCP_OFF_WINDOW = 14;
export const TCP_OFF_CSUM = 16;
export const TCP_OFF_URG = 18;

export const TCP_FIN = 0x001;
export const TCP_SYN = 0x002;
export const TCP_RST = 0x004;
export const TCP_PSH = 0x008;
export const TCP_ACK = 0x010;
export const TCP_URG = 0x020;
export const TCP_ECE = 0x040;
export const TCP_CWR = 0x080;
export const TCP_NS = 0x100;
export const TCP_FLAGS_MASK = 0x0fff;

export function tcpSrcPort(b: Uint8Array, off: number): number { return (b[off] << 8) | b[off + 1]; }
export function tcpDstPort(b: Uint8Array, off: number): number { return (b[off + 2] << 8) | b[off + 3]; }
export function tcpSeq(b: Uint8Array, off: number): number {
  return ((b[off + 4] << 24) | (b[off + 5] << 16) | (b[off + 6] << 8) | b[off + 7]) >>> 0;
}
export function tcpAck(b: Uint8Array, off: number): number {
  return ((b[off + 8] << 24) | (b[off + 9] << 16) | (b[off + 10] << 8) | b[off + 11]) >>> 0;
}
/** Header length in bytes (data offset * 4). */
export function tcpHeaderLen(b: Uint8Array, off: number): number { return (b[off + 12] >>> 4) << 2; }
export function tcpFlags(b: Uint8Array, off: number): number {
  return ((b[off + 12] << 8) | b[off + 13]) & TCP_FLAGS_MASK;
}
export function tcpWindow(b: Uint8Array, off: number): number { return (b[off + 14] << 8) | b[off + 15]; }

/** Checks a TCP header in b[off, off+len) (len = IP payload left): RFC 793 s3.1 data offset. */
export function tcpCheck(b: Uint8Array, off: number, len: number): Stop {
  if (len < TCP_MIN_HLEN) return Stop.TruncatedTcp;
  const hl = (b[off + 12] >>> 4) << 2;
  if (hl < TCP_MIN_HLEN) return Stop.BadTcpOffset;
  if (hl > len) return Stop.TruncatedTcp;
  return Stop.Ok;
}

export interface TcpHeaderSpec {
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  urgent?: number;
  /** TCP options, padded by the caller to a multiple of 4 bytes. */
  tcpOptions?: Uint8Array;
}

/** Writes a TCP header with checksum 0 at `off`; returns the header length. */
export function writeTcp(b: Uint8Array, off: number, h: TcpHeaderSpec): number {
  const optLen = h.tcpOptions === undefined ? 0 : h.tcpOptions.length;
  const hl = TCP_MIN_HLEN + optLen;
  const seq = h.seq ?? 0, ack = h.ack ?? 0, flags = h.flags ?? 0;
  const win = h.window ?? 65535, urg = h.urgent ?? 0;
  b[off] = h.sport >>> 8; b[off + 1] = h.sport & 0xff;
  b[off + 2] = h.dport >>> 8; b[off + 3] = h.dport & 0xff;
  b[off + 4] = seq >>> 24; b[off + 5] = (seq >>> 16) & 0xff; b[off + 6] = (seq >>> 8) & 0xff; b[off + 7] = seq & 0xff;
  b[off + 8] = ack >>> 24; b[off + 9] = (ack >>> 16) & 0xff; b[off + 10] = (ack >>> 8) & 0xff; b[off + 11] = ack & 0xff;
  b[off + 12] = ((hl >>> 2) << 4) | ((flags >>> 8) & 0x0f);
  b[off + 13] = flags & 0xff;
  b[off + 14] = win >>> 8; b[off + 15] = win & 0xff;
  b[off + 16] = 0; b[off + 17] = 0;
  b[off + 18] = urg >>> 8; b[off + 19] = urg & 0xff;
  if (h.tcpOptions !== undefined) b.set(h.tcpOptions, off + TCP_MIN_HLEN);
  return hl;
}

/** Sets the source port of the TCP header at `off`, patching its checksum (RFC 1624). */
export function tcpSetSrcPort(b: Uint8Array, off: number, port: number): void {
  const old = (b[off] << 8) | b[off + 1];
  b[off] = port >>> 8; b[off + 1] = port & 0xff;
  csumPatch16(b, off + TCP_OFF_CSUM, old, port);
}

/** Sets the destination port of the TCP header at `off`, patching its checksum (RFC 1624). */
export function tcpSetDstPort(b: Uint8Array, off: number, port: number): void {
  const old = (b[off + 2] << 8) | b[off + 3];
  b[off + 2] = port >>> 8; b[off + 3] = port & 0xff;
  csumPatch16(b, off + TCP_OFF_CSUM, old, port);
}

export interface TcpSpec extends TcpHeaderSpec {
  payload?: Uint8Array;
}

function tcpSegment(t: TcpSpec): Uint8Array {
  const payload = t.payload ?? new Uint8Array(0);
  const optLen = t.tcpOptions === undefined ? 0 : t.tcpOptions.length;
  const seg = new Uint8Array(TCP_MIN_HLEN + optLen + payload.length);
  const hl = writeTcp(seg, 0, t);
  seg.set(payload, hl);
  return seg;
}

/** Allocates Ethernet + IPv4 + TCP with both checksums. Not for the hot path. */
export function buildTcp4Frame(spec: Ip4FrameSpec & TcpSpec): Uint8Array {
  return buildIpv4Frame(spec, IP_PROTO_TCP, tcpSegment(spec));
}

/** Allocates Ethernet + IPv6 + TCP with its checksum. Not for the hot path. */
export function buildTcp6Frame(spec: Ip6FrameSpec & TcpSpec): Uint8Array {
  return buildIpv6Frame(spec, IP_PROTO_TCP, tcpSegment(spec));
}
