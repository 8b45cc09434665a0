/**
 * The datapath: one batch at a time through key extraction, the exact-match cache, the megaflow
 * cache and (for what both miss) an upcall into ofproto; then each packet's compiled program, in
 * arrival order, appending to one output batch per port; then one send per port.
 *
 * Called by: the daemon's poll loop and the replay driver (processBatch per received batch);
 * control/ for dumps and stats; ofproto (through the daemon) calls rulesChanged() on every rule
 * add/modify/delete/learn/timeout and on NORMAL MAC-table changes.
 *
 * Order kept: packets run in arrival order, so each port sees frames in the order the slow path
 * would emit them (OVS groups a batch by flow and may reorder across flows; flowd does not,
 * because grouping buys nothing here once programs are compiled). Stats ARE grouped per flow:
 * megaflow and rule counters are updated once per flow per batch.
 *
 * Revalidation: rulesChanged() only sets a flag. Before the next lookup (at the start of a batch,
 * and right after an upcall whose side effects changed rules), every megaflow's representative
 * key is re-translated without side effects; a megaflow whose actions or mask differ is removed
 * (its EMC entries die with its serial), the others stay. This is OVS's revalidator approach
 * rather than a match-overlap test, because a rule in table N matches the key as rewritten by
 * earlier tables, which a test against the ingress megaflow cannot see. Cost: one translation
 * per megaflow per change burst. Mid-batch, packets after the upcall whose megaflow died are
 * looked up again, so a learned rule applies from the next packet on, as in the slow path.
 * Idle megaflows (no packet for idleTimeoutMs, default 10 s) are swept at most every second.
 *
 * Upcalls are bounded per pass (maxUpcallsPerBatch), so a flood of new flows costs at most that
 * many translations per batch and hits keep flowing. Further misses of the pass wait, in arrival
 * order, in a bounded queue of missed frames (maxQueuedMisses, with their recirculation and ct
 * metadata) that runs as a pass of its own before the next batch, with a fresh upcall budget;
 * the daemon runs it on its own when no batch comes (runQueuedMisses). Only a miss that finds the
 * queue full is dropped and counted as a lost upcall (OVS's "lost" counter). Queued frames keep
 * their order behind each other: a later frame of the same flow misses too and queues behind.
 *
 * Ownership: processBatch reads and rewrites the caller's batch in place (frames may move into
 * headroom) and copies outputs into the ports' own batches; nothing keeps the input after return.
 *
 * Offload frames (GSO super-frames and checksum-partial frames, in batches with vnet metadata,
 * netdev/batch.ts) run their compiled program whole when it is offloadSafe (compile.ts), so a
 * 64 KB super-frame costs one key, one lookup and one copy. A frame whose program is SLOW
 * (conntrack, ...) is set aside in its pass and, after the pass, finished (dpif/gso.ts) into
 * complete segments that go through the datapath as a batch of their own (keys, caches,
 * conntrack per segment, exactly as when the addon segmented on receive); its port rx
 * counters count the super-frame once, its flow counters count the segments.
 */
import { DEFAULT_SLOT_BYTES, GSO_SLOT_BYTES, PacketBatch, MAX_BATCH, VNET_HDR_BYTES } from '../netdev/batch';
import { Netdev } from '../netdev/netdev';
import {
  KEY_WORDS, W_CT_MARK, W_CT_STATE, W_CT_ZONE, W_DL_DST_HI, W_DL_DST_LO, W_RECIRC_ID, W_TUN_DST,
  W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC,
} from '../packet/flowkey-layout';
import { Conntrack, CtOptions, CT_DROP } from './conntrack';
import { extractKey, OFFS_WORDS } from '../packet/flowkey';
import { isDrop, N_STOP, STOP_NAMES } from '../packet/stop';
import { compileActions, CompileEnv, Program, runProgram, SlowPath } from './compile';
import { applyDpActions, DP_DROP_NAMES, DpAction, DpDrop, DpEmit, DpHook, formatDpActions } from './dp-actions';
import { Emc, EMC_DEFAULT_INSERT_INV_PROB, EMC_DEFAULT_SLOTS } from './emc';
import { ingressHash } from './flow-hash';
import { MegaflowCache, MEGAFLOW_DEFAULT_MAX, sameMask } from './megaflow';
import { copyBytes, DpPort, PortTable } from './ports';
import { finishOffload } from './gso';
import { buildTunnelHeader, TunnelDesc, TunnelHeader } from './tunnel-header';
import { StatsRule, UpcallResult, Upcaller } from './upcall';
import { formatCache, formatPerf } from './dump';

/** What the megaflow cache holds per megaflow. Fields are set in the constructor (one shape). */
export class FlowPayload {
  id = -1;
  /** Batch number of the last batch that ran this flow, and its packets/bytes in that batch. */
  stamp = -1;
  bPackets = 0;
  bBytes = 0;
  constructor(readonly program: Program, public rules: readonly StatsRule[],
              readonly refresh: ((nowMs: number) => boolean) | null) {}
}

export interface DatapathOptions {
  readonly upcaller: Upcaller;
  readonly emcSlots?: number;
  /** Insert one EMC miss in this many (1 = always, 0 = EMC off). */
  readonly emcInsertInvProb?: number;
  readonly maxMegaflows?: number;
  readonly maxUpcallsPerBatch?: number;
  /** Misses beyond the upcall budget that wait for the next pass (default MAX_BATCH). */
  readonly maxQueuedMisses?: number;
  readonly idleTimeoutMs?: number;
  /** Clock in milliseconds (tests pass a fake one). */
  readonly nowMs?: () => number;
  /**
   * Executes `ct` actions (dpif/conntrack.ts) for programs that contain them; such programs run
   * through applyDpActions (OP_SLOW). Without a hook, ct actions are skipped as applyDpActions does.
   */
  readonly ctHook?: DpHook | null;
  /** The conntrack table, or its options (made on first use when absent; see conntrack.ts). */
  readonly conntrack?: Conntrack | CtOptions;
}

/** Recirculation passes per batch (OVS drops beyond a similar depth); further ones drop. */
export const MAX_RECIRC_DEPTH = 6;
/** Expired connections removed per batch (conntrack.ts sweep): bounds the expiry work. */
export const CT_SWEEP_PER_BATCH = 256;
const RC_WORDS = 4; // per recirculated frame: recirc_id, ct_state, ct_zone, ct_mark

const RANK_EVERY_BATCHES = 512;
const F_DROPPED = -1;
const F_UNCACHED = -2;
/** Not resolved yet: an EMC miss, or a hit whose megaflow died mid-batch. */
const F_MISS = -3;
/** Over the pass's upcall budget: copied to the miss queue, runs in a later pass. */
const F_QUEUED = -4;

export class Datapath {
  readonly ports: PortTable;
  readonly emc: Emc;
  readonly megaflows: MegaflowCache<FlowPayload>;
  readonly maxUpcallsPerBatch: number;
  readonly maxQueuedMisses: number;
  idleTimeoutMs: number;
  private readonly upcaller: Upcaller;
  private readonly nowMs: () => number;

  // Per-batch scratch, preallocated.
  private readonly keys = new Uint32Array(MAX_BATCH * KEY_WORDS);
  private readonly offs = new Uint16Array(MAX_BATCH * OFFS_WORDS);
  private readonly hash = new Uint32Array(MAX_BATCH);
  private readonly lenAtRx = new Uint32Array(MAX_BATCH);
  private readonly flowOf = new Int32Array(MAX_BATCH);
  private readonly serialOf = new Uint32Array(MAX_BATCH);
  private readonly payloadOf: (FlowPayload | null)[] = new Array<FlowPayload | null>(MAX_BATCH).fill(null);
  private readonly touchedFlows: (FlowPayload | null)[] = new Array<FlowPayload | null>(MAX_BATCH).fill(null);
  private batchNo = 0;
  private revalidatePending = false;
  /** The pending revalidation covers every megaflow (a rule changed), not just some destinations. */
  private revalidateAll = false;
  private nextSweepMs = 0;
  private readonly tunnelHeaders = new Map<number, TunnelHeader>();
  private programByActions = new WeakMap<readonly DpAction[], Program>();
  private readonly compileEnv: CompileEnv;
  private readonly slow: SlowPath;
  private slowHash = 0;
  // Conntrack and recirculation (made on the first ct action).
  private ct: Conntrack | null = null;
  private readonly ctOptions: CtOptions;
  private rcIn: PacketBatch | null = null;
  private rcOut: PacketBatch | null = null;
  private rcInMeta = new Uint32Array(MAX_BATCH * RC_WORDS);
  private rcOutMeta = new Uint32Array(MAX_BATCH * RC_WORDS);
  /** The pass in progress reads recirculated or queued frames (rcInMeta). */
  private inRecirc = false;
  // Misses over the upcall budget (made on the first one): frames and their RC_WORDS metadata,
  // double-buffered so that a queued pass can queue again.
  private qIn: PacketBatch | null = null;
  private qOut: PacketBatch | null = null;
  private qInMeta = new Uint32Array(0);
  private qOutMeta = new Uint32Array(0);
  /** Misses queued for a later pass (those that found the queue full are nLostUpcalls). */
  nQueuedMisses = 0;
  /** Set by the ct hook when the current packet was recirculated. */
  private recircedNow = false;
  private passNow = 0;
  nRecirculated = 0;
  nRecircTooDeep = 0;
  nRecircOverflow = 0;
  nCtDrops = 0;
  // Offload frames set aside for a SLOW program (slots of the pass's batch) and their pieces.
  private readonly deferred = new Int32Array(MAX_BATCH);
  private nDeferred = 0;
  private finBatch: PacketBatch | null = null;
  /** The pass in progress reads finished pieces (port rx already counted). */
  private inFinish = false;
  /** Offload frames finished for a SLOW program, and those offload.c refused. */
  nOffloadFinished = 0;
  nOffloadBad = 0;

  // Counters (pmd-perf-show).
  nPackets = 0;
  nBatches = 0;
  nEmcHits = 0;
  nMegaflowHits = 0;
  nUpcalls = 0;
  nLostUpcalls = 0;
  nUpcallErrors = 0;
  nUncached = 0;
  nRevalidations = 0;
  nRevalidatedOut = 0;
  nExpired = 0;
  busyMs = 0;
  readonly dropStop = new Float64Array(N_STOP);
  readonly dropAction = new Float64Array(DP_DROP_NAMES.length);

  constructor(opts: DatapathOptions) {
    this.upcaller = opts.upcaller;
    this.nowMs = opts.nowMs ?? Date.now;
    this.emc = new Emc(opts.emcSlots ?? EMC_DEFAULT_SLOTS, opts.emcInsertInvProb ?? EMC_DEFAULT_INSERT_INV_PROB);
    this.megaflows = new MegaflowCache<FlowPayload>(opts.maxMegaflows ?? MEGAFLOW_DEFAULT_MAX);
    this.maxUpcallsPerBatch = opts.maxUpcallsPerBatch ?? 64;
    this.maxQueuedMisses = Math.min(opts.maxQueuedMisses ?? MAX_BATCH, MAX_BATCH);
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 10000;
    this.ports = new PortTable(MAX_BATCH);
    const self = this;
    this.compileEnv = {
      ports: this.ports,
      tunnelHeader(idx: number, key: number): TunnelHeader | null { return self.tunnelHeader(idx, key); },
    };
    if (opts.conntrack instanceof Conntrack) this.ct = opts.conntrack;
    this.ctOptions = opts.conntrack instanceof Conntrack ? {} : (opts.conntrack ?? {});
    const ctHook: DpHook = opts.ctHook ?? ((a, b, s) => self.ctExec(a, b, s));
    const emit: DpEmit = (port, batch, slot) => {
      const idx = port >= 0 && port <= 0xffff ? this.ports.portIndex[port] : -1;
      if (idx < 0) { this.ports.nNoPort++; return; }
      const hdr = this.ports.list[idx].tunnel === null ? null : this.tunnelHeader(idx, batch.tunIdLo[slot]);
      this.ports.emit(idx, batch.buf, batch.off[slot], batch.len[slot], hdr, this.slowHash,
        batch.vnet, slot * VNET_HDR_BYTES);
    };
    this.slow = {
      run(actions: readonly DpAction[], batch: PacketBatch, slot: number, flowHash: number): DpDrop {
        self.slowHash = flowHash;
        return applyDpActions(actions, batch, slot, emit, ctHook);
      },
    };
  }

  // ---- ports --------------------------------------------------------------------------------

  /** Adds dp port `portNo`; `tunnel` describes it when it is a VXLAN/GRE port. */
  addPort(portNo: number, netdev: Netdev, tunnel: TunnelDesc | null = null): DpPort {
    const p = this.ports.add(portNo, netdev, tunnel);
    this.flushCaches();
    return p;
  }

  removePort(portNo: number): void {
    this.ports.remove(portNo);
    this.flushCaches();
  }

  /** Memoised header for tunnel port index `idx` and VNI/key `key`. */
  private tunnelHeader(idx: number, key: number): TunnelHeader | null {
    const p = this.ports.list[idx];
    if (p === undefined || p.tunnel === null) return null;
    const k = p.portNo * 4294967296 + (key >>> 0);
    let h = this.tunnelHeaders.get(k);
    if (h === undefined) {
      h = buildTunnelHeader(p.tunnel, key);
      this.tunnelHeaders.set(k, h);
    }
    return h;
  }

  // ---- control ------------------------------------------------------------------------------

  /** Rules changed: revalidate every megaflow before the next lookup. */
  rulesChanged(): void {
    this.revalidatePending = true;
    this.revalidateAll = true;
  }

  /**
   * Decisions for some destination MACs changed (NORMAL learned, moved or aged out a MAC):
   * before the next lookup, re-translate only the megaflows whose dl_dst the upcaller names
   * (Upcaller.takeChangedDestinations). A flood of new source MACs then costs one translation
   * per megaflow to those MACs, not one per megaflow per learned MAC.
   */
  destinationsChanged(): void {
    this.revalidatePending = true;
  }

  /** Drops every cached decision. */
  flushCaches(): void {
    this.megaflows.clear();
    this.emc.flush();
    this.tunnelHeaders.clear();
    this.programByActions = new WeakMap<readonly DpAction[], Program>();
  }

  /**
   * Re-translates the representative key of every megaflow (after a rule change), or of those
   * to the destinations the upcaller names (after MAC-table changes only); removes those whose
   * mask or actions changed and refreshes the rule list of the others. Returns how many were
   * removed.
   */
  revalidate(): number {
    this.revalidatePending = false;
    const all = this.revalidateAll;
    this.revalidateAll = false;
    const changed = this.upcaller.takeChangedDestinations === undefined ? null : this.upcaller.takeChangedDestinations();
    const dsts = all || changed === null ? null : new Set(changed);
    if (dsts !== null && dsts.size === 0) return 0;
    this.nRevalidations++;
    const mf = this.megaflows;
    const rep = mf.repKey;
    let removed = 0;
    const ids = mf.liveIds();
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      if (dsts !== null) {
        const b = id * KEY_WORDS;
        if (!dsts.has((rep[b + W_DL_DST_HI] & 0xffff) * 4294967296 + rep[b + W_DL_DST_LO])) continue;
      }
      const pl = mf.payload[id] as FlowPayload;
      const r = this.upcaller.revalidate(mf.repKey, id * KEY_WORDS);
      if (r === null || !r.cacheable || !sameMask(r.mask, mf.subtables[mf.subtableOf[id]].mask) ||
          formatDpActions(r.actions) !== pl.program.text) {
        mf.remove(id);
        removed++;
      } else {
        pl.rules = r.rules;
      }
    }
    this.nRevalidatedOut += removed;
    return removed;
  }

  /** Removes megaflows idle for more than idleTimeoutMs. */
  expire(nowMs: number): number {
    const mf = this.megaflows;
    const ids = mf.liveIds();
    let n = 0;
    for (let k = 0; k < ids.length; k++) {
      if (nowMs - mf.usedMs[ids[k]] > this.idleTimeoutMs) { mf.remove(ids[k]); n++; }
    }
    this.nExpired += n;
    return n;
  }

  // ---- the batch ----------------------------------------------------------------------------

  /**
   * Runs frames [0, `count`) of `batch` through the datapath and sends what they produce.
   * Returns the number of frames that went out at least once.
   */
  processBatch(batch: PacketBatch, count: number): number {
    const t0 = performance.now();
    const now = this.nowMs();
    if (this.revalidatePending) this.revalidate();
    if (now >= this.nextSweepMs) {
      this.expire(now);
      this.nextSweepMs = now + Math.min(1000, this.idleTimeoutMs / 2);
    }
    if (this.batchNo % RANK_EVERY_BATCHES === 0) this.megaflows.rank();
    const n = count > MAX_BATCH ? MAX_BATCH : count;
    this.passNow = now;
    let nSent = this.qOut !== null && this.qOut.count > 0 ? this.runQueued(now) : 0;
    this.nDeferred = 0;
    nSent += this.runPass(batch, n, now);
    if (this.rcOut !== null && this.rcOut.count > 0) nSent += this.recirculate(now);
    if (this.nDeferred > 0) nSent += this.runDeferred(batch, now);
    if (this.ct !== null) this.ct.sweep(now, CT_SWEEP_PER_BATCH);
    this.nPackets += n;
    this.nBatches++;
    this.busyMs += performance.now() - t0;
    return nSent;
  }

  /** Frames waiting in the miss queue for their upcall. */
  get queuedMisses(): number {
    return this.qOut === null ? 0 : this.qOut.count;
  }

  /**
   * Runs the queued misses now, as processBatch does before a batch (for the daemon when no
   * batch comes). Returns the number of frames that went out.
   */
  runQueuedMisses(): number {
    if (this.queuedMisses === 0) return 0;
    const t0 = performance.now();
    const now = this.nowMs();
    if (this.revalidatePending) this.revalidate();
    this.passNow = now;
    const nSent = this.runQueued(now);
    this.busyMs += performance.now() - t0;
    return nSent;
  }

  /**
   * One pass over the queued misses (swapped out first, so this pass's own overflow queues for
   * the next), then what they recirculate and their deferred offload frames.
   */
  private runQueued(now: number): number {
    const inb = this.qOut as PacketBatch;
    this.qOut = this.qIn;
    this.qIn = inb;
    const m = this.qOutMeta; this.qOutMeta = this.qInMeta; this.qInMeta = m;
    (this.qOut as PacketBatch).count = 0;
    const rcMeta = this.rcInMeta;
    this.rcInMeta = this.qInMeta;
    this.nDeferred = 0;
    this.inRecirc = true;
    let nSent = this.runPass(inb, inb.count, now);
    this.inRecirc = false;
    this.rcInMeta = rcMeta;
    if (this.rcOut !== null && this.rcOut.count > 0) nSent += this.recirculate(now);
    if (this.nDeferred > 0) nSent += this.runDeferred(inb, now);
    inb.count = 0;
    return nSent;
  }

  /**
   * Copies frame `i` of `batch` with its tunnel and offload metadata and its recirculation and
   * ct words from the key at `base` to the miss queue. Returns false when the queue is full.
   */
  private queueMiss(batch: PacketBatch, i: number, base: number): boolean {
    if (this.qOut === null) {
      // Slots for super-frames with their virtio headers: a queued miss can be any frame.
      this.qIn = new PacketBatch(this.maxQueuedMisses, GSO_SLOT_BYTES, true);
      this.qOut = new PacketBatch(this.maxQueuedMisses, GSO_SLOT_BYTES, true);
      this.qInMeta = new Uint32Array(this.maxQueuedMisses * RC_WORDS);
      this.qOutMeta = new Uint32Array(this.maxQueuedMisses * RC_WORDS);
    }
    const q = this.qOut as PacketBatch;
    const len = batch.len[i];
    if (q.count >= q.capacity || len > q.maxFrameBytes) return false;
    const j = q.count++;
    q.resetSlot(j);
    q.buf.set(batch.buf.subarray(batch.off[i], batch.off[i] + len), q.off[j]);
    q.len[j] = len;
    q.inPort[j] = batch.inPort[i];
    q.tunIdHi[j] = batch.tunIdHi[i];
    q.tunIdLo[j] = batch.tunIdLo[i];
    q.tunSrc[j] = batch.tunSrc[i];
    q.tunDst[j] = batch.tunDst[i];
    if (batch.vnet !== null && q.vnet !== null) {
      q.vnet.set(batch.vnet.subarray(i * VNET_HDR_BYTES, (i + 1) * VNET_HDR_BYTES), j * VNET_HDR_BYTES);
    }
    const keys = this.keys, mo = j * RC_WORDS, meta = this.qOutMeta;
    meta[mo] = keys[base + W_RECIRC_ID];
    meta[mo + 1] = keys[base + W_CT_STATE];
    meta[mo + 2] = keys[base + W_CT_ZONE];
    meta[mo + 3] = keys[base + W_CT_MARK];
    return true;
  }

  /**
   * Finishes each offload frame set aside in the pass over `batch` and runs its pieces as a
   * batch of their own (then what they recirculate).
   */
  private runDeferred(batch: PacketBatch, now: number): number {
    const nd = this.nDeferred;
    this.nDeferred = 0;
    if (this.finBatch === null) this.finBatch = new PacketBatch(MAX_BATCH);
    const fin = this.finBatch;
    let nSent = 0;
    for (let k = 0; k < nd; k++) {
      const i = this.deferred[k];
      const m = finishOffload(batch.buf, batch.off[i], batch.len[i], batch.vnet as Uint8Array, i * VNET_HDR_BYTES, fin);
      if (m <= 0) { this.nOffloadBad++; continue; }
      this.nOffloadFinished++;
      for (let j = 0; j < m; j++) {
        fin.inPort[j] = batch.inPort[i];
        fin.tunIdHi[j] = batch.tunIdHi[i];
        fin.tunIdLo[j] = batch.tunIdLo[i];
        fin.tunSrc[j] = batch.tunSrc[i];
        fin.tunDst[j] = batch.tunDst[i];
      }
      this.inFinish = true;
      nSent += this.runPass(fin, m, now);
      this.inFinish = false;
      if (this.rcOut !== null && this.rcOut.count > 0) nSent += this.recirculate(now);
    }
    return nSent;
  }

  /** Runs the recirculated frames (and what they recirculate) through the caches again. */
  private recirculate(now: number): number {
    let nSent = 0;
    for (let depth = 0; (this.rcOut as PacketBatch).count > 0; depth++) {
      const out = this.rcOut as PacketBatch;
      if (depth >= MAX_RECIRC_DEPTH) { this.nRecircTooDeep += out.count; out.count = 0; break; }
      const inb = out;
      this.rcOut = this.rcIn;
      this.rcIn = inb;
      const m = this.rcOutMeta; this.rcOutMeta = this.rcInMeta; this.rcInMeta = m;
      (this.rcOut as PacketBatch).count = 0;
      this.inRecirc = true;
      nSent += this.runPass(inb, inb.count, now);
      this.inRecirc = false;
      inb.count = 0;
    }
    return nSent;
  }

  /**
   * One pass over frames [0, n) of `batch`: keys, caches, upcalls, programs, counters. A pass
   * over recirculated frames (inRecirc) sets recirc_id and the ct fields from rcInMeta, skips
   * the EMC (its hash covers the ingress words only) and the rx counters.
   */
  private runPass(batch: PacketBatch, n: number, now: number): number {
    const recirc = this.inRecirc;
    const meta = this.rcInMeta;
    const bn = ++this.batchNo;
    this.ports.batchNo = bn;
    this.ports.setInput(batch.buf);
    const keys = this.keys;
    const emc = this.emc;
    const mf = this.megaflows;
    const ports = this.ports;
    const serials = mf.serial;
    let nMiss = 0;
    let nEmc = 0;
    let nRefresh = 0;

    // 1. keys and the exact-match cache.
    for (let i = 0; i < n; i++) {
      const base = i * KEY_WORDS;
      const off = batch.off[i];
      const len = batch.len[i];
      const inPort = batch.inPort[i];
      this.lenAtRx[i] = len;
      const pi = recirc || this.inFinish ? -1 : ports.portIndex[inPort & 0xffff];
      if (pi >= 0) { const p = ports.list[pi]; p.rxPackets++; p.rxBytes += len; }
      const stop = extractKey(batch.buf, off, len, inPort, keys, base, this.offs, i * OFFS_WORDS);
      if (isDrop(stop)) {
        this.dropStop[stop]++;
        this.flowOf[i] = F_DROPPED;
        continue;
      }
      keys[base + W_TUN_ID_HI] = batch.tunIdHi[i];
      keys[base + W_TUN_ID_LO] = batch.tunIdLo[i];
      keys[base + W_TUN_SRC] = batch.tunSrc[i];
      keys[base + W_TUN_DST] = batch.tunDst[i];
      const h = ingressHash(keys, base);
      this.hash[i] = h;
      if (recirc) {
        const mo = i * RC_WORDS;
        keys[base + W_RECIRC_ID] = meta[mo];
        keys[base + W_CT_STATE] = meta[mo + 1];
        keys[base + W_CT_ZONE] = meta[mo + 2];
        keys[base + W_CT_MARK] = meta[mo + 3];
        this.flowOf[i] = F_MISS;
        nMiss++;
        continue;
      }
      const f = emc.lookup(keys, base, h, serials);
      if (f >= 0) {
        this.flowOf[i] = f;
        this.serialOf[i] = serials[f];
        const pl = mf.payload[f] as FlowPayload;
        this.payloadOf[i] = pl;
        if (pl.refresh !== null) nRefresh++;
        nEmc++;
      } else {
        this.flowOf[i] = F_MISS;
        nMiss++;
      }
    }
    this.nEmcHits += nEmc;

    // 2. In arrival order: megaflow lookup and upcalls for the misses, cached side effects
    //    for the hits that have them. A rule or MAC-table change revalidates at once, and
    //    later packets whose megaflow died become misses again.
    if (nMiss + nRefresh > 0) {
      let nUp = 0;
      for (let i = 0; i < n; i++) {
        const f = this.flowOf[i];
        if (f === F_MISS) {
          nUp = this.resolveMiss(batch, i, nUp, now);
        } else if (f >= 0) {
          const pl = this.payloadOf[i] as FlowPayload;
          if (pl.refresh !== null && pl.refresh(now)) this.revalidatePending = true;
        }
        if (this.revalidatePending) {
          this.revalidate();
          const serials = mf.serial;
          for (let j = i + 1; j < n; j++) {
            const g = this.flowOf[j];
            if (g >= 0 && serials[g] !== this.serialOf[j]) this.flowOf[j] = F_MISS;
          }
        }
      }
    }

    // 3. programs in arrival order; per-flow batch stats.
    let nSent = 0;
    let nTouched = 0;
    const touched = this.touchedFlows;
    for (let i = 0; i < n; i++) {
      const f = this.flowOf[i];
      if (f === F_DROPPED || f === F_QUEUED) continue;
      const pl = this.payloadOf[i] as FlowPayload;
      if (!pl.program.offloadSafe && batch.hasOffload(i)) { this.deferred[this.nDeferred++] = i; continue; }
      if (pl.stamp !== bn) {
        pl.stamp = bn; pl.bPackets = 0; pl.bBytes = 0;
        touched[nTouched++] = pl;
      }
      pl.bPackets++;
      pl.bBytes += this.lenAtRx[i];
      this.recircedNow = false;
      const r = runProgram(pl.program, batch, i, this.hash[i], ports, this.slow);
      if (r === DpDrop.None) nSent++;
      else if (!this.recircedNow) this.dropAction[r]++;
    }
    ports.flushTouched();

    // 4. counters, once per flow.
    for (let k = 0; k < nTouched; k++) {
      const pl = touched[k] as FlowPayload;
      touched[k] = null;
      const id = pl.id;
      if (id >= 0 && mf.payload[id] === pl) {
        mf.nPackets[id] += pl.bPackets;
        mf.nBytes[id] += pl.bBytes;
        mf.usedMs[id] = now;
      }
      const rules = pl.rules;
      for (let q = 0; q < rules.length; q++) {
        const rule = rules[q];
        rule.nPackets += pl.bPackets;
        rule.nBytes += pl.bBytes;
        rule.lastUsedMs = now;
      }
    }
    for (let i = 0; i < n; i++) this.payloadOf[i] = null;
    return nSent;
  }

  // ---- conntrack ----------------------------------------------------------------------------

  /** The conntrack table if a ct action (or the caller) made one, else null; makes none. */
  conntrackIfAny(): Conntrack | null {
    return this.ct;
  }

  /** The conntrack table (made on first use). */
  get conntrack(): Conntrack {
    if (this.ct === null) this.ct = new Conntrack(this.ctOptions);
    return this.ct;
  }

  /**
   * The DpHook for ct actions. Without recirculation, conntrack runs on the frame in place
   * (a CT_DROP stops the list). With it, a copy goes through conntrack into the recirculation
   * batch with its ct fields; the original goes on (OVS's fork). Copies beyond a batch's worth
   * are dropped and counted (nRecircOverflow).
   */
  private ctExec(a: DpAction, batch: PacketBatch, slot: number): boolean {
    if (a.kind !== 'ct') return true;
    const ct = this.conntrack;
    const nat = a.nat ?? null;
    const mv = a.markValue ?? 0, mm = a.markMask ?? 0;
    // Issue 16: an offload frame (super-frame, partial checksum) is tracked and NATed whole.
    const partial = batch.csumPartial(slot);
    if (a.recircId === 0) {
      const st = ct.execute(batch.buf, batch.off[slot], batch.len[slot], a.zone, a.commit, nat, mv, mm, this.passNow, partial);
      if (st === CT_DROP) { this.nCtDrops++; return false; }
      return true;
    }
    if (this.rcOut === null) {
      // Batches with offload metadata recirculate super-frames: 64 KB slots then.
      const slotBytes = batch.vnet !== null ? GSO_SLOT_BYTES : DEFAULT_SLOT_BYTES;
      this.rcIn = new PacketBatch(MAX_BATCH, slotBytes, batch.vnet !== null);
      this.rcOut = new PacketBatch(MAX_BATCH, slotBytes, batch.vnet !== null);
    }
    const out = this.rcOut;
    const len = batch.len[slot];
    if (out.count >= out.capacity || len > out.maxFrameBytes) { this.nRecircOverflow++; return true; }
    const j = out.count;
    out.resetSlot(j);
    const src = batch.buf, dst = out.buf, so = batch.off[slot], d0 = out.off[j];
    copyBytes(dst, d0, src, so, len);
    if (out.vnet !== null && batch.vnet !== null) out.vnet.set(batch.vnet.subarray(slot * VNET_HDR_BYTES, (slot + 1) * VNET_HDR_BYTES), j * VNET_HDR_BYTES);
    out.len[j] = len;
    out.inPort[j] = batch.inPort[slot];
    out.tunIdHi[j] = batch.tunIdHi[slot];
    out.tunIdLo[j] = batch.tunIdLo[slot];
    out.tunSrc[j] = batch.tunSrc[slot];
    out.tunDst[j] = batch.tunDst[slot];
    const st = ct.execute(dst, d0, len, a.zone, a.commit, nat, mv, mm, this.passNow, partial);
    if (st === CT_DROP) { this.nCtDrops++; return true; }
    out.count = j + 1;
    const mo = j * RC_WORDS, m = this.rcOutMeta;
    m[mo] = a.recircId; m[mo + 1] = st; m[mo + 2] = a.zone & 0xffff; m[mo + 3] = ct.mark;
    this.nRecirculated++;
    this.recircedNow = true;
    return true;
  }

  /** Megaflow lookup, else upcall (within the bound), for packet `i`. Returns upcalls used. */
  private resolveMiss(batch: PacketBatch, i: number, nUp: number, now: number): number {
    const mf = this.megaflows;
    const keys = this.keys;
    const base = i * KEY_WORDS;
    const f = mf.lookup(keys, base);
    if (f >= 0) {
      this.nMegaflowHits++;
      this.setFlow(i, f);
      if (!this.inRecirc) this.emc.maybeInsert(keys, base, this.hash[i], f, mf.serial);
      const pl = mf.payload[f] as FlowPayload;
      if (pl.refresh !== null && pl.refresh(now)) this.revalidatePending = true;
      return nUp;
    }
    if (nUp >= this.maxUpcallsPerBatch) {
      if (this.queueMiss(batch, i, base)) {
        this.nQueuedMisses++;
        this.flowOf[i] = F_QUEUED;
      } else {
        this.nLostUpcalls++;
        this.flowOf[i] = F_DROPPED;
      }
      return nUp;
    }
    this.nUpcalls++;
    const r = this.upcaller.upcall(keys, base, batch, i);
    if (r === null) {
      this.nUpcallErrors++;
      this.flowOf[i] = F_DROPPED;
      return nUp + 1;
    }
    const pl = this.makePayload(r);
    if (r.cacheable) {
      const id = mf.install(keys, base, r.mask, pl, now);
      if (id >= 0) {
        pl.id = id;
        this.setFlow(i, id);
        if (!this.inRecirc) this.emc.maybeInsert(keys, base, this.hash[i], id, mf.serial);
        return nUp + 1;
      }
    }
    this.nUncached++;
    this.flowOf[i] = F_UNCACHED;
    this.payloadOf[i] = pl;
    return nUp + 1;
  }

  private setFlow(i: number, f: number): void {
    this.flowOf[i] = f;
    this.serialOf[i] = this.megaflows.serial[f];
    this.payloadOf[i] = this.megaflows.payload[f];
  }

  private makePayload(r: UpcallResult): FlowPayload {
    return new FlowPayload(this.program(r.actions), r.rules, r.refresh ?? null);
  }

  /**
   * The compiled program for `actions`, shared by every megaflow whose upcall returned the same
   * list object (programs are immutable; the memo is dropped with the caches when ports change).
   * Equal lists in different objects compile separately: deduplicating by text cost more per
   * upcall than the small program it saves.
   */
  private program(actions: readonly DpAction[]): Program {
    let p = this.programByActions.get(actions);
    if (p === undefined) {
      p = compileActions(actions, this.compileEnv);
      this.programByActions.set(actions, p);
    }
    return p;
  }

  // ---- dumps --------------------------------------------------------------------------------

  /** Megaflows (dpctl/dump-flows shape), then the exact entries. */
  dumpCache(): string {
    return formatCache(this, this.nowMs());
  }

  /** Counters in the shape of dpif-netdev/pmd-perf-show. */
  perfStats(): string {
    return formatPerf(this);
  }

  /** Drop counters by reason name (non-zero only). */
  drops(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let s = 0; s < N_STOP; s++) if (this.dropStop[s] > 0) out[STOP_NAMES[s]] = this.dropStop[s];
    for (let d = 1; d < DP_DROP_NAMES.length; d++) if (this.dropAction[d] > 0) out[`action_${DP_DROP_NAMES[d]}`] = this.dropAction[d];
    if (this.nLostUpcalls > 0) out.lost_upcall = this.nLostUpcalls;
    if (this.nUpcallErrors > 0) out.upcall_error = this.nUpcallErrors;
    if (this.ports.nNoPort > 0) out.output_no_port = this.ports.nNoPort;
    return out;
  }
}


