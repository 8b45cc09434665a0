/**
 * Ethernet II and 802.1Q headers over Uint8Array (IEEE 802.3, 802.1Q), no copying.
 *
 * Who calls: packet/flowkey.ts (constants), dpif/ actions (VLAN push/pop, MAC rewrites),
 * netdev/ tunnel encap (outer header template), tests and tools (builders).
 *
 * Offsets are absolute indices into `b`. Readers assume the caller checked the length
 * (flowkey.ts does); `ethCheck` is the checked entry for other callers. Writers build into a
 * caller's buffer and return bytes written. `buildEthFrame` and the MAC string helpers
 * allocate and are for tests, tools and control-plane setup only.
 *
 * A MAC kept as numbers is split as OVS's flow key does: hi = first 2 bytes, lo = last 4.
 * QinQ: only the outer tag (TPID 0x8100 or 0x88a8) is parsed; an inner tag is payload.
 */
import { Stop } from './stop';
import { formatMacHiLo, parseMac } from './addr-text';
import { wrMac } from './bytes';

export const ETH_ALEN = 6;
export const ETH_HLEN = 14;
export const VLAN_HLEN = 4;
export const ETH_OFF_DST = 0;
export const ETH_OFF_SRC = 6;
export const ETH_OFF_TYPE = 12;

export const ETH_TYPE_IPV4 = 0x0800;
export const ETH_TYPE_ARP = 0x0806;
export const ETH_TYPE_RARP = 0x8035;
export const ETH_TYPE_VLAN = 0x8100;
export const ETH_TYPE_QINQ = 0x88a8;
export const ETH_TYPE_IPV6 = 0x86dd;
/** Transparent Ethernet bridging, the GRE protocol type for Ethernet payloads (RFC 1701). */
export const ETH_TYPE_TEB = 0x6558;
/** Smallest value that is an ethertype; below it the field is an 802.3 length. */
export const ETH_TYPE_MIN = 0x0600;
/** dl_type OVS gives 802.3 frames without a SNAP ethertype (FLOW_DL_TYPE_NONE). */
export const ETH_TYPE_NONE = 0x05ff;

/** 802.2 LLC + SNAP: DSAP 0xaa, SSAP 0xaa, control 0x03, OUI 00:00:00, then an ethertype. */
export const LLC_SNAP_HLEN = 8;

/** Minimum Ethernet frame without FCS, as seen by software. */
export const ETH_MIN_FRAME = 60;

/** 802.1Q TCI fields. */
export const VLAN_VID_MASK = 0x0fff;
export const VLAN_PCP_SHIFT = 13;

export function ethType(b: Uint8Array, off: number): number {
  return (b[off + 12] << 8) | b[off + 13];
}

/** First 2 bytes of a MAC at `off` (host order). */
export function macHi(b: Uint8Array, off: number): number {
  return (b[off] << 8) | b[off + 1];
}

/** Last 4 bytes of a MAC at `off` (host order, unsigned). */
export function macLo(b: Uint8Array, off: number): number {
  return ((b[off + 2] << 24) | (b[off + 3] << 16) | (b[off + 4] << 8) | b[off + 5]) >>> 0;
}


/** True for the TPIDs flowd parses as a VLAN tag (802.1Q and 802.1ad). */
export function isVlanTpid(type: number): boolean {
  return type === ETH_TYPE_VLAN || type === ETH_TYPE_QINQ;
}

/**
 * Checks that an Ethernet header (and an outer VLAN tag when present) fits in
 * b[off, off+len). Returns Stop.Ok or the truncation reason.
 */
export function ethCheck(b: Uint8Array, off: number, len: number): Stop {
  if (len <= 0) return Stop.ZeroLength;
  if (len < ETH_HLEN) return Stop.TruncatedEth;              // 802.3 s3.1.1: dst, src, type
  if (isVlanTpid(ethType(b, off)) && len < ETH_HLEN + VLAN_HLEN) return Stop.TruncatedVlan;
  return Stop.Ok;
}

/** Writes dst, src and `etherType` at `off`; returns ETH_HLEN. */
export function writeEth(b: Uint8Array, off: number, dst: Uint8Array, src: Uint8Array,
                         etherType: number): number {
  for (let i = 0; i < ETH_ALEN; i++) {
    b[off + i] = dst[i];
    b[off + ETH_ALEN + i] = src[i];
  }
  b[off + 12] = etherType >>> 8;
  b[off + 13] = etherType & 0xff;
  return ETH_HLEN;
}

/** Writes an 802.1Q tag (TPID, TCI, inner ethertype) at `off`; returns VLAN_HLEN + 2 = 6. */
export function writeVlanTag(b: Uint8Array, off: number, tpid: number, tci: number,
                             innerType: number): number {
  b[off] = tpid >>> 8;
  b[off + 1] = tpid & 0xff;
  b[off + 2] = (tci >>> 8) & 0xff;
  b[off + 3] = tci & 0xff;
  b[off + 4] = innerType >>> 8;
  b[off + 5] = innerType & 0xff;
  return 6;
}

/** Parses "aa:bb:cc:dd:ee:ff" (or with '-'); throws on bad syntax (control plane only). */
export function macFromString(s: string): Uint8Array {
  const v = parseMac(s.replace(/-/g, ':'));
  if (v === undefined) throw new Error(`bad MAC address "${s}"`);
  const out = new Uint8Array(ETH_ALEN);
  wrMac(out, 0, Math.floor(v / 0x100000000), v >>> 0);
  return out;
}

/** Formats the MAC at b[off] as "aa:bb:cc:dd:ee:ff" (packet/addr-text.ts). */
export function macToString(b: Uint8Array, off = 0): string {
  return formatMacHiLo((b[off] << 8) | b[off + 1],
    ((b[off + 2] << 24) | (b[off + 3] << 16) | (b[off + 4] << 8) | b[off + 5]) >>> 0);
}

export interface EthFrameSpec {
  dst: Uint8Array | string;
  src: Uint8Array | string;
  etherType: number;
  /** When set, one 802.1Q tag with this TCI (VID | PCP << 13) is inserted. */
  vlanTci?: number;
  /** TPID of that tag, 0x8100 unless given. */
  vlanTpid?: number;
  payload: Uint8Array;
  /** Pad with zeros to 60 bytes (default false: tests want exact lengths). */
  pad?: boolean;
}

export function toMac(m: Uint8Array | string): Uint8Array {
  return typeof m === 'string' ? macFromString(m) : m;
}

/** Allocates an Ethernet frame (optionally tagged) around `payload`. Not for the hot path. */
export function buildEthFrame(spec: EthFrameSpec): Uint8Array {
  const tagged = spec.vlanTci !== undefined;
  const hl = ETH_HLEN + (tagged ? VLAN_HLEN : 0);
  let n = hl + spec.payload.length;
  if (spec.pad === true && n < ETH_MIN_FRAME) n = ETH_MIN_FRAME;
  const b = new Uint8Array(n);
  if (tagged) {
    writeEth(b, 0, toMac(spec.dst), toMac(spec.src), spec.vlanTpid ?? ETH_TYPE_VLAN);
    writeVlanTag(b, 12, spec.vlanTpid ?? ETH_TYPE_VLAN, spec.vlanTci ?? 0, spec.etherType);
  } else {
    writeEth(b, 0, toMac(spec.dst), toMac(spec.src), spec.etherType);
  }
  b.set(spec.payload, hl);
  return b;
}
