/**
 * IPv4 and MAC helpers for the DVR model: prefixes and CIDRs, MACs as numbers, and the hex
 * spellings the generated flows use (load:0xfa163e000220->NXM_NX_ARP_SHA[]); addresses as text
 * are read and written by packet/addr-text.ts (and packet/ipv4.ts ipv4FromString, which throws
 * on a bad one). Control plane only; the hot path never calls these. IPv4 values are unsigned
 * 32-bit numbers in host order.
 */
import { formatMac, parseMac } from '../packet/addr-text';
import { ipv4FromString } from '../packet/ipv4';

/** 8 lower-case hex digits of an IPv4 address: Neutron's tunnel port suffix (c0a8640c). */
export function ipv4Hex8(s: string): string {
  return ipv4FromString(s).toString(16).padStart(8, '0');
}

export function prefixMask(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

export interface Cidr {
  /** Network address (host bits zero), host order. */
  readonly base: number;
  readonly prefixLen: number;
  readonly text: string;
}

/** Parses "10.0.1.0/24"; returns null when malformed or when host bits are set. */
export function parseCidr(s: string): Cidr | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(s);
  if (m === null) return null;
  for (let i = 1; i <= 4; i++) if (Number(m[i]) > 255) return null;
  const plen = Number(m[5]);
  if (plen > 32) return null;
  const base = ipv4FromString(`${m[1]}.${m[2]}.${m[3]}.${m[4]}`);
  if ((base & ~prefixMask(plen)) !== 0) return null;
  return { base, prefixLen: plen, text: s };
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ((ip & prefixMask(c.prefixLen)) >>> 0) === c.base;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const plen = Math.min(a.prefixLen, b.prefixLen);
  const m = prefixMask(plen);
  return ((a.base & m) >>> 0) === ((b.base & m) >>> 0);
}

/** "fa:16:3e:00:02:20" -> 0xfa163e000220 (48 bits fit a double exactly). */
export function macToNumber(s: string): number {
  const v = parseMac(s);
  if (v === undefined) throw new Error(`bad MAC address "${s}"`);
  return v;
}

export const numberToMac = formatMac;

/** "0x" + hex without leading zeros, as ovs-ofctl prints load immediates. */
export function hex(v: number): string {
  return `0x${v.toString(16)}`;
}

/** FNV-1a, 32 bits: the deterministic draws of DVR and DHCP-port MACs (topology.ts) and conntrack zones (ns-plan.ts). */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
