/**
 * Receive side of VXLAN and GRE tunnel ports: classify a frame seen on the underlay
 * interface, validate its outer headers as OVS's userspace tunnel receive does, strip them in
 * place and record the tunnel metadata (tun_id = VNI or GRE key, tun_src, tun_dst).
 *
 * Called by: netdev/underlay.ts once per received frame (and tests with literal frames). A
 * VXLAN UDP GSO frame the underlay's socket kept whole (vnet UDP_L4) is decapsulated like one
 * datagram: the slot then holds its inner frames, gso_size apart with their VXLAN headers in
 * between, which the underlay's coalesce walks (native-notes/tunnel-gso.md).
 * Frames that are not tunnel traffic for this node (ARP, other IP, other ports) are
 * Decap.NotTunnel: the kernel handles them, flowd neither counts nor drops them.
 *
 * Checks, each with its own drop reason (OVS: netdev-native-tnl.c ip_extract_tnl_md and
 * udp_extract_tnl_md, RFC 7348 s5, RFC 2890 s2):
 * - outer IPv4 header checksum must verify;
 * - no IPv4 options (IHL 5) and no fragments (a tunnel packet is never reassembled here);
 * - UDP checksum, if non-zero, must verify (RFC 768: zero means "none"), unless the frame's
 *   vnet header says the kernel made it (NEEDS_CSUM) or the addon finished it (DATA_VALID);
 * - VXLAN: flags byte exactly 0x08 (only I), reserved bits zero (bytes 1-3 and 7);
 * - GRE: version 0, no routing/strict-route bits, protocol 0x6558 (transparent Ethernet
 *   bridging), checksum verified when the C bit is set; the key (if present) is tun_id.
 */
import { PacketBatch, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, VNET_HDR_BYTES } from './batch';
import { ipv4ChecksumOk, l4ChecksumOk4 } from '../packet/checksum';
import { checkGre, greHasCsum, greHasKey, greHeaderLen, greKey, greProto, greChecksumOk } from '../packet/gre';

export enum Decap {
  Ok = 0,
  NotTunnel,
  Truncated,
  BadOuterIpChecksum,
  OuterIpOptions,
  OuterIpFragment,
  BadUdpChecksum,
  BadVxlanFlags,
  VxlanReservedBits,
  BadGreHeader,
  GreNotTeb,
  BadGreChecksum,
  /** Never returned by decapTunnel: an inner frame of a VXLAN UDP GSO frame the underlay
   *  could not take (its VXLAN header differs from the first datagram's, or it is empty). */
  GsoSubframe,
}

export const DECAP_NAMES: readonly string[] = [
  'ok', 'not_tunnel', 'tunnel_truncated', 'tunnel_bad_ip_checksum', 'tunnel_ip_options',
  'tunnel_ip_fragment', 'tunnel_bad_udp_checksum', 'tunnel_bad_vxlan_flags',
  'tunnel_vxlan_reserved_bits', 'tunnel_bad_gre_header', 'tunnel_gre_not_teb',
  'tunnel_bad_gre_checksum', 'tunnel_gso_bad_datagram',
];
export const N_DECAP = DECAP_NAMES.length;

const ETH_HLEN = 14;
const IP_HLEN = 20;

/**
 * True when frame `i`'s L4 checksum needs no verification: its vnet header says the sender's
 * kernel generated it (NEEDS_CSUM: still partial) or the addon finished it from such a frame
 * (DATA_VALID: netdev/underlay.ts opens its socket with markValid).
 */
function csumTrusted(batch: PacketBatch, i: number): boolean {
  return batch.vnet !== null && (batch.vnet[i * VNET_HDR_BYTES] & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) !== 0;
}

/** True when frame `i` was made on this host (its checksum still partial: vnet NEEDS_CSUM). */
function localMade(batch: PacketBatch, i: number): boolean {
  return batch.vnet !== null && (batch.vnet[i * VNET_HDR_BYTES] & VNET_F_NEEDS_CSUM) !== 0;
}

/**
 * Decapsulates frame `i` of `batch` if it is VXLAN to (localIp, vxlanPort) or GRE to localIp.
 * On Ok the slot holds the inner frame and tunIdHi/Lo, tunSrc, tunDst are set; `kindOut[0]`
 * is 1 for VXLAN, 2 for GRE; `kindOut[1]` (when kindOut has room) is 1 when the inner frame's
 * bytes are vouched for: made on this host (vnet NEEDS_CSUM) or covered by a non-zero outer
 * UDP checksum that was verified or marked valid. Never throws, never reads outside the frame.
 */
export function decapTunnel(batch: PacketBatch, i: number, localIp: number, vxlanPort: number,
                            kindOut: Uint8Array): Decap {
  const b = batch.buf;
  const off = batch.off[i];
  const len = batch.len[i];
  if (len < ETH_HLEN + IP_HLEN) return Decap.NotTunnel;
  let ip = off + ETH_HLEN;
  let et = (b[off + 12] << 8) | b[off + 13];
  if (et === 0x8100) { // an underlay VLAN tag
    if (len < ETH_HLEN + 4 + IP_HLEN) return Decap.NotTunnel;
    et = (b[off + 16] << 8) | b[off + 17];
    ip += 4;
  }
  if (et !== 0x0800 || (b[ip] >>> 4) !== 4) return Decap.NotTunnel;
  const dst = ((b[ip + 16] << 24) | (b[ip + 17] << 16) | (b[ip + 18] << 8) | b[ip + 19]) >>> 0;
  if (dst !== localIp) return Decap.NotTunnel;
  const proto = b[ip + 9];
  const end = off + len;
  let l4 = 0;
  if (proto === 17) {
    l4 = ip + ((b[ip] & 0x0f) << 2);
    if (l4 + 4 > end) return Decap.NotTunnel;
    if (((b[l4 + 2] << 8) | b[l4 + 3]) !== vxlanPort) return Decap.NotTunnel;
  } else if (proto !== 47) {
    return Decap.NotTunnel;
  }
  // From here on it is tunnel traffic for us: every failure is a counted drop.
  if ((b[ip] & 0x0f) !== 5) return Decap.OuterIpOptions;
  const totLen = (b[ip + 2] << 8) | b[ip + 3];
  if (totLen < IP_HLEN || ip + totLen > end) return Decap.Truncated;
  if (!ipv4ChecksumOk(b, ip)) return Decap.BadOuterIpChecksum;
  if ((((b[ip + 6] << 8) | b[ip + 7]) & 0x3fff) !== 0) return Decap.OuterIpFragment; // MF or offset
  const ipEnd = ip + totLen; // ignore Ethernet padding after the IP packet
  let inner = 0;
  let tunLo = 0;
  if (proto === 17) {
    l4 = ip + IP_HLEN;
    if (l4 + 16 > ipEnd) return Decap.Truncated; // RFC 7348 s5: UDP 8 + VXLAN 8
    const udpLen = (b[l4 + 4] << 8) | b[l4 + 5];
    if (udpLen < 16 || l4 + udpLen > ipEnd) return Decap.Truncated;
    const udpCsum = (b[l4 + 6] | b[l4 + 7]) !== 0;
    if (udpCsum && !csumTrusted(batch, i) && !l4ChecksumOk4(b, ip, l4, udpLen, 17)) {
      return Decap.BadUdpChecksum;
    }
    if (kindOut.length > 1) kindOut[1] = udpCsum || localMade(batch, i) ? 1 : 0;
    const v = l4 + 8;
    if (b[v] !== 0x08) return Decap.BadVxlanFlags;                       // s5: I flag only
    if ((b[v + 1] | b[v + 2] | b[v + 3] | b[v + 7]) !== 0) return Decap.VxlanReservedBits;
    tunLo = (b[v + 4] << 16) | (b[v + 5] << 8) | b[v + 6];
    inner = v + 8;
    kindOut[0] = 1;
  } else {
    const g = ip + IP_HLEN;
    if (checkGre(b, g, ipEnd - g) !== 0) return Decap.BadGreHeader;
    if (greProto(b, g) !== 0x6558) return Decap.GreNotTeb;
    if (greHasCsum(b, g) && !greChecksumOk(b, g, ipEnd - g)) return Decap.BadGreChecksum;
    if (kindOut.length > 1) kindOut[1] = greHasCsum(b, g) || localMade(batch, i) ? 1 : 0;
    tunLo = greHasKey(b, g) ? greKey(b, g) >>> 0 : 0;
    inner = g + greHeaderLen(b, g);
    kindOut[0] = 2;
  }
  if (inner + ETH_HLEN > ipEnd) return Decap.Truncated;
  batch.tunIdHi[i] = 0;
  batch.tunIdLo[i] = tunLo;
  batch.tunSrc[i] = ((b[ip + 12] << 24) | (b[ip + 13] << 16) | (b[ip + 14] << 8) | b[ip + 15]) >>> 0;
  batch.tunDst[i] = dst;
  batch.off[i] = inner;
  batch.len[i] = ipEnd - inner;
  return Decap.Ok;
}
