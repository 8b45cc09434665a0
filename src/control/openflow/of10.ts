/**
 * OpenFlow 1.0 messages with the Nicira extensions, as Debian's ovs-ofctl sends them by
 * default: echo, features, get/set config, barrier, flow-mod (OFPT_FLOW_MOD with ofp_match and
 * NXT_FLOW_MOD with NXM), NXT_SET_FLOW_FORMAT, NXT_FLOW_MOD_TABLE_ID, NXT_SET_PACKET_IN_FORMAT,
 * stats (desc, flow, aggregate, table, port, port desc, NXST_FLOW, NXST_AGGREGATE), packet-out.
 *
 * Who calls: session.ts, for every message of a connection that negotiated version 1.0.
 * Layouts are OpenFlow 1.0.0 s5 and Open vSwitch's nicira-ext.h / openflow-1.0.h; each handler
 * checks the length before reading and throws OfError with the code OVS would send.
 */
import type { Rule } from '../../ofproto/rule';
import { OFPP_NONE } from '../../ofproto/actions';
import { N_TABLES } from '../../ofproto/bridge';
import {
  OfError, Writer, beginMsg, endMsg, beginNxMsg, badLen, OFP10_VERSION, NX_VENDOR_ID,
  OFPT_ECHO_REQUEST, OFPT_ECHO_REPLY, OFPT_VENDOR, OFPT_FEATURES_REQUEST, OFPT_FEATURES_REPLY,
  OFPT_GET_CONFIG_REQUEST, OFPT_GET_CONFIG_REPLY, OFPT_SET_CONFIG, OFPT_PACKET_OUT, OFPT_FLOW_MOD,
  OFPT10_STATS_REQUEST, OFPT10_STATS_REPLY, OFPT10_BARRIER_REQUEST, OFPT10_BARRIER_REPLY, OFPT_HELLO,
  OFPT_ECHO_REPLY as ECHO_REPLY, OFPT10_PORT_MOD,
  NXT_SET_FLOW_FORMAT, NXT_FLOW_MOD, NXT_FLOW_MOD_TABLE_ID, NXT_SET_PACKET_IN_FORMAT, NXT_FLOW_AGE,
  NXT_SET_CONTROLLER_ID, NXT_ROLE_REQUEST, NXT_ROLE_REPLY, NXT_SET_ASYNC_CONFIG, NXFF_OPENFLOW10, NXFF_NXM,
  NXPIF_STANDARD, NXPIF_NXT_PACKET_IN, NXPIF_NXT_PACKET_IN2,
  OFPST_DESC, OFPST_FLOW, OFPST_AGGREGATE, OFPST_TABLE, OFPST_PORT, OFPST10_PORT_DESC, OFPST_VENDOR,
  NXST_FLOW, NXST_AGGREGATE, OFP_NO_BUFFER, OFPTT_ALL, splitReplies, descBody,
  OFPET_BAD_REQUEST, OFPBRC_BAD_TYPE, OFPBRC_BAD_STAT, OFPBRC_BAD_VENDOR, OFPBRC_BAD_SUBTYPE,
  OFPBRC_EPERM, OFPBRC_BUFFER_UNKNOWN, OFPET10_FLOW_MOD_FAILED, OFPFMFC10_BAD_COMMAND,
} from './wire';
import type { MsgContext } from './session';
import { decodeMatch, encodeMatch } from './nxm';
import { putPhyPort } from './async-msgs';
import { decodeOf10Match, encodeOf10Match } from './of10-match';
import { decodeActions, encodeActions } from './action-codec';
import { FlowMod, applyFlowMod, selectForStats, ruleTimes, COOKIE_ALL_ONES } from './flow-mod';

const FM_FLAGS_MASK = 0x3; // send_flow_rem, check_overlap: what flowd keeps of OpenFlow 1.0 flags
/** OpenFlow 1.0 adds reset the counters of a rule they replace; OVS records it as reset_counts. */
const FF_RESET_COUNTS = 4;

function need(ctx: MsgContext, n: number, what: string): void {
  if (ctx.msg.length < n) throw badLen(`${what}: ${ctx.msg.length} bytes, need ${n}`);
}

function badCommand(): OfError {
  return new OfError(OFPET10_FLOW_MOD_FAILED, OFPFMFC10_BAD_COMMAND, 'bad flow_mod command');
}

function simpleReply(ctx: MsgContext, type: number, body?: Uint8Array): void {
  const w = new Writer(16 + (body ? body.length : 0));
  const at = beginMsg(w, OFP10_VERSION, type, ctx.xid);
  if (body) w.bytes(body);
  endMsg(w, at);
  ctx.reply(w.finish());
}

export function handleOf10(ctx: MsgContext): void {
  switch (ctx.type) {
    case OFPT_HELLO: return;
    case OFPT_ECHO_REQUEST: simpleReply(ctx, OFPT_ECHO_REPLY, ctx.msg.subarray(8)); return;
    case ECHO_REPLY: return;
    case OFPT_FEATURES_REQUEST: need(ctx, 8, 'features request'); featuresReply(ctx); return;
    case OFPT_GET_CONFIG_REQUEST: {
      const w = new Writer(12);
      const at = beginMsg(w, OFP10_VERSION, OFPT_GET_CONFIG_REPLY, ctx.xid);
      w.u16(ctx.state.configFlags).u16(ctx.state.missSendLen);
      endMsg(w, at);
      ctx.reply(w.finish());
      return;
    }
    case OFPT_SET_CONFIG:
      if (ctx.msg.length !== 12) throw badLen('set_config');
      ctx.state.configFlags = ctx.msg.readUInt16BE(8) & 3;
      ctx.state.missSendLen = ctx.msg.readUInt16BE(10);
      return;
    case OFPT10_BARRIER_REQUEST:
      // Every earlier message of this connection has been applied: they run in order, synchronously.
      simpleReply(ctx, OFPT10_BARRIER_REPLY);
      return;
    case OFPT_FLOW_MOD: flowModStd(ctx); return;
    case OFPT_PACKET_OUT: packetOut(ctx); return;
    case OFPT10_STATS_REQUEST: stats(ctx); return;
    case OFPT_VENDOR: vendor(ctx); return;
    case OFPT10_PORT_MOD: throw new OfError(OFPET_BAD_REQUEST, OFPBRC_EPERM, 'port_mod is not supported');
    default: throw new OfError(OFPET_BAD_REQUEST, OFPBRC_BAD_TYPE, `message type ${ctx.type}`);
  }
}

// ---- features ---------------------------------------------------------------------------------

function featuresReply(ctx: MsgContext): void {
  const w = new Writer(64);
  const at = beginMsg(w, OFP10_VERSION, OFPT_FEATURES_REPLY, ctx.xid);
  // capabilities: FLOW_STATS | TABLE_STATS | PORT_STATS | ARP_MATCH_IP; actions: every 1.0 action but ENQUEUE.
  w.u64(ctx.handle.datapathId).u32(0).u8(N_TABLES - 1).zeros(3).u32(0x1 | 0x2 | 0x4 | 0x80).u32(0x7ff);
  for (const p of ctx.handle.ports()) putPhyPort(w, p.ofport, p.name, p.up);
  putPhyPort(w, 0xfffe, ctx.handle.bridge.name, true);
  endMsg(w, at);
  ctx.reply(w.finish());
}

// ---- flow-mods --------------------------------------------------------------------------------

function splitCommand(ctx: MsgContext, raw: number): { command: number; tableId: number } {
  if (ctx.state.tableIdExt) return { command: raw & 0xff, tableId: raw >> 8 };
  if (raw > 0xff) throw badCommand();
  return { command: raw, tableId: OFPTT_ALL };
}

/** OFPT_FLOW_MOD: header(8) ofp_match(40) cookie(8) command(2) idle(2) hard(2) priority(2) buffer_id(4) out_port(2) flags(2) actions. */
function flowModStd(ctx: MsgContext): void {
  const m = ctx.msg;
  need(ctx, 72, 'flow_mod');
  const match = decodeOf10Match(m, 8);
  const { command, tableId } = splitCommand(ctx, m.readUInt16BE(56));
  const fm: FlowMod = {
    command, tableId, match, priority: m.readUInt16BE(62), cookie: 0n, cookieMask: 0n,
    newCookie: command <= 2 ? m.readBigUInt64BE(48) : COOKIE_ALL_ONES,
    idleTimeoutS: m.readUInt16BE(58), hardTimeoutS: m.readUInt16BE(60), importance: 0,
    flags: (m.readUInt16BE(70) & FM_FLAGS_MASK) | (command === 0 ? FF_RESET_COUNTS : 0),
    outPort: m.readUInt16BE(68), actions: decodeActions(m, 72, m.length - 72, OFP10_VERSION),
  };
  checkBuffer(m.readUInt32BE(64));
  ctx.counters.nFlowMods++;
  applyFlowMod(ctx.handle.bridge, fm, ctx.handle.nowMs(), badCommand());
}

function checkBuffer(bufferId: number): void {
  if (bufferId !== OFP_NO_BUFFER) throw new OfError(OFPET_BAD_REQUEST, OFPBRC_BUFFER_UNKNOWN, `buffer ${bufferId}: flowd keeps no buffers`);
}

/** NXT_FLOW_MOD: nx header(16) cookie(8) command(2) idle(2) hard(2) priority(2) buffer_id(4) out_port(2) flags(2) match_len(2) pad(6) match actions. */
function flowModNx(ctx: MsgContext): void {
  const m = ctx.msg;
  need(ctx, 48, 'nx_flow_mod');
  const matchLen = m.readUInt16BE(40);
  const padded = (matchLen + 7) & ~7;
  if (48 + padded > m.length) throw badLen(`nx_flow_mod: match_len ${matchLen} runs past the message`);
  const d = decodeMatch(m, 48, matchLen);
  const { command, tableId } = splitCommand(ctx, m.readUInt16BE(24));
  if (command === 0 && d.cookieMask !== 0n) throw new OfError(OFPET_BAD_REQUEST, 256, 'add with a cookie mask');
  const fm: FlowMod = {
    command, tableId, match: d.match, priority: m.readUInt16BE(30), cookie: d.cookie, cookieMask: d.cookieMask,
    newCookie: m.readBigUInt64BE(16), idleTimeoutS: m.readUInt16BE(26), hardTimeoutS: m.readUInt16BE(28), importance: 0,
    flags: (m.readUInt16BE(38) & FM_FLAGS_MASK) | (command === 0 ? FF_RESET_COUNTS : 0), outPort: m.readUInt16BE(36),
    actions: decodeActions(m, 48 + padded, m.length - 48 - padded, OFP10_VERSION),
  };
  checkBuffer(m.readUInt32BE(32));
  ctx.counters.nFlowMods++;
  applyFlowMod(ctx.handle.bridge, fm, ctx.handle.nowMs(), badCommand());
}

// ---- vendor -----------------------------------------------------------------------------------

function vendor(ctx: MsgContext): void {
  const m = ctx.msg;
  need(ctx, 12, 'vendor');
  if (m.readUInt32BE(8) !== NX_VENDOR_ID) throw new OfError(OFPET_BAD_REQUEST, OFPBRC_BAD_VENDOR, `vendor 0x${m.readUInt32BE(8).toString(16)}`);
  need(ctx, 16, 'nicira message');
  const sub = m.readUInt32BE(12);
  const u32At16 = (what: string): number => { if (m.length !== 20) throw badLen(what); return m.readUInt32BE(16); };
  switch (sub) {
    case NXT_SET_FLOW_FORMAT: {
      const f = u32At16('set_flow_format');
      if (f !== NXFF_OPENFLOW10 && f !== NXFF_NXM) throw new OfError(OFPET_BAD_REQUEST, OFPBRC_EPERM, `flow format ${f}`);
      ctx.state.flowFormat = f;
      return;
    }
    case NXT_FLOW_MOD_TABLE_ID:
      if (m.length !== 24) throw badLen('flow_mod_table_id');
      ctx.state.tableIdExt = m[16] !== 0;
      return;
    case NXT_SET_PACKET_IN_FORMAT: {
      const f = u32At16('set_packet_in_format');
      if (f !== NXPIF_STANDARD && f !== NXPIF_NXT_PACKET_IN && f !== NXPIF_NXT_PACKET_IN2) throw new OfError(OFPET_BAD_REQUEST, OFPBRC_EPERM, `packet-in format ${f}`);
      ctx.state.packetInFormat = f;
      return;
    }
    case NXT_FLOW_MOD: flowModNx(ctx); return;
    case NXT_FLOW_AGE: return;
    case NXT_SET_CONTROLLER_ID:
      // nx_controller_id: zero(6) controller_id(2)
      if (m.length !== 24) throw badLen('set_controller_id');
      ctx.state.controllerId = m.readUInt16BE(22);
      return;
    case NXT_SET_ASYNC_CONFIG:
      // nx_async_config: packet_in_mask[2] port_status_mask[2] flow_removed_mask[2] (master/equal, slave)
      if (m.length !== 40) throw badLen('set_async_config');
      for (let k = 0; k < 3; k++) {
        ctx.state.asyncMasks[k * 2] = m.readUInt32BE(16 + k * 8);
        ctx.state.asyncMasks[k * 2 + 1] = m.readUInt32BE(20 + k * 8);
      }
      return;
    case NXT_ROLE_REQUEST: {
      const role = u32At16('role_request');
      // NX_ROLE_OTHER 0, MASTER 1, SLAVE 2
      if (role > 2) throw new OfError(OFPET_BAD_REQUEST, OFPBRC_EPERM, `role ${role}`);
      ctx.state.slave = role === 2;
      const w = new Writer(24);
      const at = beginNxMsg(w, OFP10_VERSION, NXT_ROLE_REPLY, ctx.xid);
      w.u32(role);
      endMsg(w, at);
      ctx.reply(w.finish());
      return;
    }
    default: throw new OfError(OFPET_BAD_REQUEST, OFPBRC_BAD_SUBTYPE, `Nicira subtype ${sub}`);
  }
}

// ---- packet-out -------------------------------------------------------------------------------

/** OFPT_PACKET_OUT: buffer_id(4) in_port(2) actions_len(2) actions data. */
function packetOut(ctx: MsgContext): void {
  const m = ctx.msg;
  need(ctx, 16, 'packet_out');
  const actionsLen = m.readUInt16BE(14);
  if (16 + actionsLen > m.length) throw badLen('packet_out: actions run past the message');
  checkBuffer(m.readUInt32BE(8));
  const actions = decodeActions(m, 16, actionsLen, OFP10_VERSION);
  ctx.counters.nPacketOuts++;
  ctx.handle.packetOut(m.readUInt16BE(12), actions, m.subarray(16 + actionsLen));
}

// ---- stats ------------------------------------------------------------------------------------

/** Sends `bodies` as stats replies of `statType` (a Nicira stats reply when nxSubtype >= 0). */
function statsReplies(ctx: MsgContext, statType: number, bodies: readonly Buffer[], nxSubtype = -1): void {
  const head = (w: Writer): void => {
    w.u16(statType).u16(0);
    if (nxSubtype >= 0) w.u32(NX_VENDOR_ID).u32(nxSubtype).u32(0);
  };
  for (const m of splitReplies(OFP10_VERSION, OFPT10_STATS_REPLY, ctx.xid, head, bodies)) ctx.reply(m);
}

function stats(ctx: MsgContext): void {
  const m = ctx.msg;
  need(ctx, 12, 'stats request');
  const st = m.readUInt16BE(8);
  switch (st) {
    case OFPST_DESC: {
      statsReplies(ctx, st, [descBody(ctx.handle.bridge.name)]);
      return;
    }
    case OFPST_FLOW: case OFPST_AGGREGATE: {
      // ofp_flow_stats_request: match(40) table_id(1) pad(1) out_port(2)
      if (m.length !== 12 + 44) throw badLen('flow stats request');
      const match = decodeOf10Match(m, 12);
      const rules = selectForStats(ctx.handle.bridge, m[52], match, m.readUInt16BE(54), 0n, 0n);
      if (st === OFPST_AGGREGATE) { statsReplies(ctx, st, [aggregateBody(rules)]); return; }
      const now = ctx.handle.nowMs();
      statsReplies(ctx, st, rules.map((r) => flowStatsStd(r, now)));
      return;
    }
    case OFPST_TABLE: {
      const bodies: Buffer[] = [];
      for (let t = 0; t < N_TABLES - 1; t++) {
        const cls = ctx.handle.bridge.tables[t];
        let matched = 0;
        for (const r of cls.rules()) matched += r.nPackets;
        const w = new Writer(64);
        // wildcards: OFPFW_ALL (0x3fffff); max_entries 1M; lookup = matched (misses are not counted per table)
        w.u8(t).zeros(3).str(t === 0 ? 'classifier' : `table${t}`, 32).u32(0x3fffff).u32(1000000).u32(cls.size)
          .u64(BigInt(matched)).u64(BigInt(matched));
        bodies.push(w.finish());
      }
      statsReplies(ctx, st, bodies);
      return;
    }
    case OFPST_PORT: {
      if (m.length !== 20) throw badLen('port stats request');
      const want = m.readUInt16BE(12);
      const bodies: Buffer[] = [];
      for (const p of ctx.handle.ports()) {
        if (want !== OFPP_NONE && want !== p.ofport) continue;
        const s = p.stats;
        const w = new Writer(104);
        w.u16(p.ofport).zeros(6);
        for (const v of [s.rxPackets, s.txPackets, s.rxBytes, s.txBytes, s.rxDropped, s.txDropped, s.rxErrors, s.txErrors]) w.u64(BigInt(v));
        w.u64(0n).u64(0n).u64(0n).u64(0n);
        bodies.push(w.finish());
      }
      statsReplies(ctx, st, bodies);
      return;
    }
    case OFPST10_PORT_DESC: {
      const w = new Writer(256);
      for (const p of ctx.handle.ports()) putPhyPort(w, p.ofport, p.name, p.up);
      putPhyPort(w, 0xfffe, ctx.handle.bridge.name, true);
      statsReplies(ctx, st, [w.finish()]);
      return;
    }
    case OFPST_VENDOR: nxStats(ctx); return;
    default: throw new OfError(OFPET_BAD_REQUEST, OFPBRC_BAD_STAT, `stats type ${st}`);
  }
}

function aggregateBody(rules: readonly Rule[]): Buffer {
  let p = 0; let b = 0;
  for (const r of rules) { p += r.nPackets; b += r.nBytes; }
  return new Writer(24).u64(BigInt(p)).u64(BigInt(b)).u32(rules.length).u32(0).finish();
}

/** ofp_flow_stats: length(2) table_id(1) pad(1) match(40) duration(8) priority(2) idle(2) hard(2) pad(6) cookie(8) packets(8) bytes(8) actions. */
function flowStatsStd(r: Rule, now: number): Buffer {
  const t = ruleTimes(r, now);
  const w = new Writer(128);
  w.u16(0).u8(r.tableId).u8(0);
  encodeOf10Match(w, r.match);
  w.u32(t.sec).u32(t.nsec).u16(r.priority).u16(r.idleTimeoutS).u16(r.hardTimeoutS).zeros(6)
    .u64(r.cookie).u64(BigInt(r.nPackets)).u64(BigInt(r.nBytes));
  encodeActions(w, r.actions, OFP10_VERSION);
  w.patch16(0, w.len);
  return w.finish();
}

/** nx_flow_stats: length(2) table_id(1) pad(1) duration(8) priority(2) idle(2) hard(2) match_len(2) idle_age(2) hard_age(2) cookie(8) packets(8) bytes(8) match actions. */
function flowStatsNx(r: Rule, now: number): Buffer {
  const t = ruleTimes(r, now);
  const w = new Writer(256);
  w.u16(0).u8(r.tableId).u8(0).u32(t.sec).u32(t.nsec).u16(r.priority).u16(r.idleTimeoutS).u16(r.hardTimeoutS);
  const mlAt = w.len;
  w.u16(0).u16(t.idleAge).u16(r.modifiedMs !== r.createdMs ? t.hardAge : 0)
    .u64(r.cookie).u64(BigInt(r.nPackets)).u64(BigInt(r.nBytes));
  const start = w.len;
  const ml = encodeMatch(w, r.match, false);
  w.pad(start, 8);
  w.patch16(mlAt, ml);
  encodeActions(w, r.actions, OFP10_VERSION);
  w.patch16(0, w.len);
  return w.finish();
}

/** NXST_FLOW / NXST_AGGREGATE: nicira stats header(24) out_port(2) match_len(2) table_id(1) pad(3) match. */
function nxStats(ctx: MsgContext): void {
  const m = ctx.msg;
  need(ctx, 24, 'vendor stats request');
  if (m.readUInt32BE(12) !== NX_VENDOR_ID) throw new OfError(OFPET_BAD_REQUEST, OFPBRC_BAD_VENDOR, 'stats vendor');
  const sub = m.readUInt32BE(16);
  if (sub !== NXST_FLOW && sub !== NXST_AGGREGATE) throw new OfError(OFPET_BAD_REQUEST, OFPBRC_BAD_SUBTYPE, `NXST subtype ${sub}`);
  need(ctx, 32, 'nx flow stats request');
  const matchLen = m.readUInt16BE(26);
  if (32 + ((matchLen + 7) & ~7) !== m.length) throw badLen(`nx flow stats request: match_len ${matchLen}`);
  const d = decodeMatch(m, 32, matchLen);
  const rules = selectForStats(ctx.handle.bridge, m[28], d.match, m.readUInt16BE(24), d.cookie, d.cookieMask);
  if (sub === NXST_AGGREGATE) { statsReplies(ctx, OFPST_VENDOR, [aggregateBody(rules)], sub); return; }
  const now = ctx.handle.nowMs();
  statsReplies(ctx, OFPST_VENDOR, rules.map((r) => flowStatsNx(r, now)), sub);
}
