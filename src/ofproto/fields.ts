/**
 * The field table: every field a flow can match, and that load/move/set_field can write,
 * named as ovs-ofctl, NXM and OXM name it, and placed on the flow key (packet/flowkey-layout.ts).
 *
 * Who uses it: match-syntax.ts and action-syntax.ts (names -> fields), xlate.ts (load, move,
 * set_field on a key), the classifier and dpif only through the word indices.
 *
 * Placement: a field of at most 32 bits lives in one word at `shift` (bit 0 = least
 * significant). A wider field (MACs, tun_id, metadata, IPv6 addresses) always has shift 0 and
 * spans ceil(keyBits / 32) consecutive words starting at `word`, most significant first; the
 * first word holds the top (keyBits mod 32 || 32) bits in its low bits (MAC hi = 16 bits).
 * `widthBits` is the width the protocol gives the field (NXM_OF_ARP_OP is 16 bits) and
 * `keyBits` how many bits the key stores (ARP op shares nw_proto, 8 bits): writes truncate to
 * keyBits, reads return at most keyBits.
 *
 * Values: `number` helpers for fields of at most 32 bits (unsigned), `bigint` helpers for any
 * width. Bit offsets of subfields (NXM_NX_REG0[3..5]) count from the least significant bit.
 * The table is built once at load time; nothing here runs per packet except the read/write
 * helpers, which do not allocate for fields of at most 32 bits.
 */
import {
  W_IN_PORT, W_RECIRC_ID, W_TUN_ID_HI, W_TUN_SRC, W_TUN_DST, W_DL_DST_HI, W_DL_SRC_HI,
  W_VLAN_DLTYPE, W_NW_SRC, W_NW_DST, W_NW_MISC, W_TP, W_TCP_FLAGS, W_ARP_SHA_HI, W_ARP_THA_HI,
  W_IPV6_SRC, W_IPV6_DST, W_CT_STATE, W_CT_ZONE, W_CT_MARK, W_METADATA_HI, W_REG0, N_REGS,
  W_CONJ_ID, W_ND_TARGET, W_IPV6_LABEL,
} from '../packet/flowkey-layout';

/** How a value of the field is written in ovs-ofctl text. */
export type FieldFormat =
  | 'decimal' | 'hex' | 'mac' | 'ipv4' | 'ipv6' | 'port' | 'ethertype'
  | 'tcp_flags' | 'ct_state' | 'frag';

/**
 * What must be matched before a field may be matched (OVS's mf_prereqs).
 * ovs-ofctl silently drops a match field whose prerequisite the flow does not have.
 */
export type FieldPrereq =
  | 'none' | 'vlan' | 'ip' | 'ipv6' | 'ip_any' | 'arp' | 'tcp' | 'udp' | 'sctp'
  | 'icmp' | 'icmpv6' | 'tcp_any'
  /** ICMPv6 neighbour solicitation or advertisement; solicitation only; advertisement only. */
  | 'nd' | 'nd_ns' | 'nd_na';

export interface FieldDef {
  /** Canonical ovs-ofctl match name (what OVS prints), e.g. "dl_src". */
  readonly name: string;
  /** Other names accepted in matches and set_field (OXM-style "eth_src" etc.). */
  readonly aliases: readonly string[];
  /** NXM/OXM header name used by load/move, e.g. "NXM_OF_ETH_SRC"; '' if none. */
  readonly nxm: string;
  /** Other NXM/OXM header names accepted (e.g. "OXM_OF_ETH_SRC"). */
  readonly nxmAliases: readonly string[];
  readonly widthBits: number;
  readonly keyBits: number;
  /** First (most significant) key word. */
  readonly word: number;
  /** Bit position of the field's bit 0 inside `word` (0 for fields wider than 32 bits). */
  readonly shift: number;
  readonly format: FieldFormat;
  readonly prereq: FieldPrereq;
  /** May a match give an arbitrary bit mask? */
  readonly maskable: boolean;
  /** May set_field/load write it? */
  readonly writable: boolean;
}

function def(name: string, aliases: string[], nxm: string, nxmAliases: string[], widthBits: number,
             word: number, shift: number, format: FieldFormat, prereq: FieldPrereq,
             maskable = true, writable = true, keyBits = widthBits): FieldDef {
  return { name, aliases, nxm, nxmAliases, widthBits, keyBits, word, shift, format, prereq,
           maskable, writable };
}

/** All fields, in no particular order (printing order lives in match-syntax.ts). */
export const FIELDS: readonly FieldDef[] = (() => {
  const f: FieldDef[] = [
    def('in_port', [], 'NXM_OF_IN_PORT', [], 16, W_IN_PORT, 0, 'port', 'none', false),
    def('in_port_oxm', [], 'OXM_OF_IN_PORT', [], 32, W_IN_PORT, 0, 'port', 'none', false),
    def('recirc_id', [], 'NXM_NX_RECIRC_ID', [], 32, W_RECIRC_ID, 0, 'decimal', 'none', true, false),
    def('tun_id', ['tunnel_id'], 'NXM_NX_TUN_ID', ['OXM_OF_TUNNEL_ID'], 64, W_TUN_ID_HI, 0, 'hex', 'none'),
    def('tun_src', [], 'NXM_NX_TUN_IPV4_SRC', [], 32, W_TUN_SRC, 0, 'ipv4', 'none'),
    def('tun_dst', [], 'NXM_NX_TUN_IPV4_DST', [], 32, W_TUN_DST, 0, 'ipv4', 'none'),
    def('dl_dst', ['eth_dst'], 'NXM_OF_ETH_DST', ['OXM_OF_ETH_DST'], 48, W_DL_DST_HI, 0, 'mac', 'none'),
    def('dl_src', ['eth_src'], 'NXM_OF_ETH_SRC', ['OXM_OF_ETH_SRC'], 48, W_DL_SRC_HI, 0, 'mac', 'none'),
    def('dl_type', ['eth_type'], 'NXM_OF_ETH_TYPE', ['OXM_OF_ETH_TYPE'], 16, W_VLAN_DLTYPE, 0, 'ethertype', 'none', false, false),
    def('vlan_tci', [], 'NXM_OF_VLAN_TCI', [], 16, W_VLAN_DLTYPE, 16, 'hex', 'none'),
    // OXM vlan_vid is the 12-bit VID plus the "present" bit (OFPVID_PRESENT = 0x1000 = CFI).
    def('vlan_vid', [], 'OXM_OF_VLAN_VID', [], 13, W_VLAN_DLTYPE, 16, 'decimal', 'none'),
    def('dl_vlan', [], '', [], 12, W_VLAN_DLTYPE, 16, 'decimal', 'none', false),
    def('dl_vlan_pcp', ['vlan_pcp'], 'OXM_OF_VLAN_PCP', [], 3, W_VLAN_DLTYPE, 29, 'decimal', 'vlan', false),
    def('nw_src', ['ip_src'], 'NXM_OF_IP_SRC', ['OXM_OF_IPV4_SRC', 'ipv4_src'], 32, W_NW_SRC, 0, 'ipv4', 'ip'),
    def('nw_dst', ['ip_dst'], 'NXM_OF_IP_DST', ['OXM_OF_IPV4_DST', 'ipv4_dst'], 32, W_NW_DST, 0, 'ipv4', 'ip'),
    def('arp_spa', [], 'NXM_OF_ARP_SPA', ['OXM_OF_ARP_SPA'], 32, W_NW_SRC, 0, 'ipv4', 'arp'),
    def('arp_tpa', [], 'NXM_OF_ARP_TPA', ['OXM_OF_ARP_TPA'], 32, W_NW_DST, 0, 'ipv4', 'arp'),
    def('nw_proto', ['ip_proto'], 'NXM_OF_IP_PROTO', ['OXM_OF_IP_PROTO'], 8, W_NW_MISC, 24, 'decimal', 'ip_any', false, false),
    def('arp_op', [], 'NXM_OF_ARP_OP', ['OXM_OF_ARP_OP'], 16, W_NW_MISC, 24, 'decimal', 'arp', false, true, 8),
    // nw_tos is the whole TOS byte with the ECN bits excluded (OVS's IP_DSCP_MASK 0xfc).
    def('nw_tos', [], 'NXM_OF_IP_TOS', [], 8, W_NW_MISC, 16, 'decimal', 'ip_any', false),
    def('ip_dscp', [], 'OXM_OF_IP_DSCP', [], 6, W_NW_MISC, 18, 'decimal', 'ip_any', false),
    def('nw_ecn', ['ip_ecn'], 'NXM_NX_IP_ECN', ['OXM_OF_IP_ECN'], 2, W_NW_MISC, 16, 'decimal', 'ip_any', false),
    def('nw_ttl', [], 'NXM_NX_IP_TTL', [], 8, W_NW_MISC, 8, 'decimal', 'ip_any', false),
    def('nw_frag', ['ip_frag'], 'NXM_NX_IP_FRAG', [], 8, W_NW_MISC, 0, 'frag', 'ip_any', true, false),
    def('tp_src', [], '', [], 16, W_TP, 16, 'decimal', 'ip_any'),
    def('tp_dst', [], '', [], 16, W_TP, 0, 'decimal', 'ip_any'),
    def('tcp_src', [], 'NXM_OF_TCP_SRC', ['OXM_OF_TCP_SRC'], 16, W_TP, 16, 'decimal', 'tcp'),
    def('tcp_dst', [], 'NXM_OF_TCP_DST', ['OXM_OF_TCP_DST'], 16, W_TP, 0, 'decimal', 'tcp'),
    def('udp_src', [], 'NXM_OF_UDP_SRC', ['OXM_OF_UDP_SRC'], 16, W_TP, 16, 'decimal', 'udp'),
    def('udp_dst', [], 'NXM_OF_UDP_DST', ['OXM_OF_UDP_DST'], 16, W_TP, 0, 'decimal', 'udp'),
    def('sctp_src', [], 'OXM_OF_SCTP_SRC', [], 16, W_TP, 16, 'decimal', 'sctp'),
    def('sctp_dst', [], 'OXM_OF_SCTP_DST', [], 16, W_TP, 0, 'decimal', 'sctp'),
    def('icmp_type', ['icmpv4_type'], 'NXM_OF_ICMP_TYPE', ['OXM_OF_ICMPV4_TYPE'], 8, W_TP, 16, 'decimal', 'icmp', false),
    def('icmp_code', ['icmpv4_code'], 'NXM_OF_ICMP_CODE', ['OXM_OF_ICMPV4_CODE'], 8, W_TP, 0, 'decimal', 'icmp', false),
    def('icmpv6_type', [], 'NXM_NX_ICMPV6_TYPE', ['OXM_OF_ICMPV6_TYPE'], 8, W_TP, 16, 'decimal', 'icmpv6', false),
    def('icmpv6_code', [], 'NXM_NX_ICMPV6_CODE', ['OXM_OF_ICMPV6_CODE'], 8, W_TP, 0, 'decimal', 'icmpv6', false),
    def('tcp_flags', [], 'NXM_NX_TCP_FLAGS', ['OXM_OF_TCP_FLAGS'], 16, W_TCP_FLAGS, 0, 'tcp_flags', 'tcp_any', true, false),
    def('arp_sha', [], 'NXM_NX_ARP_SHA', ['OXM_OF_ARP_SHA'], 48, W_ARP_SHA_HI, 0, 'mac', 'arp'),
    def('arp_tha', [], 'NXM_NX_ARP_THA', ['OXM_OF_ARP_THA'], 48, W_ARP_THA_HI, 0, 'mac', 'arp'),
    def('ipv6_src', [], 'NXM_NX_IPV6_SRC', ['OXM_OF_IPV6_SRC'], 128, W_IPV6_SRC, 0, 'ipv6', 'ipv6'),
    def('ipv6_dst', [], 'NXM_NX_IPV6_DST', ['OXM_OF_IPV6_DST'], 128, W_IPV6_DST, 0, 'ipv6', 'ipv6'),
    def('ipv6_label', [], 'NXM_NX_IPV6_LABEL', ['OXM_OF_IPV6_FLABEL'], 20, W_IPV6_LABEL, 0, 'hex', 'ipv6'),
    def('nd_target', [], 'NXM_NX_ND_TARGET', ['OXM_OF_IPV6_ND_TARGET'], 128, W_ND_TARGET, 0, 'ipv6', 'nd'),
    // OVS keeps the ND link-layer addresses in the ARP hardware address slots; so does the key.
    def('nd_sll', [], 'NXM_NX_ND_SLL', ['OXM_OF_IPV6_ND_SLL'], 48, W_ARP_SHA_HI, 0, 'mac', 'nd_ns'),
    def('nd_tll', [], 'NXM_NX_ND_TLL', ['OXM_OF_IPV6_ND_TLL'], 48, W_ARP_THA_HI, 0, 'mac', 'nd_na'),
    def('ct_state', [], 'NXM_NX_CT_STATE', [], 32, W_CT_STATE, 0, 'ct_state', 'none', true, false, 8),
    def('ct_zone', [], 'NXM_NX_CT_ZONE', [], 16, W_CT_ZONE, 0, 'hex', 'none', false, false),
    def('ct_mark', [], 'NXM_NX_CT_MARK', [], 32, W_CT_MARK, 0, 'hex', 'none'),
    def('metadata', [], 'OXM_OF_METADATA', [], 64, W_METADATA_HI, 0, 'hex', 'none'),
    def('conj_id', [], '', [], 32, W_CONJ_ID, 0, 'decimal', 'none', false, false),
  ];
  for (let i = 0; i < N_REGS; i++) {
    f.push(def(`reg${i}`, [], `NXM_NX_REG${i}`, [], 32, W_REG0 + i, 0, 'hex', 'none'));
  }
  return f;
})();

const byName = new Map<string, FieldDef>();
const byNxm = new Map<string, FieldDef>();
for (const f of FIELDS) {
  byName.set(f.name, f);
  for (const a of f.aliases) byName.set(a, f);
  if (f.nxm) byNxm.set(f.nxm, f);
  for (const a of f.nxmAliases) byNxm.set(a, f);
}

/** A field by its ovs-ofctl or OXM name (dl_src, eth_src, reg3, tun_id...), or undefined. */
export function fieldByName(name: string): FieldDef | undefined {
  return byName.get(name);
}

/** A field by its NXM/OXM header name (NXM_OF_ETH_SRC, OXM_OF_METADATA...), or undefined. */
export function fieldByNxm(name: string): FieldDef | undefined {
  return byNxm.get(name);
}

/** A field by either kind of name (set_field accepts both). */
export function fieldByAnyName(name: string): FieldDef | undefined {
  return byName.get(name) ?? byNxm.get(name);
}

/** The name load/move print for a field: its NXM name, or its OXM name, or ovs-ofctl's. */
export function nxmName(f: FieldDef): string {
  return f.nxm || f.name;
}

const MF_NAMES: Readonly<Record<string, string>> = {
  dl_src: 'eth_src', dl_dst: 'eth_dst', dl_type: 'eth_type', nw_src: 'ip_src', nw_dst: 'ip_dst',
  nw_frag: 'ip_frag', tcp_src: 'tcp_src', in_port_oxm: 'in_port_oxm',
};

/** The name OVS's meta-flow gives a field (mf->name), used when learn prints `name=value`. */
export function mfName(f: FieldDef): string {
  return MF_NAMES[f.name] ?? f.name;
}

/** Number of key words a field spans. */
export function fieldWords(f: FieldDef): number {
  return f.shift === 0 && f.keyBits > 32 ? Math.ceil(f.keyBits / 32) : 1;
}

/** Mask of `n` low bits as an unsigned 32-bit number (n in 0..32). */
export function lowMask32(n: number): number {
  return n >= 32 ? 0xffffffff : ((1 << n) >>> 0) - 1;
}

/** Reads a field of at most 32 key bits from `words[base + ...]`, unsigned. */
export function readField32(f: FieldDef, words: Uint32Array, base: number): number {
  return ((words[base + f.word] >>> f.shift) & lowMask32(f.keyBits)) >>> 0;
}

/** Writes a field of at most 32 key bits; bits of `value` above keyBits are dropped. */
export function writeField32(f: FieldDef, words: Uint32Array, base: number, value: number): void {
  const m = (lowMask32(f.keyBits) << f.shift) >>> 0;
  const w = base + f.word;
  words[w] = ((words[w] & ~m) | ((value << f.shift) & m)) >>> 0;
}

/** Reads any field as a bigint. */
export function readField(f: FieldDef, words: Uint32Array, base = 0): bigint {
  const n = fieldWords(f);
  if (n === 1) return BigInt(readField32(f, words, base));
  let v = 0n;
  for (let i = 0; i < n; i++) v = (v << 32n) | BigInt(words[base + f.word + i]);
  return v & ((1n << BigInt(f.keyBits)) - 1n);
}

/** Writes any field from a bigint; bits above keyBits are dropped. */
export function writeField(f: FieldDef, words: Uint32Array, base: number, value: bigint): void {
  const n = fieldWords(f);
  if (n === 1) { writeField32(f, words, base, Number(value & 0xffffffffn)); return; }
  let v = value & ((1n << BigInt(f.keyBits)) - 1n);
  for (let i = n - 1; i >= 0; i--) {
    words[base + f.word + i] = Number(v & 0xffffffffn);
    v >>= 32n;
  }
}

/** Reads bits [ofs, ofs+nBits) of a field (a subfield such as NXM_NX_REG0[3..5]). */
export function readSubfield(f: FieldDef, ofs: number, nBits: number,
                             words: Uint32Array, base = 0): bigint {
  return (readField(f, words, base) >> BigInt(ofs)) & ((1n << BigInt(nBits)) - 1n);
}

/** Writes bits [ofs, ofs+nBits) of a field, keeping the other bits. */
export function writeSubfield(f: FieldDef, ofs: number, nBits: number,
                              words: Uint32Array, base: number, value: bigint): void {
  const m = ((1n << BigInt(nBits)) - 1n) << BigInt(ofs);
  const old = readField(f, words, base);
  writeField(f, words, base, (old & ~m) | ((value << BigInt(ofs)) & m));
}

/** Sets field bits of a Match: value under `mask` (mask bits outside the field are ignored). */
export function setMatchField(f: FieldDef, value: Uint32Array, mask: Uint32Array,
                              v: bigint, m: bigint): void {
  const all = (1n << BigInt(f.keyBits)) - 1n;
  const mm = m & all;
  writeField(f, mask, 0, mm);
  writeField(f, value, 0, v & mm);
}

/** Clears a field from a Match (wildcards it). */
export function clearMatchField(f: FieldDef, value: Uint32Array, mask: Uint32Array): void {
  writeField(f, mask, 0, 0n);
  writeField(f, value, 0, 0n);
}

/** True when the field's key bits are all wildcarded in `mask`. */
export function fieldIsWild(f: FieldDef, mask: Uint32Array): boolean {
  return readField(f, mask, 0) === 0n;
}

/** All-ones mask of a field's key bits. */
export function fieldFullMask(f: FieldDef): bigint {
  return (1n << BigInt(f.keyBits)) - 1n;
}
