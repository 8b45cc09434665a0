/**
 * The state one datapath pass keeps per frame, as columns (structure of arrays), and the frame
 * queues passes read from.
 *
 * Called by: dpif/stages.ts (every stage reads and writes a BatchState) and dpif/datapath.ts (the
 * driver owns one BatchState and its queues; dpif/dump.ts reads FlowPayload).
 *
 * A pass runs over slots of one PacketBatch; column i belongs to slot i. `live[0, n)` lists the
 * slots still in the pass, in arrival order: each stage takes that count and returns the new
 * one (dropped, queued and lost frames leave the list), so no column holds a "dropped" or
 * "missed" sentinel. `miss[0, nMiss)` lists the slots no cache has resolved yet.
 * Invariant: for every slot in live after the upcall stage, payloads[slot] !== null.
 * Ownership: the columns are the datapath's scratch, valid for one pass; nothing survives it
 * except what the queues copied.
 */
import { HEADROOM, MAX_BATCH, PacketBatch } from '../netdev/batch';
import { W } from '../packet/flowkey-layout';
import { Off } from '../packet/flowkey';
import type { DpCt } from './dp-actions';
import { copyFrame, DpPort, wordsOf } from './ports';
import type { Program } from './compile';
import type { StatsRule } from './upcall';

/** What the megaflow cache holds per megaflow. Fields are set in the constructor (one shape). */
export class FlowPayload {
  /** Megaflow id, or -1 for an uncached result (one packet only), and its serial. */
  id = -1;
  serial = 0;
  /** Batch number of the last batch that ran this flow, and its packets/bytes in that batch. */
  stamp = -1;
  bPackets = 0;
  bBytes = 0;
  /**
   * Pass number in which the execute stage last set aside one of this flow's frames to be
   * finished after the pass (an offload frame its program cannot take): the flow's later frames
   * of that pass are set aside behind it, so none overtakes it (stages.ts execute).
   */
  deferPass = -1;
  constructor(readonly program: Program, public rules: readonly StatsRule[],
              readonly refresh: ((nowMs: number) => boolean) | null) {}
}

export class BatchState {
  /**
   * Flow keys, W.KEY_WORDS per slot (recirc id and ct fields included). Slots are reused without
   * clearing (stages.ts extract); the words after W.CT_MARK (metadata, registers) are never
   * written here, so they stay zero: the caches' keys need them zero.
   */
  readonly keys = new Uint32Array(MAX_BATCH * W.KEY_WORDS);
  /** Header offsets extractKey recorded (packet/flowkey.ts OFF_*), Off.WORDS per slot. */
  readonly offs = new Uint16Array(MAX_BATCH * Off.WORDS);
  /** Hash of the packet's ingress words (EMC hash at depth 0; tunnel UDP source port). */
  readonly hashes = new Uint32Array(MAX_BATCH);
  /** Cache hash: `hashes` mixed with recirc id and depth for recirculated frames. */
  readonly cacheHash = new Uint32Array(MAX_BATCH);
  /** Recirculation depth (0 for frames from a port). */
  readonly depth = new Uint8Array(MAX_BATCH);
  /**
   * Megaflow id found for the slot by the megaflow stage (MegaflowCache.lookupBatch; -1: none),
   * read by stages.ts megaflowHits alone: a slot's flow is its payload (FlowPayload.id and
   * serial name its megaflow), which every stage after it reads.
   */
  readonly flowIds = new Int32Array(MAX_BATCH);
  /**
   * The flow each slot runs: emcLookup writes it for every live slot (null for a miss), then
   * dpclsLookup and the upcall stage resolve the misses.
   */
  readonly payloads: (FlowPayload | null)[] = new Array<FlowPayload | null>(MAX_BATCH).fill(null);
  /**
   * Slots in the pass, arrival order. (Swapped with `recirc` when a pass runs what the pass
   * before recirculated in place: stages.ts selectRecirculated.)
   */
  live = new Uint16Array(MAX_BATCH);
  /**
   * The slot of the previous live frame when this frame's key is known equal to that frame's,
   * else -1 (frames of one flow come in runs). At the start of a pass extract sets it for
   * every frame: it marks the frames its parse found equal, every word up to the ct words (packet/flowkey.ts
   * extractCommon, in_port and tunnel words included; a member of a run it forms is marked too);
   * emcLookup sets it from its key compare (a run's members keep theirs); a recirculation pass carries it over (stages.ts
   * keepInPlace as the frame recirculates, conntrack: equal keys, the same program up to the same ct step, and equal
   * words conntrack wrote give equal keys again; the head of a run recirculated whole gets -1). Valid only while that frame is still the one
   * before it in `live`: readers test `sameKey[i] === live[k - 1]`. Extract, the conntrack and hash stages
   * copy the hashes of such a frame and emcLookup takes its flow without a key compare (the
   * conntrack stage makes a run's members of those it answers as the frame before: runLen).
   */
  readonly sameKey = new Int16Array(MAX_BATCH);
  /**
   * Runs of one key: runLen[i] > 0 makes live frame i the head of a run, the runLen[i] frames
   * right after it in `live` its members. They are formed by extract in an input pass
   * (packet/flowkey.ts extractCommonRuns: frames whose parse equals the head's, offsets
   * included) and by the conntrack stage (frames Conntrack.againRun answered as the head: their
   * keys equalled its key before the stage), and a run recirculated in place whole
   * (stages.ts keepRunInPlace) is found again by that stage in the next pass. A member's key
   * words (all of them for a run formed by extract; for the stage's, what it wrote into the
   * head's: recirc id, ct state, zone and mark, NAT's address and port words), its hashes and its
   * payload are not written: they are the head's; its offsets, depth and sameKey are its own.
   * So emcLookup, the upcall stage, execute and runStraight walk the head alone; a stage that
   * must see a member on its own first writes those columns from the head's (stages.ts
   * expandRun: emcLookup for a head that misses, and for every run while the EMC is bypassed;
   * the upcall stage before it resolves; execute before a frame runs one by one or is set aside,
   * the hashes alone before a tunnel output; keepRunInPlace for a head a VLAN step left stale;
   * the conntrack stage for a member againRun does not answer: memberWords). runBytes[i] is the
   * members' bytes, read only where runLen[i] > 0. runLen is read only while nRuns > 0 (runs
   * formed in this pass; each pass starts at 0), and then valid for every frame that is not a
   * member.
   */
  readonly runLen = new Uint16Array(MAX_BATCH);
  /**
   * Whether extract forms runs in the next input pass (stages.ts extract): the last pass that
   * looked for them found some. While they do not, one input pass in 16 looks (nPlainExtracts
   * counts the others modulo 16, so it stays a small integer): a batch of distinct flows is
   * parsed by the loop without runs.
   */
  extractRuns = true;
  nPlainExtracts = 0;
  readonly runBytes = new Uint32Array(MAX_BATCH);
  nRuns = 0;
  /** Slots not resolved by a cache yet. */
  readonly miss = new Uint16Array(MAX_BATCH);
  /** Scratch for extract (the frames the common parse left to extractKeyOver). */
  readonly other = new Uint16Array(MAX_BATCH);
  /** Scratch for dpclsLookup (the misses the megaflow cache left, listed by lookupBatch). */
  readonly missLeft = new Uint16Array(MAX_BATCH);
  /** Hits whose flow has side effects to repeat (FlowPayload.refresh), counted by the lookups. */
  nRefresh = 0;
  /**
   * The port every frame of the pass's batch came in on, when it is one port (stages.ts
   * selectAll; a recirculation pass over the same batch keeps it), else null.
   */
  rxPort: DpPort | null = null;
  /**
   * The in_port every frame of the pass's batch came in on when none has tunnel metadata
   * (stages.ts selectAll, for extract), else -1.
   */
  plainPort = -1;
  /** Flows run in this pass (for the once-per-flow counters), and their count. */
  readonly touched: (FlowPayload | null)[] = new Array<FlowPayload | null>(MAX_BATCH).fill(null);
  nTouched = 0;
  /** Offload frames set aside for a program that must see complete segments (slots). */
  readonly deferred = new Uint16Array(MAX_BATCH);
  nDeferred = 0;
  /**
   * Slots the pass recirculated in place (arrival order): their frame stays in its slot, their
   * key, offsets and length stay in their columns, and the next pass over the same batch runs
   * them again (datapath.ts runRecircPass), from the conntrack stage on: that pass's `live`.
   */
  recirc = new Uint16Array(MAX_BATCH);
  nRecirc = 0;
  /** 1 for a slot recirculated in place whose key a program's rewrite left stale: parse it again. */
  readonly reparse = new Uint8Array(MAX_BATCH);
  nReparse = 0;
  /**
   * Scratch of compile.ts runStraight: 1 for a slot whose key and offsets a VLAN step could not
   * keep in step (the ct step at the end then has the frame parsed again).
   */
  readonly stale = new Uint8Array(MAX_BATCH);
  /**
   * The ct step the conntrack stage runs on the slot in its next pass (null: none pending). A
   * frame recirculated in place right behind a frame of its key (its sameKey names that frame),
   * a member of a run recirculated whole among them, has that frame's step and none of its own
   * here (stages.ts keepInPlace, keepRunInPlace): a run of one flow stores and clears one step,
   * not one per frame.
   */
  readonly ctPending: (DpCt | null)[] = new Array<DpCt | null>(MAX_BATCH).fill(null);
  /** The ct step of the last frame recirculated in place (state.recirc[nRecirc - 1]), when nRecirc > 0. */
  recircCt: DpCt | null = null;
  /** The flow of the last frame recirculated in place (its run's head's for a member), when nRecirc > 0. */
  recircPl: FlowPayload | null = null;
  /**
   * Runs recirculated in place whole (stages.ts keepRunInPlace: a head with runLen > 0 in
   * state.recirc, its members right after it), for the next pass: selectRecirculated moves the
   * count to nInRuns, which that pass's conntrack stage reads (and clears).
   */
  nRecircRuns = 0;
  nInRuns = 0;
  /**
   * No live frame of the pass is deeper than this (state.depth): exact for frames from ports (0)
   * and queues (stages.ts extract), the bound of the pass before plus one for a pass over what
   * that one recirculated in place (selectRecirculated). compile.ts runStraight reads it instead
   * of every frame's depth.
   */
  depthMax = 0;
}

/**
 * The pipeline words of a queued frame (recirc_id, ct_state, ct_zone, ct_mark, depth) as a
 * const enum, so hot loops index with literals (as flowkey-layout.ts's W).
 */
export const enum Rc { RECIRC_ID = 0, CT_STATE = 1, CT_ZONE = 2, CT_MARK = 3, DEPTH = 4, WORDS = 5 }

/**
 * Frames waiting for a pass of their own (recirculation by copy, when a program rewrites the
 * frame after its ct step; misses over the upcall budget): a
 * PacketBatch of copies, their Rc.WORDS of pipeline state, and for recirculation the ct step
 * conntrack runs on each in its pass, right after extract (null when none is pending).
 * Made on first use by the datapath; owns its copies.
 */
export class FrameQueue {
  readonly batch: PacketBatch;
  readonly meta: Uint32Array;
  readonly ct: (DpCt | null)[];
  private readonly words: Uint32Array | null;

  constructor(capacity: number, slotBytes: number, withVnet: boolean) {
    this.batch = new PacketBatch(capacity, slotBytes, withVnet);
    this.words = wordsOf(this.batch.buf);
    this.meta = new Uint32Array(capacity * Rc.WORDS);
    this.ct = new Array<DpCt | null>(capacity).fill(null);
  }

  /**
   * Appends a copy of frame `i` of `src` (`src32`: its buffer's word view, or null) with its
   * metadata; returns the new slot, or -1 when the queue is full or the frame does not fit. The
   * caller fills meta and ct of the slot.
   */
  push(src: PacketBatch, src32: Uint32Array | null, i: number): number {
    const q = this.batch;
    const len = src.len[i];
    if (q.count >= q.capacity || len > q.maxFrameBytes) return -1;
    const j = q.count++;
    const so = src.off[i];
    const d = q.slotStart(j) + HEADROOM + (so & 3); // the source's word alignment: a word copy
    copyFrame(q.buf, this.words, d, src.buf, src32, so, len);
    q.off[j] = d;
    q.len[j] = len;
    q.copyMeta(j, src, i);
    return j;
  }
}
