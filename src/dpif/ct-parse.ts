/**
 * Conntrack's view of one frame: where the IPv4 and L4 headers are and the connection tuple
 * they carry, plus, for an ICMP error, the tuple of the packet it quotes.
 *
 * Who calls: dpif/conntrack.ts, once per ct() execution on a frame, at the L3 offset the
 * datapath's parse recorded (ctL3FromKey, from dpif/stages.ts and dpif/datapath.ts) or, for a
 * frame nobody parsed (slow path, tests), after walking its L2 headers. Never allocates: the result
 * goes into a CtPacket the caller made once (conntrack keeps one per table).
 *
 * The tuple: (src, dst, sport, dport, proto). Ports are TCP/UDP ports. For ICMP the echo id
 * stands in for a port (as in Linux and OVS): an echo request carries it as sport (dport 0),
 * an echo reply as dport (sport 0), so the reply of (A, B, id, 0) is (B, A, 0, id), which is
 * exactly the inverse tuple. Other protocols have ports 0 (address-only tracking).
 *
 * What is not tracked, returned as a CtParse code (conntrack marks the packet +trk+inv):
 * non-IPv4 frames (IPv6 conntrack is a known gap), IPv4 fragments (no reassembly, unlike OVS's
 * ipf module), truncated headers, ICMP types other than echo request/reply and the errors
 * below, and errors quoting a fragment or another error.
 * ICMP errors understood (RFC 792): destination unreachable (3, frag-needed is code 4),
 * source quench (4), redirect (5), time exceeded (11), parameter problem (12).
 */
import { NW_FRAG_ANY, W } from '../packet/flowkey-layout';
import { Off } from '../packet/flowkey';

export enum CtParse {
  Ok = 0,
  NotIpv4,
  Truncated,
  Fragment,
  IcmpUnsupported,
  IcmpBadInner,
}

export const CT_PARSE_NAMES: readonly string[] = [
  'ok', 'not_ipv4', 'truncated', 'fragment', 'icmp_unsupported', 'icmp_bad_inner',
];

export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

/** ctL3FromKey's answer for a frame whose parse found an ethertype other than IPv4. */
export const CT_L3_NOT_IPV4 = -2;

/**
 * Where ctParse starts for a frame the datapath already parsed: its key at keys[base...] and the
 * offsets at offs[offBase...] (packet/flowkey.ts Off.L3) give the IPv4 header's offset when it
 * follows the Ethernet header or one VLAN tag directly, CT_L3_NOT_IPV4 for another ethertype
 * there; -1 (walk the frame) for the rest (LLC/SNAP, a second tag), which ctParse's own walk
 * treats as it always did, so both give the same answer for every frame.
 */
export function ctL3FromKey(keys: Uint32Array, base: number, offs: Uint16Array, offBase: number): number {
  const vd = keys[base + W.VLAN_DLTYPE];
  const l3 = offs[offBase + Off.L3];
  if (l3 !== ((vd >>> 16) !== 0 ? 18 : 14)) return -1;
  const et = vd & 0xffff;
  if (et === 0x0800) return l3;
  return et === 0x8100 || et === 0x88a8 ? -1 : CT_L3_NOT_IPV4;
}

/**
 * ctParse for a TCP segment or UDP datagram the datapath parsed: the addresses, ports, fragment
 * bits and TCP flags come from its key (keys[base...]) rather than the frame; the frame gives
 * what the key does not hold (header and total lengths) and is checked exactly as ctParse
 * checks it. `l3` is ctL3FromKey's answer. Returns false, `p` left unspecified, for any other
 * frame (another protocol, an ICMP, unknown L3, a length or fragment ctParse refuses): the
 * caller runs ctParse then, so both give the same answer for every frame.
 */
export function ctParseKeyed(b: Uint8Array, off: number, len: number, keys: Uint32Array, base: number,
                             l3: number, p: CtPacket): boolean {
  const proto = keys[base + W.NW_MISC] >>> 24;
  if (l3 < 0 || (proto !== PROTO_TCP && proto !== PROTO_UDP) || len - l3 < 20) return false;
  const o = off + l3, v = b[o];
  const ihl = (v & 0x0f) << 2, totLen = (b[o + 2] << 8) | b[o + 3];
  if ((v >>> 4) !== 4 || ihl < 20 || totLen < ihl || totLen > len - l3) return false;
  // The key's fragment bits say what the frame's flags/offset word does (extractKey sets
  // NW_FRAG_ANY exactly when MF or the offset is set), and its TCP flags are the frame's.
  if ((keys[base + W.NW_MISC] & NW_FRAG_ANY) !== 0) return false;
  const l4Len = totLen - ihl, l4 = o + ihl;
  if (l4Len < (proto === PROTO_TCP ? 20 : 8)) return false;
  const tp = keys[base + W.TP];
  p.isError = false;
  p.icmpType = 0;
  p.l3 = o;
  p.l4 = l4;
  p.l4Len = l4Len;
  p.proto = proto;
  p.src = keys[base + W.NW_SRC] | 0;
  p.dst = keys[base + W.NW_DST] | 0;
  p.sport = tp >>> 16;
  p.dport = tp & 0xffff;
  p.tcpFlags = proto === PROTO_TCP ? keys[base + W.TCP_FLAGS] : 0;
  return true;
}

/**
 * One parsed frame. All offsets are absolute indexes into the frame's buffer. Addresses are
 * int32 (the bits of the address; `>>> 0` for the unsigned value), so storing and passing
 * them never boxes a number.
 */
export class CtPacket {
  /** IPv4 header, L4 header, and L4 length from the IPv4 total length. */
  l3 = 0;
  l4 = 0;
  l4Len = 0;
  proto = 0;
  src = 0;
  dst = 0;
  sport = 0;
  dport = 0;
  /** TCP flags, low 12 bits. */
  tcpFlags = 0;
  icmpType = 0;
  /** True for an ICMP error; the inner fields below are then valid. */
  isError = false;
  il3 = 0;
  il4 = 0;
  /** Bytes of the inner L4 header present in the quote (at least 8). */
  il4Avail = 0;
  iproto = 0;
  isrc = 0;
  idst = 0;
  isport = 0;
  idport = 0;
  /** Inner ICMP type when the quoted packet is an echo. */
  iIcmpType = 0;
}

function rd16(b: Uint8Array, o: number): number { return (b[o] << 8) | b[o + 1]; }
/** Big-endian 32 bits as int32 (a Smi; conntrack's tuples are int32 throughout). */
function rd32(b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}

/** True for the ICMP types that report an error about a quoted packet (RFC 792). */
export function icmpIsError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/**
 * Parses the frame b[off, off+len) into `p`. Returns CtParse.Ok or why it is not tracked.
 * `l3` is where its L3 header starts, relative to `off`, when the caller already knows it from
 * the frame's parse (ctL3FromKey: the datapath's one parse per frame); -1 walks the L2
 * header(s) here. CT_L3_NOT_IPV4 says the parse found another ethertype.
 */
export function ctParse(b: Uint8Array, off: number, len: number, p: CtPacket, l3Known = -1): CtParse {
  p.isError = false;
  p.sport = 0; p.dport = 0; p.tcpFlags = 0; p.icmpType = 0;
  if (len < 14) return CtParse.Truncated;
  if (l3Known === CT_L3_NOT_IPV4) return CtParse.NotIpv4;
  let o = l3Known;
  if (o < 0) {
    o = 12;
    let et = rd16(b, off + o);
    while ((et === 0x8100 || et === 0x88a8) && o + 6 <= len) { // IEEE 802.1Q / 802.1ad tags
      o += 4;
      et = rd16(b, off + o);
    }
    o += 2;
    if (et !== 0x0800) return CtParse.NotIpv4;
  }
  const l3 = off + o;
  const avail = len - o;
  if (avail < 20) return CtParse.Truncated;                    // RFC 791 s3.1: 20-byte minimum
  const ihl = (b[l3] & 0x0f) << 2;
  if ((b[l3] >>> 4) !== 4) return CtParse.NotIpv4;
  const totLen = rd16(b, l3 + 2);
  if (ihl < 20 || totLen < ihl || totLen > avail) return CtParse.Truncated;
  if ((rd16(b, l3 + 6) & 0x3fff) !== 0) return CtParse.Fragment; // MF set or offset != 0
  p.l3 = l3;
  p.l4 = l3 + ihl;
  p.l4Len = totLen - ihl;
  p.proto = b[l3 + 9];
  p.src = rd32(b, l3 + 12);
  p.dst = rd32(b, l3 + 16);
  const l4 = p.l4;
  switch (p.proto) {
    case PROTO_TCP:
      if (p.l4Len < 20) return CtParse.Truncated;              // RFC 793 s3.1: 20-byte header
      p.sport = rd16(b, l4);
      p.dport = rd16(b, l4 + 2);
      p.tcpFlags = rd16(b, l4 + 12) & 0x0fff;
      return CtParse.Ok;
    case PROTO_UDP:
      if (p.l4Len < 8) return CtParse.Truncated;               // RFC 768: 8-byte header
      p.sport = rd16(b, l4);
      p.dport = rd16(b, l4 + 2);
      return CtParse.Ok;
    case PROTO_ICMP: {
      if (p.l4Len < 8) return CtParse.Truncated;               // RFC 792: type, code, csum, 4 more
      const type = b[l4];
      p.icmpType = type;
      if (type === 8) { p.sport = rd16(b, l4 + 4); return CtParse.Ok; }
      if (type === 0) { p.dport = rd16(b, l4 + 4); return CtParse.Ok; }
      if (!icmpIsError(type)) return CtParse.IcmpUnsupported;
      p.isError = true;
      return parseInner(b, l4 + 8, p.l4Len - 8, p);
    }
    default:
      return CtParse.Ok;
  }
}

/** The quoted packet of an ICMP error: IPv4 header + at least 8 bytes (RFC 792). */
function parseInner(b: Uint8Array, il3: number, avail: number, p: CtPacket): CtParse {
  if (avail < 20) return CtParse.IcmpBadInner;
  const ihl = (b[il3] & 0x0f) << 2;
  if ((b[il3] >>> 4) !== 4 || ihl < 20 || avail < ihl + 8) return CtParse.IcmpBadInner;
  if ((rd16(b, il3 + 6) & 0x1fff) !== 0) return CtParse.IcmpBadInner; // quotes a later fragment
  p.il3 = il3;
  p.il4 = il3 + ihl;
  p.il4Avail = avail - ihl;
  p.iproto = b[il3 + 9];
  p.isrc = rd32(b, il3 + 12);
  p.idst = rd32(b, il3 + 16);
  p.isport = 0; p.idport = 0; p.iIcmpType = 0;
  const il4 = p.il4;
  if (p.iproto === PROTO_TCP || p.iproto === PROTO_UDP) {
    p.isport = rd16(b, il4);
    p.idport = rd16(b, il4 + 2);
  } else if (p.iproto === PROTO_ICMP) {
    const t = b[il4];
    p.iIcmpType = t;
    if (t === 8) p.isport = rd16(b, il4 + 4);
    else if (t === 0) p.idport = rd16(b, il4 + 4);
    else return CtParse.IcmpBadInner; // RFC 1122 3.2.2: no error about an error
  }
  return CtParse.Ok;
}
