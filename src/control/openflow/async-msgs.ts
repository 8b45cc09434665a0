/**
 * The asynchronous messages a switch sends without being asked, in every wire form flowd
 * speaks, and the port descriptions they (and features/port-desc replies) carry:
 * - PACKET_IN: OFPT_PACKET_IN of OpenFlow 1.0 (in_port only) and 1.3/1.4 (table, cookie, OXM
 *   metadata match), and Nicira's NXT_PACKET_IN (NXM match) and NXT_PACKET_IN2 (properties);
 * - FLOW_REMOVED: OFPT_FLOW_REMOVED of 1.0 (ofp_match) and 1.3/1.4 (OXM), NXT_FLOW_REMOVED (NXM);
 * - PORT_STATUS: add, delete, modify, with the 1.0, 1.3 or 1.4 port layout.
 *
 * Who calls: session.ts (which decides who gets what from each connection's async masks, which
 * of10.ts and of13.ts set), of10.ts/of13.ts (putPhyPort/putPort) and endpoint.ts (the
 * flow-removed and port-status reasons). Layouts: OpenFlow 1.0.0 s5.4, 1.3.x/1.4.x s7.4, Open vSwitch's
 * nicira-ext.h and ofp-packet.c (which properties NXT_PACKET_IN2 carries: the packet, its full
 * length only when cut, the table when not 0, the cookie when not all-ones, the reason when
 * not "action", the metadata, the userdata). Messages carry xid 0, as OVS's.
 */
import type { Rule } from '../../ofproto/rule';
import type { Match } from '../../ofproto/types';
import { FieldDef, fieldByName, readField, setMatchField, fieldFullMask } from '../../ofproto/fields';
import { newMatch } from '../../ofproto/match-syntax';
import { N_REGS } from '../../packet/flowkey-layout';
import type { PacketInInfo } from '../../dpif/dp-actions';
import { PIN_REASON_ACTION, PIN_REASON_NO_MATCH, PIN_REASON_INVALID_TTL } from '../../ofproto/actions';
import {
  Writer, beginMsg, endMsg, beginNxMsg, OFP10_VERSION, OFP13_VERSION, OFP14_VERSION, OFP_NO_BUFFER,
  OFPT_PACKET_IN, OFPT_FLOW_REMOVED, OFPT_PORT_STATUS, NXT_PACKET_IN, NXT_FLOW_REMOVED,
  NXPIF_NXT_PACKET_IN, NXPIF_NXT_PACKET_IN2,
} from './wire';
import { encodeMatch, port16to32 } from './nxm';
import { encodeOf10Match } from './of10-match';

export const NXT_PACKET_IN2 = 30;
// NXT_PACKET_IN2 property types (nicira-ext.h enum nx_packet_in2_prop_type).
const NXPINT_PACKET = 0;
const NXPINT_FULL_LEN = 1;
const NXPINT_TABLE_ID = 3;
const NXPINT_COOKIE = 4;
const NXPINT_REASON = 5;
const NXPINT_METADATA = 6;
const NXPINT_USERDATA = 7;

/** Flow-removed reasons (OFPRR_*). */
export const FR_IDLE_TIMEOUT = 0;
export const FR_HARD_TIMEOUT = 1;
export const FR_DELETE = 2;
/** Port-status reasons (OFPPR_*). */
export const PS_ADD = 0;
export const PS_DELETE = 1;
export const PS_MODIFY = 2;

/** Indexes into SessionState.asyncMasks: [kind * 2 + (slave ? 1 : 0)]. */
export const ASYNC_PACKET_IN = 0;
export const ASYNC_PORT_STATUS = 1;
export const ASYNC_FLOW_REMOVED = 2;

/**
 * OVS's default async configuration (ofputil_async_cfg_default): a master/equal connection gets
 * packet-ins of every reason but invalid_ttl, every port status and every flow-removed reason
 * of its version; a slave gets port status only.
 */
export function defaultAsyncMasks(version: number): Uint32Array {
  const fr = version >= OFP14_VERSION ? 0x3f : version >= OFP13_VERSION ? 0xf : 0x7;
  return Uint32Array.from([0x3b, 0, 0x7, 0x7, fr, 0]);
}

/** ofp_phy_port (OpenFlow 1.0, 48 bytes): state LINK_DOWN when the port is not up. */
export function putPhyPort(w: Writer, ofport: number, name: string, up: boolean): void {
  w.u16(ofport).zeros(6).str(name, 16).u32(0).u32(up ? 0 : 1).u32(0).u32(0).u32(0).u32(0);
}

/** ofp_port of OpenFlow 1.3 (64 bytes) or 1.4 (72, with an empty Ethernet property). */
export function putPort(w: Writer, version: number, ofport: number, name: string, up: boolean): void {
  if (version >= OFP14_VERSION) {
    w.u32(port16to32(ofport)).u16(72).u16(0).zeros(6).u16(0).str(name, 16).u32(0).u32(up ? 0 : 1)
      .u16(0).u16(32).u32(0).u32(0).u32(0).u32(0).u32(0).u32(0).u32(0);
  } else {
    w.u32(port16to32(ofport)).u32(0).zeros(6).u16(0).str(name, 16).u32(0).u32(up ? 0 : 1)
      .u32(0).u32(0).u32(0).u32(0).u32(0).u32(0);
  }
}

const META_FIELDS: readonly FieldDef[] = ['tun_id', 'tun_src', 'tun_dst', 'metadata', 'ct_state', 'ct_zone', 'ct_mark',
  ...Array.from({ length: N_REGS }, (_, i) => `reg${i}`)].map((n) => {
  const f = fieldByName(n);
  if (f === undefined) throw new Error(`async-msgs.ts: no field ${n}`);
  return f;
});
const IN_PORT = fieldByName('in_port') as FieldDef;

/** The packet-in's metadata as a match: in_port, and every metadata field that is not 0 (OVS's flow_get_metadata). */
export function packetInMetadata(flow: Uint32Array): Match {
  const m = newMatch();
  setMatchField(IN_PORT, m.value, m.mask, readField(IN_PORT, flow), fieldFullMask(IN_PORT));
  for (const f of META_FIELDS) {
    const v = readField(f, flow);
    if (v !== 0n) setMatchField(f, m.value, m.mask, v, fieldFullMask(f));
  }
  return m;
}

/**
 * The reason a connection of `version` sees (OVS's wire_reason): a packet-in from a table-miss
 * rule is "no_match" from OpenFlow 1.3 on and "action" before; 1.4's reasons (action_set,
 * group, packet_out) are "action" before 1.4.
 */
export function wireReason(info: PacketInInfo, version: number): number {
  let r = info.reason;
  if (r === PIN_REASON_ACTION && info.tableMiss && version >= OFP13_VERSION) r = PIN_REASON_NO_MATCH;
  if (r > PIN_REASON_INVALID_TTL && version < OFP14_VERSION) r = PIN_REASON_ACTION;
  return r;
}

/** A PACKET_IN for a connection of `version` that asked for packet-in `format` (NXPIF_*). */
export function encodePacketIn(version: number, format: number, info: PacketInInfo, data: Uint8Array,
                               totalLen: number): Buffer {
  const reason = wireReason(info, version);
  const w = new Writer(data.length + 128);
  if (format === NXPIF_NXT_PACKET_IN2) {
    const at = beginNxMsg(w, version, NXT_PACKET_IN2, 0);
    const prop = (t: number, put: () => void): void => {
      const s = w.len; w.u16(t).u16(0); put(); w.patch16(s + 2, w.len - s); w.pad(s, 8);
    };
    prop(NXPINT_PACKET, () => { w.bytes(data); });
    if (data.length !== totalLen) prop(NXPINT_FULL_LEN, () => { w.u32(totalLen); });
    if (info.tableId !== 0) prop(NXPINT_TABLE_ID, () => { w.u8(info.tableId); });
    if (info.cookie !== 0xffffffffffffffffn) prop(NXPINT_COOKIE, () => { w.zeros(4).u64(info.cookie); });
    if (reason !== PIN_REASON_ACTION) prop(NXPINT_REASON, () => { w.u8(reason); });
    prop(NXPINT_METADATA, () => { encodeMatch(w, packetInMetadata(info.flow), version >= OFP13_VERSION); });
    if (info.userdata.length > 0) prop(NXPINT_USERDATA, () => { w.bytes(info.userdata); });
    endMsg(w, at);
    return w.finish();
  }
  if (version === OFP10_VERSION && format === NXPIF_NXT_PACKET_IN) {
    // nx_packet_in: buffer_id(4) total_len(2) reason(1) table_id(1) cookie(8) match_len(2) pad(6) match pad(2) data
    const at = beginNxMsg(w, version, NXT_PACKET_IN, 0);
    w.u32(OFP_NO_BUFFER).u16(totalLen).u8(reason).u8(info.tableId).u64(info.cookie);
    const mlAt = w.len;
    w.u16(0).zeros(6);
    const start = w.len;
    w.patch16(mlAt, encodeMatch(w, packetInMetadata(info.flow), false));
    w.pad(start, 8);
    w.zeros(2).bytes(data);
    endMsg(w, at);
    return w.finish();
  }
  const at = beginMsg(w, version, OFPT_PACKET_IN, 0);
  if (version === OFP10_VERSION) {
    // ofp_packet_in: buffer_id(4) total_len(2) in_port(2) reason(1) pad(1) data
    w.u32(OFP_NO_BUFFER).u16(totalLen).u16(Number(readField(IN_PORT, info.flow))).u8(reason).u8(0).bytes(data);
  } else {
    // buffer_id(4) total_len(2) reason(1) table_id(1) cookie(8) ofp_match pad(2) data
    w.u32(OFP_NO_BUFFER).u16(totalLen).u8(reason).u8(info.tableId).u64(info.cookie);
    putOxmMatch(w, packetInMetadata(info.flow));
    w.zeros(2).bytes(data);
  }
  endMsg(w, at);
  return w.finish();
}

/** ofp_match of type OXM, padded to 8 bytes. */
function putOxmMatch(w: Writer, m: Match): void {
  const at = w.len;
  w.u16(1).u16(0);
  const n = encodeMatch(w, m, true);
  w.patch16(at + 2, 4 + n);
  w.pad(at, 8);
}

/** A FLOW_REMOVED for `rule` (removed for `reason`, FR_*), in the connection's form. */
export function encodeFlowRemoved(version: number, nxm: boolean, rule: Rule, reason: number, nowMs: number): Buffer {
  const d = Math.max(0, nowMs - rule.createdMs);
  const sec = Math.floor(d / 1000);
  const nsec = (d % 1000) * 1e6;
  const w = new Writer(256);
  if (version === OFP10_VERSION && nxm) {
    const at = beginNxMsg(w, version, NXT_FLOW_REMOVED, 0);
    // nx_flow_removed's table_id is the table + 1 (0: unknown).
    w.u64(rule.cookie).u16(rule.priority).u8(reason).u8(rule.tableId + 1).u32(sec).u32(nsec).u16(rule.idleTimeoutS);
    const mlAt = w.len;
    w.u16(0).u64(BigInt(rule.nPackets)).u64(BigInt(rule.nBytes));
    const start = w.len;
    w.patch16(mlAt, encodeMatch(w, rule.match, false));
    w.pad(start, 8);
    endMsg(w, at);
    return w.finish();
  }
  const at = beginMsg(w, version, OFPT_FLOW_REMOVED, 0);
  if (version === OFP10_VERSION) {
    encodeOf10Match(w, rule.match);
    w.u64(rule.cookie).u16(rule.priority).u8(reason).u8(0).u32(sec).u32(nsec).u16(rule.idleTimeoutS).u16(0)
      .u64(BigInt(rule.nPackets)).u64(BigInt(rule.nBytes));
  } else {
    w.u64(rule.cookie).u16(rule.priority).u8(reason).u8(rule.tableId).u32(sec).u32(nsec)
      .u16(rule.idleTimeoutS).u16(rule.hardTimeoutS).u64(BigInt(rule.nPackets)).u64(BigInt(rule.nBytes));
    putOxmMatch(w, rule.match);
  }
  endMsg(w, at);
  return w.finish();
}

/** A PORT_STATUS (reason PS_*) for one port. */
export function encodePortStatus(version: number, reason: number, ofport: number, name: string, up: boolean): Buffer {
  const w = new Writer(96);
  const at = beginMsg(w, version, OFPT_PORT_STATUS, 0);
  w.u8(reason).zeros(7);
  if (version === OFP10_VERSION) putPhyPort(w, ofport, name, up);
  else putPort(w, version, ofport, name, up);
  endMsg(w, at);
  return w.finish();
}
