/**
 * OpenFlow 1.3 and 1.4 messages: echo, features, get/set config, barrier, flow-mod with OXM
 * matches and instructions (apply_actions, goto_table, write_metadata), multipart (desc, flow,
 * aggregate, table, port, port desc), packet-out, and the OpenFlow 1.4 bundles (open, add,
 * close, commit, discard; a commit applies every flow-mod or none).
 *
 * Who calls: session.ts, for connections that negotiated version 0x04 or 0x05.
 * Layouts: OpenFlow 1.3.x s7 and 1.4.x s7 (ofp_flow_mod, ofp_match, ofp_instruction_*,
 * ofp_multipart_*, ofp_port (1.4: with properties), ofp_bundle_*). Flow-mods end in the same
 * flow-mod.ts calls as OpenFlow 1.0 and flowctl.
 */
import type { Action } from '../../ofproto/actions';
import { OFPP_NONE } from '../../ofproto/actions';
import type { Rule } from '../../ofproto/rule';
import { N_TABLES } from '../../ofproto/bridge';
import { fieldByName, FieldDef } from '../../ofproto/fields';
import type { FlowSpec } from '../../ofproto/flow-syntax';
import {
  OfError, Writer, beginMsg, endMsg, badLen, OFP14_VERSION, OFPT_HELLO, OFPT_ECHO_REQUEST,
  OFPT_ECHO_REPLY, OFPT_FEATURES_REQUEST, OFPT_FEATURES_REPLY, OFPT_GET_CONFIG_REQUEST,
  OFPT_GET_CONFIG_REPLY, OFPT_SET_CONFIG, OFPT_PACKET_OUT, OFPT_FLOW_MOD, OFPT_VENDOR,
  OFPT13_MULTIPART_REQUEST, OFPT13_MULTIPART_REPLY, OFPT13_BARRIER_REQUEST, OFPT13_BARRIER_REPLY,
  OFPT13_ROLE_REQUEST, OFPT13_ROLE_REPLY, OFPT13_GET_ASYNC_REQUEST, OFPT13_SET_ASYNC,
  OFPT14_BUNDLE_CONTROL, OFPT14_BUNDLE_ADD_MESSAGE, OFPST_DESC, OFPST_FLOW, OFPST_AGGREGATE,
  OFPST_TABLE, OFPST_PORT, OFPMP13_PORT_DESC, OFP_NO_BUFFER, OFPP13_ANY, splitReplies, descBody,
  OFPET_BAD_REQUEST, OFPBRC_BAD_TYPE, OFPBRC_BAD_STAT, OFPBRC_BAD_VENDOR, OFPBRC_BUFFER_UNKNOWN,
  OFPET13_BAD_INSTRUCTION, OFPET13_BAD_MATCH, OFPET13_FLOW_MOD_FAILED, OFPET14_BUNDLE_FAILED,
  OFPT13_GET_ASYNC_REPLY, OFPET13_ROLE_REQUEST_FAILED, NX_VENDOR_ID, NXT_SET_PACKET_IN_FORMAT, NXT_SET_CONTROLLER_ID,
  NXPIF_STANDARD, NXPIF_NXT_PACKET_IN2, OFPBRC_BAD_SUBTYPE, OFPBRC_EPERM,
} from './wire';
import type { MsgContext } from './session';
import { decodeMatch, encodeMatch, oxmHeaders, port32to16 } from './nxm';
import { putPort } from './async-msgs';
import { decodeActions, encodeActions } from './action-codec';
import { FlowMod, applyFlowMod, selectForStats, ruleTimes } from './flow-mod';

const OFPMT_OXM = 1;
const OFPMP_TABLE_FEATURES = 12;
const OFPIT_GOTO_TABLE = 1;
const OFPIT_WRITE_METADATA = 2;
const OFPIT_APPLY_ACTIONS = 4;
const OFPIT_CLEAR_ACTIONS = 5;
const OFPBCT_OPEN_REQUEST = 0;
const OFPBCT_CLOSE_REQUEST = 2;
const OFPBCT_COMMIT_REQUEST = 4;
const OFPBCT_DISCARD_REQUEST = 6;
const OFPBFC_BAD_ID = 2;
const OFPBFC_BUNDLE_EXIST = 3;
const OFPBFC_BAD_TYPE = 6;
const OFPBFC_MSG_BAD_LEN = 8;
const OFPBFC_MSG_UNSUP = 10;
const OFPBFC_MSG_FAILED = 13;
/** Bundles per connection and messages per bundle (OFPBFC_OUT_OF_BUNDLES / MSG_TOO_MANY beyond). */
const MAX_BUNDLES = 16;
const MAX_BUNDLE_MSGS = 100000;
const METADATA: FieldDef = fieldByName('metadata') as FieldDef;

function need(ctx: MsgContext, n: number, what: string): void {
  if (ctx.msg.length < n) throw badLen(`${what}: ${ctx.msg.length} bytes, need ${n}`);
}

function reply(ctx: MsgContext, type: number, body?: Uint8Array): void {
  const w = new Writer(16 + (body ? body.length : 0));
  const at = beginMsg(w, ctx.version, type, ctx.xid);
  if (body) w.bytes(body);
  endMsg(w, at);
  ctx.reply(w.finish());
}

export function handleOf13(ctx: MsgContext): void {
  switch (ctx.type) {
    case OFPT_HELLO: case OFPT_ECHO_REPLY: return;
    case OFPT_ECHO_REQUEST: reply(ctx, OFPT_ECHO_REPLY, ctx.msg.subarray(8)); return;
    case OFPT_FEATURES_REQUEST: {
      const w = new Writer(24);
      // capabilities: FLOW_STATS | TABLE_STATS | PORT_STATS
      w.u64(ctx.handle.datapathId).u32(0).u8(N_TABLES - 1).u8(0).u16(0).u32(0x1 | 0x2 | 0x4).u32(0);
      reply(ctx, OFPT_FEATURES_REPLY, w.finish());
      return;
    }
    case OFPT_GET_CONFIG_REQUEST:
      reply(ctx, OFPT_GET_CONFIG_REPLY, new Writer(4).u16(ctx.state.configFlags).u16(ctx.state.missSendLen).finish());
      return;
    case OFPT_SET_CONFIG:
      if (ctx.msg.length !== 12) throw badLen('set_config');
      ctx.state.configFlags = ctx.msg.readUInt16BE(8) & 3;
      ctx.state.missSendLen = ctx.msg.readUInt16BE(10);
      return;
    case OFPT13_BARRIER_REQUEST: reply(ctx, OFPT13_BARRIER_REPLY); return;
    case OFPT_FLOW_MOD: {
      const fm = decodeFlowMod(ctx.msg, ctx.version);
      ctx.counters.nFlowMods++;
      applyFlowMod(ctx.handle.bridge, fm, ctx.handle.nowMs(), badCommand());
      return;
    }
    case OFPT_PACKET_OUT: packetOut(ctx); return;
    case OFPT13_MULTIPART_REQUEST: multipart(ctx); return;
    case OFPT13_ROLE_REQUEST: {
      need(ctx, 24, 'role_request');
      // OFPCR_ROLE_NOCHANGE 0, EQUAL 1, MASTER 2, SLAVE 3
      const role = ctx.msg.readUInt32BE(8);
      if (role > 3) throw new OfError(OFPET13_ROLE_REQUEST_FAILED, 2, `role ${role}`);
      if (role !== 0) ctx.state.slave = role === 3;
      const w = new Writer(16);
      w.u32(role !== 0 ? role : ctx.state.slave ? 3 : 1).zeros(4).u64(ctx.msg.readBigUInt64BE(16));
      reply(ctx, OFPT13_ROLE_REPLY, w.finish());
      return;
    }
    case OFPT13_SET_ASYNC: setAsync(ctx); return;
    case OFPT13_GET_ASYNC_REQUEST: {
      if (ctx.msg.length !== 8) throw badLen('get_async_request');
      const masks = ctx.state.asyncMasks;
      const w = new Writer(48);
      if (ctx.version >= OFP14_VERSION) {
        // Properties: type = kind * 2 + (master ? 1 : 0), length 8, mask.
        for (let t = 0; t < 6; t++) w.u16(t).u16(8).u32(masks[(t >> 1) * 2 + ((t & 1) === 0 ? 1 : 0)]);
      } else {
        for (let k = 0; k < 3; k++) w.u32(masks[k * 2]).u32(masks[k * 2 + 1]);
      }
      reply(ctx, OFPT13_GET_ASYNC_REPLY, w.finish());
      return;
    }
    case OFPT14_BUNDLE_CONTROL: if (ctx.version >= OFP14_VERSION) { bundleControl(ctx); return; } break;
    case OFPT14_BUNDLE_ADD_MESSAGE: if (ctx.version >= OFP14_VERSION) { bundleAdd(ctx); return; } break;
    case OFPT_VENDOR: experimenter(ctx); return;
    default: break;
  }
  throw new OfError(OFPET_BAD_REQUEST, OFPBRC_BAD_TYPE, `message type ${ctx.type}`);
}

/**
 * OFPT_SET_ASYNC: OpenFlow 1.3 has packet_in_mask[2] port_status_mask[2] flow_removed_mask[2]
 * (master/equal, slave); 1.4 has properties type(2) length(2) mask(4), even types for the slave.
 */
function setAsync(ctx: MsgContext): void {
  const m = ctx.msg;
  const masks = ctx.state.asyncMasks;
  if (ctx.version < OFP14_VERSION) {
    if (m.length !== 32) throw badLen('set_async');
    for (let k = 0; k < 6; k++) masks[k] = m.readUInt32BE(8 + k * 4);
    return;
  }
  const next = Uint32Array.from(masks);
  for (let p = 8; p < m.length;) {
    if (m.length - p < 4) throw badLen('set_async property cut short');
    const t = m.readUInt16BE(p);
    const l = m.readUInt16BE(p + 2);
    if (l < 4 || p + l > m.length) throw badLen(`set_async property length ${l}`);
    if (t < 6) {
      if (l !== 8) throw badLen(`set_async property ${t} length ${l}`);
      next[(t >> 1) * 2 + ((t & 1) === 0 ? 1 : 0)] = m.readUInt32BE(p + 4);
    }
    p += (l + 7) & ~7;
  }
  masks.set(next);
}

/** The Nicira messages OpenFlow 1.3+ clients send before monitoring: packet-in format and controller id. */
function experimenter(ctx: MsgContext): void {
  const m = ctx.msg;
  need(ctx, 16, 'experimenter');
  if (m.readUInt32BE(8) !== NX_VENDOR_ID) throw new OfError(OFPET_BAD_REQUEST, OFPBRC_BAD_VENDOR, `experimenter 0x${m.readUInt32BE(8).toString(16)}`);
  const sub = m.readUInt32BE(12);
  if (sub === NXT_SET_PACKET_IN_FORMAT) {
    if (m.length !== 20) throw badLen('set_packet_in_format');
    const f = m.readUInt32BE(16);
    // OpenFlow 1.3+ packet-ins are the standard message or NXT_PACKET_IN2 (as OVS).
    if (f !== NXPIF_STANDARD && f !== NXPIF_NXT_PACKET_IN2) throw new OfError(OFPET_BAD_REQUEST, OFPBRC_EPERM, `packet-in format ${f}`);
    ctx.state.packetInFormat = f;
    return;
  }
  if (sub === NXT_SET_CONTROLLER_ID) {
    if (m.length !== 24) throw badLen('set_controller_id');
    ctx.state.controllerId = m.readUInt16BE(22);
    return;
  }
  throw new OfError(OFPET_BAD_REQUEST, OFPBRC_BAD_SUBTYPE, `Nicira subtype ${sub} in OpenFlow 1.3+`);
}

function badCommand(): OfError {
  return new OfError(OFPET13_FLOW_MOD_FAILED, 6, 'bad flow_mod command');
}

/** ofp_match (type OXM) at `off`: returns the decoded match and the padded length consumed. */
function decodeOxmMatch(m: Buffer, off: number): { d: ReturnType<typeof decodeMatch>; len: number } {
  if (m.length < off + 4) throw new OfError(OFPET13_BAD_MATCH, 1, 'match header cut short');
  const type = m.readUInt16BE(off);
  const len = m.readUInt16BE(off + 2);
  if (type !== OFPMT_OXM) throw new OfError(OFPET13_BAD_MATCH, 0, `match type ${type}`);
  const padded = (len + 7) & ~7;
  if (len < 4 || off + padded > m.length) throw new OfError(OFPET13_BAD_MATCH, 1, `match length ${len}`);
  return { d: decodeMatch(m, off + 4, len - 4), len: padded };
}

function encodeOxmMatch(w: Writer, rule: Rule | { match: Rule['match'] }): void {
  const at = w.len;
  w.u16(OFPMT_OXM).u16(0);
  const n = encodeMatch(w, rule.match, true);
  w.patch16(at + 2, 4 + n);
  w.pad(at, 8);
}

/** Instructions -> flowd actions: apply_actions, then write_metadata (as a masked set_field), then goto_table. */
function decodeInstructions(m: Buffer, off: number, end: number, version: number): Action[] {
  const out: Action[] = [];
  let meta: Action | null = null;
  let goto: Action | null = null;
  for (let p = off; p < end;) {
    if (end - p < 8) throw new OfError(OFPET13_BAD_INSTRUCTION, 6, 'instruction cut short');
    const type = m.readUInt16BE(p);
    const len = m.readUInt16BE(p + 2);
    if (len < 8 || len % 8 !== 0 || p + len > end) throw new OfError(OFPET13_BAD_INSTRUCTION, 6, `instruction length ${len}`);
    switch (type) {
      case OFPIT_APPLY_ACTIONS: out.push(...decodeActions(m, p + 8, len - 8, version)); break;
      case OFPIT_GOTO_TABLE: {
        const t = m[p + 4];
        if (t >= N_TABLES) throw new OfError(OFPET13_BAD_INSTRUCTION, 2, `goto_table ${t}`);
        goto = { kind: 'goto_table', table: t };
        break;
      }
      case OFPIT_WRITE_METADATA:
        if (len !== 24) throw new OfError(OFPET13_BAD_INSTRUCTION, 6, 'write_metadata length');
        meta = { kind: 'set_field', field: METADATA, value: m.readBigUInt64BE(p + 8) & m.readBigUInt64BE(p + 16), mask: m.readBigUInt64BE(p + 16) };
        break;
      case OFPIT_CLEAR_ACTIONS: break;
      default: throw new OfError(OFPET13_BAD_INSTRUCTION, 1, `instruction type ${type}`);
    }
    p += len;
  }
  if (meta) out.push(meta);
  if (goto) out.push(goto);
  return out;
}

/** flowd actions -> instructions (the inverse of decodeInstructions). */
function encodeInstructions(w: Writer, actions: readonly Action[], version: number): void {
  let n = actions.length;
  let goto = -1;
  let meta: Extract<Action, { kind: 'set_field' }> | null = null;
  if (n > 0 && actions[n - 1].kind === 'goto_table') { goto = (actions[n - 1] as Extract<Action, { kind: 'goto_table' }>).table; n--; }
  const last = n > 0 ? actions[n - 1] : null;
  if (last !== null && last.kind === 'set_field' && last.field === METADATA && goto >= 0) { meta = last; n--; }
  if (n > 0) {
    const at = w.len;
    w.u16(OFPIT_APPLY_ACTIONS).u16(0).u32(0);
    encodeActions(w, actions.slice(0, n), version);
    w.patch16(at + 2, w.len - at);
  }
  if (meta !== null) w.u16(OFPIT_WRITE_METADATA).u16(24).u32(0).u64(meta.value).u64(meta.mask);
  if (goto >= 0) w.u16(OFPIT_GOTO_TABLE).u16(8).u8(goto).zeros(3);
}

/**
 * ofp_flow_mod: header(8) cookie(8) cookie_mask(8) table_id(1) command(1) idle(2) hard(2) priority(2)
 * buffer_id(4) out_port(4) out_group(4) flags(2) importance(2) match instructions; OpenFlow 1.3 has
 * pad(2) where 1.4 has importance.
 */
export function decodeFlowMod(m: Buffer, version: number): FlowMod {
  if (m.length < 56) throw badLen(`flow_mod: ${m.length} bytes`);
  const { d, len } = decodeOxmMatch(m, 48);
  if (m.readUInt32BE(36) !== OFP_NO_BUFFER) throw new OfError(OFPET_BAD_REQUEST, OFPBRC_BUFFER_UNKNOWN, 'flowd keeps no buffers');
  const command = m[25];
  const outPort32 = m.readUInt32BE(40);
  const outPort = outPort32 === OFPP13_ANY ? OFPP_NONE : port32to16(outPort32);
  const cookie = m.readBigUInt64BE(8);
  return {
    command, tableId: m[24], match: d.match, priority: m.readUInt16BE(30),
    cookie, cookieMask: m.readBigUInt64BE(16),
    // OpenFlow 1.3 s7.3.4.1: modify never changes the cookie; add sets it.
    newCookie: command === 0 ? cookie : 0xffffffffffffffffn,
    idleTimeoutS: m.readUInt16BE(26), hardTimeoutS: m.readUInt16BE(28),
    importance: version >= OFP14_VERSION ? m.readUInt16BE(46) : 0, flags: m.readUInt16BE(44) & 0x1f,
    outPort: outPort < 0 ? OFPP_NONE : outPort,
    actions: decodeInstructions(m, 48 + len, m.length, version),
  };
}

function packetOut(ctx: MsgContext): void {
  const m = ctx.msg;
  need(ctx, 24, 'packet_out');
  const actionsLen = m.readUInt16BE(16);
  if (24 + actionsLen > m.length) throw badLen('packet_out: actions run past the message');
  if (m.readUInt32BE(8) !== OFP_NO_BUFFER) throw new OfError(OFPET_BAD_REQUEST, OFPBRC_BUFFER_UNKNOWN, 'flowd keeps no buffers');
  const actions = decodeActions(m, 24, actionsLen, ctx.version);
  ctx.counters.nPacketOuts++;
  const inPort = port32to16(m.readUInt32BE(12));
  ctx.handle.packetOut(inPort < 0 ? OFPP_NONE : inPort, actions, m.subarray(24 + actionsLen));
}

// ---- multipart ----------------------------------------------------------------------------------

/** Sends `bodies` as multipart replies of `mpType`. */
function replies(ctx: MsgContext, mpType: number, bodies: readonly Buffer[]): void {
  const head = (w: Writer): void => { w.u16(mpType).u16(0).u32(0); };
  for (const m of splitReplies(ctx.version, OFPT13_MULTIPART_REPLY, ctx.xid, head, bodies)) ctx.reply(m);
}

function multipart(ctx: MsgContext): void {
  const m = ctx.msg;
  need(ctx, 16, 'multipart request');
  const type = m.readUInt16BE(8);
  switch (type) {
    case OFPST_DESC: {
      replies(ctx, type, [descBody(ctx.handle.bridge.name)]);
      return;
    }
    case OFPST_FLOW: case OFPST_AGGREGATE: {
      // table_id(1) pad(3) out_port(4) out_group(4) pad(4) cookie(8) cookie_mask(8) match
      need(ctx, 16 + 32 + 8, 'flow stats request');
      const { d } = decodeOxmMatch(m, 48);
      const out32 = m.readUInt32BE(20);
      const outPort = out32 === OFPP13_ANY ? OFPP_NONE : port32to16(out32);
      const rules = selectForStats(ctx.handle.bridge, m[16], d.match, outPort < 0 ? OFPP_NONE : outPort,
        m.readBigUInt64BE(32), m.readBigUInt64BE(40));
      if (type === OFPST_AGGREGATE) {
        let p = 0; let b = 0;
        for (const r of rules) { p += r.nPackets; b += r.nBytes; }
        replies(ctx, type, [new Writer(24).u64(BigInt(p)).u64(BigInt(b)).u32(rules.length).u32(0).finish()]);
        return;
      }
      const now = ctx.handle.nowMs();
      replies(ctx, type, rules.map((r) => flowStats(r, now, ctx.version)));
      return;
    }
    case OFPST_TABLE: {
      const bodies: Buffer[] = [];
      for (let t = 0; t < N_TABLES - 1; t++) {
        const cls = ctx.handle.bridge.tables[t];
        let matched = 0;
        for (const r of cls.rules()) matched += r.nPackets;
        bodies.push(new Writer(24).u8(t).zeros(3).u32(cls.size).u64(BigInt(matched)).u64(BigInt(matched)).finish());
      }
      replies(ctx, type, bodies);
      return;
    }
    case OFPST_PORT: {
      need(ctx, 24, 'port stats request');
      const want32 = m.readUInt32BE(16);
      const bodies: Buffer[] = [];
      for (const p of ctx.handle.ports()) {
        if (want32 !== OFPP13_ANY && port32to16(want32) !== p.ofport) continue;
        const s = p.stats;
        const w = new Writer(120);
        const counters = [s.rxPackets, s.txPackets, s.rxBytes, s.txBytes, s.rxDropped, s.txDropped, s.rxErrors, s.txErrors];
        if (ctx.version >= OFP14_VERSION) {
          w.u16(120).u16(0).u32(p.ofport).u32(0).u32(0);
          for (const v of counters) w.u64(BigInt(v));
          w.u16(0).u16(40).u32(0).u64(0n).u64(0n).u64(0n).u64(0n);
        } else {
          w.u32(p.ofport).u32(0);
          for (const v of counters) w.u64(BigInt(v));
          w.u64(0n).u64(0n).u64(0n).u64(0n).u32(0).u32(0);
        }
        bodies.push(w.finish());
      }
      replies(ctx, type, bodies);
      return;
    }
    case OFPMP13_PORT_DESC: {
      const w = new Writer(512);
      for (const p of ctx.handle.ports()) putPort(w, ctx.version, p.ofport, p.name, p.up);
      putPort(w, ctx.version, 0xfffe, ctx.handle.bridge.name, true);
      replies(ctx, type, [w.finish()]);
      return;
    }
    case OFPMP_TABLE_FEATURES:
      // ovs-ofctl asks before add-flow/dump-flows in 1.3+ (for table names). Each table:
      // length(2) table_id(1) pad(5) name(32) metadata_match(8) metadata_write(8) config(4)
      // max_entries(4), and no properties (flowd announces no per-table restrictions).
      if (m.length > 16) throw new OfError(OFPET_BAD_REQUEST, 5, 'setting table features is not supported');
      replies(ctx, type, Array.from({ length: N_TABLES - 1 }, (_, t) => tableFeatures(t)));
      return;
    default: throw new OfError(OFPET_BAD_REQUEST, OFPBRC_BAD_STAT, `multipart type ${type}`);
  }
}

/** One table's features: what every flowd table accepts (OpenFlow 1.3 s7.3.5.18). */
function tableFeatures(t: number): Buffer {
  const w = new Writer(1024);
  w.u16(0).u8(t).zeros(5).str(t === 0 ? 'classifier' : `table${t}`, 32)
    .u64(0xffffffffffffffffn).u64(0xffffffffffffffffn).u32(0).u32(1000000);
  const prop = (type: number, body: (x: Writer) => void): void => {
    const at = w.len;
    w.u16(type).u16(0);
    body(w);
    w.patch16(at + 2, w.len - at);
    w.pad(at, 8);
  };
  const oxm = oxmHeaders();
  prop(0, (x) => { for (const i of [OFPIT_GOTO_TABLE, OFPIT_WRITE_METADATA, OFPIT_APPLY_ACTIONS, OFPIT_CLEAR_ACTIONS]) x.u16(i).u16(4); });
  prop(2, (x) => { for (let n = t + 1; n < N_TABLES - 1; n++) x.u8(n); });
  prop(4, () => undefined);
  // output, push_vlan, pop_vlan, dec_nw_ttl, set_field, experimenter (the Nicira actions)
  prop(6, (x) => { for (const a of [0, 17, 18, 24, 25, 0xffff]) x.u16(a).u16(4); });
  prop(8, (x) => { for (const h of oxm) x.u32(h); });
  prop(10, (x) => { for (const h of oxm) x.u32(h); });
  prop(12, () => undefined);
  prop(14, (x) => { for (const h of oxm) x.u32(h); });
  w.patch16(0, w.len);
  return w.finish();
}

/**
 * ofp_flow_stats: length(2) table_id(1) pad(1) duration(8) priority(2) idle(2) hard(2) flags(2)
 * pad(4) cookie(8) packets(8) bytes(8) match instructions. OpenFlow 1.4 puts importance(2) in the
 * first two bytes of that pad (ovs-ofctl prints a non-zero one).
 */
function flowStats(r: Rule, now: number, version: number): Buffer {
  const t = ruleTimes(r, now);
  const w = new Writer(256);
  w.u16(0).u8(r.tableId).u8(0).u32(t.sec).u32(t.nsec).u16(r.priority).u16(r.idleTimeoutS).u16(r.hardTimeoutS)
    .u16(r.flags & 0x1f).u16(version >= OFP14_VERSION ? r.importance : 0).u16(0);
  w.u64(r.cookie).u64(BigInt(r.nPackets)).u64(BigInt(r.nBytes));
  encodeOxmMatch(w, r);
  encodeInstructions(w, r.actions, version);
  w.patch16(0, w.len);
  return w.finish();
}

// ---- bundles (OpenFlow 1.4 s7.3.9) ---------------------------------------------------------------

function bundleReply(ctx: MsgContext, id: number, type: number, flags: number): void {
  reply(ctx, OFPT14_BUNDLE_CONTROL, new Writer(8).u32(id).u16(type + 1).u16(flags).finish());
}

/** ofp_bundle_ctrl_msg: bundle_id(4) type(2) flags(2) properties. */
function bundleControl(ctx: MsgContext): void {
  need(ctx, 16, 'bundle_ctrl');
  const id = ctx.msg.readUInt32BE(8);
  const type = ctx.msg.readUInt16BE(12);
  const flags = ctx.msg.readUInt16BE(14);
  const bundles = ctx.state.bundles;
  const b = bundles.get(id);
  switch (type) {
    case OFPBCT_OPEN_REQUEST:
      if (b !== undefined) throw new OfError(OFPET14_BUNDLE_FAILED, OFPBFC_BUNDLE_EXIST, `bundle ${id} is open`);
      if (bundles.size >= MAX_BUNDLES) throw new OfError(OFPET14_BUNDLE_FAILED, 5, 'too many bundles');
      bundles.set(id, { flags, msgs: [] });
      bundleReply(ctx, id, type, flags);
      return;
    case OFPBCT_CLOSE_REQUEST:
      if (b === undefined) throw new OfError(OFPET14_BUNDLE_FAILED, OFPBFC_BAD_ID, `no bundle ${id}`);
      bundleReply(ctx, id, type, flags);
      return;
    case OFPBCT_DISCARD_REQUEST:
      if (b === undefined) throw new OfError(OFPET14_BUNDLE_FAILED, OFPBFC_BAD_ID, `no bundle ${id}`);
      bundles.delete(id);
      bundleReply(ctx, id, type, flags);
      return;
    case OFPBCT_COMMIT_REQUEST: {
      if (b === undefined) throw new OfError(OFPET14_BUNDLE_FAILED, OFPBFC_BAD_ID, `no bundle ${id}`);
      bundles.delete(id);
      commit(ctx, b.msgs);
      ctx.counters.nBundlesCommitted++;
      bundleReply(ctx, id, type, flags);
      return;
    }
    default: throw new OfError(OFPET14_BUNDLE_FAILED, OFPBFC_BAD_TYPE, `bundle control type ${type}`);
  }
}

/** ofp_bundle_add_msg: bundle_id(4) pad(2) flags(2) message properties. The inner message is checked now. */
function bundleAdd(ctx: MsgContext): void {
  const m = ctx.msg;
  need(ctx, 24, 'bundle_add');
  const id = m.readUInt32BE(8);
  const inner = m.subarray(16);
  const innerLen = inner.readUInt16BE(2);
  if (innerLen < 8 || innerLen > inner.length) throw new OfError(OFPET14_BUNDLE_FAILED, OFPBFC_MSG_BAD_LEN, `inner length ${innerLen}`);
  const b = ctx.state.bundles.get(id);
  if (b === undefined) throw new OfError(OFPET14_BUNDLE_FAILED, OFPBFC_BAD_ID, `no bundle ${id}`);
  if (inner[1] !== OFPT_FLOW_MOD) throw new OfError(OFPET14_BUNDLE_FAILED, OFPBFC_MSG_UNSUP, `message type ${inner[1]} in a bundle`);
  if (b.msgs.length >= MAX_BUNDLE_MSGS) throw new OfError(OFPET14_BUNDLE_FAILED, 12, 'too many messages in the bundle');
  decodeFlowMod(Buffer.from(inner.subarray(0, innerLen)), ctx.version);
  b.msgs.push(Buffer.from(inner.subarray(0, innerLen)));
}

/**
 * Applies every flow-mod of a bundle or none: all are decoded first (they were checked when
 * added); if applying one fails, the bridge's rules are put back as they were before the commit.
 */
function commit(ctx: MsgContext, msgs: readonly Buffer[]): void {
  const fms = msgs.map((x) => decodeFlowMod(x, ctx.version));
  for (const fm of fms) if (fm.command > 4) { ctx.counters.nBundlesFailed++; throw new OfError(OFPET14_BUNDLE_FAILED, OFPBFC_MSG_FAILED, 'bad command in bundle'); }
  const br = ctx.handle.bridge;
  const before: FlowSpec[] = br.allRules().map((r) => ({
    text: '(bundle rollback)', match: r.match, priority: r.priority, tableId: r.tableId, cookie: r.cookie,
    cookieMask: 0xffffffffffffffffn, newCookie: r.cookie, idleTimeoutS: r.idleTimeoutS, hardTimeoutS: r.hardTimeoutS,
    importance: r.importance, flags: r.flags, outPort: OFPP_NONE, actions: r.actions, hasActions: true, stats: null,
  }));
  const now = ctx.handle.nowMs();
  try {
    for (const fm of fms) { ctx.counters.nFlowMods++; applyFlowMod(br, fm, now, badCommand()); }
  } catch (e) {
    br.replaceFlows(before, now);
    ctx.counters.nBundlesFailed++;
    throw new OfError(OFPET14_BUNDLE_FAILED, OFPBFC_MSG_FAILED, `bundle commit failed: ${(e as Error).message}`);
  }
}

