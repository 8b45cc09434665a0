/**
 * One OpenFlow connection to a bridge: framing, version negotiation, dispatch, errors, limits.
 * The transport (unix or TCP socket, accepted or dialled) belongs to endpoint.ts; a Session
 * only sees bytes in (`feed`) and writes bytes out through the `send` callback.
 *
 * States: 'hello' (our HELLO sent, waiting for the peer's) -> 'open' (version agreed) ->
 * 'closed'. Version negotiation is OpenFlow 1.3.x s6.3.1: with a version bitmap in both HELLOs
 * the highest common version wins, otherwise the lower of the two header versions, which must
 * be one flowd speaks (1.0, 1.3, 1.4); otherwise OFPT_ERROR HELLO_FAILED/INCOMPATIBLE and close.
 *
 * Framing: a header's length below 8 cannot be resynchronised, so it closes the connection
 * (counted as `closedBadLength`); a message of an unknown type or with a wrong length for its
 * type gets OFPT_ERROR (BAD_REQUEST, BAD_TYPE / BAD_LEN ...) and the connection goes on.
 *
 * Asynchronous messages (packetIn, flowRemoved, portStatus, called by endpoint.ts): sent only
 * to connections that want them, as OVS decides (connmgr.c): per kind and reason by the
 * connection's async masks (OVS's defaults, changed by OFPT_SET_ASYNC / NXT_SET_ASYNC_CONFIG),
 * the slave masks for a slave, packet-ins only for the connection's controller id, and
 * nothing at all to a service connection whose miss_send_len is 0. When the peer's write
 * backlog is over half the limit the message is not sent and counted (nAsyncDropped): the
 * datapath never waits for a slow reader.
 *
 * Bounded work: feed() handles at most MAX_MSGS_PER_TURN messages and returns; the rest waits
 * for the next turn of the event loop (endpoint.ts pauses the socket meanwhile), so a client
 * can never keep the datapath's batches waiting longer than that many messages. A peer that
 * sends faster than it reads our replies (write backlog over MAX_BACKLOG_BYTES) or whose
 * unparsed input exceeds MAX_INPUT_BYTES is disconnected and counted as `closedFlood`.
 */
import {
  OfError, Writer, beginMsg, endMsg, OFP10_VERSION, OFP13_VERSION, OFP14_VERSION, OFP_HEADER_LEN,
  OFPT_HELLO, OFPT_ERROR, OFPT_ECHO_REQUEST, OFPET_HELLO_FAILED, OFPHFC_INCOMPATIBLE,
  OFPET_BAD_REQUEST, OFPBRC_BAD_VERSION, NXFF_NXM,
} from './wire';
import type { OfBridgeHandle } from './bridge-handle';
import type { Rule } from '../../ofproto/rule';
import type { PacketInInfo } from '../../dpif/dp-actions';
import {
  ASYNC_PACKET_IN, ASYNC_PORT_STATUS, ASYNC_FLOW_REMOVED, defaultAsyncMasks, wireReason, encodePacketIn,
  encodeFlowRemoved, encodePortStatus,
} from './async-msgs';
import { handleOf10 } from './of10';
import { handleOf13 } from './of13';

export const MAX_MSGS_PER_TURN = 64;
export const MAX_BACKLOG_BYTES = 8 * 1024 * 1024;
export const MAX_INPUT_BYTES = 4 * 1024 * 1024;
const SUPPORTED = [OFP10_VERSION, OFP13_VERSION, OFP14_VERSION];
const OFPHET_VERSIONBITMAP = 1;

/** Counters of one endpoint (all its sessions), shown by `flowctl stats` and the tests. */
export class OfCounters {
  nConnections = 0;
  nMessages = 0;
  nErrorsSent = 0;
  /** Errors sent, by "TYPE,CODE". */
  readonly errors = new Map<string, number>();
  nFlowMods = 0;
  nClosedBadLength = 0;
  nClosedFlood = 0;
  nClosedHelloFailed = 0;
  nPacketOuts = 0;
  nBundlesCommitted = 0;
  nBundlesFailed = 0;
  /** Asynchronous messages sent, and those not sent because the peer's write backlog was full. */
  nPacketIns = 0;
  nFlowRemoved = 0;
  nPortStatus = 0;
  nAsyncDropped = 0;

  countError(type: number, code: number): void {
    this.nErrorsSent++;
    const k = `${type},${code}`;
    this.errors.set(k, (this.errors.get(k) ?? 0) + 1);
  }

  toJson(): Record<string, number> {
    const o: Record<string, number> = {
      connections: this.nConnections, messages: this.nMessages, errors_sent: this.nErrorsSent,
      flow_mods: this.nFlowMods, closed_bad_length: this.nClosedBadLength, closed_flood: this.nClosedFlood,
      closed_hello_failed: this.nClosedHelloFailed, packet_outs: this.nPacketOuts,
      bundles_committed: this.nBundlesCommitted, bundles_failed: this.nBundlesFailed,
      packet_ins: this.nPacketIns, flow_removed: this.nFlowRemoved, port_status: this.nPortStatus,
      async_dropped: this.nAsyncDropped,
    };
    for (const [k, v] of this.errors) o[`error_${k.replace(',', '_')}`] = v;
    return o;
  }
}

/** Per-connection protocol state the message modules read and change. */
export interface SessionState {
  /** NXT_SET_FLOW_FORMAT: 0 OpenFlow10, 2 NXM. */
  flowFormat: number;
  /** NXT_FLOW_MOD_TABLE_ID: the flow-mod command's high byte is a table id. */
  tableIdExt: boolean;
  packetInFormat: number;
  missSendLen: number;
  configFlags: number;
  /** Open OpenFlow 1.4 bundles by id. */
  readonly bundles: Map<number, { flags: number; msgs: Buffer[] }>;
  /** Async message masks, [kind * 2 + (slave ? 1 : 0)] (async-msgs.ts ASYNC_*), per reason bit. */
  asyncMasks: Uint32Array;
  /** Role slave (NXT_ROLE_REQUEST / OFPT_ROLE_REQUEST): the slave masks apply. */
  slave: boolean;
  /** NXT_SET_CONTROLLER_ID: this connection gets packet-ins of controller actions with this id. */
  controllerId: number;
}

export interface SessionIo {
  send(bytes: Buffer): void;
  /** Bytes written but not yet flushed by the transport. */
  backlog(): number;
  close(reason: string): void;
}

/** What a message handler gets: the message, the bridge, the state, and a way to reply. */
export interface MsgContext {
  readonly version: number;
  readonly type: number;
  readonly xid: number;
  /** The whole message, header included. */
  readonly msg: Buffer;
  readonly handle: OfBridgeHandle;
  readonly state: SessionState;
  readonly counters: OfCounters;
  /** Queues replies (whole messages). */
  reply(bytes: Buffer): void;
}

/**
 * The OpenFlow 1.3+ numbers of errors the codecs raise with OpenFlow 1.0 numbers (Open vSwitch's
 * ofp-errors.h): NXM match errors become OFPET_BAD_MATCH, the 1.0 flow-mod failure 1.3's.
 */
function errorFor13(type: number, code: number): [number, number] {
  if (type === 1 && code >= 256 && code <= 261) return [4, [1, 6, 7, 8, 9, 10][code - 256]];
  if (type === 3) return [5, code === 4 ? 6 : code];
  return [type, code];
}

export class Session {
  version = 0;
  state: 'hello' | 'open' | 'closed' = 'hello';
  private input: Buffer = Buffer.alloc(0);
  private readonly st: SessionState;
  /** When the peer last sent anything (for the controller connection's echo keepalive). */
  lastRxMs = 0;
  private nextXid = 1;

  /**
   * `service`: a connection the switch accepted (management socket, ptcp), which gets no
   * asynchronous messages until it sets a non-zero miss_send_len (as OVS's service connections:
   * `ovs-ofctl monitor BR 65534` does); otherwise a controller connection (miss_send_len 128).
   */
  constructor(private readonly handle: OfBridgeHandle, private readonly io: SessionIo,
              readonly counters: OfCounters, readonly service = true) {
    this.st = {
      flowFormat: 0, tableIdExt: false, packetInFormat: 0, missSendLen: service ? 0 : 128, configFlags: 0,
      bundles: new Map(), asyncMasks: defaultAsyncMasks(OFP10_VERSION), slave: false, controllerId: 0,
    };
  }

  // ---- asynchronous messages --------------------------------------------------------------------

  /** True when this connection gets asynchronous messages at all. */
  get wantsAsync(): boolean {
    return this.state === 'open' && !(this.service && this.st.missSendLen === 0);
  }

  /** Does this connection want async messages of `kind` (ASYNC_*) with wire reason `reason`? */
  private receives(kind: number, reason: number): boolean {
    if (this.state !== 'open') return false;
    if (this.service && this.st.missSendLen === 0) return false;
    const mask = this.st.asyncMasks[kind * 2 + (this.st.slave ? 1 : 0)];
    return ((mask >>> reason) & 1) !== 0;
  }

  /** Queues an async message unless the peer is behind on reading (then counted, not sent). */
  private sendAsync(bytes: Buffer): boolean {
    if (this.io.backlog() > MAX_BACKLOG_BYTES / 2) { this.counters.nAsyncDropped++; return false; }
    this.io.send(bytes);
    return true;
  }

  /** A packet-in from the datapath; sent when this connection asked for it. */
  packetIn(info: PacketInInfo, data: Uint8Array, totalLen: number): void {
    if (info.controllerId !== this.st.controllerId || !this.receives(ASYNC_PACKET_IN, wireReason(info, this.version))) return;
    if (this.sendAsync(encodePacketIn(this.version, this.st.packetInFormat, info, data, totalLen))) this.counters.nPacketIns++;
  }

  /** A rule with send_flow_rem went away for `reason` (FR_*). */
  flowRemoved(rule: Rule, reason: number, nowMs: number): void {
    if (!this.receives(ASYNC_FLOW_REMOVED, reason)) return;
    if (this.sendAsync(encodeFlowRemoved(this.version, this.st.flowFormat === NXFF_NXM, rule, reason, nowMs))) this.counters.nFlowRemoved++;
  }

  /** A port was added, deleted or changed state (reason PS_*). */
  portStatus(reason: number, ofport: number, name: string, up: boolean): void {
    if (!this.receives(ASYNC_PORT_STATUS, reason)) return;
    if (this.sendAsync(encodePortStatus(this.version, reason, ofport, name, up))) this.counters.nPortStatus++;
  }

  /** Sends our HELLO (version 1.4 with a bitmap of 1.0, 1.3 and 1.4). */
  start(): void {
    const w = new Writer(16);
    const at = beginMsg(w, OFP14_VERSION, OFPT_HELLO, this.xid());
    let bitmap = 0;
    for (const v of SUPPORTED) bitmap |= 1 << v;
    w.u16(OFPHET_VERSIONBITMAP).u16(8).u32(bitmap);
    endMsg(w, at);
    this.io.send(w.finish());
  }

  xid(): number {
    const x = this.nextXid;
    this.nextXid = (this.nextXid + 1) >>> 0 || 1;
    return x;
  }

  /** Sends an OFPT_ECHO_REQUEST (controller keepalive). */
  sendEcho(): void {
    if (this.state !== 'open') return;
    const w = new Writer(8);
    endMsg(w, beginMsg(w, this.version, OFPT_ECHO_REQUEST, this.xid()));
    this.io.send(w.finish());
  }

  /** Sends a whole message built by the caller (asynchronous messages such as PACKET_IN). */
  sendRaw(bytes: Buffer): void {
    if (this.state === 'open') this.io.send(bytes);
  }

  /** Appends received bytes. Returns true when more complete messages wait (call drain() later). */
  feed(chunk: Buffer, nowMs: number): boolean {
    this.lastRxMs = nowMs;
    this.input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    if (this.input.length > MAX_INPUT_BYTES) {
      this.counters.nClosedFlood++;
      this.close('input backlog over limit');
      return false;
    }
    return this.drain();
  }

  /** Handles up to MAX_MSGS_PER_TURN complete messages; returns true when more wait. */
  drain(): boolean {
    let n = 0;
    while (this.state !== 'closed' && this.input.length >= OFP_HEADER_LEN) {
      if (n >= MAX_MSGS_PER_TURN) return true;
      const len = this.input.readUInt16BE(2);
      if (len < OFP_HEADER_LEN) {
        // OpenFlow 1.3 s7.1: length includes the header; a smaller one cannot be skipped.
        this.counters.nClosedBadLength++;
        this.sendError(this.input.subarray(0, OFP_HEADER_LEN), this.input[0] || OFP10_VERSION, OFPET_BAD_REQUEST, 6);
        this.close(`message length ${len} below the header`);
        return false;
      }
      if (this.input.length < len) break;
      const msg = this.input.subarray(0, len);
      this.input = this.input.subarray(len);
      n++;
      this.counters.nMessages++;
      this.handleMsg(msg);
      if (this.io.backlog() > MAX_BACKLOG_BYTES) {
        this.counters.nClosedFlood++;
        this.close('peer does not read its replies');
        return false;
      }
    }
    return false;
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.io.close(reason);
  }

  private sendError(offending: Buffer, version: number, type0: number, code0: number, text?: string): void {
    const [type, code] = version >= OFP13_VERSION ? errorFor13(type0, code0) : [type0, code0];
    const w = new Writer(96);
    const at = beginMsg(w, version, OFPT_ERROR, offending.length >= 8 ? offending.readUInt32BE(4) : 0);
    w.u16(type).u16(code);
    if (text !== undefined) w.bytes(Buffer.from(text, 'latin1'));
    else w.bytes(offending.subarray(0, Math.min(64, offending.length)));
    endMsg(w, at);
    this.counters.countError(type, code);
    this.io.send(w.finish());
  }

  private negotiate(msg: Buffer): number {
    const peer = msg[0];
    let bitmap = 0;
    for (let p = 8; p + 4 <= msg.length;) {
      const t = msg.readUInt16BE(p);
      const l = msg.readUInt16BE(p + 2);
      if (l < 4 || p + l > msg.length) break;
      if (t === OFPHET_VERSIONBITMAP && l >= 8) bitmap = msg.readUInt32BE(p + 4);
      p += (l + 7) & ~7;
    }
    if (bitmap !== 0) {
      for (let i = SUPPORTED.length - 1; i >= 0; i--) if (bitmap & (1 << SUPPORTED[i])) return SUPPORTED[i];
      return 0;
    }
    const v = Math.min(peer, OFP14_VERSION);
    return SUPPORTED.includes(v) ? v : 0;
  }

  private handleMsg(msg: Buffer): void {
    const version = msg[0];
    const type = msg[1];
    if (this.state === 'hello') {
      if (type !== OFPT_HELLO) {
        // A peer must start with HELLO (OpenFlow 1.3 s6.3.1); anything else fails the handshake.
        this.counters.nClosedHelloFailed++;
        this.sendError(msg, OFP10_VERSION, OFPET_HELLO_FAILED, OFPHFC_INCOMPATIBLE, 'expected OFPT_HELLO first');
        this.close('no hello');
        return;
      }
      const v = this.negotiate(msg);
      if (v === 0) {
        this.counters.nClosedHelloFailed++;
        this.sendError(msg, Math.min(version, OFP14_VERSION) || OFP10_VERSION, OFPET_HELLO_FAILED, OFPHFC_INCOMPATIBLE,
          `We support versions 0x01, 0x04 and 0x05, you support 0x${version.toString(16).padStart(2, '0')}, no common versions.`);
        this.close('version negotiation failed');
        return;
      }
      this.version = v;
      this.st.asyncMasks = defaultAsyncMasks(v);
      this.state = 'open';
      return;
    }
    if (version !== this.version && type !== OFPT_HELLO) {
      this.sendError(msg, this.version, OFPET_BAD_REQUEST, OFPBRC_BAD_VERSION);
      return;
    }
    const replies: Buffer[] = [];
    const ctx: MsgContext = {
      version: this.version, type, xid: msg.readUInt32BE(4), msg, handle: this.handle, state: this.st,
      counters: this.counters, reply: (b) => { replies.push(b); },
    };
    try {
      if (this.version === OFP10_VERSION) handleOf10(ctx);
      else handleOf13(ctx);
      for (const r of replies) this.io.send(r);
    } catch (e) {
      if (e instanceof OfError) {
        this.sendError(msg, this.version, e.type, e.code);
      } else {
        // A bug or an exception from below (a flow the bridge refuses): report, keep the connection.
        this.sendError(msg, this.version, OFPET_BAD_REQUEST, 5 /* EPERM */);
      }
    }
  }
}
