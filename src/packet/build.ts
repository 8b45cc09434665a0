/**
 * Whole-frame builders shared by the protocol modules: Ethernet (+ optional 802.1Q tag) +
 * IPv4 or IPv6 + an upper-layer segment the caller already laid out, with the L4 checksum
 * filled in.
 *
 * Who calls: udp.ts, tcp.ts, icmp.ts, vxlan.ts, gre.ts builders; tests, tools, replay demos.
 * These allocate a fresh Uint8Array per call: never use them per packet on the datapath.
 */
import { ETH_HLEN, ETH_TYPE_IPV4, ETH_TYPE_IPV6, VLAN_HLEN, ETH_TYPE_VLAN, toMac, writeEth,
  writeVlanTag } from './ethernet';
import { IP_PROTO_ICMP, IP_PROTO_ICMPV6, IP_PROTO_TCP, IP_PROTO_UDP, Ipv4HeaderSpec, toIpv4, writeIpv4 } from './ipv4';
import { IPV6_HLEN, writeIpv6 } from './ipv6';
import { l4SetChecksum4, l4SetChecksum6 } from './checksum';

/** L2 part of a built frame. */
export interface L2Spec {
  ethSrc?: Uint8Array | string;
  ethDst?: Uint8Array | string;
  /** One 802.1Q tag with this TCI when set. */
  vlanTci?: number;
}

/** An IPv4 frame: the header fields of ipv4.ts writeIpv4 (addresses also as text), less what the builder fills in. */
export interface Ip4FrameSpec extends L2Spec, Omit<Ipv4HeaderSpec, 'src' | 'dst' | 'proto' | 'payloadLen'> {
  src: number | string;
  dst: number | string;
}

export interface Ip6FrameSpec extends L2Spec {
  src: Uint8Array | string;
  dst: Uint8Array | string;
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
  /** Extension headers placed before the segment; their first next-header is `extProto`. */
  ext?: Uint8Array;
  extProto?: number;
}

export const DEFAULT_SRC_MAC = '02:00:00:00:00:01';
export const DEFAULT_DST_MAC = '02:00:00:00:00:02';

function writeL2(b: Uint8Array, spec: L2Spec, etherType: number): number {
  const dst = toMac(spec.ethDst ?? DEFAULT_DST_MAC);
  const src = toMac(spec.ethSrc ?? DEFAULT_SRC_MAC);
  if (spec.vlanTci === undefined) return writeEth(b, 0, dst, src, etherType);
  writeEth(b, 0, dst, src, ETH_TYPE_VLAN);
  writeVlanTag(b, 12, ETH_TYPE_VLAN, spec.vlanTci, etherType);
  return ETH_HLEN + VLAN_HLEN;
}

function l2Len(spec: L2Spec): number {
  return ETH_HLEN + (spec.vlanTci === undefined ? 0 : VLAN_HLEN);
}

function hasCsum(proto: number): boolean {
  return proto === IP_PROTO_TCP || proto === IP_PROTO_UDP || proto === IP_PROTO_ICMP ||
    proto === IP_PROTO_ICMPV6;
}

/**
 * Builds Ethernet + IPv4 + `l4` (copied). When `fillCsum` and the protocol has a checksum,
 * the checksum field inside the copy is computed (a later fragment has no L4 header, so
 * callers pass false for it).
 */
export function buildIpv4Frame(spec: Ip4FrameSpec, proto: number, l4: Uint8Array,
                               fillCsum = true): Uint8Array {
  const optLen = spec.options === undefined ? 0 : spec.options.length;
  const b = new Uint8Array(l2Len(spec) + 20 + optLen + l4.length);
  const ipOff = writeL2(b, spec, ETH_TYPE_IPV4);
  const hl = writeIpv4(b, ipOff, {
    src: toIpv4(spec.src), dst: toIpv4(spec.dst), proto, payloadLen: l4.length,
    ttl: spec.ttl, tos: spec.tos, id: spec.id, df: spec.df, mf: spec.mf,
    fragOffsetBytes: spec.fragOffsetBytes, options: spec.options,
  });
  b.set(l4, ipOff + hl);
  if (fillCsum && hasCsum(proto)) l4SetChecksum4(b, ipOff, ipOff + hl, l4.length, proto);
  return b;
}

/** Builds Ethernet + IPv6 (+ `ext`) + `l4` (copied), with the L4 checksum computed. */
export function buildIpv6Frame(spec: Ip6FrameSpec, proto: number, l4: Uint8Array,
                               fillCsum = true): Uint8Array {
  const extLen = spec.ext === undefined ? 0 : spec.ext.length;
  const b = new Uint8Array(l2Len(spec) + IPV6_HLEN + extLen + l4.length);
  const ipOff = writeL2(b, spec, ETH_TYPE_IPV6);
  writeIpv6(b, ipOff, {
    src: spec.src, dst: spec.dst, nextHeader: spec.ext === undefined ? proto : (spec.extProto ?? 0),
    payloadLen: extLen + l4.length, hopLimit: spec.hopLimit, trafficClass: spec.trafficClass,
    flowLabel: spec.flowLabel,
  });
  if (spec.ext !== undefined) b.set(spec.ext, ipOff + IPV6_HLEN);
  const l4Off = ipOff + IPV6_HLEN + extLen;
  b.set(l4, l4Off);
  if (fillCsum && hasCsum(proto)) l4SetChecksum6(b, ipOff, l4Off, l4.length, proto);
  return b;
}
