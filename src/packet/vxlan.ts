/**
 * VXLAN header (RFC 7348 s5) over Uint8Array, no copying.
 *
 * Who calls: netdev/ vxlan port (checkVxlan + vxlanVni on decap, writeVxlan into the encap
 * template built once per (tunnel, VNI)), packet/flowkey.ts (checkVxlan for frames to UDP
 * port 4789), tests and tools (buildVxlanFrame).
 *
 * Layout: 0 flags (R R R R I R R R)  1 reserved(24)  4 VNI(24)  7 reserved(8)
 * RFC 7348 s5: the I flag MUST be 1 for a valid VNI; the other bits are sent as zero and
 * ignored on receipt, so only I is checked. Outer overhead on Ethernet/IPv4: 14 + 20 + 8 + 8
 * = 50 bytes, as Neutron counts it.
 */
import { Stop } from './stop';
import { ETH_HLEN } from './ethernet';
import { IP_PROTO_UDP } from './ipv4';
import { UDP_HLEN, writeUdp } from './udp';
import { Ip4FrameSpec, buildIpv4Frame } from './build';

export const VXLAN_HLEN = 8;
/** IANA-assigned destination port (RFC 7348 s5, "Destination Port"). */
export const VXLAN_PORT = 4789;
export const VXLAN_FLAG_I = 0x08;
/** Outer Ethernet + IPv4 + UDP + VXLAN. */
export const VXLAN_OVERHEAD = ETH_HLEN + 20 + UDP_HLEN + VXLAN_HLEN;

/**
 * Checks the VXLAN header in b[off, off+len): 8 bytes (RFC 7348 s5) with the I flag set.
 * Never reads outside the range.
 */
export function checkVxlan(b: Uint8Array, off: number, len: number): Stop {
  if (len < VXLAN_HLEN) return Stop.TruncatedVxlan;            // RFC 7348 s5: 8-byte header
  if ((b[off] & VXLAN_FLAG_I) === 0) return Stop.BadVxlanFlags; // s5: I flag must be set
  return Stop.Ok;
}

/** The 24-bit VNI of the header at `off`. */
export function vxlanVni(b: Uint8Array, off: number): number {
  return (b[off + 4] << 16) | (b[off + 5] << 8) | b[off + 6];
}

/** Writes a VXLAN header (I flag, `vni`) at `off`; returns 8. */
export function writeVxlan(b: Uint8Array, off: number, vni: number): number {
  b[off] = VXLAN_FLAG_I; b[off + 1] = 0; b[off + 2] = 0; b[off + 3] = 0;
  b[off + 4] = (vni >>> 16) & 0xff; b[off + 5] = (vni >>> 8) & 0xff; b[off + 6] = vni & 0xff;
  b[off + 7] = 0;
  return VXLAN_HLEN;
}

export interface VxlanSpec {
  vni: number;
  /** The inner Ethernet frame. */
  inner: Uint8Array;
  /** Outer UDP source port (RFC 7348 s5 recommends a hash of the inner headers). */
  sport?: number;
  dport?: number;
  /** Compute the outer UDP checksum; RFC 7348 s5 says it SHOULD be zero, the default. */
  udpChecksum?: boolean;
}

/** Allocates outer Ethernet + IPv4 + UDP + VXLAN + `inner`. Not for the hot path. */
export function buildVxlanFrame(spec: Ip4FrameSpec & VxlanSpec): Uint8Array {
  const seg = new Uint8Array(UDP_HLEN + VXLAN_HLEN + spec.inner.length);
  writeUdp(seg, 0, spec.sport ?? 49152, spec.dport ?? VXLAN_PORT, VXLAN_HLEN + spec.inner.length);
  writeVxlan(seg, UDP_HLEN, spec.vni);
  seg.set(spec.inner, UDP_HLEN + VXLAN_HLEN);
  return buildIpv4Frame(spec, IP_PROTO_UDP, seg, spec.udpChecksum === true);
}
