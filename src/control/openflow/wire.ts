/**
 * OpenFlow framing facts shared by every module of control/openflow/: the 8-byte header,
 * message and error numbers of OpenFlow 1.0 (with the Nicira vendor extensions) and 1.3/1.4,
 * a growable big-endian writer, the split of long stats/multipart replies (splitReplies) and the
 * switch description both versions send, and OfError, the one error a decoder throws.
 *
 * Who uses it: every codec here (nxm.ts, of10-match.ts, action-codec.ts, messages), the session
 * (session.ts) which turns an OfError into an OFPT_ERROR reply.
 *
 * Wire facts (OpenFlow 1.0.0 spec s5.1, 1.3.x s7.1): version(1) type(1) length(2, includes the
 * header) xid(4); all numbers big-endian. Nicira extensions ride OFPT_VENDOR (type 4) with
 * vendor 0x00002320 and a 32-bit subtype (include/openflow/nicira-ext.h in Open vSwitch).
 */

export const OFP10_VERSION = 0x01;
export const OFP13_VERSION = 0x04;
export const OFP14_VERSION = 0x05;
export const OFP_HEADER_LEN = 8;
/** Largest message a session accepts (the length field is 16 bits). */
export const OFP_MAX_MSG_LEN = 0xffff;
export const NX_VENDOR_ID = 0x00002320;

/** Message types common to 1.0 and 1.3 (same numbers up to 13). */
export const OFPT_HELLO = 0;
export const OFPT_ERROR = 1;
export const OFPT_ECHO_REQUEST = 2;
export const OFPT_ECHO_REPLY = 3;
export const OFPT_VENDOR = 4;
export const OFPT_FEATURES_REQUEST = 5;
export const OFPT_FEATURES_REPLY = 6;
export const OFPT_GET_CONFIG_REQUEST = 7;
export const OFPT_GET_CONFIG_REPLY = 8;
export const OFPT_SET_CONFIG = 9;
export const OFPT_PACKET_IN = 10;
export const OFPT_FLOW_REMOVED = 11;
export const OFPT_PORT_STATUS = 12;
export const OFPT_PACKET_OUT = 13;
export const OFPT_FLOW_MOD = 14;
/** OpenFlow 1.0 only numbers. */
export const OFPT10_PORT_MOD = 15;
export const OFPT10_STATS_REQUEST = 16;
export const OFPT10_STATS_REPLY = 17;
export const OFPT10_BARRIER_REQUEST = 18;
export const OFPT10_BARRIER_REPLY = 19;
export const OFPT10_QUEUE_GET_CONFIG_REQUEST = 20;
/** OpenFlow 1.3/1.4 numbers. */
export const OFPT13_GROUP_MOD = 15;
export const OFPT13_PORT_MOD = 16;
export const OFPT13_TABLE_MOD = 17;
export const OFPT13_MULTIPART_REQUEST = 18;
export const OFPT13_MULTIPART_REPLY = 19;
export const OFPT13_BARRIER_REQUEST = 20;
export const OFPT13_BARRIER_REPLY = 21;
export const OFPT13_ROLE_REQUEST = 24;
export const OFPT13_ROLE_REPLY = 25;
export const OFPT13_GET_ASYNC_REQUEST = 26;
export const OFPT13_GET_ASYNC_REPLY = 27;
export const OFPT13_SET_ASYNC = 28;
export const OFPT14_BUNDLE_CONTROL = 33;
export const OFPT14_BUNDLE_ADD_MESSAGE = 34;

/** Nicira vendor message subtypes (nicira-ext.h). */
export const NXT_ROLE_REQUEST = 10;
export const NXT_ROLE_REPLY = 11;
export const NXT_SET_FLOW_FORMAT = 12;
export const NXT_FLOW_MOD = 13;
export const NXT_FLOW_REMOVED = 14;
export const NXT_FLOW_MOD_TABLE_ID = 15;
export const NXT_SET_PACKET_IN_FORMAT = 16;
export const NXT_PACKET_IN = 17;
export const NXT_FLOW_AGE = 18;
export const NXT_SET_ASYNC_CONFIG = 19;
export const NXT_SET_CONTROLLER_ID = 20;

/** NXT_SET_FLOW_FORMAT values. */
export const NXFF_OPENFLOW10 = 0;
export const NXFF_NXM = 2;
/** NXT_SET_PACKET_IN_FORMAT values. */
export const NXPIF_STANDARD = 0;
export const NXPIF_NXT_PACKET_IN = 1;
export const NXPIF_NXT_PACKET_IN2 = 2;

/** Stats (1.0) / multipart (1.3) types. */
export const OFPST_DESC = 0;
export const OFPST_FLOW = 1;
export const OFPST_AGGREGATE = 2;
export const OFPST_TABLE = 3;
export const OFPST_PORT = 4;
export const OFPST_QUEUE = 5;
export const OFPST10_PORT_DESC = 13;
export const OFPMP13_PORT_DESC = 13;
export const OFPST_VENDOR = 0xffff;
export const NXST_FLOW = 0;
export const NXST_AGGREGATE = 1;
/** OFPSF_REPLY_MORE (1.0) / OFPMPF_REPLY_MORE (1.3). */
export const OFPSF_REPLY_MORE = 1;

/** Flow-mod commands. */
export const OFPFC_ADD = 0;
export const OFPFC_MODIFY = 1;
export const OFPFC_MODIFY_STRICT = 2;
export const OFPFC_DELETE = 3;
export const OFPFC_DELETE_STRICT = 4;

/** OpenFlow 1.3 reserved ports are 32 bits; 1.0's are 16 (actions.ts OFPP_*). */
export const OFPP13_MAX = 0xffffff00;
export const OFPP13_ANY = 0xffffffff;
export const OFP_NO_BUFFER = 0xffffffff;
export const OFPTT_ALL = 0xff;

/** Error types and codes, as numbered on the wire for OpenFlow 1.0 (Open vSwitch's ofp-errors.h). */
export const OFPET_HELLO_FAILED = 0;
export const OFPHFC_INCOMPATIBLE = 0;
export const OFPET_BAD_REQUEST = 1;
export const OFPBRC_BAD_VERSION = 0;
export const OFPBRC_BAD_TYPE = 1;
export const OFPBRC_BAD_STAT = 2;
export const OFPBRC_BAD_VENDOR = 3;
export const OFPBRC_BAD_SUBTYPE = 4;
export const OFPBRC_EPERM = 5;
export const OFPBRC_BAD_LEN = 6;
export const OFPBRC_BUFFER_UNKNOWN = 8;
/** Nicira NXM errors, OpenFlow 1.0 numbering (type OFPET_BAD_REQUEST). */
export const NXBRC_NXM_INVALID = 256;
export const NXBRC_NXM_BAD_TYPE = 257;
export const NXBRC_NXM_BAD_VALUE = 258;
export const NXBRC_NXM_BAD_MASK = 259;
export const NXBRC_NXM_BAD_PREREQ = 260;
export const NXBRC_NXM_DUP_TYPE = 261;
export const OFPET_BAD_ACTION = 2;
export const OFPBAC_BAD_TYPE = 0;
export const OFPBAC_BAD_LEN = 1;
export const OFPBAC_BAD_VENDOR = 2;
export const OFPBAC_BAD_VENDOR_TYPE = 3;
export const OFPBAC_BAD_OUT_PORT = 4;
export const OFPBAC_BAD_ARGUMENT = 5;
export const OFPET10_FLOW_MOD_FAILED = 3;
export const OFPFMFC10_BAD_COMMAND = 4;
/** OpenFlow 1.3 error types that differ from 1.0. */
export const OFPET13_BAD_INSTRUCTION = 3;
export const OFPET13_BAD_MATCH = 4;
export const OFPET13_FLOW_MOD_FAILED = 5;
export const OFPET13_ROLE_REQUEST_FAILED = 11;
export const OFPET14_BUNDLE_FAILED = 17;

/**
 * A protocol error found while decoding or applying a message: the session answers with
 * OFPT_ERROR of this type and code (holding the first 64 bytes of the request) and counts it.
 */
export class OfError extends Error {
  constructor(readonly type: number, readonly code: number, msg: string) {
    super(msg);
  }
}

export function badLen(msg: string): OfError {
  return new OfError(OFPET_BAD_REQUEST, OFPBRC_BAD_LEN, msg);
}

/** Appends big-endian numbers and bytes to a growing buffer; `finish()` returns the bytes. */
export class Writer {
  private buf: Buffer;
  len = 0;

  constructor(initialBytes = 256) {
    this.buf = Buffer.alloc(initialBytes);
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = Buffer.alloc(size);
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }

  u8(v: number): this { this.room(1); this.buf[this.len++] = v & 0xff; return this; }
  u16(v: number): this { this.room(2); this.buf.writeUInt16BE(v & 0xffff, this.len); this.len += 2; return this; }
  u32(v: number): this { this.room(4); this.buf.writeUInt32BE(v >>> 0, this.len); this.len += 4; return this; }
  u64(v: bigint): this { this.room(8); this.buf.writeBigUInt64BE(BigInt.asUintN(64, v), this.len); this.len += 8; return this; }
  zeros(n: number): this { this.room(n); this.buf.fill(0, this.len, this.len + n); this.len += n; return this; }
  bytes(b: Uint8Array): this { this.room(b.length); this.buf.set(b, this.len); this.len += b.length; return this; }
  /** A big-endian unsigned value of `n` bytes (MACs, 128-bit addresses). */
  uintN(v: bigint, n: number): this {
    this.room(n);
    for (let i = n - 1; i >= 0; i--) { this.buf[this.len + i] = Number(v & 0xffn); v >>= 8n; }
    this.len += n;
    return this;
  }
  /** A fixed-size NUL-padded string field. */
  str(s: string, n: number): this {
    this.room(n);
    this.buf.fill(0, this.len, this.len + n);
    this.buf.write(s.slice(0, n - 1), this.len, 'latin1');
    this.len += n;
    return this;
  }
  /** Pads with zeros to a multiple of `align` bytes counted from `from`. */
  pad(from: number, align = 8): this { return this.zeros((align - ((this.len - from) % align)) % align); }
  patch16(at: number, v: number): void { this.buf.writeUInt16BE(v & 0xffff, at); }
  finish(): Buffer { return this.buf.subarray(0, this.len); }
}

/** Reads an unsigned big-endian value of `n` bytes at `off` as a bigint. */
export function readUintN(b: Uint8Array, off: number, n: number): bigint {
  let v = 0n;
  for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(b[off + i]);
  return v;
}

/** Starts a message: writes the header with length 0, to be set by endMsg(). Returns its offset. */
export function beginMsg(w: Writer, version: number, type: number, xid: number): number {
  const at = w.len;
  w.u8(version).u8(type).u16(0).u32(xid);
  return at;
}

export function endMsg(w: Writer, at: number): void {
  w.patch16(at + 2, w.len - at);
}

/** Stats (1.0) and multipart (1.3) replies are split so each message stays below this many bytes. */
export const MAX_REPLY_BYTES = 65000;

/** What a switch says of itself in OFPST_DESC (1.0) and OFPMP_DESC (1.3): the same text in both. */
export const SWITCH_DESC = { mfr: 'flowd', hw: 'flowd userspace switch', sw: 'flowd', serial: 'None' };

/** The body of a description reply (ofp_desc: four fixed strings, then the datapath's name). */
export function descBody(dpName: string): Buffer {
  const w = new Writer(1056);
  w.str(SWITCH_DESC.mfr, 256).str(SWITCH_DESC.hw, 256).str(SWITCH_DESC.sw, 256).str(SWITCH_DESC.serial, 32).str(dpName, 256);
  return w.finish();
}

/**
 * `bodies` as stats (1.0) or multipart (1.3) replies of message `type`, each under
 * MAX_REPLY_BYTES: every message starts with the header, then what `head` writes (its first
 * u16 is the stats type, the second the flags, which get REPLY_MORE on all but the last
 * message), then as many whole bodies as fit, at least one. Returns the messages in order.
 */
export function splitReplies(version: number, type: number, xid: number, head: (w: Writer) => void,
                             bodies: readonly Uint8Array[]): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  do {
    const w = new Writer(1024);
    const at = beginMsg(w, version, type, xid);
    const flagsAt = w.len + 2;
    head(w);
    const empty = w.len;
    while (i < bodies.length && (w.len === empty || w.len + bodies[i].length <= MAX_REPLY_BYTES)) w.bytes(bodies[i++]);
    if (i < bodies.length) w.patch16(flagsAt, OFPSF_REPLY_MORE);
    endMsg(w, at);
    out.push(w.finish());
  } while (i < bodies.length);
  return out;
}

/** A whole Nicira vendor message header (16 bytes) for OpenFlow 1.0. */
export function beginNxMsg(w: Writer, version: number, subtype: number, xid: number): number {
  const at = beginMsg(w, version, OFPT_VENDOR, xid);
  w.u32(NX_VENDOR_ID).u32(subtype);
  return at;
}
