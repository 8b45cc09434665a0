/**
 * Connection tracking with NAT for the datapath's ct() action (OVS's lib/conntrack.c, in the
 * style of Linux's nf_conntrack): a bounded table of connections keyed by zone + 5-tuple.
 *
 * Who calls: dpif/stages.ts conntrack (executeKeyed once per frame of a recirculation pass;
 * againRun for the next frames of a run of one key) and dpif/datapath.ts (execute for a ct() without
 * recirculation; sweep, once per batch with a bounded budget); control/ (list, flush, stats,
 * limits); tests. Single-threaded, like the rest of the datapath.
 *
 * TCP sequence windows are not tracked (ct-tcp.ts), so a segment that moves no state, flag or
 * timeout class changes nothing in its connection: the memo (trackLookup) and again() rest on
 * that. OVS's conntrack-tcp.c (from OpenBSD pf) updates each direction's window bounds on every
 * segment and could not skip it.
 *
 * Layout (structure of arrays, preallocated for `capacity` connections; nothing allocated per
 * packet): connection `e` has two tuple nodes, 2e (original direction) and 2e+1 (reply
 * direction). A node holds 4 words in `tup`: src, dst, sport << 16 | dport, proto << 16 | zone.
 * Both nodes sit in one chained hash table (bucket heads `head`, links `hnext`), so a packet of
 * either direction finds its connection with one lookup; node & 1 is the packet's direction.
 * Invariant: the reply node's tuple is the inverse of the original's as the packet will look
 * after NAT, and no two live nodes have equal tuples (NAT allocation and the clash check keep
 * it), so a lookup is unambiguous.
 *
 * Limits: at most `capacity` connections (the global limit) and, per zone, the zone's limit
 * (dpctl/ct-set-limits: a default for all zones, overridden per zone; 0 = no limit). When a
 * limit is reached a new connection is not created and execute() returns CT_DROP: the datapath
 * drops that packet and counts it. Existing connections are unaffected.
 *
 * Expiry (incremental, never a pause): every connection sits on one FIFO list per timeout
 * class (e.g. "TCP established", "UDP unreplied"). All members of a list have the same
 * timeout and are appended when refreshed, so each list is sorted by expiry time and the
 * expired connections are a prefix of it. sweep() pops at most `budget` expired heads, so its
 * cost is bounded per call whatever the table size, and before the earliest head's expiry (a
 * bound refresh lowers) it returns at once. A connection found expired by a lookup is
 * removed on the spot, so a slow sweep never makes a dead connection look alive; a full table
 * reclaims a few expired heads before refusing a new connection.
 *
 * Timeouts (seconds, Linux's nf_conntrack defaults): TCP SYN_SENT 120, SYN_RECV 60,
 * ESTABLISHED 432000 (5 days), FIN_WAIT 120, CLOSING 30 (Linux's LAST_ACK), TIME_WAIT 120,
 * CLOSED 10; UDP 30 until a reply is seen, 120 after (udp_timeout_stream); ICMP 30; other
 * protocols 600 (generic). Override with CtOptions.timeoutsS.
 *
 * ct_state of a packet (OVS's bits): +trk always; +inv when the packet cannot be tracked
 * (ct-parse.ts) or is an invalid TCP segment; else +new until the connection has seen a reply
 * (uncommitted connections are not stored, so all their packets are +new), +est after; +rpl
 * for the reply direction; +rel for an ICMP error about a known connection; +snat/+dnat when
 * NAT rewrote the packet's source/destination in this execution.
 *
 * NAT: decided once, when the connection is committed with nat(src=...) or nat(dst=...): the
 * reply tuple records the translated addresses/ports. Packets are rewritten only when the ct()
 * action asks for nat: the original direction to the inverse of the reply tuple, the reply
 * direction to the inverse of the original tuple (de-NAT), ICMP errors outer and quoted
 * headers alike (ct-nat.ts). SNAT picks the address by a hash of the inside source (one inside
 * host keeps one outside address), keeps the source port when it is in range and free, else
 * takes the next free port after a rotating cursor, at most MAX_NAT_TRIES probes (then the
 * packet is dropped and counted as nat_exhausted). Without a port range, ports below 1024 map
 * into 1..1023 and others into 1024..65535, as Linux. ICMP echo ids are allocated like ports.
 *
 * HA sync (issue 14; dpif/ct-sync.ts is the protocol, control/ha-ct-sync.ts the transport):
 * the zones of the HA routers this node is master for are "watched" (watchZone). A watched
 * zone's connection changes are journaled: created, TCP state or seen-reply changed, removed
 * (expired, flushed, reopened). The journal is a preallocated ring of (op, original tuple)
 * records, so the packet path only writes five words; when it is full, records are dropped
 * and `journalOverflowed` tells the reader to resend the whole zone (a refresh round).
 * The reader drains it from the control plane (drainJournal), reading each connection's
 * current state (syncEntryOf). On a backup, importConn/removeConn write what the master
 * sent: the same original and reply tuples (so the NAT mapping is the master's), state and
 * flags; the expiry is the local timeout of the state (each timeout class list stays sorted),
 * and the master's refresh rounds and deletes keep it in step. ct_mark is not carried.
 */
import { CtPacket, ctParse, CtParse, ctParseKeyed, CT_PARSE_NAMES, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from './ct-parse';
import { natApplyPlan, natIcmpError, natPacket, natPlan, NatPlan } from './ct-nat';
import type { CtSyncEntry } from './ct-sync';
import type { PacketBatch } from '../netdev/batch';
import { formatIpv4 } from '../packet/addr-text';
import {
  tcpInitialState, tcpNext, tcpValidNew, TCP_CLOSED, TCP_CLOSING, TCP_ESTABLISHED, TCP_FIN_WAIT,
  TCP_INVALID, TCP_REOPEN, TCP_STATE_NAMES, TCP_SYN_RECV, TCP_SYN_SENT, TCP_TIME_WAIT, TCPF_MASK,
} from './ct-tcp';
import { countersAsDoubles } from '../counters';

// ct_state bits, as OVS's CS_* (and the ct_state match syntax in ofproto/match-syntax.ts).
export const CS_NEW = 0x01;
export const CS_ESTABLISHED = 0x02;
export const CS_RELATED = 0x04;
export const CS_REPLY_DIR = 0x08;
export const CS_INVALID = 0x10;
export const CS_TRACKED = 0x20;
export const CS_SRC_NAT = 0x40;
export const CS_DST_NAT = 0x80;
/** execute()'s answer when the packet must be dropped (a limit, or NAT exhausted). */
export const CT_DROP = -1;
/** trackLookup's answers besides state bits: +trk+inv, and +trk+new of an uncommitted packet. */
const CT_INVALID_STATE = -2;
const CT_UNCOMMITTED = -3;
/** again()'s answer when it cannot answer for the frame (the caller runs executeKeyed). */
export const CT_AGAIN_NO = -4;

/** A nat(...) clause; structurally the same as ofproto's CtNat. 'none' = plain `nat`. */
export interface CtNatRange {
  readonly kind: 'src' | 'dst' | 'none';
  readonly ipMin: number;
  readonly ipMax: number;
  /** 0 when no port range was given. */
  readonly portMin: number;
  readonly portMax: number;
}

/** Timeout classes: one expiry list each. */
export const EXP_TCP_SYN_SENT = 0;
export const EXP_TCP_SYN_RECV = 1;
export const EXP_TCP_ESTABLISHED = 2;
export const EXP_TCP_FIN_WAIT = 3;
export const EXP_TCP_CLOSING = 4;
export const EXP_TCP_TIME_WAIT = 5;
export const EXP_TCP_CLOSED = 6;
export const EXP_UDP_FIRST = 7;
export const EXP_UDP_REPLIED = 8;
export const EXP_ICMP = 9;
export const EXP_OTHER = 10;
export const N_EXP_CLASSES = 11;
export const EXP_CLASS_NAMES: readonly string[] = [
  'tcp_syn_sent', 'tcp_syn_recv', 'tcp_established', 'tcp_fin_wait', 'tcp_closing',
  'tcp_time_wait', 'tcp_closed', 'udp_first', 'udp_replied', 'icmp', 'other',
];
/** Linux's defaults, seconds (see the header). */
export const DEFAULT_TIMEOUTS_S: readonly number[] = [120, 60, 432000, 120, 30, 120, 10, 30, 120, 30, 600];

export const CT_DEFAULT_CAPACITY = 65536;
/** Records the sync journal holds between two drains (see the header). */
export const CT_JOURNAL_RECORDS = 8192;
const JOURNAL_WORDS = 5;
/** Journal record ops. */
export const CT_JOURNAL_UPSERT = 1;
export const CT_JOURNAL_DELETE = 2;
export const MAX_NAT_TRIES = 1024;
/**
 * Slots of the memo (Conntrack.memoW) and words per slot. Two: the least recently used slot,
 * which a new entry replaces, is then the other one than the last hit or set (slot ^ 1).
 */
const MEMO_SLOTS = 2;
const MEMO_WORDS = 7;
const M_NODE = 0, M_SRC = 1, M_DST = 2, M_PORTS = 3, M_PZ = 4, M_FLAGS = 5, M_STATE = 6;
/** Expired connections reclaimed by a create that finds the table full. */
const RECLAIM_ON_FULL = 16;

// Connection flags (flags[e]); the TCP FIN bits of ct-tcp.ts sit above them.
export const CT_F_SEEN_REPLY = 1;
export const CT_F_SNAT = 2;
export const CT_F_DNAT = 4;
const F_SEEN_REPLY = CT_F_SEEN_REPLY;
const F_SNAT = CT_F_SNAT;
const F_DNAT = CT_F_DNAT;
const F_TCP_SHIFT = 3;

/** One connection as the HA sync reads and writes it: the sync's own entry (ct-sync.ts). */
export type CtConnRecord = CtSyncEntry;

export interface CtOptions {
  /** Global limit: the most connections the table holds (default 65536). */
  readonly capacity?: number;
  /** Per-class timeouts in seconds, by EXP_CLASS_NAMES name. */
  readonly timeoutsS?: Readonly<Record<string, number>>;
  /** TCP mid-stream pickup (ct-tcp.ts); default true. */
  readonly tcpLoose?: boolean;
}

/** Why a packet was marked invalid or dropped; one counter each. */
export const CT_INV_TCP_FLAGS = CT_PARSE_NAMES.length;
export const CT_INV_NO_RELATED = CT_PARSE_NAMES.length + 1;
export const CT_INV_NAMES: readonly string[] = [...CT_PARSE_NAMES, 'tcp_flags', 'related_not_found'];

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function hash4(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x5bd1e995, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ b, 0x85ebca77);
  h = Math.imul(h ^ (h >>> 13) ^ c, 0xc2b2ae3d);
  h = Math.imul(h ^ (h >>> 16) ^ d, 0x27d4eb2f);
  return h ^ (h >>> 15); // int32: a Smi, never a boxed number per call
}

const ipStr = formatIpv4;

/**
 * The IPv4 header length of again()'s frame, whose IPv4 header is at byte o of the buffer `dv`
 * views with `room` bytes of the frame from there, or 0 when its lengths are not what
 * ctParseKeyed accepts for a `proto` (TCP or UDP) packet (then nothing is written to it).
 */
function againIhl(dv: DataView, o: number, room: number, proto: number): number {
  if (room < 20) return 0;
  const w0 = dv.getUint32(o); // version, IHL, TOS, total length
  const ihl = (w0 >>> 22) & 0x3c, totLen = w0 & 0xffff;
  if ((w0 >>> 28) !== 4 || ihl < 20 || totLen < ihl || totLen > room || totLen - ihl < (proto === PROTO_TCP ? 20 : 8)) return 0;
  return ihl;
}

export class Conntrack {
  readonly capacity: number;
  readonly tcpLoose: boolean;
  readonly timeoutMs: Float64Array;

  // Tuple nodes (2 per connection) and the hash table over them.
  private readonly tup: Int32Array;
  private readonly hnext: Int32Array;
  private readonly head: Int32Array;
  private readonly hmask: number;
  // Per connection.
  private readonly expAt: Float64Array;
  private readonly expPrev: Int32Array;
  private readonly expNext: Int32Array;
  private readonly expClass: Uint8Array;
  private readonly tcpState: Uint8Array;
  private readonly flags: Uint8Array;
  private readonly markOf: Uint32Array;
  private readonly free: Int32Array;
  private nFree: number;
  private readonly expHead = new Int32Array(N_EXP_CLASSES).fill(-1);
  private readonly expTail = new Int32Array(N_EXP_CLASSES).fill(-1);
  /**
   * No connection expires before this time: a lower bound of the expiry times at the heads of
   * the class lists (refresh lowers it for each connection it appends; sweep, which returns at
   * once before it, sets it after its pass). So the per-batch sweep of a table whose first
   * expiry is seconds or days away reads one number.
   */
  private sweepAt = -Infinity;
  // Limits.
  private readonly zoneCount = new Uint32Array(65536);
  /** -1 = the default zone limit applies. */
  private readonly zoneLimit = new Int32Array(65536).fill(-1);
  defaultZoneLimit = 0;

  /** The last executed packet's parse; after NAT its tuple is the one the packet now carries. */
  readonly pkt = new CtPacket();
  private portCursor = 0;
  // The reply tuple NAT allocation chose (scratch).
  private rSrc = 0;
  private rDst = 0;
  private rPorts = 0;

  // HA sync journal (see the header).
  private readonly syncZone = new Uint8Array(65536);
  private nSyncZones = 0;
  private journal: Int32Array | null = null;
  private jHead = 0;
  private jCount = 0;
  /** Records were dropped since the last drain: the reader must resend the watched zones whole. */
  journalOverflowed = false;
  nJournalOverflows = 0;
  nImported = 0;
  nImportClashes = 0;
  nImportFailed = 0;

  /**
   * Bumped whenever a connection is created, removed or imported: a memo taken at another
   * value is stale. A double from construction (countersAsDoubles), as againGen.
   */
  gen = 0;
  // The memo (trackLookup): the last MEMO_SLOTS packets that found a connection and changed
  // nothing in it, one slot each. A next packet of the same tuple, zone, TCP flags and time would
  // change nothing either, so it takes the node and state bits without lookup, state machine or
  // refresh. Runs of packets of a few flows at one clock reading (it is read once per batch) are
  // the case it serves: both directions of a connection, batch after batch, or a few connections
  // interleaved. A slot is valid while its generation is the table's (no connection created,
  // removed or imported since) and nothing changed in its connection (a packet that changes a
  // connection clears the slots of that connection). A new entry replaces the slot used least
  // recently (memoVictim).
  private readonly memoGen = new Float64Array(MEMO_SLOTS).fill(-1);
  private readonly memoNow = new Float64Array(MEMO_SLOTS).fill(-1);
  /** Per slot, MEMO_WORDS words: node, src, dst, sport << 16 | dport, proto << 16 | zone, TCP flags, state. */
  private readonly memoW = new Int32Array(MEMO_SLOTS * MEMO_WORDS);
  private memoVictim = 0;
  /**
   * The ct_state of the last execute() when its packet hit or set a memo slot (found its
   * connection and changed nothing in it), else -1: what again() answers for the next packet.
   * The again* fields below are that slot's, copied once per execute() so that again(), called
   * for every other frame of a run, reads no typed array.
   */
  private againState = -1;
  againGen = -1;
  private againNow = -1;
  private againNode = 0;
  private againSrc = 0;
  private againDst = 0;
  private againPorts = 0;
  private againProto = 0;
  /** The memo slot again() answers from. */
  private againSlot = 0;
  /**
   * Per memo slot, the NAT rewrite of its packets (ct-nat.ts NatPlan: the memo's tuple to the
   * inverse of the other direction's), worked out by the first again() after the slot was set
   * (memoPlanned) and kept while the slot is: a connection's tuples never change, and the slot
   * is set anew (or its generation is stale) when its connection goes. A packet that hits the
   * slot in track() is rewritten by it too.
   */
  private readonly memoPlan: readonly NatPlan[] = Array.from({ length: MEMO_SLOTS }, () => new NatPlan());
  private readonly memoPlanned = new Uint8Array(MEMO_SLOTS);
  // trackLookup's memo slot for its packet, or -1 (scratch).
  private trkSlot = -1;
  // trackLookup's connection and direction (scratch).
  private trkConn = 0;
  private trkDir = 0;

  /** ct_mark of the packet of the last execute() (0 when untracked). */
  mark = 0;
  /** Connection of the last execute(), or -1. */
  lastConn = -1;
  /** The bytes of the frames the last againRun answered (the datapath credits a run's flow with them). */
  runBytes = 0;

  // Counters.
  nLive = 0;
  nCreated = 0;
  nExpired = 0;
  nFlushed = 0;
  nPackets = 0;
  nDropFull = 0;
  nDropZoneLimit = 0;
  nDropNatExhausted = 0;
  nDropClash = 0;
  readonly nInvalid = new Float64Array(CT_INV_NAMES.length);

  constructor(opts: CtOptions = {}) {
    countersAsDoubles<Conntrack>(this, 'nPackets', 'gen', 'againGen');
    const cap = Math.max(1, Math.floor(opts.capacity ?? CT_DEFAULT_CAPACITY));
    this.capacity = cap;
    this.tcpLoose = opts.tcpLoose ?? true;
    this.timeoutMs = new Float64Array(N_EXP_CLASSES);
    for (let c = 0; c < N_EXP_CLASSES; c++) {
      const s = opts.timeoutsS?.[EXP_CLASS_NAMES[c]];
      this.timeoutMs[c] = (s ?? DEFAULT_TIMEOUTS_S[c]) * 1000;
    }
    const nb = nextPow2(cap * 2);
    this.hmask = nb - 1;
    this.tup = new Int32Array(cap * 8);
    this.hnext = new Int32Array(cap * 2);
    this.head = new Int32Array(nb).fill(-1);
    this.expAt = new Float64Array(cap);
    this.expPrev = new Int32Array(cap);
    this.expNext = new Int32Array(cap);
    this.expClass = new Uint8Array(cap);
    this.tcpState = new Uint8Array(cap);
    this.flags = new Uint8Array(cap);
    this.markOf = new Uint32Array(cap);
    this.free = new Int32Array(cap);
    for (let i = 0; i < cap; i++) this.free[i] = cap - 1 - i;
    this.nFree = cap;
  }

  /** Bytes of typed arrays per connection slot (hash buckets included). */
  get bytesPerEntry(): number {
    const total = this.tup.byteLength + this.hnext.byteLength + this.head.byteLength +
      this.expAt.byteLength + this.expPrev.byteLength + this.expNext.byteLength +
      this.expClass.byteLength + this.tcpState.byteLength + this.flags.byteLength +
      this.markOf.byteLength + this.free.byteLength;
    return total / this.capacity;
  }

  // ---- the packet path ----------------------------------------------------------------------

  /**
   * Runs conntrack on the frame b[off, off+len) in `zone` (OVS's ct(zone=N[,commit][,nat])):
   * looks the connection up, creates it when `commit` and it is new, updates its state and
   * timeout, applies NAT when `nat` is given (null = no nat clause) and, on commit, sets
   * ct_mark to (mark & ~markMask) | (markValue & markMask). Rewrites the frame in place (same
   * length). Returns the packet's ct_state bits, or CT_DROP. `this.mark` holds its ct_mark.
   * A TCP super-frame (GSO, `l4Partial`: its checksum field holds the pseudo-header sum) is one
   * call: the state moves on its flags (ACK/PSH, FIN only from its last segment; sequence
   * windows are not tracked, see ct-tcp.ts) and NAT rewrites its headers once (ct-nat.ts).
   * `l3`: the frame's L3 offset from the datapath's parse (ct-parse.ts ctL3FromKey), or -1 to
   * walk its L2 headers here.
   */
  execute(b: Uint8Array, off: number, len: number, zone: number, commit: boolean,
          nat: CtNatRange | null, markValue: number, markMask: number, nowMs: number,
          l4Partial = false, l3 = -1): number {
    this.nPackets++;
    this.mark = 0;
    this.lastConn = -1;
    this.againState = -1;
    const p = this.pkt;
    const r = ctParse(b, off, len, p, l3);
    if (r !== CtParse.Ok) { this.nInvalid[r]++; return CS_TRACKED | CS_INVALID; }
    return this.track(b, p, zone, commit, nat, markValue, markMask, nowMs, l4Partial, null);
  }

  /**
   * execute() for frame `i` of batch `bt`, which the datapath parsed into the key at
   * keys[base...] (its L3 offset `l3` from ctL3FromKey): a TCP or UDP frame's tuple comes from
   * the key (ct-parse.ts ctParseKeyed), any other frame is parsed as execute() does. Same
   * answers as execute(); a memo hit is NATed by its slot's plan (memoPlan) through the batch's
   * view once again() has worked it out.
   */
  executeKeyed(bt: PacketBatch, i: number, keys: Uint32Array, base: number, l3: number,
               zone: number, commit: boolean, nat: CtNatRange | null, markValue: number, markMask: number,
               nowMs: number): number {
    const p = this.pkt, b = bt.buf, off = bt.off[i], len = bt.len[i], l4Partial = bt.csumPartial(i);
    if (!ctParseKeyed(b, off, len, keys, base, l3, p)) {
      return this.execute(b, off, len, zone, commit, nat, markValue, markMask, nowMs, l4Partial, l3);
    }
    this.nPackets++;
    this.mark = 0;
    this.lastConn = -1;
    this.againState = -1;
    return this.track(b, p, zone, commit, nat, markValue, markMask, nowMs, l4Partial, bt.view);
  }

  /**
   * executeKeyed() for a TCP or UDP frame whose key (tuple, TCP flags) and ct action (zone,
   * commit, nat, mark) equal those of the frame of the last call, at the same `nowMs`, when that
   * call found its connection and changed nothing in it (the memo, trackLookup): nothing in the
   * table has changed since (the generation), so the answer is the same state, mark and NAT.
   * Only what the key does not hold is looked at: the frame's header lengths (as ctParseKeyed
   * checks them) and its bytes, which NAT rewrites as it did the last frame's. Returns the
   * ct_state, or CT_AGAIN_NO when it cannot tell (the caller runs executeKeyed). The datapath's
   * conntrack stage calls it for a run of frames of one flow (stages.ts sameKey).
   */
  again(b: Uint8Array, off: number, len: number, l3: number, nowMs: number, l4Partial: boolean): number {
    if (!this.againReady(l3, nowMs)) return CT_AGAIN_NO;
    // A view of its own (tests and single frames; the datapath runs againRun over the batch's).
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const o = off + l3, ihl = againIhl(dv, o, len - l3, this.againProto);
    if (ihl === 0) return CT_AGAIN_NO;
    if ((this.againState & (CS_SRC_NAT | CS_DST_NAT)) !== 0) this.againNat(b, dv, o, ihl, l4Partial);
    this.nPackets++;
    return this.againState;
  }

  /**
   * again() for the frames in slots live[from, to) of batch `bt`, in order, each with its L3
   * header at `l3`, for as long as they are a run of frames of one key (equal header offsets):
   * each frame's `same` (stages.ts state.sameKey) names the one before it in `live`. Stops at
   * the run's end or at the first frame it cannot answer. Returns how many it answered (their
   * bytes in runBytes, which the datapath credits the run's flow with); each of
   * them got what again() answers (the state and mark of the last execute()). One loop over the
   * run, the memo's fields read once; the run's end found in the same loop (a scan of sameKey
   * before it cost the stage 15 % in a 32-frame SNAT run, bench of 2026-12-05).
   */
  againRun(bt: PacketBatch, live: Uint16Array, from: number, to: number, same: Int16Array, l3: number,
           nowMs: number): number {
    this.runBytes = 0;
    if (!this.againReady(l3, nowMs)) return 0;
    const b = bt.buf, dv = bt.view, offA = bt.off, lenA = bt.len, offload = bt.vnet !== null;
    const proto = this.againProto, nat = (this.againState & (CS_SRC_NAT | CS_DST_NAT)) !== 0;
    const plan = this.memoPlan[this.againSlot];
    let q = from, prev = same[live[from]]; // the run goes on while each frame's key is the one's before it
    let bytes = 0;
    for (; q < to; q++) {
      const i = live[q];
      if (same[i] !== prev) break;
      prev = i;
      const len = lenA[i];
      const o = offA[i] + l3, ihl = againIhl(dv, o, len - l3, proto);
      if (ihl === 0) break;
      bytes += len;
      if (!nat) continue;
      const partial = offload && bt.csumPartial(i);
      if (!natApplyPlan(dv, plan, o, o + ihl, proto, partial)) this.againNat(b, dv, o, ihl, partial);
    }
    this.nPackets += q - from;
    this.runBytes = bytes;
    return q - from;
  }

  /** again()'s checks that hold for a whole run: a memo answer, unchanged table and clock, a TCP/UDP tuple. */
  private againReady(l3: number, nowMs: number): boolean {
    if (this.againState < 0 || this.againGen !== this.gen || this.againNow !== nowMs || l3 < 0) return false;
    const proto = this.againProto;
    if (proto !== PROTO_TCP && proto !== PROTO_UDP) return false; // an ICMP id is not in the key
    const s = this.againSlot;
    if ((this.againState & (CS_SRC_NAT | CS_DST_NAT)) !== 0 && this.memoPlanned[s] === 0) {
      const mn = this.againNode, t = this.tup, to = (mn ^ 1) << 2; // the other direction's tuple
      natPlan(this.memoPlan[s], this.againSrc, this.againDst, this.againPorts >>> 16, this.againPorts & 0xffff,
        t[to + 1], t[to], t[to + 2] & 0xffff, t[to + 2] >>> 16);
      this.memoPlanned[s] = 1;
    }
    return true;
  }

  /**
   * The NAT of again()'s frame with its IPv4 header at byte o (`ihl` bytes; againIhl said yes),
   * as the last frame's: the packet as that one was before NAT (the memo's tuple), rewritten the
   * same way, by the plan worked out once for the run (ct-nat.ts NatPlan), or for a UDP frame
   * whose checksum is not partial, by natPacket.
   */
  private againNat(b: Uint8Array, dv: DataView, o: number, ihl: number, l4Partial: boolean): void {
    const proto = this.againProto;
    if (natApplyPlan(dv, this.memoPlan[this.againSlot], o, o + ihl, proto, l4Partial)) return;
    const p = this.pkt;
    p.proto = proto;
    p.l3 = o;
    p.l4 = o + ihl;
    p.l4Len = dv.getUint16(o + 2) - ihl;
    p.src = this.againSrc;
    p.dst = this.againDst;
    p.sport = this.againPorts >>> 16;
    p.dport = this.againPorts & 0xffff;
    const mn = this.againNode;
    this.natPacket(b, p, mn >> 1, mn & 1, l4Partial);
  }

  /**
   * The rest of execute() for the parsed packet `p`. `dv`: a view whose indexes are b's (a
   * batch's), for the NAT of a memo hit by its slot's plan; null, by natPacket always.
   */
  private track(b: Uint8Array, p: CtPacket, zone: number, commit: boolean, nat: CtNatRange | null,
                markValue: number, markMask: number, nowMs: number, l4Partial: boolean, dv: DataView | null): number {
    const pz = (p.proto << 16) | (zone & 0xffff);
    if (p.isError) return this.related(b, p, pz, nat, nowMs);
    const ports = (p.sport << 16) | p.dport;
    let e: number;
    let dir: number;
    let state: number;
    const m = this.memoW, gen = this.gen, src = p.src, dst = p.dst, tf = p.tcpFlags;
    let slot = -1;
    for (let s = 0, w = 0; s < MEMO_SLOTS; s++, w += MEMO_WORDS) {
      if (m[w + M_SRC] === src && m[w + M_DST] === dst && m[w + M_PORTS] === ports && m[w + M_PZ] === pz &&
          m[w + M_FLAGS] === tf && this.memoGen[s] === gen && this.memoNow[s] === nowMs &&
          this.expAt[m[w + M_NODE] >> 1] > nowMs) {
        slot = s;
        break;
      }
    }
    const hit = slot >= 0;
    if (hit) {
      // A packet before was of this connection and direction, with these flags, at this time,
      // and changed nothing: this one changes nothing either (see the memo's fields).
      const w = slot * MEMO_WORDS, mn = m[w + M_NODE];
      e = mn >> 1;
      dir = mn & 1;
      state = m[w + M_STATE];
      this.memoVictim = slot ^ 1;
    } else {
      const r = this.trackLookup(p, zone, pz, ports, commit, nat, nowMs);
      if (r < 0) return r === CT_DROP ? CT_DROP : r === CT_UNCOMMITTED ? CS_TRACKED | CS_NEW : CS_TRACKED | CS_INVALID;
      e = this.trkConn;
      dir = this.trkDir;
      state = r;
      slot = this.trkSlot;
    }
    if (commit && markMask !== 0) {
      this.markOf[e] = ((this.markOf[e] & ~markMask) | (markValue & markMask)) >>> 0;
    }
    if (nat !== null) {
      // A hit carries its slot's tuple: the slot's plan, once worked out, rewrites it as natPacket would.
      const plan = hit && this.memoPlanned[slot] !== 0 ? this.memoPlan[slot] : null;
      if (plan !== null && dv !== null && natApplyPlan(dv, plan, p.l3, p.l4, p.proto, l4Partial)) {
        p.src = plan.src; p.dst = plan.dst; p.sport = plan.sport; p.dport = plan.dport;
        state |= this.natBits(e, dir);
      } else {
        state |= this.natPacket(b, p, e, dir, l4Partial);
      }
    }
    this.mark = this.markOf[e];
    this.lastConn = e;
    // The memo slot is this packet's when it hit it or trackLookup just set it.
    this.againState = -1;
    if (slot >= 0) {
      this.againSlot = slot;
      const w = slot * MEMO_WORDS;
      this.againState = state;
      this.againGen = this.memoGen[slot];
      this.againNow = this.memoNow[slot];
      this.againNode = m[w + M_NODE];
      this.againSrc = m[w + M_SRC];
      this.againDst = m[w + M_DST];
      this.againPorts = m[w + M_PORTS];
      this.againProto = m[w + M_PZ] >>> 16;
    }
    return state;
  }

  /**
   * track()'s lookup, creation and state update for the packet `p` (not an ICMP error): the
   * packet's ct_state bits before NAT (connection in trkConn, direction in trkDir), CT_DROP, or
   * CT_INVALID_STATE for +trk+inv (counted). Leaves the memo set when the packet found a
   * connection and changed nothing in it (no state, flag or timeout class change).
   */
  private trackLookup(p: CtPacket, zone: number, pz: number, ports: number, commit: boolean,
                      nat: CtNatRange | null, nowMs: number): number {
    this.trkSlot = -1;
    let node = this.lookup(p.src, p.dst, ports, pz);
    if (node >= 0 && this.expAt[node >> 1] <= nowMs) {
      this.remove(node >> 1);
      this.nExpired++;
      node = -1;
    }
    let e: number;
    let dir: number;
    let state: number;
    if (node < 0) {
      if (p.proto === PROTO_TCP && !tcpValidNew(p.tcpFlags, this.tcpLoose)) {
        this.nInvalid[CT_INV_TCP_FLAGS]++;
        return CT_INVALID_STATE;
      }
      if (p.proto === PROTO_ICMP && p.icmpType !== 8) {
        this.nInvalid[CT_INV_NO_RELATED]++; // an echo reply cannot start a connection
        return CT_INVALID_STATE;
      }
      if (!commit) return CT_UNCOMMITTED;
      e = this.create(p, zone, pz, ports, nat !== null && nat.kind !== 'none' ? nat : null, nowMs);
      if (e < 0) return CT_DROP;
      dir = 0;
      state = CS_TRACKED | CS_NEW;
    } else {
      e = node >> 1;
      dir = node & 1;
      let fl = this.flags[e];
      const st0 = this.tcpState[e], fl0 = fl, expClass0 = this.expClass[e];
      if (p.proto === PROTO_TCP) {
        const nx = tcpNext(this.tcpState[e], (fl >>> F_TCP_SHIFT) & TCPF_MASK, dir, p.tcpFlags);
        if (nx === TCP_INVALID) {
          this.nInvalid[CT_INV_TCP_FLAGS]++;
          return CT_INVALID_STATE;
        }
        this.tcpState[e] = nx & 0xff;
        fl = (fl & ((1 << F_TCP_SHIFT) - 1)) | (((nx >>> 8) & TCPF_MASK) << F_TCP_SHIFT);
        if ((nx & TCP_REOPEN) !== 0) fl &= ~F_SEEN_REPLY;
      }
      if (dir === 1) fl |= F_SEEN_REPLY;
      this.flags[e] = fl;
      this.refresh(e, p.proto, nowMs);
      if (this.nSyncZones !== 0 && (fl !== fl0 || this.tcpState[e] !== st0) && this.syncZone[zone & 0xffff] !== 0) {
        this.journalPut(CT_JOURNAL_UPSERT, e);
      }
      state = CS_TRACKED | ((fl & F_SEEN_REPLY) !== 0 ? CS_ESTABLISHED : CS_NEW) | (dir === 1 ? CS_REPLY_DIR : 0);
      if (fl === fl0 && this.tcpState[e] === st0 && expClass0 === this.expClass[e]) {
        const s = this.memoVictim, w = s * MEMO_WORDS, m = this.memoW;
        this.memoGen[s] = this.gen;
        this.memoNow[s] = nowMs;
        m[w + M_NODE] = node;
        m[w + M_SRC] = p.src;
        m[w + M_DST] = p.dst;
        m[w + M_PORTS] = ports;
        m[w + M_PZ] = pz;
        m[w + M_FLAGS] = p.tcpFlags;
        m[w + M_STATE] = state;
        this.memoPlanned[s] = 0;
        this.memoVictim = s ^ 1;
        this.trkSlot = s;
      } else {
        // The connection changed: a slot of it (either direction) would answer as before.
        const m = this.memoW;
        for (let s = 0, w = 0; s < MEMO_SLOTS; s++, w += MEMO_WORDS) {
          if (m[w + M_NODE] >> 1 === e) this.memoGen[s] = -1;
        }
      }
    }
    this.trkConn = e;
    this.trkDir = dir;
    return state;
  }

  /** Rewrites a plain packet of connection `e` in direction `dir`; returns its NAT state bits. */
  private natPacket(b: Uint8Array, p: CtPacket, e: number, dir: number, l4Partial: boolean): number {
    if ((this.flags[e] & (F_SNAT | F_DNAT)) === 0) return 0;
    // Target: the inverse of the other direction's tuple.
    const o = ((e << 1) | (dir ^ 1)) << 2;
    const t = this.tup;
    natPacket(b, p, t[o + 1], t[o], t[o + 2] & 0xffff, t[o + 2] >>> 16, l4Partial);
    return this.natBits(e, dir);
  }

  /** The NAT state bits of a packet of connection `e` in direction `dir` (0 when it has no NAT). */
  private natBits(e: number, dir: number): number {
    const fl = this.flags[e];
    if (dir === 0) return ((fl & F_SNAT) !== 0 ? CS_SRC_NAT : 0) | ((fl & F_DNAT) !== 0 ? CS_DST_NAT : 0);
    return ((fl & F_SNAT) !== 0 ? CS_DST_NAT : 0) | ((fl & F_DNAT) !== 0 ? CS_SRC_NAT : 0);
  }

  /** An ICMP error: +rel when it quotes a packet of a known connection; NAT both headers. */
  private related(b: Uint8Array, p: CtPacket, pz0: number, nat: CtNatRange | null, nowMs: number): number {
    // The quoted packet travelled the other way: look up its inverse.
    const pz = (p.iproto << 16) | (pz0 & 0xffff);
    const node = this.lookup(p.idst, p.isrc, (p.idport << 16) | p.isport, pz);
    if (node < 0 || this.expAt[node >> 1] <= nowMs) {
      this.nInvalid[CT_INV_NO_RELATED]++;
      return CS_TRACKED | CS_INVALID;
    }
    const e = node >> 1, dir = node & 1;
    let state = CS_TRACKED | CS_RELATED | (dir === 1 ? CS_REPLY_DIR : 0);
    const fl = this.flags[e];
    if (nat !== null && (fl & (F_SNAT | F_DNAT)) !== 0) {
      const t = this.tup;
      const me = ((e << 1) | dir) << 2;         // this direction's tuple
      const ot = ((e << 1) | (dir ^ 1)) << 2;   // the other direction's tuple
      const outSrc = p.src === t[me] ? t[ot + 1] : p.src;
      const outDst = p.dst === t[me + 1] ? t[ot] : p.dst;
      natIcmpError(b, p, outSrc, outDst, t[ot], t[ot + 1], t[ot + 2] >>> 16, t[ot + 2] & 0xffff);
      state |= this.natBits(e, dir);
    }
    this.mark = this.markOf[e];
    this.lastConn = e;
    return state;
  }

  /**
   * What a packet of (proto, src, dst, sport, dport) in `zone` would be told now, without
   * touching the table (no state change, no refresh, no counters): the state bits of the
   * connection's direction (trk, est or new, rpl, the NAT bits) and its mark, or null when no
   * live connection has that tuple. For `flowctl trace` resuming after ct(table=N); ICMP is not
   * looked up (a flow key holds no echo id).
   */
  peek(proto: number, src: number, dst: number, sport: number, dport: number, zone: number,
       nowMs: number): { state: number; mark: number } | null {
    if (proto !== PROTO_TCP && proto !== PROTO_UDP) return null;
    const node = this.lookup(src, dst, ((sport & 0xffff) << 16) | (dport & 0xffff), (proto << 16) | (zone & 0xffff));
    if (node < 0 || this.expAt[node >> 1] <= nowMs) return null;
    const e = node >> 1, dir = node & 1, fl = this.flags[e];
    const state = CS_TRACKED | ((fl & F_SEEN_REPLY) !== 0 ? CS_ESTABLISHED : CS_NEW) | (dir === 1 ? CS_REPLY_DIR : 0) |
      this.natBits(e, dir);
    return { state, mark: this.markOf[e] };
  }

  // ---- the table ----------------------------------------------------------------------------

  /** Node (2e + dir) whose tuple equals the arguments, or -1. */
  lookup(src: number, dst: number, ports: number, pz: number): number {
    src |= 0; dst |= 0; ports |= 0; pz |= 0; // tup holds int32
    const t = this.tup;
    let n = this.head[hash4(src, dst, ports, pz) & this.hmask];
    while (n >= 0) {
      const o = n << 2;
      if (t[o] === src && t[o + 1] === dst && t[o + 2] === ports && t[o + 3] === pz) return n;
      n = this.hnext[n];
    }
    return -1;
  }

  private linkNode(n: number): void {
    const o = n << 2, t = this.tup;
    const h = hash4(t[o], t[o + 1], t[o + 2], t[o + 3]) & this.hmask;
    this.hnext[n] = this.head[h];
    this.head[h] = n;
  }

  private unlinkNode(n: number): void {
    const o = n << 2, t = this.tup;
    const h = hash4(t[o], t[o + 1], t[o + 2], t[o + 3]) & this.hmask;
    let cur = this.head[h];
    if (cur === n) { this.head[h] = this.hnext[n]; return; }
    while (cur >= 0) {
      const nx = this.hnext[cur];
      if (nx === n) { this.hnext[cur] = this.hnext[n]; return; }
      cur = nx;
    }
  }

  /** Creates the connection of `p` (NAT decided from `nat`); returns it, or -1 (counted). */
  private create(p: CtPacket, zone: number, pz: number, ports: number, nat: CtNatRange | null,
                 nowMs: number): number {
    const z = zone & 0xffff;
    const zl = this.zoneLimit[z] >= 0 ? this.zoneLimit[z] : this.defaultZoneLimit;
    if (zl > 0 && this.zoneCount[z] >= zl) {
      this.sweep(nowMs, RECLAIM_ON_FULL);
      if (this.zoneCount[z] >= zl) { this.nDropZoneLimit++; return -1; }
    }
    if (this.nFree === 0) {
      this.sweep(nowMs, RECLAIM_ON_FULL);
      if (this.nFree === 0) { this.nDropFull++; return -1; }
    }
    // The reply tuple: the inverse, then NAT.
    this.rSrc = p.dst; this.rDst = p.src; this.rPorts = (p.dport << 16) | p.sport;
    let fl = 0;
    if (nat !== null) {
      if (!this.allocNat(p, pz, nat)) { this.nDropNatExhausted++; return -1; }
      fl = nat.kind === 'src' ? F_SNAT : F_DNAT;
    } else if (this.lookup(this.rSrc, this.rDst, this.rPorts, pz) >= 0) {
      this.nDropClash++; // another connection already owns our reply tuple
      return -1;
    }
    const e = this.free[--this.nFree];
    this.gen++;
    const t = this.tup, o = e << 3;
    t[o] = p.src; t[o + 1] = p.dst; t[o + 2] = ports; t[o + 3] = pz;
    t[o + 4] = this.rSrc; t[o + 5] = this.rDst; t[o + 6] = this.rPorts; t[o + 7] = pz;
    this.linkNode(e << 1);
    this.linkNode((e << 1) | 1);
    this.tcpState[e] = p.proto === PROTO_TCP ? tcpInitialState(p.tcpFlags) : 0;
    this.flags[e] = fl;
    this.markOf[e] = 0;
    this.expClass[e] = 255;
    this.refresh(e, p.proto, nowMs);
    this.zoneCount[z]++;
    this.nLive++;
    this.nCreated++;
    if (this.nSyncZones !== 0 && this.syncZone[z] !== 0) this.journalPut(CT_JOURNAL_UPSERT, e);
    return e;
  }

  /** Chooses the reply tuple for `nat` into rSrc/rDst/rPorts; false when none is free. */
  private allocNat(p: CtPacket, pz: number, nat: CtNatRange): boolean {
    const proto = p.proto;
    const hasPorts = proto === PROTO_TCP || proto === PROTO_UDP || proto === PROTO_ICMP;
    const ipMin = nat.ipMin >>> 0, ipMax = Math.max(nat.ipMax >>> 0, ipMin);
    const nIp = ipMax - ipMin + 1;
    const snat = nat.kind === 'src';
    // One inside (outside, for DNAT) address keeps one translated address.
    const ipStart = ((hash4(snat ? p.src : p.dst, 0, 0, pz) >>> 0) % nIp);
    // The port being translated: SNAT moves the source port (reply dport), DNAT the
    // destination port (reply sport). ICMP: the echo id, always the reply's dport.
    const snatPort = snat || proto === PROTO_ICMP;
    const origPort = proto === PROTO_ICMP ? p.sport : (snat ? p.sport : p.dport);
    let pMin: number, pMax: number;
    if (!hasPorts) { pMin = 0; pMax = 0; }
    else if (nat.portMin !== 0) { pMin = nat.portMin; pMax = Math.max(nat.portMax, pMin); }
    else if (proto === PROTO_ICMP) { pMin = 0; pMax = 65535; }
    else if (!snat) { pMin = origPort; pMax = origPort; }
    else if (origPort < 1024) { pMin = 1; pMax = 1023; }
    else { pMin = 1024; pMax = 65535; }
    const nPort = pMax - pMin + 1;
    let tries = 0;
    for (let i = 0; i < nIp && tries < MAX_NAT_TRIES; i++) {
      const ip = (ipMin + ((ipStart + i) % nIp)) >>> 0;
      if (snat) this.rDst = ip; else this.rSrc = ip;
      if (!hasPorts) {
        tries++;
        if (this.lookup(this.rSrc, this.rDst, this.rPorts, pz) < 0) return true;
        continue;
      }
      // First choice: keep the port.
      if (origPort >= pMin && origPort <= pMax) {
        tries++;
        if (this.tryPort(origPort, snatPort, pz)) return true;
      }
      const start = this.portCursor % nPort;
      const lim = Math.min(nPort, MAX_NAT_TRIES - tries);
      for (let k = 0; k < lim; k++) {
        const port = pMin + ((start + k) % nPort);
        tries++;
        if (this.tryPort(port, snatPort, pz)) {
          this.portCursor = (start + k + 1) % 0x10000000;
          return true;
        }
      }
    }
    return false;
  }

  private tryPort(port: number, snatPort: boolean, pz: number): boolean {
    const cur = this.rPorts;
    const ports = snatPort ? (cur & 0xffff0000) | port : (port << 16) | (cur & 0xffff);
    if (this.lookup(this.rSrc, this.rDst, ports, pz) >= 0) return false;
    this.rPorts = ports;
    return true;
  }

  /** Moves `e` to the tail of its timeout class's list with a fresh expiry time. */
  private refresh(e: number, proto: number, nowMs: number): void {
    let c: number;
    if (proto === PROTO_TCP) {
      switch (this.tcpState[e]) {
        case TCP_SYN_SENT: c = EXP_TCP_SYN_SENT; break;
        case TCP_SYN_RECV: c = EXP_TCP_SYN_RECV; break;
        case TCP_ESTABLISHED: c = EXP_TCP_ESTABLISHED; break;
        case TCP_FIN_WAIT: c = EXP_TCP_FIN_WAIT; break;
        case TCP_CLOSING: c = EXP_TCP_CLOSING; break;
        case TCP_TIME_WAIT: c = EXP_TCP_TIME_WAIT; break;
        case TCP_CLOSED: c = EXP_TCP_CLOSED; break;
        default: c = EXP_TCP_ESTABLISHED;
      }
    } else if (proto === PROTO_UDP) {
      c = (this.flags[e] & F_SEEN_REPLY) !== 0 ? EXP_UDP_REPLIED : EXP_UDP_FIRST;
    } else if (proto === PROTO_ICMP) {
      c = EXP_ICMP;
    } else {
      c = EXP_OTHER;
    }
    const old = this.expClass[e];
    if (old !== 255) {
      if (old === c && this.expTail[c] === e) { this.expAt[e] = nowMs + this.timeoutMs[c]; return; }
      this.expUnlink(e);
    }
    this.expClass[e] = c;
    const at = nowMs + this.timeoutMs[c];
    this.expAt[e] = at;
    if (at < this.sweepAt) this.sweepAt = at;
    const tail = this.expTail[c];
    this.expPrev[e] = tail;
    this.expNext[e] = -1;
    if (tail >= 0) this.expNext[tail] = e; else this.expHead[c] = e;
    this.expTail[c] = e;
  }

  private expUnlink(e: number): void {
    const c = this.expClass[e];
    const pv = this.expPrev[e], nx = this.expNext[e];
    if (pv >= 0) this.expNext[pv] = nx; else this.expHead[c] = nx;
    if (nx >= 0) this.expPrev[nx] = pv; else this.expTail[c] = pv;
    this.expClass[e] = 255;
  }

  /** Removes connection `e` from every structure and frees its slot. */
  private remove(e: number): void {
    this.gen++;
    if (this.nSyncZones !== 0 && this.syncZone[this.tup[(e << 3) + 3] & 0xffff] !== 0) this.journalPut(CT_JOURNAL_DELETE, e);
    this.unlinkNode(e << 1);
    this.unlinkNode((e << 1) | 1);
    this.expUnlink(e);
    this.zoneCount[this.tup[(e << 3) + 3] & 0xffff]--;
    this.free[this.nFree++] = e;
    this.nLive--;
  }

  /**
   * Removes at most `budget` expired connections (the heads of the class lists whose time
   * passed). Returns how many it removed. Cost is O(budget + classes), whatever the size.
   */
  sweep(nowMs: number, budget: number): number {
    if (nowMs < this.sweepAt) return 0;
    let n = 0, next = Infinity;
    for (let c = 0; c < N_EXP_CLASSES; c++) {
      let e = this.expHead[c];
      while (e >= 0 && n < budget && this.expAt[e] <= nowMs) {
        this.remove(e);
        n++;
        e = this.expHead[c];
      }
      // The new head's expiry (one at or before nowMs when the budget ran out: sweep again).
      if (e >= 0 && this.expAt[e] < next) next = this.expAt[e];
    }
    this.sweepAt = next;
    this.nExpired += n;
    return n;
  }

  // ---- HA sync (see the header) -------------------------------------------------------------

  private journalPut(op: number, e: number): void {
    const j = this.journal!;
    if (this.jCount === CT_JOURNAL_RECORDS) {
      if (!this.journalOverflowed) this.nJournalOverflows++;
      this.journalOverflowed = true;
      return;
    }
    const o = ((this.jHead + this.jCount) % CT_JOURNAL_RECORDS) * JOURNAL_WORDS;
    const t = this.tup, to = e << 3;
    j[o] = op; j[o + 1] = t[to]; j[o + 2] = t[to + 1]; j[o + 3] = t[to + 2]; j[o + 4] = t[to + 3];
    this.jCount++;
  }

  /** Starts (`on`) or stops journaling the connection changes of `zone`. */
  watchZone(zone: number, on: boolean): void {
    const z = zone & 0xffff;
    if (on === (this.syncZone[z] !== 0)) return;
    this.syncZone[z] = on ? 1 : 0;
    this.nSyncZones += on ? 1 : -1;
    if (on && this.journal === null) this.journal = new Int32Array(CT_JOURNAL_RECORDS * JOURNAL_WORDS);
  }

  /** Whether `zone` is watched. */
  watched(zone: number): boolean { return this.syncZone[zone & 0xffff] !== 0; }

  /**
   * Hands every journal record to `fn` (op, then the original tuple as the table keeps it:
   * src, dst, sport << 16 | dport, proto << 16 | zone), oldest first, and empties the journal.
   * Returns whether records were lost since the last drain (then the reader resends the
   * watched zones whole); clears that mark.
   */
  drainJournal(fn: (op: number, src: number, dst: number, ports: number, pz: number) => void): boolean {
    const j = this.journal;
    if (j !== null) {
      for (; this.jCount > 0; this.jCount--) {
        const o = this.jHead * JOURNAL_WORDS;
        this.jHead = (this.jHead + 1) % CT_JOURNAL_RECORDS;
        fn(j[o], j[o + 1], j[o + 2], j[o + 3], j[o + 4]);
      }
    }
    const lost = this.journalOverflowed;
    this.journalOverflowed = false;
    return lost;
  }

  private recordOf(e: number, nowMs: number): CtConnRecord {
    const t = this.tup, o = e << 3;
    return {
      zone: t[o + 3] & 0xffff, proto: t[o + 3] >>> 16, tcpState: this.tcpState[e], flags: this.flags[e],
      expiresInMs: Math.max(0, this.expAt[e] - nowMs),
      origSrc: t[o] >>> 0, origDst: t[o + 1] >>> 0, origSport: t[o + 2] >>> 16, origDport: t[o + 2] & 0xffff,
      replySrc: t[o + 4] >>> 0, replyDst: t[o + 5] >>> 0, replySport: t[o + 6] >>> 16, replyDport: t[o + 6] & 0xffff,
    };
  }

  /** The live connection whose original tuple is the arguments (the journal's words), or null. */
  syncEntryOf(src: number, dst: number, ports: number, pz: number, nowMs: number): CtConnRecord | null {
    const n = this.lookup(src, dst, ports, pz);
    if (n < 0 || (n & 1) !== 0 || this.expAt[n >> 1] <= nowMs) return null;
    return this.recordOf(n >> 1, nowMs);
  }

  /** Every live connection of `zone` (a refresh round's table; control plane). */
  zoneEntries(zone: number, nowMs: number): CtConnRecord[] {
    const out: CtConnRecord[] = [];
    const z = zone & 0xffff;
    if (this.zoneCount[z] === 0) return out;
    for (let c = 0; c < N_EXP_CLASSES; c++) {
      for (let e = this.expHead[c]; e >= 0; e = this.expNext[e]) {
        if ((this.tup[(e << 3) + 3] & 0xffff) === z && this.expAt[e] > nowMs) out.push(this.recordOf(e, nowMs));
      }
    }
    return out;
  }

  /**
   * Writes the connection `r` a master sent (see the header): replaces one with the same
   * original tuple, removes a local one that holds its reply tuple (the master's mapping
   * wins; counted as a clash). Returns false when the table (or the zone) is full.
   */
  importConn(r: CtConnRecord, nowMs: number): boolean {
    this.gen++;
    const z = r.zone & 0xffff;
    const pz = ((r.proto & 0xff) << 16) | z;
    const oPorts = ((r.origSport & 0xffff) << 16) | (r.origDport & 0xffff);
    const rPorts = ((r.replySport & 0xffff) << 16) | (r.replyDport & 0xffff);
    let n = this.lookup(r.origSrc, r.origDst, oPorts, pz);
    const t = this.tup;
    if (n >= 0) {
      const e = n >> 1, o = e << 3;
      if ((n & 1) === 0 && t[o + 4] === (r.replySrc | 0) && t[o + 5] === (r.replyDst | 0) && t[o + 6] === rPorts) {
        this.tcpState[e] = r.tcpState;
        this.flags[e] = r.flags;
        this.refresh(e, r.proto, nowMs);
        this.nImported++;
        return true;
      }
      this.remove(e);
      this.nImportClashes++;
    }
    n = this.lookup(r.replySrc, r.replyDst, rPorts, pz);
    if (n >= 0) { this.remove(n >> 1); this.nImportClashes++; }
    const zl = this.zoneLimit[z] >= 0 ? this.zoneLimit[z] : this.defaultZoneLimit;
    if (this.nFree === 0 || (zl > 0 && this.zoneCount[z] >= zl)) this.sweep(nowMs, RECLAIM_ON_FULL);
    if (this.nFree === 0 || (zl > 0 && this.zoneCount[z] >= zl)) { this.nImportFailed++; return false; }
    const e = this.free[--this.nFree];
    const o = e << 3;
    t[o] = r.origSrc | 0; t[o + 1] = r.origDst | 0; t[o + 2] = oPorts; t[o + 3] = pz;
    t[o + 4] = r.replySrc | 0; t[o + 5] = r.replyDst | 0; t[o + 6] = rPorts; t[o + 7] = pz;
    this.linkNode(e << 1);
    this.linkNode((e << 1) | 1);
    this.tcpState[e] = r.tcpState;
    this.flags[e] = r.flags;
    this.markOf[e] = 0;
    this.expClass[e] = 255;
    this.refresh(e, r.proto, nowMs);
    this.zoneCount[z]++;
    this.nLive++;
    this.nImported++;
    return true;
  }

  /** Removes the connection with `r`'s original tuple (a master's delete); false when none. */
  removeConn(r: CtConnRecord): boolean {
    const pz = ((r.proto & 0xff) << 16) | (r.zone & 0xffff);
    const n = this.lookup(r.origSrc, r.origDst, ((r.origSport & 0xffff) << 16) | (r.origDport & 0xffff), pz);
    if (n < 0 || (n & 1) !== 0) return false;
    this.remove(n >> 1);
    return true;
  }

  // ---- control ------------------------------------------------------------------------------

  /** Sets zone `zone`'s limit (0 = unlimited; -1 = back to the default). */
  setZoneLimit(zone: number, limit: number): void {
    this.zoneLimit[zone & 0xffff] = limit < 0 ? -1 : Math.floor(limit);
  }

  /** Connections in `zone`. */
  zoneConnections(zone: number): number { return this.zoneCount[zone & 0xffff]; }

  /** Zones with at least one connection, ascending (for metrics; scans the 64k counters). */
  zonesInUse(): number[] {
    const out: number[] = [];
    for (let z = 0; z < 65536; z++) if (this.zoneCount[z] > 0) out.push(z);
    return out;
  }

  /** Removes every connection (of `zone` when >= 0); returns how many. */
  flush(zone = -1): number {
    let n = 0;
    for (let c = 0; c < N_EXP_CLASSES; c++) {
      let e = this.expHead[c];
      while (e >= 0) {
        const nx = this.expNext[e];
        if (zone < 0 || (this.tup[(e << 3) + 3] & 0xffff) === zone) { this.remove(e); n++; }
        e = nx;
      }
    }
    this.nFlushed += n;
    return n;
  }

  /** One line per connection (of `zone` when >= 0), in ovs-appctl dpctl/dump-conntrack form. */
  list(zone = -1, nowMs = Date.now(), max = 100000): string[] {
    const out: string[] = [];
    for (let c = 0; c < N_EXP_CLASSES && out.length < max; c++) {
      for (let e = this.expHead[c]; e >= 0 && out.length < max; e = this.expNext[e]) {
        const z = this.tup[(e << 3) + 3] & 0xffff;
        if (zone >= 0 && z !== zone) continue;
        if (this.expAt[e] <= nowMs) continue;
        out.push(this.formatConn(e, nowMs));
      }
    }
    return out;
  }

  private formatTuple(n: number, proto: number): string {
    const o = n << 2, t = this.tup;
    const sp = t[o + 2] >>> 16, dp = t[o + 2] & 0xffff;
    const a = `src=${ipStr(t[o])},dst=${ipStr(t[o + 1])}`;
    if (proto === PROTO_TCP || proto === PROTO_UDP) return `${a},sport=${sp},dport=${dp}`;
    if (proto === PROTO_ICMP) return (n & 1) === 0 ? `${a},id=${sp},type=8,code=0` : `${a},id=${dp},type=0,code=0`;
    return a;
  }

  /** One connection, e.g. tcp,orig=(...),reply=(...),zone=5,mark=1,protoinfo=(state=ESTABLISHED). */
  formatConn(e: number, nowMs: number): string {
    const pz = this.tup[(e << 3) + 3];
    const proto = pz >>> 16, zone = pz & 0xffff;
    const name = proto === PROTO_TCP ? 'tcp' : proto === PROTO_UDP ? 'udp' : proto === PROTO_ICMP ? 'icmp' : String(proto);
    let s = `${name},orig=(${this.formatTuple(e << 1, proto)}),reply=(${this.formatTuple((e << 1) | 1, proto)})`;
    if (zone !== 0) s += `,zone=${zone}`;
    if (this.markOf[e] !== 0) s += `,mark=${this.markOf[e]}`;
    s += `,timeout=${Math.max(0, Math.ceil((this.expAt[e] - nowMs) / 1000))}`;
    if (proto === PROTO_TCP) s += `,protoinfo=(state=${TCP_STATE_NAMES[this.tcpState[e]]})`;
    return s;
  }

  /** The TCP state name of connection `e` (tests, dumps). */
  tcpStateName(e: number): string { return TCP_STATE_NAMES[this.tcpState[e]]; }

  /** Counters by name (non-zero invalid/drop reasons only). */
  stats(): Record<string, number> {
    const out: Record<string, number> = {
      connections: this.nLive, capacity: this.capacity, packets: this.nPackets,
      created: this.nCreated, expired: this.nExpired, flushed: this.nFlushed,
      drop_table_full: this.nDropFull, drop_zone_limit: this.nDropZoneLimit,
      drop_nat_exhausted: this.nDropNatExhausted, drop_clash: this.nDropClash,
      bytes_per_entry: Math.round(this.bytesPerEntry),
    };
    for (let i = 1; i < CT_INV_NAMES.length; i++) {
      if (this.nInvalid[i] > 0) out[`invalid_${CT_INV_NAMES[i]}`] = this.nInvalid[i];
    }
    // HA sync (non-zero only, like the reasons above).
    const sync: Record<string, number> = { sync_imported: this.nImported, sync_import_clashes: this.nImportClashes,
      sync_import_failed: this.nImportFailed, sync_journal_overflows: this.nJournalOverflows };
    for (const k of Object.keys(sync)) if (sync[k] > 0) out[k] = sync[k];
    return out;
  }

  /** dpctl/ct-get-limits form: the default, then each zone with a limit or connections. */
  limits(zone = -1): string[] {
    const out = [`global limit=${this.capacity},count=${this.nLive}`, `default limit=${this.defaultZoneLimit}`];
    for (let z = 0; z < 65536; z++) {
      if (zone >= 0 && z !== zone) continue;
      if (this.zoneLimit[z] < 0 && this.zoneCount[z] === 0 && z !== zone) continue;
      const lim = this.zoneLimit[z] >= 0 ? this.zoneLimit[z] : this.defaultZoneLimit;
      out.push(`zone=${z},limit=${lim},count=${this.zoneCount[z]}`);
    }
    return out;
  }
}

