/**
 * The datapath: a driver over batch queues, running each batch through the stages of
 * dpif/stages.ts over one BatchState (dpif/batch-state.ts).
 *
 * One frame, start to end (a TCP segment from a VM through ct(zone=7,nat) and SNAT):
 *  1. processBatch(batch): the frame is slot i of the received batch. selectAll, starting the
 *     input pass, credits its port's rx counters.
 *  2. extract: packet/flowkey.ts parses it once into key i (in_port, MACs, IPs, ports, ...) and
 *     the header offsets (extractCommon, one loop over the batch, takes the Ethernet/IPv4/TCP-UDP
 *     frames, with their in_port and tunnel metadata, and marks a frame whose key equals the one
 *     before it, and writes the zero ct words and hashes[i] = cacheHash[i] = the ingress hash,
 *     once per run of equal keys; extractKeyOver each other one). selectAll set depth[i] = 0.
 *     The next segments of our TCP stream in the batch parse the same (offsets included): they
 *     become the members of our frame's run (BatchState.runLen, extractCommonRuns), and none of
 *     their key words or hashes is written; the stages below take the run by our frame.
 *  3. emcLookup: exact-match cache by cacheHash[i] and the whole key (a frame with the hash and
 *     key of the last hit takes its flow without a probe, and notes in state.sameKey that its key
 *     equals the frame's before it). A miss goes to state.miss.
 *  4. dpclsLookup: the megaflow cache, each subtable searched once for all misses of the batch.
 *  5. upcall (here, below): what is still missing is translated by ofproto (the Upcaller), in
 *     arrival order and within a budget; its actions are compiled once per distinct list
 *     (program-cache.ts interns programs by an action digest) and installed in both caches.
 *     Over the budget, the frame waits in the miss queue.
 *  6. execute: the flow's program runs on the frame (a `controller` action copies it into the
 *     bounded packet-in queue, packetIns, which the OpenFlow layer drains on a later turn). Its
 *     ct step (OP_CT with a recirc id) leaves the frame in its slot with the ct action pending
 *     (state.recirc, state.ctPending): recirculation in place. A program of MAC/TTL/VLAN
 *     rewrites ending in that ct step (Program.straight; here ct(zone=7,nat),recirc(1) alone)
 *     runs over the run of consecutive frames with its program (compile.ts runStraight), which
 *     recirculates them in place together, our run whole (stages.ts keepRunInPlace: our frame
 *     with the run's length, its members after it, nothing else of theirs written). Only a program that rewrites the
 *     frame after its ct step forks a copy into the recirculation queue instead (compile.ts
 *     markInPlace), and then the whole pass copies (spillInPlace), keeping arrival order.
 *  7. flush: one send per output port; stats: megaflow and rule counters once per flow.
 *  8. runRecircPass runs the frames left in place as a pass over the same batch: no parse (the
 *     key, offsets and length of step 2 are still in their columns, kept in step by the program
 *     through a pop_vlan, push_vlan, set_eth or set_ipv4 before the ct step; a frame whose key
 *     another rewrite left stale, e.g. a set_l4, is parsed again: reparse); the conntrack stage
 *     executes each frame's ct step (lookup, state, NAT rewrite) for the whole batch from the
 *     key and offsets, writes recirc_id, ct_state, ct_zone and ct_mark into the key and
 *     refreshes the key words NAT rewrote, and hashes the finished key (cacheHash mixes in
 *     recirc id and depth); then
 *     emcLookup, dpclsLookup, upcall, execute (now "output to the outside port" on the NATed
 *     frame), flush, stats, as in 3-7. The next segments of the same TCP stream in the batch
 *     are our run's members (or, had they come as frames of their own, have the same key as our
 *     frame: state.sameKey, kept as step 6 recirculated them): conntrack answers the run of them
 *     at once from its memo of the last connection (Conntrack.againRun:
 *     per frame its lengths checked and the NAT worked out for our frame, ct-nat.ts NatPlan,
 *     applied to its bytes) and, as it wrote the same words, they keep the same key: they
 *     become the members of our frame's run (BatchState.runLen), whose columns nobody writes;
 *     emcLookup, the upcall stage and execute look at our frame alone and send the run whole
 *     (a stage that must see a member on its own writes its columns first: stages.ts
 *     expandRun). What that pass recirculates runs next, up to
 *     MAX_RECIRC_DEPTH. Copies in the recirculation queue run the same way, as a pass of their
 *     own over the queue's batch, parsed by extract.
 *  9. Offload frames set aside by execute (their program must see complete segments), in any
 *     pass at any depth, are finished into segments (dpif/gso.ts), which run as a pass of their
 *     own (2-8) that resumes with the frame's recirc id, ct words and depth.
 *
 * Queues the driver runs, in this order per processBatch: the miss queue (misses of earlier
 * passes over the upcall budget), the input batch, after every pass what it recirculated in
 * place (depth after depth), then the recirculation queue to its end, then that pass's finished
 * offload pieces. runQueuedMisses() runs the miss queue alone
 * (the daemon calls it when no batch comes).
 *
 * Called by: control/switch.ts (processBatch per received batch, ports, flushCaches);
 * control/daemon.ts (runQueuedMisses when idle) and cli/replay.ts (drains the miss queue at the end);
 * dpif/dump.ts, control/commands.ts and control/metrics.ts read its caches and counters. ofproto (through the daemon) calls rulesChanged() on every rule
 * add/modify/delete/learn/timeout and on NORMAL MAC-table changes.
 *
 * Order kept: frames run in arrival order within a pass, so each port sees frames in the order
 * the slow path would emit them. Stats are grouped per flow: megaflow and rule counters are
 * updated once per flow per pass, and only here (the upcaller credits none).
 *
 * Revalidation: rulesChanged() only sets a flag. Before the next lookup (at the start of a batch,
 * and in the upcall stage right after a side effect changed rules), every megaflow's
 * representative key is re-translated without side effects; a megaflow whose mask or compiled
 * program differs (compile.ts sameProgram) is removed (its EMC entries die with its serial);
 * one whose rules hit changed gets a new payload, so each frame credits the rules of its own
 * translation.
 * Later frames of the pass whose megaflow died are looked up again, so a learned rule applies
 * from the next frame on, as in the slow path. Idle megaflows (no packet for idleTimeoutMs,
 * default 10 s) are swept at most every second.
 *
 * Upcalls are bounded per pass (maxUpcallsPerBatch), so a flood of new flows costs at most that
 * many translations per batch and hits keep flowing. Further misses of the pass wait, in arrival
 * order, in a bounded queue (maxQueuedMisses, with their recirculation and ct words) that runs
 * as a pass of its own before the next batch, with a fresh budget. Only a miss that finds the
 * queue full is dropped and counted as a lost upcall (OVS's "lost" counter).
 *
 * Ownership: processBatch reads and rewrites the caller's batch in place (frames may move into
 * headroom; conntrack NATs frames recirculated in place) and copies outputs into the ports' own batches and queued frames into its queues;
 * nothing keeps the input after return.
 */
import { DEFAULT_SLOT_BYTES, GSO_SLOT_BYTES, PacketBatch, MAX_BATCH, VNET_HDR_BYTES } from '../netdev/batch';
import { Netdev } from '../netdev/netdev';
import { W } from '../packet/flowkey-layout';
import { N_STOP, STOP_NAMES } from '../packet/stop';
import { BatchState, FlowPayload, FrameQueue, Rc } from './batch-state';
import {
  CT_FORK_COPY, CT_FORK_IN_PLACE_REPARSE, CT_GO_ON, CT_QUEUED, CT_STOP, RECIRCULATED, RunCtx, sameProgram, SENT_AND_RECIRCULATED,
} from './compile';
import { Conntrack, CtOptions, CT_DROP } from './conntrack';
import { applyDpActions, DP_DROP_NAMES, DpAction, DpCt, DpDrop, DpEmit, DpHook } from './dp-actions';
import { Emc, EMC_DEFAULT_INSERT_INV_PROB, EMC_DEFAULT_SLOTS, EmcLookupPolicy } from './emc';
import { MegaflowCache, MEGAFLOW_DEFAULT_MAX, sameMask } from './megaflow';
import { DpPort, PortTable } from './ports';
import { finishOffload } from './gso';
import { PacketInQueue } from './packet-in-queue';
import { ProgramCache } from './program-cache';
import {
  conntrack, countRxDrop, dpclsLookup, emcLookup, execute, expandAllRuns, extract, flush, hash, keepInPlace,
  keepRunInPlace, selectAll, reparse, selectRecirculated, stats, takeQueuedCt,
} from './stages';
import { N_RX_DROP, RXD_ACTION0, RXD_LOST_UPCALL, RXD_OFFLOAD_BAD, RXD_UPCALL_ERROR } from './rx-drops';
import { buildTunnelHeader, TunnelDesc, TunnelHeader } from './tunnel-header';
import { StatsRule, UpcallResult, Upcaller } from './upcall';
import { countersAsDoubles } from '../counters';

/**
 * The largest pass number (batchNo). Pass numbers stay small integers: one past 2^31 - 1 would
 * make every field that holds one (Datapath.batchNo, PortTable.batchNo, DpPort.stamp,
 * FlowPayload.stamp and deferPass) a double and deoptimize the stages that read them (a
 * 4.5 ms batch in scenario (g); src/counters.ts says why), about ten hours into a daemon's life
 * at 1 Mpps. So numbering starts again (Datapath.clearPassStamps); a test sets it.
 */
const MAX_PASS_NO = 0x3fffffff;
// Exported apart from its declaration, so that startPass reads the local const: TypeScript's
// CommonJS output reads an exported const as exports.MAX_PASS_NO, which cost (a) 1.9 %.
export { MAX_PASS_NO };


export interface DatapathOptions {
  readonly upcaller: Upcaller;
  readonly emcSlots?: number;
  /** Insert one EMC miss in this many (1 = always, 0 = EMC off). */
  readonly emcInsertInvProb?: number;
  /** When the EMC is looked up (emc.ts, "Lookup policy"); EMC_DEFAULT_POLICY when absent. */
  readonly emcLookup?: EmcLookupPolicy;
  readonly maxMegaflows?: number;
  readonly maxUpcallsPerBatch?: number;
  /** Misses beyond the upcall budget that wait for the next pass (default MAX_BATCH). */
  readonly maxQueuedMisses?: number;
  readonly idleTimeoutMs?: number;
  /** Clock in milliseconds (tests pass a fake one). */
  readonly nowMs?: () => number;
  /** The conntrack table, or its options (made on first use when absent; see conntrack.ts). */
  readonly conntrack?: Conntrack | CtOptions;
}

/** Recirculations per frame (OVS drops beyond a similar depth); further ones drop. */
export const MAX_RECIRC_DEPTH = 6;
/** Expired connections removed per batch (conntrack.ts sweep): bounds the expiry work. */
export const CT_SWEEP_PER_BATCH = 256;

const RANK_EVERY_BATCHES = 512;
/**
 * processBatch times every batch of fewer than BUSY_EXACT_BELOW frames, and one in 32 of the
 * larger ones, the first included (see busyMs), so a full batch reads the clock 1.06 times on
 * average (its `now`, plus the sample's two reads). A clock read costs 55 ns on this VM when
 * quiet (kvm-clock) and 230-400 ns under load; one in 8 measured (a) about 2 % slower
 * (in-process A/B, 3 x 15 interleaved slices, medians 3.32x -> 3.25x). Small batches come when
 * traffic is light, where two clock reads are small next to the batch's own fixed cost. Sampling
 * them too made a lab's first batch (cold code, upcalls) stand for the 31 batches after it:
 * `flowctl stats` printed 9 ms per packet for a node that had been busy 0.3 s in a minute.
 */
const BUSY_SAMPLE_MASK = 31;
const BUSY_EXACT_BELOW = 8;

export class Datapath {
  readonly ports: PortTable;
  readonly emc: Emc;
  readonly megaflows: MegaflowCache<FlowPayload>;
  readonly maxUpcallsPerBatch: number;
  readonly maxQueuedMisses: number;
  idleTimeoutMs: number;
  readonly nowMs: () => number;
  private readonly upcaller: Upcaller;

  /** The one batch state every pass runs over. */
  private readonly st = new BatchState();
  private batchNo = 0;
  private revalidatePending = false;
  /** The pending revalidation covers every megaflow (a rule changed), not just some destinations. */
  private revalidateAll = false;
  private nextSweepMs = 0;
  private readonly tunnelHeaders = new Map<number, TunnelHeader>();
  /** Compiled programs, shared by every megaflow whose upcall returned an equal action list. */
  readonly programs: ProgramCache;
  private readonly ctx: RunCtx;
  // Conntrack (made on the first ct step) and the recirculation queue, double-buffered: the
  // pass over one half queues into the other.
  private ct: Conntrack | null = null;
  private readonly ctOptions: CtOptions;
  private readonly finDrops = new Float64Array(N_RX_DROP);
  private rcRun: FrameQueue | null = null;
  /** The running pass recirculates by copies only (it had to copy one; see spillInPlace). */
  private passCopies = false;
  private rcNext: FrameQueue | null = null;
  // Misses over the upcall budget (made on the first one), double-buffered likewise.
  private qRun: FrameQueue | null = null;
  private qNext: FrameQueue | null = null;
  // Offload frames set aside by a pass (copied out of the batch state before recirculation
  // reuses it) and the batch their finished pieces run in.
  private readonly deferred = new Uint16Array(MAX_BATCH);
  /** The pipeline words (Rc.WORDS each) of the frames in `deferred`, read when set aside. */
  private readonly deferredRc = new Uint32Array(MAX_BATCH * Rc.WORDS);
  /** Offload frames set aside by passes over queue batches, waiting to be finished (runAll). */
  private setAside: FrameQueue | null = null;
  /** The pieces of one finished offload frame, with that frame's pipeline words. */
  private pieces: FrameQueue | null = null;
  /** Misses queued for a later pass (those that found the queue full are nLostUpcalls). */
  nQueuedMisses = 0;
  nRecirculated = 0;
  nRecircTooDeep = 0;
  nRecircOverflow = 0;
  nCtDrops = 0;
  /** Offload frames finished for a program that needs segments, and those offload.c refused. */
  nOffloadFinished = 0;
  /** Frames `controller` actions sent up, waiting for the OpenFlow layer (bounded per batch). */
  readonly packetIns = new PacketInQueue();
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
  /**
   * Time spent in processBatch and runQueuedMisses (ms; `flowctl stats` us/it and ns/pkt). A
   * batch of BUSY_EXACT_BELOW frames or more is timed one in BUSY_SAMPLE_MASK + 1 (two reads cost
   * about 8 % of a 32-frame batch of hits when done for every batch), and the untimed ones are
   * credited the last timed one's time per packet; smaller batches are always timed and never
   * set that rate. So busyMs never exceeds the wall time of the calls by more than the sampling
   * error of full batches.
   */
  busyMs = 0;
  private busyMsPerPacket = 0;
  /** Batches of BUSY_EXACT_BELOW frames or more so far (the sampling's count). */
  private nBigBatches = 0;
  readonly dropStop = new Float64Array(N_STOP);
  readonly dropAction = new Float64Array(DP_DROP_NAMES.length);

  constructor(opts: DatapathOptions) {
    countersAsDoubles<Datapath>(this, 'nPackets', 'nBatches', 'nEmcHits', 'nMegaflowHits', 'nUpcalls', 'nUncached', 'nRecirculated',
      'nQueuedMisses', 'nOffloadFinished');
    this.upcaller = opts.upcaller;
    this.nowMs = opts.nowMs ?? Date.now;
    this.emc = new Emc(opts.emcSlots ?? EMC_DEFAULT_SLOTS, opts.emcInsertInvProb ?? EMC_DEFAULT_INSERT_INV_PROB);
    if (opts.emcLookup !== undefined) this.emc.lookupPolicy = opts.emcLookup;
    this.megaflows = new MegaflowCache<FlowPayload>(opts.maxMegaflows ?? MEGAFLOW_DEFAULT_MAX);
    this.maxUpcallsPerBatch = opts.maxUpcallsPerBatch ?? 64;
    this.maxQueuedMisses = Math.min(opts.maxQueuedMisses ?? MAX_BATCH, MAX_BATCH);
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 10000;
    this.ports = new PortTable(MAX_BATCH);
    if (opts.conntrack instanceof Conntrack) this.ct = opts.conntrack;
    this.ctOptions = opts.conntrack instanceof Conntrack ? {} : (opts.conntrack ?? {});
    const self = this;
    this.programs = new ProgramCache({
      ports: this.ports,
      tunnelHeader(idx: number, key: number): TunnelHeader | null { return self.tunnelHeader(idx, key); },
    });
    // The slow fallback (applyDpActions) for lists compile.ts does not handle: its outputs and
    // ct actions go where compiled ones go. slowHash/slowDepth hold the frame of the one call
    // in progress (applyDpActions takes no per-call context).
    let slowHash = 0, slowDepth = 0;
    const emit: DpEmit = (port, batch, slot) => {
      const idx = port >= 0 && port <= 0xffff ? this.ports.portIndex[port] : -1;
      if (idx < 0) { this.ports.nNoPort++; return; }
      const hdr = this.ports.list[idx].tunnel === null ? null : this.tunnelHeader(idx, batch.tunIdLo[slot]);
      this.ports.emit(idx, batch.buf, batch.off[slot], batch.len[slot], hdr, slowHash,
        batch.vnet, slot * VNET_HDR_BYTES);
    };
    const hook: DpHook = (a, batch, slot) => {
      if (a.kind === 'controller') { self.packetIns.push(a, batch.buf, batch.off[slot], batch.len[slot]); return true; }
      return a.kind !== 'ct' || self.ctStep(a, batch, slot, slowDepth, -1, CT_FORK_COPY) !== CT_STOP;
    };
    this.ctx = {
      ct(a: DpCt, batch: PacketBatch, slot: number, depth: number, l3: number, fork: number): number {
        return self.ctStep(a, batch, slot, depth, l3, fork);
      },
      recircInPlace(depth: number): boolean {
        return depth < MAX_RECIRC_DEPTH && !self.passCopies;
      },
      recircRun(a: DpCt, batch: PacketBatch, live: Uint16Array, from: number, to: number, stale: Uint8Array | null): void {
        keepRunInPlace(self.st, a, live, from, to, stale);
      },
      slow(actions: readonly DpAction[], batch: PacketBatch, slot: number, flowHash: number, depth: number): number {
        slowHash = flowHash;
        slowDepth = depth;
        const queuedBefore = self.rcNext === null ? 0 : self.rcNext.batch.count;
        const r = applyDpActions(actions, batch, slot, emit, hook);
        const queued = self.rcNext !== null && self.rcNext.batch.count > queuedBefore;
        if (queued && r === DpDrop.Pipeline) return RECIRCULATED;
        if (queued && r === DpDrop.None) return SENT_AND_RECIRCULATED;
        return r;
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
    this.programs.clear();
  }

  /**
   * Re-translates the representative key of every megaflow (after a rule change), or of those
   * to the destinations the upcaller names (after MAC-table changes only); removes those whose
   * mask or compiled program changed and gives the others whose rule list changed a new payload
   * with it (frames resolved before keep the rules they were translated with). Returns how
   * many were removed.
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
        const b = id * W.KEY_WORDS;
        if (!dsts.has((rep[b + W.DL_DST_HI] & 0xffff) * 4294967296 + rep[b + W.DL_DST_LO])) continue;
      }
      const pl = mf.payload[id] as FlowPayload;
      const r = this.upcaller.revalidate(mf.repKey, id * W.KEY_WORDS);
      if (r === null || !r.cacheable || !sameMask(r.mask, mf.subtables[mf.subtableOf[id]].mask) ||
          !sameProgram(this.programs.get(r.actions), pl.program)) {
        mf.remove(id);
        removed++;
      } else if (!sameRules(r.rules, pl.rules)) {
        // A new payload, not new rules in the old one: frames this pass resolved before the
        // change were translated before it and credit the rules they hit (the upcall stage
        // moves later frames to the new payload). Its side effects are the new translation's
        // (a rule with a learn action, or one that took NORMAL's place, has others than the
        // first upcall's): the frames of the flow do what their own translation would.
        const np = new FlowPayload(pl.program, r.rules, r.refresh ?? null);
        np.id = id;
        np.serial = pl.serial;
        mf.payload[id] = np;
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

  // ---- the driver ---------------------------------------------------------------------------

  /**
   * Runs frames [0, `count`) of `batch` through the datapath and sends what they produce
   * (after the misses queued by earlier batches). Returns the number of frames that went out
   * at least once.
   */
  processBatch(batch: PacketBatch, count: number): number {
    const n = count > MAX_BATCH ? MAX_BATCH : count;
    const small = n < BUSY_EXACT_BELOW;
    const timed = small || (this.nBigBatches++ & BUSY_SAMPLE_MASK) === 0;
    const t0 = timed ? performance.now() : 0;
    const now = this.nowMs();
    this.packetIns.newBatch();
    if (this.revalidatePending) this.revalidate();
    if (now >= this.nextSweepMs) {
      this.expire(now);
      this.nextSweepMs = now + Math.min(1000, this.idleTimeoutMs / 2);
    }
    // By batches, not passes: batchNo counts passes, and with two a batch (recirculation) it
    // skipped every multiple of RANK_EVERY_BATCHES when it started odd.
    if (this.nBatches % RANK_EVERY_BATCHES === 0) this.megaflows.rank();
    let nSent = this.queuedMisses > 0 ? this.runMissQueue(now) : 0;
    nSent += this.runAll(batch, n, null, now); // its input pass credits the ports' rx counters (selectAll)
    if (this.ct !== null) this.ct.sweep(now, CT_SWEEP_PER_BATCH);
    this.nPackets += n;
    this.nBatches++;
    if (timed) {
      const ms = performance.now() - t0;
      this.busyMs += ms;
      if (!small) this.busyMsPerPacket = ms / n;
    } else {
      this.busyMs += n * this.busyMsPerPacket;
    }
    return nSent;
  }

  /** Frames waiting in the miss queue for their upcall. */
  get queuedMisses(): number {
    return this.qNext === null ? 0 : this.qNext.batch.count;
  }

  /**
   * Runs the queued misses now, as processBatch does before a batch (for the daemon when no
   * batch comes). Returns the number of frames that went out.
   */
  runQueuedMisses(): number {
    if (this.queuedMisses === 0) return 0;
    this.packetIns.newBatch();
    const t0 = performance.now();
    const now = this.nowMs();
    if (this.revalidatePending) this.revalidate();
    const nSent = this.runMissQueue(now);
    this.busyMs += performance.now() - t0;
    return nSent;
  }

  /** One pass over the queued misses (swapped out first, so this pass's overflow queues anew). */
  private runMissQueue(now: number): number {
    const q = this.qNext as FrameQueue;
    this.qNext = this.qRun;
    this.qRun = q;
    (this.qNext as FrameQueue).batch.count = 0;
    const nSent = this.runAll(q.batch, q.batch.count, q, now);
    q.batch.count = 0;
    return nSent;
  }

  /**
   * One pass over frames [0, n) of `batch` (`q`: the queue they are in, for their pipeline
   * words; null for frames from ports) and what it recirculated in place, then the
   * recirculation queue to its end, then the offload frames those passes set aside (finished
   * into pieces, each piece batch with its own recirculation): first `batch`'s own, then those
   * of the queued passes (copied into the finish queue, since their queue batches are reused).
   */
  private runAll(batch: PacketBatch, n: number, q: FrameQueue | null, now: number): number {
    const st = this.st;
    st.nDeferred = 0;
    // runInPlace and runRecirculation only when they have frames to run: V8 inlines neither
    // here, and most batches recirculate nothing.
    let nSent = this.runPass(batch, n, q, now);
    if (st.nRecirc > 0) nSent += this.runInPlace(batch, now);
    const nd = st.nDeferred;
    for (let k = 0; k < nd; k++) {
      const i = st.deferred[k];
      this.deferred[k] = i;
      writeRc(this.deferredRc, k * Rc.WORDS, st.keys, i * W.KEY_WORDS, st.depth[i]);
    }
    if (this.rcNext !== null && this.rcNext.batch.count > 0) nSent += this.runRecirculation(now);
    for (let k = 0; k < nd; k++) nSent += this.runFinished(batch, this.deferred[k], this.deferredRc, k * Rc.WORDS, now);
    const sa = this.setAside;
    if (sa !== null && sa.batch.count > 0) {
      for (let j = 0; j < sa.batch.count; j++) nSent += this.runFinished(sa.batch, j, sa.meta, j * Rc.WORDS, now);
      sa.batch.count = 0;
    }
    return nSent;
  }

  /**
   * Runs the frames the last pass over `batch` recirculated in place, depth after depth, each
   * depth a pass over the same batch, until none recirculates in place.
   */
  private runInPlace(batch: PacketBatch, now: number): number {
    let nSent = 0;
    while (this.st.nRecirc > 0) nSent += this.runRecircPass(batch, now);
    return nSent;
  }

  /**
   * Runs the recirculated copies, depth after depth, until none are queued (each queue pass
   * followed by what it recirculated in place; offload frames they set aside go to the finish
   * queue, which runAll runs).
   */
  private runRecirculation(now: number): number {
    let nSent = 0;
    while (this.rcNext !== null && this.rcNext.batch.count > 0) {
      const q = this.rcNext;
      this.rcNext = this.rcRun;
      this.rcRun = q;
      (this.rcNext as FrameQueue).batch.count = 0;
      this.st.nDeferred = 0;
      nSent += this.runPass(q.batch, q.batch.count, q, now);
      nSent += this.runInPlace(q.batch, now);
      if (this.st.nDeferred > 0) this.keepDeferred(q.batch);
      q.batch.count = 0;
    }
    return nSent;
  }

  /**
   * Copies the offload frames the last passes over queue batch `b` set aside (state.deferred)
   * into the finish queue, with their metadata; one that finds it full is dropped and counted.
   */
  private keepDeferred(b: PacketBatch): void {
    if (this.setAside === null) this.setAside = new FrameQueue(MAX_BATCH, GSO_SLOT_BYTES, true);
    const st = this.st, sa = this.setAside;
    for (let k = 0; k < st.nDeferred; k++) {
      const i = st.deferred[k];
      const j = sa.push(b, null, i);
      if (j < 0) { this.nOffloadBad++; countRxDrop(this.ports, b, i, RXD_OFFLOAD_BAD); continue; }
      writeRc(sa.meta, j * Rc.WORDS, st.keys, i * W.KEY_WORDS, st.depth[i]);
      sa.ct[j] = null;
    }
    st.nDeferred = 0;
  }

  /**
   * Finishes offload frame `i` of `batch` into segments and runs them as a batch of their own
   * (a complete frame set aside behind an offload frame of its flow, stages.ts execute, is one
   * piece).
   * The port counted one frame in: its end counts once too (forwarded when any segment left,
   * else dropped under the reason most of its segments ended with).
   */
  private runFinished(batch: PacketBatch, i: number, rc: Uint32Array, ro: number, now: number): number {
    if (this.pieces === null) this.pieces = new FrameQueue(MAX_BATCH, DEFAULT_SLOT_BYTES, false);
    const pq = this.pieces, fin = pq.batch;
    const m = finishOffload(batch.buf, batch.off[i], batch.len[i], batch.vnet as Uint8Array, i * VNET_HDR_BYTES, fin);
    if (m <= 0) { this.nOffloadBad++; countRxDrop(this.ports, batch, i, RXD_OFFLOAD_BAD); return 0; }
    this.nOffloadFinished++;
    for (let j = 0; j < m; j++) {
      fin.copyMeta(j, batch, i);
      for (let w = 0; w < Rc.WORDS; w++) pq.meta[j * Rc.WORDS + w] = rc[ro + w];
      pq.ct[j] = null;
    }
    const pi = this.ports.portIndex[batch.inPort[i] & 0xffff];
    const port = pi >= 0 ? this.ports.list[pi] : null;
    const drops0 = this.finDrops, fwd0 = port === null ? 0 : port.rxForwarded;
    if (port !== null) drops0.set(port.rxDrops);
    // The pieces resume where the frame was set aside: its recirc id, ct words and depth.
    const nSent = this.runPass(fin, m, pq, now) + this.runInPlace(fin, now) + this.runRecirculation(now);
    if (port !== null) {
      let most = RXD_ACTION0 + DpDrop.Pipeline, mostN = 0;
      for (let r = 0; r < N_RX_DROP; r++) {
        const d = port.rxDrops[r] - drops0[r];
        if (d > mostN) { most = r; mostN = d; }
      }
      port.rxDrops.set(drops0);
      port.rxForwarded = fwd0;
      if (nSent > 0) port.rxForwarded++;
      else port.rxDrops[most]++;
    }
    return nSent;
  }

  /** The stages, in order, over frames [0, n) of `batch`. Returns frames sent. */
  private runPass(batch: PacketBatch, n: number, q: FrameQueue | null, now: number): number {
    const st = this.st;
    const bn = this.startPass(batch);
    st.nRecirc = 0;
    st.nRecircRuns = 0;
    let c = selectAll(st, batch, n, this.ports, q === null);
    c = extract(st, batch, c, q === null ? null : q.meta, this.dropStop, this.ports);
    if (q !== null && this.ct !== null) {
      c = takeQueuedCt(q, st, c);
      c = conntrack(this.ct, st, batch, c, now, this, this.ports);
    }
    // extract hashed the frames from ports; queued ones are hashed by conntrack, or else by the hash stage.
    return this.lookupAndRun(batch, c, bn, now, q === null || this.ct !== null);
  }

  /**
   * The stages over the frames the last pass over `batch` recirculated in place: no parse (each
   * keeps its key, offsets and length), conntrack, then as runPass. Returns frames sent.
   */
  private runRecircPass(batch: PacketBatch, now: number): number {
    const bn = this.startPass(batch);
    let c = selectRecirculated(this.st);
    if (this.st.nReparse > 0) c = reparse(this.st, batch, c, this.dropStop, this.ports);
    c = conntrack(this.conntrack, this.st, batch, c, now, this, this.ports); // which hashes the frames it keeps
    return this.lookupAndRun(batch, c, bn, now, true);
  }

  private startPass(batch: PacketBatch): number {
    this.passCopies = false;
    let bn = this.batchNo + 1;
    if (bn > MAX_PASS_NO) { this.clearPassStamps(); bn = 1; }
    this.batchNo = bn;
    this.ports.batchNo = bn;
    this.ports.setInput(batch);
    return bn;
  }

  /**
   * Pass numbers start again at 1 after MAX_PASS_NO: every stamp of an earlier pass is cleared
   * first (ports' and flows' stamp, flows' deferPass), so no stamp can equal a later pass's
   * number by coming round again.
   */
  private clearPassStamps(): void {
    for (const p of this.ports.list) p.stamp = -1;
    const mf = this.megaflows;
    for (const id of mf.liveIds()) {
      const pl = mf.payload[id] as FlowPayload;
      pl.stamp = -1;
      pl.deferPass = -1;
    }
  }

  /**
   * The stages from hash on (shared by every pass), over live[0, c); `hashed`: extract (frames
   * from ports) or the conntrack stage hashed them already. Returns frames sent.
   */
  private lookupAndRun(batch: PacketBatch, count: number, bn: number, now: number, hashed: boolean): number {
    const st = this.st, mf = this.megaflows, emc = this.emc, ports = this.ports;
    let c = hashed ? count : hash(st, count);
    const nEmcMiss = emcLookup(emc, mf, st, c);
    this.nEmcHits += c - nEmcMiss;
    const nMiss = dpclsLookup(mf, emc, st, nEmcMiss);
    this.nMegaflowHits += nEmcMiss - nMiss;
    c = this.upcall(batch, c, nMiss, now);
    const nSent = execute(st, batch, c, bn, ports, this.ctx, this.dropAction);
    flush(ports);
    stats(st, mf, now);
    return nSent;
  }

  /**
   * The upcall stage: in arrival order, resolves what the caches missed (the megaflow cache
   * again once an upcall of this pass installed something, else an upcall within the budget,
   * else the miss queue) and repeats the cached side effects of hits (FlowPayload.refresh),
   * once for a stretch of consecutive frames with one payload: a refresh called again at the
   * same clock reading with nothing run in between changes nothing (UpcallResult.refresh), so
   * a miss, an upcall or a revalidation ends the stretch. A rule change revalidates at once;
   * later frames whose megaflow died are resolved again. Frames queued, lost or failed leave
   * the live list. The members of a run of one connection (BatchState.runLen) have their head's
   * payload: refreshHits steps over them; resolve, which looks at every frame on its own, first
   * gives them their words and payloads (stages.ts expandRun). Returns the live count.
   */
  private upcall(batch: PacketBatch, count: number, nMiss: number, now: number): number {
    const st = this.st;
    if (nMiss === 0 && st.nRefresh === 0) return count;
    const from = nMiss === 0 ? this.refreshHits(count, now) : 0;
    return from === count ? count : this.resolve(batch, count, from, now);
  }

  /**
   * The upcall stage when every live frame hit a cache in this pass: their flows are still
   * the ones the lookups found (only a revalidation here could have removed or changed one),
   * so this only repeats the side effects, once per stretch of one payload. Stops after the
   * first refresh that changes rules (revalidated at once), or at once when a revalidation is
   * pending. Returns how many frames it handled; resolve() takes the rest.
   */
  private refreshHits(count: number, now: number): number {
    if (this.revalidatePending) return 0;
    const live = this.st.live, payloads = this.st.payloads, runs = this.st.nRuns > 0, runLen = this.st.runLen;
    let refreshed: FlowPayload | null = null;
    for (let k = 0; k < count; k++) {
      const head = k, i = live[k];
      const pl = payloads[i] as FlowPayload;
      if (runs) k += runLen[i]; // a run's members have its payload (resolve expands them when it takes over)
      if (pl.refresh === null || pl === refreshed) continue;
      if (pl.refresh(now)) this.revalidatePending = true;
      refreshed = pl;
      if (this.revalidatePending) { this.revalidate(); return head + 1; }
    }
    return count;
  }

  /** The upcall stage's general case, from live[from] on (those before it stay). Returns the live count. */
  private resolve(batch: PacketBatch, count: number, from: number, now: number): number {
    const st = this.st;
    // Every frame is resolved on its own from here: runs' members get their words and payloads.
    expandAllRuns(st, count);
    const mf = this.megaflows, keys = st.keys, live = st.live;
    let nUp = 0, n = from, installed = false;
    let refreshed: FlowPayload | null = null; // the payload refreshed for the frame before
    for (let k = from; k < count; k++) {
      const i = live[k];
      let pl = st.payloads[i];
      if (pl !== null && pl.id >= 0) { // a cached flow's payload: its megaflow's while pl.serial is the megaflow's
        const f0 = pl.id;
        if (mf.serial[f0] !== pl.serial) pl = null; // died in this pass
        else if (mf.payload[f0] !== pl) { pl = mf.payload[f0] as FlowPayload; st.payloads[i] = pl; } // its rules changed
      }
      if (pl !== null) {
        if (pl.refresh !== null && pl !== refreshed) {
          if (pl.refresh(now)) this.revalidatePending = true;
          refreshed = pl;
        }
      } else {
        refreshed = null;
        const base = i * W.KEY_WORDS;
        const f = installed || this.nRevalidations > 0 ? mf.lookup(keys, base) : -1;
        if (f >= 0) {
          this.nMegaflowHits++;
          pl = mf.payload[f] as FlowPayload;
          this.emc.maybeInsert(keys, base, st.cacheHash[i] | 0, f, mf.serial);
          if (pl.refresh !== null && pl.refresh(now)) this.revalidatePending = true;
        } else if (nUp >= this.maxUpcallsPerBatch) {
          if (this.queueMiss(batch, i)) this.nQueuedMisses++;
          else { this.nLostUpcalls++; countRxDrop(this.ports, batch, i, RXD_LOST_UPCALL); }
          continue;
        } else {
          nUp++;
          this.nUpcalls++;
          const r = this.upcaller.upcall(keys, base, batch, i, now);
          if (r === null) { this.nUpcallErrors++; countRxDrop(this.ports, batch, i, RXD_UPCALL_ERROR); continue; }
          pl = this.makePayload(r);
          installed = true;
          const id = r.cacheable ? mf.install(keys, base, r.mask, pl, now) : -1;
          if (id >= 0) {
            pl.id = id;
            pl.serial = mf.serial[id];
            this.emc.maybeInsert(keys, base, st.cacheHash[i] | 0, id, mf.serial);
          } else {
            this.nUncached++;
          }
        }
        st.payloads[i] = pl;
      }
      if (this.revalidatePending) { this.revalidate(); refreshed = null; }
      live[n++] = i;
    }
    return n;
  }

  /**
   * Copies frame `i` of `batch` with its metadata, recirculation and ct words and depth to the
   * miss queue. Returns false when the queue is full.
   */
  private queueMiss(batch: PacketBatch, i: number): boolean {
    if (this.qNext === null) {
      // Slots for super-frames with their virtio headers: a queued miss can be any frame.
      this.qRun = new FrameQueue(this.maxQueuedMisses, GSO_SLOT_BYTES, true);
      this.qNext = new FrameQueue(this.maxQueuedMisses, GSO_SLOT_BYTES, true);
    }
    const q = this.qNext;
    const j = q.push(batch, this.ports.inWords, i);
    if (j < 0) return false;
    writeRc(q.meta, j * Rc.WORDS, this.st.keys, i * W.KEY_WORDS, this.st.depth[i]);
    q.ct[j] = null;
    return true;
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
   * A program's ct step on frame `slot` at recirculation depth `depth` (compile.ts ExecCtx.ct).
   * Without recirculation, conntrack runs on the frame in place, from the L3 offset `l3` its
   * parse recorded (-1: conntrack walks the frame; a CT_DROP ends the program).
   * With it, a copy goes to the recirculation queue with the ct step pending (the conntrack stage
   * runs it for the whole next pass) and the original goes on (OVS's fork). Copies beyond a
   * batch's worth, or beyond MAX_RECIRC_DEPTH, are dropped and counted.
   */
  private ctStep(a: DpCt, batch: PacketBatch, slot: number, depth: number, l3: number, fork: number): number {
    const ct = this.conntrack;
    if (a.recircId === 0) {
      const st = ct.execute(batch.buf, batch.off[slot], batch.len[slot], a.zone, a.commit, a.nat ?? null,
        a.markValue ?? 0, a.markMask ?? 0, this.nowMs(), batch.csumPartial(slot), l3);
      if (st === CT_DROP) { this.nCtDrops++; return CT_STOP; }
      return CT_GO_ON;
    }
    if (depth >= MAX_RECIRC_DEPTH) { this.nRecircTooDeep++; return CT_GO_ON; }
    if (fork !== CT_FORK_COPY && !this.passCopies) {
      keepInPlace(this.st, a, slot, fork === CT_FORK_IN_PLACE_REPARSE ? 1 : 0);
      return CT_QUEUED;
    }
    if (!this.passCopies) this.spillInPlace(batch);
    const q = this.recircQueue(batch.hasOffload(slot));
    const j = q.push(batch, this.ports.inWords, slot);
    if (j < 0) { this.nRecircOverflow++; return CT_GO_ON; }
    const mo = j * Rc.WORDS, meta = q.meta;
    meta[mo + Rc.RECIRC_ID] = a.recircId;
    meta[mo + Rc.CT_STATE] = 0;
    meta[mo + Rc.CT_ZONE] = 0;
    meta[mo + Rc.CT_MARK] = 0;
    meta[mo + Rc.DEPTH] = depth + 1;
    q.ct[j] = a;
    return CT_QUEUED;
  }

  /**
   * The first copy of a pass: the frames the pass recirculated in place so far join the queue
   * before it (copies, in arrival order), and the rest of the pass copies too, so the next depth
   * runs as one pass in arrival order, as with copies only.
   */
  private spillInPlace(batch: PacketBatch): void {
    this.passCopies = true;
    const st = this.st;
    let a: DpCt | null = null;
    for (let k = 0; k < st.nRecirc; k++) {
      const slot = st.recirc[k];
      // A frame with no step of its own has the step of the frame before it (stages.ts keepInPlace).
      const own = st.ctPending[slot];
      if (own !== null) { a = own; st.ctPending[slot] = null; }
      if (a === null) throw new Error('spillInPlace: a frame recirculated in place has no ct step');
      st.reparse[slot] = 0;
      const q = this.recircQueue(batch.hasOffload(slot));
      const j = q.push(batch, this.ports.inWords, slot);
      if (j < 0) { this.nRecircOverflow++; continue; }
      const mo = j * Rc.WORDS, meta = q.meta;
      meta[mo + Rc.RECIRC_ID] = a.recircId;
      meta[mo + Rc.CT_STATE] = 0;
      meta[mo + Rc.CT_ZONE] = 0;
      meta[mo + Rc.CT_MARK] = 0;
      meta[mo + Rc.DEPTH] = st.depth[slot];
      q.ct[j] = a;
    }
    st.nRecirc = 0;
    st.nRecircRuns = 0; // the runs among them were copied frame by frame
    st.nReparse = 0;
  }

  /**
   * The queue of the next recirculation pass: plain 2 KB slots until the first offload frame
   * (a super-frame, or a frame with a partial checksum) recirculates; from then on 64 KB slots
   * with virtio headers. Frames already queued move over with their metadata; the pass that
   * is running keeps the queue it took.
   */
  private recircQueue(offload: boolean): FrameQueue {
    const cur = this.rcNext;
    if (cur !== null && (!offload || cur.batch.vnet !== null)) return cur;
    const slotBytes = offload ? GSO_SLOT_BYTES : DEFAULT_SLOT_BYTES;
    const next = new FrameQueue(MAX_BATCH, slotBytes, offload);
    if (cur !== null) {
      for (let j = 0; j < cur.batch.count; j++) {
        const k = next.push(cur.batch, null, j);
        for (let w = 0; w < Rc.WORDS; w++) next.meta[k * Rc.WORDS + w] = cur.meta[j * Rc.WORDS + w];
        next.ct[k] = cur.ct[j];
      }
    }
    this.rcRun = new FrameQueue(MAX_BATCH, slotBytes, offload);
    this.rcNext = next;
    return next;
  }

  private makePayload(r: UpcallResult): FlowPayload {
    return new FlowPayload(this.programs.get(r.actions), r.rules, r.refresh ?? null);
  }

  // ---- counters -----------------------------------------------------------------------------

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

/** True when two rule lists name the same rules in the same order. */
function sameRules(a: readonly StatsRule[], b: readonly StatsRule[]): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** Writes the pipeline words of the key at keys[base...] and `depth` to meta[mo...]. */
function writeRc(meta: Uint32Array, mo: number, keys: Uint32Array, base: number, depth: number): void {
  meta[mo + Rc.RECIRC_ID] = keys[base + W.RECIRC_ID];
  meta[mo + Rc.CT_STATE] = keys[base + W.CT_STATE];
  meta[mo + Rc.CT_ZONE] = keys[base + W.CT_ZONE];
  meta[mo + Rc.CT_MARK] = keys[base + W.CT_MARK];
  meta[mo + Rc.DEPTH] = depth;
}
