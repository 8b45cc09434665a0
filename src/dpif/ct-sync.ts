/**
 * Conntrack state sync for HA routers (issue 14 item 3): the VRRP master streams its SNAT
 * connections (created, state changes, deleted) to the backups, so that after a failover an
 * established connection keeps its external address and port. The wire is UDP datagrams of
 * this module's format; the transport (a socket on the HA network or the underlay) and the
 * conntrack table on either side are the caller's.
 *
 * Who calls: control/ha-ct-sync.ts on the master (CtSyncSender: note() for each change the
 * conntrack journal reports, tick() on a timer, whose datagrams it sends) and on the backups
 * (CtSyncReceiver.receive() per datagram, which calls the sink to write the table); tests.
 * Control-plane rate: a datagram carries up to MAX_ENTRIES_PER_DATAGRAM entries.
 *
 * Protocol (all fields big-endian):
 *   header 16 bytes: magic "FS" (0x46 0x53), version 1, type (1 = updates, 2 = refresh end,
 *                    3 = resync request), epoch u32 (random per sender start), seq u32 (per
 *                    datagram, +1 each), count u16 (entries that follow), stream u16 (which
 *                    table the stream carries: the conntrack zone of the HA router; one
 *                    sender per stream, so a node that is master of several routers sends
 *                    several streams)
 *   entry 44 bytes:  op u8 (1 upsert, 2 delete), tcpState u8, zone u16, version u32 (the
 *                    sender's change counter for this state), round u32 (refresh round, 0 for
 *                    a change), proto u8, flags u8 (conntrack's per-connection flags: seen
 *                    reply, SNAT, DNAT, TCP FIN bits), 2 bytes reserved, expiresInMs u32,
 *                    original tuple (src u32, dst u32, sport u16, dport u16), reply tuple
 *                    (the same)
 *   An updates datagram with count 0 is a heartbeat: it moves the sequence on, so a backup
 *   sees how far the master is and whether it lost anything even when nothing changes.
 *   refresh end:     header (count 0), round u32, the version at which the round started u32
 *
 * Why it converges under loss, reordering and duplication:
 * - Every entry carries a version (a counter the sender bumps on each change). The receiver
 *   keeps, per connection, the highest version applied, and ignores an entry whose version is
 *   not higher: a duplicate or an older state arriving late changes nothing. A delete leaves a
 *   tombstone with its version, so a late upsert cannot bring a deleted connection back.
 * - Loss is repaired by refresh rounds: the sender walks its whole table a bounded number of
 *   entries per tick, sending each connection it had when the round started (with the version
 *   of that moment, so a change made since, newer, wins over it), then a "refresh end"
 *   naming the round and the version it started at. The receiver then removes
 *   every connection it holds that this round did not refresh and that no change newer than
 *   the round's start touched: what it has equals what the sender had.
 * - A receiver that sees a hole in the datagram sequence (or a new epoch: the sender restarted)
 *   counts it as lag and asks for a resync (type 3); the sender then starts a round at once.
 * Bounds: the sender's pending changes are a map keyed by connection (later changes of one
 * connection replace earlier ones), at most `maxPending`; above that it drops them and starts
 * a refresh round instead (counted as overflows). Tombstones are kept for `tombstoneMax`
 * deletes, oldest dropped first.
 */

export const CT_SYNC_MAGIC = 0x4653;
export const CT_SYNC_VERSION = 1;
export const CT_SYNC_HEADER_BYTES = 16;
export const CT_SYNC_ENTRY_BYTES = 44;
export const CT_SYNC_REFRESH_END_BYTES = CT_SYNC_HEADER_BYTES + 8;
/** Entries per datagram: 16 + 31 x 44 = 1380 bytes, inside a 1400-byte payload on the HA network. */
export const MAX_ENTRIES_PER_DATAGRAM = 31;

export const MSG_UPDATES = 1;
export const MSG_REFRESH_END = 2;
export const MSG_RESYNC_REQUEST = 3;
export const OP_UPSERT = 1;
export const OP_DELETE = 2;

/** One connection as the sync carries it: enough to re-create the NAT entry on a backup. */
export interface CtSyncEntry {
  zone: number;
  proto: number;
  tcpState: number;
  expiresInMs: number;
  /** Conntrack's flags byte (dpif/conntrack.ts: seen reply, SNAT, DNAT, TCP FIN bits). */
  flags: number;
  origSrc: number; origDst: number; origSport: number; origDport: number;
  replySrc: number; replyDst: number; replySport: number; replyDport: number;
}

/** Where the receiver writes: the backup's conntrack (or a model of it in tests). */
export interface CtSyncSink {
  upsert(e: CtSyncEntry): void;
  remove(e: CtSyncEntry): void;
}

/** Why a datagram was refused; counted per reason by the receiver. */
export const CT_SYNC_DROP_NAMES = ['truncated', 'bad_magic', 'bad_version', 'bad_type', 'bad_count', 'bad_op'] as const;

/** A connection's identity: zone, protocol and original tuple. */
export function ctSyncKey(e: CtSyncEntry): string {
  return `${e.zone}/${e.proto}/${e.origSrc}/${e.origDst}/${e.origSport}/${e.origDport}`;
}

interface Versioned { entry: CtSyncEntry; version: number; deleted: boolean; round: number }

function writeHeader(dv: DataView, type: number, epoch: number, seq: number, count: number, stream = 0): void {
  dv.setUint16(0, CT_SYNC_MAGIC);
  dv.setUint8(2, CT_SYNC_VERSION);
  dv.setUint8(3, type);
  dv.setUint32(4, epoch >>> 0);
  dv.setUint32(8, seq >>> 0);
  dv.setUint16(12, count);
  dv.setUint16(14, stream);
}

/** The stream id of a datagram (header bytes 14-15), or -1 when it is too short to have one. */
export function ctSyncStream(b: Uint8Array): number {
  return b.length < CT_SYNC_HEADER_BYTES ? -1 : (b[14] << 8) | b[15];
}

function writeEntry(dv: DataView, off: number, op: number, version: number, round: number, e: CtSyncEntry): void {
  dv.setUint8(off, op);
  dv.setUint8(off + 1, e.tcpState);
  dv.setUint16(off + 2, e.zone);
  dv.setUint32(off + 4, version >>> 0);
  dv.setUint32(off + 8, round >>> 0);
  dv.setUint8(off + 12, e.proto);
  dv.setUint8(off + 13, e.flags & 0xff);
  dv.setUint16(off + 14, 0);
  dv.setUint32(off + 16, Math.min(0xffffffff, Math.max(0, Math.round(e.expiresInMs))));
  dv.setUint32(off + 20, e.origSrc >>> 0);
  dv.setUint32(off + 24, e.origDst >>> 0);
  dv.setUint16(off + 28, e.origSport);
  dv.setUint16(off + 30, e.origDport);
  dv.setUint32(off + 32, e.replySrc >>> 0);
  dv.setUint32(off + 36, e.replyDst >>> 0);
  dv.setUint16(off + 40, e.replySport);
  dv.setUint16(off + 42, e.replyDport);
}

function readEntry(dv: DataView, off: number): CtSyncEntry {
  return {
    tcpState: dv.getUint8(off + 1), zone: dv.getUint16(off + 2), proto: dv.getUint8(off + 12),
    flags: dv.getUint8(off + 13), expiresInMs: dv.getUint32(off + 16),
    origSrc: dv.getUint32(off + 20), origDst: dv.getUint32(off + 24), origSport: dv.getUint16(off + 28), origDport: dv.getUint16(off + 30),
    replySrc: dv.getUint32(off + 32), replyDst: dv.getUint32(off + 36), replySport: dv.getUint16(off + 40), replyDport: dv.getUint16(off + 42),
  };
}

export interface CtSyncSenderOptions {
  /** Random per start, so receivers notice a restarted master. */
  epoch: number;
  /** Pending changes kept between ticks before a refresh round replaces them. */
  maxPending?: number;
  /** Live entries re-sent per tick by a refresh round. */
  refreshPerTick?: number;
  /** Stream id written into every header (the HA router's conntrack zone); default 0. */
  stream?: number;
}

/**
 * The master's side. `table` returns the live SNAT connections (the sender re-reads it for
 * refresh rounds, so it never holds a copy of the table).
 */
export class CtSyncSender {
  readonly epoch: number;
  private seq = 0;
  private version = 0;
  private readonly pending = new Map<string, { op: number; version: number; entry: CtSyncEntry }>();
  private readonly maxPending: number;
  private readonly refreshPerTick: number;
  readonly stream: number;
  private round = 0;
  private roundStartVersion = 0;
  /** Entries of the running round still to send, or null when no round runs. */
  private roundQueue: CtSyncEntry[] | null = null;
  nOverflows = 0;
  nDatagrams = 0;
  nEntries = 0;

  constructor(private readonly table: () => readonly CtSyncEntry[], opts: CtSyncSenderOptions) {
    this.epoch = opts.epoch >>> 0;
    this.maxPending = opts.maxPending ?? 4096;
    this.refreshPerTick = opts.refreshPerTick ?? 256;
    this.stream = (opts.stream ?? 0) & 0xffff;
  }

  /** The last sequence number sent (0 before the first datagram). */
  get lastSeq(): number {
    return this.seq;
  }

  /** Changes waiting for the next tick. */
  get nPending(): number {
    return this.pending.size;
  }

  /** Entries of the running refresh round still to send (0 when none runs). */
  get nRoundLeft(): number {
    return this.roundQueue === null ? 0 : this.roundQueue.length;
  }

  /** An updates datagram without entries: moves the sequence on (see the header). */
  heartbeat(): Uint8Array {
    const b = new Uint8Array(CT_SYNC_HEADER_BYTES);
    writeHeader(new DataView(b.buffer), MSG_UPDATES, this.epoch, ++this.seq, 0, this.stream);
    this.nDatagrams++;
    return b;
  }

  /** A connection was created or changed state (`deleted` false) or went away (true). */
  note(e: CtSyncEntry, deleted: boolean): void {
    const k = ctSyncKey(e);
    this.version++;
    if (!this.pending.has(k) && this.pending.size >= this.maxPending) {
      // Too far behind: a refresh round carries the whole table instead.
      this.pending.clear();
      this.nOverflows++;
      this.startRound();
      return;
    }
    this.pending.delete(k);
    this.pending.set(k, { op: deleted ? OP_DELETE : OP_UPSERT, version: this.version, entry: e });
  }

  /** Starts a refresh round (at once when a backup asks, or periodically). */
  startRound(): void {
    this.round++;
    this.roundStartVersion = this.version;
    this.roundQueue = [...this.table()];
  }

  get refreshing(): boolean {
    return this.roundQueue !== null;
  }

  /** Handles a datagram from a backup (a resync request); returns whether it was one. */
  receive(b: Uint8Array): boolean {
    if (b.length < CT_SYNC_HEADER_BYTES) return false;
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    if (dv.getUint16(0) !== CT_SYNC_MAGIC || dv.getUint8(2) !== CT_SYNC_VERSION || dv.getUint8(3) !== MSG_RESYNC_REQUEST) return false;
    this.startRound();
    return true;
  }

  /** The datagrams to send now: pending changes, then the next slice of a refresh round. */
  tick(): Uint8Array[] {
    const out: Uint8Array[] = [];
    const items: { op: number; version: number; round: number; entry: CtSyncEntry }[] = [];
    for (const p of this.pending.values()) items.push({ op: p.op, version: p.version, round: 0, entry: p.entry });
    this.pending.clear();
    let endRound = false;
    if (this.roundQueue !== null) {
      const n = Math.min(this.refreshPerTick, this.roundQueue.length);
      // A refreshed entry is the state at the round's start: it carries that version, so a
      // change made since (a higher version) wins over it at the receiver in any order.
      for (let i = 0; i < n; i++) items.push({ op: OP_UPSERT, version: this.roundStartVersion, round: this.round, entry: this.roundQueue[i] });
      this.roundQueue.splice(0, n);
      if (this.roundQueue.length === 0) { this.roundQueue = null; endRound = true; }
    }
    for (let i = 0; i < items.length; i += MAX_ENTRIES_PER_DATAGRAM) {
      const n = Math.min(MAX_ENTRIES_PER_DATAGRAM, items.length - i);
      const b = new Uint8Array(CT_SYNC_HEADER_BYTES + n * CT_SYNC_ENTRY_BYTES);
      const dv = new DataView(b.buffer);
      writeHeader(dv, MSG_UPDATES, this.epoch, ++this.seq, n, this.stream);
      for (let j = 0; j < n; j++) {
        const it = items[i + j];
        writeEntry(dv, CT_SYNC_HEADER_BYTES + j * CT_SYNC_ENTRY_BYTES, it.op, it.version, it.round, it.entry);
      }
      out.push(b);
      this.nEntries += n;
    }
    if (endRound) {
      const b = new Uint8Array(CT_SYNC_REFRESH_END_BYTES);
      const dv = new DataView(b.buffer);
      writeHeader(dv, MSG_REFRESH_END, this.epoch, ++this.seq, 0, this.stream);
      dv.setUint32(CT_SYNC_HEADER_BYTES, this.round);
      dv.setUint32(CT_SYNC_HEADER_BYTES + 4, this.roundStartVersion);
      out.push(b);
    }
    this.nDatagrams += out.length;
    return out;
  }
}

/** A resync request datagram (a backup to the master) for stream `stream`. */
export function resyncRequest(epoch: number, stream = 0): Uint8Array {
  const b = new Uint8Array(CT_SYNC_HEADER_BYTES);
  writeHeader(new DataView(b.buffer), MSG_RESYNC_REQUEST, epoch, 0, 0, stream);
  return b;
}

export interface CtSyncReceiverOptions {
  tombstoneMax?: number;
}

/** A backup's side: applies datagrams to `sink`, reports what it would ask the master for. */
export class CtSyncReceiver {
  private readonly known = new Map<string, Versioned>();
  private readonly tombstones: string[] = [];
  private readonly tombstoneMax: number;
  private epoch = -1;
  /** The highest sequence number seen from the current sender. */
  lastSeq = 0;
  private stream = 0;
  /** Datagrams missing in the sequence since the last completed refresh round (the sync lag). */
  nMissing = 0;
  nDatagrams = 0;
  nApplied = 0;
  nStale = 0;
  nRoundsCompleted = 0;
  lastReceiveMs = 0;
  readonly drops = new Float64Array(CT_SYNC_DROP_NAMES.length);

  constructor(private readonly sink: CtSyncSink, opts: CtSyncReceiverOptions = {}) {
    this.tombstoneMax = opts.tombstoneMax ?? 65536;
  }

  /** Live connections the receiver holds (for status and tests). */
  get size(): number {
    let n = 0;
    for (const v of this.known.values()) if (!v.deleted) n++;
    return n;
  }

  /**
   * Applies one datagram. Returns a resync request to send to the master when the datagram
   * showed a hole in the sequence or a new epoch, else null.
   */
  receive(b: Uint8Array, nowMs: number): Uint8Array | null {
    if (b.length < CT_SYNC_HEADER_BYTES) return this.drop(0);
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    if (dv.getUint16(0) !== CT_SYNC_MAGIC) return this.drop(1);
    if (dv.getUint8(2) !== CT_SYNC_VERSION) return this.drop(2);
    const type = dv.getUint8(3);
    if (type !== MSG_UPDATES && type !== MSG_REFRESH_END) return this.drop(3);
    const count = dv.getUint16(12);
    const want = type === MSG_UPDATES ? CT_SYNC_HEADER_BYTES + count * CT_SYNC_ENTRY_BYTES : CT_SYNC_REFRESH_END_BYTES;
    if (b.length < want) return type === MSG_UPDATES && count > MAX_ENTRIES_PER_DATAGRAM ? this.drop(4) : this.drop(0);
    for (let i = 0; type === MSG_UPDATES && i < count; i++) {
      const op = dv.getUint8(CT_SYNC_HEADER_BYTES + i * CT_SYNC_ENTRY_BYTES);
      if (op !== OP_UPSERT && op !== OP_DELETE) return this.drop(5);
    }
    this.nDatagrams++;
    this.lastReceiveMs = nowMs;
    const epoch = dv.getUint32(4);
    const seq = dv.getUint32(8);
    this.stream = dv.getUint16(14);
    let ask = false;
    if (epoch !== this.epoch) {
      // A (re)started master: its versions start again, so forget the old ones' order.
      ask = this.epoch !== -1 || seq !== 1;
      this.epoch = epoch;
      for (const v of this.known.values()) v.version = 0;
      this.lastSeq = seq;
    } else if (seq > this.lastSeq) {
      if (seq !== this.lastSeq + 1) { this.nMissing += seq - this.lastSeq - 1; ask = true; }
      this.lastSeq = seq;
    }
    if (type === MSG_UPDATES) {
      for (let i = 0; i < count; i++) this.apply(dv, CT_SYNC_HEADER_BYTES + i * CT_SYNC_ENTRY_BYTES);
    } else {
      this.endRound(dv.getUint32(CT_SYNC_HEADER_BYTES), dv.getUint32(CT_SYNC_HEADER_BYTES + 4));
    }
    return ask ? resyncRequest(this.epoch, this.stream) : null;
  }

  private drop(reason: number): null {
    this.drops[reason]++;
    return null;
  }

  private apply(dv: DataView, off: number): void {
    const op = dv.getUint8(off);
    const version = dv.getUint32(off + 4);
    const round = dv.getUint32(off + 8);
    const e = readEntry(dv, off);
    const k = ctSyncKey(e);
    const v = this.known.get(k);
    // The round's end overtook this entry of the same round: the tombstone it left is as
    // old as the round's start, and the entry is the live state as of then.
    const lateInRound = v !== undefined && v.deleted && round !== 0 && v.round === round && version === v.version;
    if (v !== undefined && version <= v.version && !lateInRound) {
      // Same state again or older: only note that the round saw it (when it is as new), and
      // hand it to the sink again so the backup's entry stays as fresh as the master's.
      if (round !== 0 && version === v.version && !v.deleted) { v.round = round; this.sink.upsert(e); }
      this.nStale++;
      return;
    }
    this.nApplied++;
    if (op === OP_DELETE) {
      if (v !== undefined && !v.deleted) this.sink.remove(v.entry);
      this.known.set(k, { entry: e, version, deleted: true, round });
      this.tombstones.push(k);
      while (this.tombstones.length > this.tombstoneMax) {
        const old = this.tombstones.shift()!;
        if (this.known.get(old)?.deleted === true) this.known.delete(old);
      }
      return;
    }
    this.known.set(k, { entry: e, version, deleted: false, round });
    this.sink.upsert(e);
  }

  /** Removes what round `round` (started at `startVersion`) did not refresh and nothing newer touched. */
  private endRound(round: number, startVersion: number): void {
    for (const [k, v] of this.known) {
      if (v.deleted || v.round === round || v.version > startVersion) continue;
      this.sink.remove(v.entry);
      // A tombstone as of the round's start: a late duplicate of an older state stays dead.
      this.known.set(k, { entry: v.entry, version: startVersion, deleted: true, round });
      this.tombstones.push(k);
    }
    this.nRoundsCompleted++;
    this.nMissing = 0;
  }
}
