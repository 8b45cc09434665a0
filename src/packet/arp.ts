/**
 * ARP for Ethernet/IPv4 (RFC 826) over Uint8Array, no copying.
 *
 * Who calls: packet/flowkey.ts (offsets), dvr/ and dpif/ for the router's ARP answers
 * (writeArp into a reply template), tests and tools (buildArpFrame).
 *
 * Layout (RFC 826 "Packet format", 28 bytes for Ethernet/IPv4):
 *   0 htype(2)=1  2 ptype(2)=0x0800  4 hlen(1)=6  5 plen(1)=4  6 op(2)
 *   8 sha(6)  14 spa(4)  18 tha(6)  24 tpa(4)
 * Offsets are absolute indices into `b`; readers assume arpCheck returned Ok.
 */
import { Stop } from './stop';
import { ETH_TYPE_ARP, buildEthFrame, toMac } from './ethernet';
import { wr32 } from './bytes';

export const ARP_LEN = 28;
export const ARP_OFF_HTYPE = 0;
export const ARP_OFF_PTYPE = 2;
export const ARP_OFF_HLEN = 4;
export const ARP_OFF_PLEN = 5;
export const ARP_OFF_OP = 6;
export const ARP_OFF_SHA = 8;
export const ARP_OFF_SPA = 14;
export const ARP_OFF_THA = 18;
export const ARP_OFF_TPA = 24;
export const ARP_HTYPE_ETHERNET = 1;
export const ARP_OP_REQUEST = 1;
export const ARP_OP_REPLY = 2;

export function arpOp(b: Uint8Array, off: number): number {
  return (b[off + 6] << 8) | b[off + 7];
}

export function arpSpa(b: Uint8Array, off: number): number {
  return ((b[off + 14] << 24) | (b[off + 15] << 16) | (b[off + 16] << 8) | b[off + 17]) >>> 0;
}

export function arpTpa(b: Uint8Array, off: number): number {
  return ((b[off + 24] << 24) | (b[off + 25] << 16) | (b[off + 26] << 8) | b[off + 27]) >>> 0;
}

/** True when the ARP at `off` is Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4). */
export function arpIsEthIpv4(b: Uint8Array, off: number): boolean {
  return b[off] === 0 && b[off + 1] === ARP_HTYPE_ETHERNET && b[off + 2] === 0x08 &&
    b[off + 3] === 0x00 && b[off + 4] === 6 && b[off + 5] === 4;
}

/**
 * Checks the ARP body in b[off, off+len): TruncatedArp when shorter than 28 bytes,
 * ArpNotEthIpv4 (forward, not a drop) for other hardware/protocol pairs.
 */
export function arpCheck(b: Uint8Array, off: number, len: number): Stop {
  if (len < 8) return Stop.TruncatedArp;                   // RFC 826: fixed part
  if (!arpIsEthIpv4(b, off)) return Stop.ArpNotEthIpv4;
  if (len < ARP_LEN) return Stop.TruncatedArp;             // RFC 826: 2*6 + 2*4 addresses
  return Stop.Ok;
}


/** Writes an Ethernet/IPv4 ARP body at `off` (addresses as host-order numbers); returns 28. */
export function writeArp(b: Uint8Array, off: number, op: number, sha: Uint8Array, spa: number,
                         tha: Uint8Array, tpa: number): number {
  b[off] = 0; b[off + 1] = ARP_HTYPE_ETHERNET;
  b[off + 2] = 0x08; b[off + 3] = 0x00;
  b[off + 4] = 6; b[off + 5] = 4;
  b[off + 6] = op >>> 8; b[off + 7] = op & 0xff;
  for (let i = 0; i < 6; i++) {
    b[off + ARP_OFF_SHA + i] = sha[i];
    b[off + ARP_OFF_THA + i] = tha[i];
  }
  wr32(b, off + ARP_OFF_SPA, spa);
  wr32(b, off + ARP_OFF_TPA, tpa);
  return ARP_LEN;
}

export interface ArpFrameSpec {
  op: number;
  /** Ethernet source; defaults to sha. */
  ethSrc?: Uint8Array | string;
  /** Ethernet destination; defaults to broadcast for a request, tha for a reply. */
  ethDst?: Uint8Array | string;
  sha: Uint8Array | string;
  spa: number;
  tha?: Uint8Array | string;
  tpa: number;
  vlanTci?: number;
  pad?: boolean;
}

/** Allocates an ARP frame. Not for the hot path. */
export function buildArpFrame(spec: ArpFrameSpec): Uint8Array {
  const sha = toMac(spec.sha);
  const tha = toMac(spec.tha ?? '00:00:00:00:00:00');
  const body = new Uint8Array(ARP_LEN);
  writeArp(body, 0, spec.op, sha, spec.spa, tha, spec.tpa);
  const dst = spec.ethDst ?? (spec.op === ARP_OP_REQUEST ? 'ff:ff:ff:ff:ff:ff' : tha);
  return buildEthFrame({
    dst, src: spec.ethSrc ?? sha, etherType: ETH_TYPE_ARP, payload: body,
    vlanTci: spec.vlanTci, pad: spec.pad,
  });
}
