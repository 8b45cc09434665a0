/**
 * OpenFlow 1.0's fixed 40-byte ofp_match (OpenFlow 1.0.0 spec s5.2.3) <-> a flowd Match.
 *
 * Who calls: of10.ts (OFPT_FLOW_MOD, OFPST_FLOW/AGGREGATE requests and replies in the
 * "OpenFlow10" flow format, the one ovs-ofctl uses for flows that need nothing more) and
 * async-msgs.ts (OpenFlow 1.0's OFPT_FLOW_REMOVED).
 *
 * Decoding follows the spec's prerequisites as Open vSwitch does (ofputil_match_from_ofp10_match):
 * nw_* only count when dl_type is IPv4 or ARP (ARP: nw_proto is the opcode, nw_src/dst the
 * spa/tpa), tp_* only when nw_proto is TCP, UDP or ICMP (type/code). dl_vlan 0xffff means
 * "no VLAN tag". Encoding wildcards what the format cannot carry (registers, tun_id, ...);
 * callers pick NXM when a match needs more (matchFitsOf10()).
 */
import type { Match } from '../../ofproto/types';
import { FieldDef, fieldByName, fieldFullMask, readField, setMatchField } from '../../ofproto/fields';
import {
  newMatch, MutableMatch, ETH_TYPE_IP, ETH_TYPE_ARP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP,
  matchDlType, matchNwProto,
} from '../../ofproto/match-syntax';
import { KEY_WORDS, VLAN_CFI } from '../../packet/flowkey-layout';
import { Writer, readUintN } from './wire';

export const OFP10_MATCH_LEN = 40;
const OFPFW_IN_PORT = 1 << 0;
const OFPFW_DL_VLAN = 1 << 1;
const OFPFW_DL_SRC = 1 << 2;
const OFPFW_DL_DST = 1 << 3;
const OFPFW_DL_TYPE = 1 << 4;
const OFPFW_NW_PROTO = 1 << 5;
const OFPFW_TP_SRC = 1 << 6;
const OFPFW_TP_DST = 1 << 7;
const OFPFW_NW_SRC_SHIFT = 8;
const OFPFW_NW_DST_SHIFT = 14;
const OFPFW_DL_VLAN_PCP = 1 << 20;
const OFPFW_NW_TOS = 1 << 21;
const OFP_VLAN_NONE = 0xffff;

const F = (n: string): FieldDef => fieldByName(n) as FieldDef;
const IN_PORT = F('in_port'); const DL_SRC = F('dl_src'); const DL_DST = F('dl_dst');
const DL_TYPE = F('dl_type'); const VLAN_TCI = F('vlan_tci'); const NW_PROTO = F('nw_proto');
const NW_SRC = F('nw_src'); const NW_DST = F('nw_dst'); const IP_DSCP = F('ip_dscp');
const TP_SRC = F('tp_src'); const TP_DST = F('tp_dst');

function prefixMask(wildBits: number): bigint {
  const n = wildBits >= 32 ? 0 : 32 - wildBits;
  return n === 0 ? 0n : ((1n << 32n) - 1n) ^ ((1n << BigInt(32 - n)) - 1n);
}

/** Decodes the 40 bytes at `off` (the caller checked they are there). */
export function decodeOf10Match(b: Uint8Array, off: number): Match {
  const m: MutableMatch = newMatch();
  const dv = new DataView(b.buffer, b.byteOffset + off, OFP10_MATCH_LEN);
  const wc = dv.getUint32(0);
  const set = (f: FieldDef, v: bigint, mk: bigint = fieldFullMask(f)): void => setMatchField(f, m.value, m.mask, v, mk);
  if (!(wc & OFPFW_IN_PORT)) set(IN_PORT, BigInt(dv.getUint16(4)));
  if (!(wc & OFPFW_DL_SRC)) set(DL_SRC, readUintN(b, off + 6, 6));
  if (!(wc & OFPFW_DL_DST)) set(DL_DST, readUintN(b, off + 12, 6));
  const vid = dv.getUint16(18);
  const pcp = dv.getUint8(20) & 7;
  if (!(wc & OFPFW_DL_VLAN) && vid === OFP_VLAN_NONE) {
    set(VLAN_TCI, 0n, 0xffffn);
  } else {
    let tci = 0; let mk = 0;
    if (!(wc & OFPFW_DL_VLAN)) { tci |= (vid & 0xfff) | VLAN_CFI; mk |= 0x1fff; }
    if (!(wc & OFPFW_DL_VLAN_PCP)) { tci |= (pcp << 13) | VLAN_CFI; mk |= 0xe000 | VLAN_CFI; }
    if (mk) set(VLAN_TCI, BigInt(tci), BigInt(mk));
  }
  if (wc & OFPFW_DL_TYPE) return m;
  const type = dv.getUint16(22);
  set(DL_TYPE, BigInt(type));
  if (type !== ETH_TYPE_IP && type !== ETH_TYPE_ARP) return m;
  const nwSrcWild = (wc >>> OFPFW_NW_SRC_SHIFT) & 0x3f;
  const nwDstWild = (wc >>> OFPFW_NW_DST_SHIFT) & 0x3f;
  const ms = prefixMask(nwSrcWild); const md = prefixMask(nwDstWild);
  if (ms) set(NW_SRC, BigInt(dv.getUint32(28)) & ms, ms);
  if (md) set(NW_DST, BigInt(dv.getUint32(32)) & md, md);
  if (!(wc & OFPFW_NW_PROTO)) set(NW_PROTO, BigInt(dv.getUint8(25)));
  if (type === ETH_TYPE_ARP) return m;
  if (!(wc & OFPFW_NW_TOS)) set(IP_DSCP, BigInt(dv.getUint8(24) >> 2));
  const proto = wc & OFPFW_NW_PROTO ? -1 : dv.getUint8(25);
  if (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_ICMP) {
    if (!(wc & OFPFW_TP_SRC)) set(TP_SRC, BigInt(dv.getUint16(36)) & (proto === IPPROTO_ICMP ? 0xffn : 0xffffn));
    if (!(wc & OFPFW_TP_DST)) set(TP_DST, BigInt(dv.getUint16(38)) & (proto === IPPROTO_ICMP ? 0xffn : 0xffffn));
  }
  return m;
}

/** Is every bit `m` looks at expressible in ofp_match? */
export function matchFitsOf10(m: Match): boolean {
  const w = new Writer(48);
  encodeOf10Match(w, m);
  const back = decodeOf10Match(w.finish(), 0);
  for (let i = 0; i < KEY_WORDS; i++) {
    if (back.mask[i] !== m.mask[i] || back.value[i] !== m.value[i]) return false;
  }
  return true;
}

function cidrWild(mk: bigint): number {
  let n = 0;
  while (n < 32 && ((mk >> BigInt(n)) & 1n) === 0n) n++;
  return n;
}

/** Appends the 40-byte ofp_match for `m` (what it cannot carry is wildcarded). */
export function encodeOf10Match(w: Writer, m: Match): void {
  let wc = 0;
  const has = (f: FieldDef): boolean => readField(f, m.mask) === fieldFullMask(f);
  const val = (f: FieldDef): bigint => readField(f, m.value);
  if (!has(IN_PORT)) wc |= OFPFW_IN_PORT;
  if (!has(DL_SRC)) wc |= OFPFW_DL_SRC;
  if (!has(DL_DST)) wc |= OFPFW_DL_DST;
  const tciMask = Number(readField(VLAN_TCI, m.mask));
  const tci = Number(readField(VLAN_TCI, m.value));
  let vid = 0; let pcp = 0;
  if (tciMask === 0xffff && tci === 0) {
    vid = OFP_VLAN_NONE; wc |= OFPFW_DL_VLAN_PCP;
  } else {
    if ((tciMask & 0x1fff) === 0x1fff) vid = tci & 0xfff; else wc |= OFPFW_DL_VLAN;
    if ((tciMask & 0xf000) === 0xf000) pcp = tci >> 13; else wc |= OFPFW_DL_VLAN_PCP;
  }
  const type = matchDlType(m);
  if (type < 0) wc |= OFPFW_DL_TYPE;
  const proto = matchNwProto(m);
  if (proto < 0) wc |= OFPFW_NW_PROTO;
  const l3 = type === ETH_TYPE_IP || type === ETH_TYPE_ARP;
  const srcWild = l3 ? cidrWild(readField(NW_SRC, m.mask)) : 32;
  const dstWild = l3 ? cidrWild(readField(NW_DST, m.mask)) : 32;
  wc |= (srcWild << OFPFW_NW_SRC_SHIFT) | (dstWild << OFPFW_NW_DST_SHIFT);
  const dscpOk = type === ETH_TYPE_IP && readField(IP_DSCP, m.mask) === fieldFullMask(IP_DSCP);
  if (!dscpOk) wc |= OFPFW_NW_TOS;
  const l4 = type === ETH_TYPE_IP && (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_ICMP);
  const tpFull = proto === IPPROTO_ICMP ? 0xffn : 0xffffn;
  if (!l4 || readField(TP_SRC, m.mask) !== tpFull) wc |= OFPFW_TP_SRC;
  if (!l4 || readField(TP_DST, m.mask) !== tpFull) wc |= OFPFW_TP_DST;
  w.u32(wc).u16(Number(val(IN_PORT))).uintN(val(DL_SRC), 6).uintN(val(DL_DST), 6)
    .u16(vid).u8(pcp).u8(0).u16(type < 0 ? 0 : type)
    .u8(dscpOk ? Number(val(IP_DSCP)) << 2 : 0).u8(proto < 0 ? 0 : proto).u16(0)
    .u32(l3 ? Number(val(NW_SRC)) : 0).u32(l3 ? Number(val(NW_DST)) : 0)
    .u16(wc & OFPFW_TP_SRC ? 0 : Number(val(TP_SRC))).u16(wc & OFPFW_TP_DST ? 0 : Number(val(TP_DST)));
}
