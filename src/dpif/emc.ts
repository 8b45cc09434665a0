/**
 * Exact-match cache (EMC), in front of dpif/megaflow.ts, in the manner of OVS's
 * lib/dpif-netdev-private-dfc (emc_cache).
 *
 * Called by: dpif/stages.ts (emcLookup, once per batch; inserts after megaflow hits) and
 * dpif/datapath.ts (inserts after upcalls); dpif/dump.ts for dumps. Never by control/.
 *
 * Shape: `nSlots` (a power of two) entries in typed arrays, grouped in 2-way buckets: a key
 * with hash h may live in slot (h & mask & ~1) or its neighbour. An entry stands for the key's
 * first EMC_KEY_WORDS words and holds its hash, the id of the megaflow it resolves to, that
 * megaflow's serial at insertion and the EMC generation at insertion, in a slot of 16 words (64
 * bytes, Emc.slot) with the id of its context and the key words [W_DL_DST_HI, W_ARP_SHA_HI); the
 * words [W_ARP_SHA_HI, PACKET_WORDS) (ARP, IPv6) lie in a tail array, read only for keys that
 * are not IPv4. The context words are the 9 of the key that are nearly constant across a port's
 * traffic: in_port, recirc_id, the four tunnel words and the three ct words. Emc's context table
 * (internContext, at insertion) gives each distinct set of them an id; a lookup compares the
 * frame's context words with the words of the slot's context: a copy of the last inserted
 * context's words when the slot holds that id (constant indexes, no wait for the slot's line),
 * else the table's row for the id. (Comparing with the last context the lookups found, and
 * looking a frame's context up by hash when it differed, cost 25 ns more per lookup when every
 * frame changed context, as (f)'s passes do at each first frame; the row alone, 2.4 ns more per
 * hit at 1k-4k flows than the copy.) When the table is full, an insertion of a new context starts it afresh and flushes
 * the EMC (an O(1) generation bump), so no live entry holds an id the table gives again. Its
 * capacity is nSlots contexts: the table fills only after at least nSlots insertions of new
 * contexts since it last started, by which time insertions have rewritten most of the EMC
 * anyway.
 * An IPv4 hit reads one slot, one or two cache lines (V8 gives the slot array no 64-byte
 * alignment: glibc's mmap'd blocks start 16 bytes into a page), and compares 9 context words in
 * L1 and 10 slot words: before, the 19 compared words and the four numbers were a 160-byte entry
 * of which an IPv4 hit read the first 92 bytes, two or three lines. Slot indexes are masked to
 * [0, MAX_SLOTS), so V8 knows that the word indexes cannot overflow and drops the overflow check
 * it made on every index (each compare was 12 instructions: an add, its overflow check, two
 * bounds checks, the loads, the compare). Measured (2026-12-05, this 2-core machine at load
 * 10-13, so in one process, blocks of the two builds alternated, medians):
 *   Emc.lookup alone, 1024-4096 IPv4 keys in a loop, hits:  18.5-21.7 ns -> 13.4-16.6 ns
 *   the same, 32 keys (entries in L1):                       17.1 ns -> 13.8 ns
 *   processBatch, bench/scenarios.ts setups, new/old: (b) 0.94, (c) 0.96, (a) (f) (g) within the
 *   noise (0.99-1.01) (native-notes/emc-entry.md).
 * (Earlier, the four numbers beside the key words in one 160-byte entry against arrays of their
 * own: tunnel-stages' emcLookup 1-4 ns/frame less, (b) and (c) 2-5 % faster; the four numbers
 * side by side against four separate arrays: (a) 6.56x -> 5.30x, (c) 12.65x -> 12.19x.)
 *
 * Which words: the packet words [0, PACKET_WORDS) (recirc_id is one of them) and the ct words
 * up to W_CT_MARK, which a recirculated frame carries from conntrack (in an entry, the context
 * words among them through its context id). Words after that
 * (metadata, registers) are zero in every key the datapath looks up (packet/flowkey.ts writes them as
 * 0 and recirculation carries only the ct words), so comparing them would only cost. The
 * recirculated frames' hash mixes in the recirc id and depth (stages.ts), so a frame's entries
 * at each depth land in different buckets.
 *
 * Invariants:
 * - A hit requires hash equality AND all EMC_KEY_WORDS words equal (the context words through
 *   the context id: a context id names one set of context words while any entry holding it
 *   lives): a collision (even a forced one with a 2-slot table) can never return another key's
 *   flow (test/dpif/emc-context.test.ts).
 * - An entry counts only while gen[s] === curGen (flush is `curGen++`, O(1)) and the megaflow's
 *   current serial equals the serial stored at insertion (deleting a megaflow bumps its serial,
 *   so every EMC entry that points at it dies in O(1) without a scan).
 * Insertion policy: probabilistic, 1 in `insertInvProb` (OVS: 1/100), decided by a xorshift32
 * counter, so with more flows than slots the table is not rewritten by every packet.
 * Measured with bench/inmem.ts scenario (d) (100k flows over one megaflow, 8192 slots, medians of
 * 5-7 interleaved runs, ns/packet as a multiple of the bench's copy yardstick; the shared 2-core
 * machine was at load 8-11, so only the ratios mean anything):
 *   insert always (1/1)   22.4x  30.7x  22.8x   <- worst: every miss copies a 28-word key
 *   insert 1/20           16.5x  27.8x  16.9x
 *   insert 1/100 (OVS)    17.9x  19.3x  17.4x
 *   EMC off               18.2x  20.0x  18.0x
 * With 12x more flows than slots the EMC can hold at most ~8% of them, so every policy is near
 * "off"; inserting always is the only clearly bad choice (+25-50%). 1/100 stays the default
 * because it also keeps the table for the heavy hitters when there are few flows (scenario (a)
 * reaches 100% EMC hits after ~100 packets of a flow).
 * An insertion writes the slot's one line and, for other than IPv4 keys, the tail's words (an
 * IPv4 key's are zero and never compared); a key with the context of the last insertion takes
 * its id without hashing the context words. Both together, in-process A/B against writing every
 * tail and hashing every context (2026-12-06, (d)'s datapath, medians of 60 interleaved
 * slices, both load orders): insertion 1/1 0.71-0.73 of the time, 1/20 and 1/100 within
 * 0.98-1.03 (they insert 50-100x less).
 *
 * Lookup policy (flowd's own; OVS looks its EMC up for every packet unless emc-insert-inv-prob
 * is 0): an EMC hit is not free. It probes a 2-slot bucket of a 512 KB table and compares 19+
 * key words; a megaflow lookup hashes and compares only its mask's words per subtable searched,
 * in tables that are small when megaflows are few. With 100k flows over one subtable of 16
 * megaflows (scenario (d)) the EMC hits 13 % of frames and every miss pays a probe for
 * nothing: the lookup stages took 90-98 ns/frame with the EMC, 41 without. With one subtable
 * of one megaflow with a 12-word mask ((b), (c)) the EMC, at 100 % hits, wins: 33-37 against
 * 73-79 ns; with 16 subtables it wins even at 13 % hits. No fixed rule of hit rates and
 * subtable counts got all of these right (a model "hits * (subtables searched - 2) > misses"
 * bypassed the EMC in (b) and (c) and cost them about 2x), so the policy measures instead:
 * after each run (EmcLookupPolicy), a probe times the pass's lookup stages (emcLookup start to
 * dpclsLookup end, one clock read at each, only during the probe) over 2048 frames with the EMC
 * looked up, then 2048 bypassing it, and the mode with the lower median ns/frame runs next
 * (bypassing only when 5 % faster, and only when the EMC hit fewer than half the probe's
 * frames: a probe right after a bypass times an EMC whose lines are out of the CPU caches, and
 * in one process running the bench's scenarios side by side it kept timing (b)'s EMC at
 * 100-150 ns/frame with 99 % hits, against 35 alone, and bypassed it for good, costing (b)
 * 10 %; below half the hits, the misses are what the EMC costs). The run after a change of
 * mode is 4096 frames (an EMC still filling is probed again soon); runs double while the
 * probes keep choosing the same mode, up to 262144 frames, so a settled mode pays the probe
 * (the worse mode for 2048 frames, 4 clock reads a pass) on 1.5 % of frames: with runs of
 * 65536, (c) measured about 5 % slower than with no probes. Bypassed, stages.ts
 * emcLookup sends every frame straight to the megaflow cache, and insertion goes on in the
 * last 16384 frames of the run (EmcLookupPolicy.fillFrames) and the probe, so the next probe
 * sees the EMC that recent traffic gives it (a flow with 1 % of the frames is in it with
 * probability 0.8 at 1/100 insertion): it comes back when traffic concentrates or subtables
 * multiply (within 262144 frames, about 0.1 s at 2.5 Mpps). Offers before those frames are
 * dropped: inserting through the whole run, nobody looking the entries up, cost (d) 4-9 % of
 * its time (in-process A/B, 4 datapaths, medians of 9: 104.1-107.5 -> 94.6-101.1 ns/frame;
 * 27.7k insertions -> 5.3k over the same frames), as the insertions' writes to the 1 MB of
 * slots and tails evict lines the megaflow stages read. Runs of 16384 frames or fewer (after
 * a change of mode) insert throughout, as before.
 * Measured (probe medians, ns/frame of the lookup stages, bench/inmem.ts, one run each):
 *   (a) one flow       with 9.1-11.9   without 28-33   -> looked up
 *   (b) 1k flows       with 32-37      without 73-77   -> looked up (after the EMC fills)
 *   (c) 1k flows       with 33-41      without 78-80   -> looked up (after the EMC fills)
 *   (d) 100k flows     with 90-98      without 41-42   -> bypassed
 * and in a microbenchmark of (d)'s shape (N flows in random order, K masks, all 7 interleaved
 * repetitions in one process, CPU time, medians, ns/frame of the whole datapath; load 5-6;
 * measured before the hit-rate condition, which now keeps K=1 N=2k looked up at 93 % hits):
 *   K=1  N=2k:   policy 166 (bypassed), always 168, off 166
 *   K=1  N=100k: policy 172 (bypassed), always 175, off 155
 *   K=16 N=2k:   policy 183 (looked up), always 191, off 322
 *   K=16 N=100k: policy 336 (bypassed), always 354, off 312
 * The policy never changes an answer, only which cache gives it (test/dpif/emc-policy.test.ts,
 * and the fast==slow property test runs with it flipping every few frames). While JIT
 * warm-up or an EMC still filling (1/100 insertion, under half its hits) makes the EMC slower,
 * the probe bypasses it until a later probe finds it faster: (b) and (c) start bypassed for a
 * few short runs (the in-process A/B showed (b) 2-4 % slower than with no probes at all).
 * Counters: `flowctl stats` (pmd-perf-show shape, dpif/dump.ts) prints the frames that
 * bypassed the EMC, the runs bypassed, the last probe's two medians and its hit rate, and the subtables
 * searched per megaflow lookup (OVS's "avg. subtable lookups per megaflow hit").
 * Not done: OVS's signature match cache (SMC: 16-bit signatures -> megaflow index, between EMC
 * and dpcls). It saves subtable searches; (d) searches one subtable per frame already.
 * Owns no packets; the caller's batch keeps them.
 */
import { PACKET_WORDS, W_ARP_SHA_HI, W_CT_MARK, W_TUN_DST, W_VLAN_DLTYPE } from '../packet/flowkey-layout';
import { MAX_BATCH } from '../netdev/batch';
import { hashKeyWords } from './flow-hash';
import { countersAsDoubles } from '../counters';

/** Words an entry holds and compares: the packet words, then the ct words. */
export const EMC_KEY_WORDS = W_CT_MARK + 1;
export const EMC_DEFAULT_SLOTS = 8192;
/** OVS's default emc-insert-inv-prob. */
export const EMC_DEFAULT_INSERT_INV_PROB = 100;

// emcKeyEq, ctxEq and entryEq compare these word ranges written out; the layout must be the one they were written for.
if (W_TUN_DST !== 5 || W_ARP_SHA_HI !== 16 || PACKET_WORDS !== 33 || EMC_KEY_WORDS !== 36 || W_VLAN_DLTYPE !== 10) throw new Error('emc.ts emcKeyEq, ctxEq, entryEq: flow key layout changed');

/**
 * Whole-key compare of two keys in key order, at e[o...] and keys[base...] (stages.ts emcProbe
 * compares a frame's key with the last hit's; entries compare with ctxEq and entryEq, the same
 * words). For IPv4 keys the
 * words [W_ARP_SHA_HI, PACKET_WORDS) (ARP hardware addresses, IPv6 addresses) are skipped:
 * extraction writes them only for ARP and IPv6 frames (zero otherwise), and the ethertype word
 * is compared first, so two IPv4 keys equal on the other words are equal. Every other ethertype
 * compares them all. The first 16 words and the ct words are written out (measured: about 1.6x
 * faster than a loop per hit, and every EMC hit pays it; a loop over the first 16 words, small
 * enough to inline, was slower still: (a) 5.4x -> 6.8x). The ct words and the tail are in
 * restEq so that each function stays under V8's inlining limit (460 bytes of bytecode; written
 * as one function it took 510 and was called, not inlined): (a) 5.34x -> 4.96x, (c) 11.91x ->
 * 11.34x, (d) unchanged (CPU time, 3 interleaved runs each, medians).
 */
export function emcKeyEq(e: Uint32Array, o: number, keys: Uint32Array, base: number): boolean {
  if (e[o] !== keys[base] || e[o + 1] !== keys[base + 1] || e[o + 2] !== keys[base + 2] ||
      e[o + 3] !== keys[base + 3] || e[o + 4] !== keys[base + 4] || e[o + 5] !== keys[base + 5] ||
      e[o + 6] !== keys[base + 6] || e[o + 7] !== keys[base + 7] || e[o + 8] !== keys[base + 8] ||
      e[o + 9] !== keys[base + 9] || e[o + 10] !== keys[base + 10] || e[o + 11] !== keys[base + 11] ||
      e[o + 12] !== keys[base + 12] || e[o + 13] !== keys[base + 13] || e[o + 14] !== keys[base + 14] ||
      e[o + 15] !== keys[base + 15]) return false;
  return restEq(e, o, keys, base);
}

/**
 * emcKeyEq's second half: the ct words, then for other than IPv4 keys the ARP/IPv6 words (two
 * functions, each small enough for V8 to inline).
 */
function restEq(e: Uint32Array, o: number, keys: Uint32Array, base: number): boolean {
  if (e[o + 33] !== keys[base + 33] || e[o + 34] !== keys[base + 34] || e[o + 35] !== keys[base + 35]) return false;
  if ((keys[base + 10] & 0xffff) === 0x0800) return true;
  for (let w = W_ARP_SHA_HI; w < PACKET_WORDS; w++) if (e[o + w] !== keys[base + w]) return false;
  return true;
}

/**
 * The context words: the key words that are nearly constant across a port's traffic (in_port,
 * recirc_id, the four tunnel words, and the ct words a recirculated frame carries). An entry
 * holds, instead of them, the id of its context in Emc's context table (Emc.internContext).
 */
const CTX_WORDS = 9;

/** Whether the context row at c[o...] holds the context words of the key at keys[base...]. */
function ctxEq(c: Uint32Array, o: number, keys: Uint32Array, base: number): boolean {
  return c[o] === keys[base] && c[o + 1] === keys[base + 1] && c[o + 2] === keys[base + 2] &&
    c[o + 3] === keys[base + 3] && c[o + 4] === keys[base + 4] && c[o + 5] === keys[base + 5] &&
    c[o + 6] === keys[base + 33] && c[o + 7] === keys[base + 34] && c[o + 8] === keys[base + 35];
}

/**
 * A hash of the key's context words (words [0, 6) and the ct words), for the context table's
 * index: flow-hash.ts's murmur3 over the two ranges. Paid per insertion, never per lookup.
 */
function ctxHash(keys: Uint32Array, base: number): number {
  return hashKeyWords(keys, base + PACKET_WORDS, EMC_KEY_WORDS - PACKET_WORDS, hashKeyWords(keys, base, W_TUN_DST + 1, 0));
}

/**
 * Int32 words per slot in Emc.slot, one 64-byte cache line: hash, generation, megaflow id,
 * megaflow serial, context id, then the key words [K0, W_ARP_SHA_HI) from S_KEY (Emc.keys views
 * the same buffer). The words [W_ARP_SHA_HI, PACKET_WORDS) (ARP and IPv6) are in Emc.tail.
 */
const SLOT_WORDS = 16;
const S_HASH = 0;
const S_GEN = 1;
const S_FLOW = 2;
const S_SERIAL = 3;
const S_CTX = 4;
const S_KEY = 5;
/** The first key word a slot holds (the words before it are context words). */
const K0 = 6;
/** The most slots an EMC has: slot word indexes then stay below 2^28, so V8 needs no overflow checks on them. */
const MAX_SLOTS = 1 << 24;
/** The most contexts an EMC's table holds, less one (a mask). */
const MAX_CONTEXT_ID = (1 << 24) - 1;
const TAIL_WORDS = PACKET_WORDS - W_ARP_SHA_HI;

/**
 * Whether the slot at e[m...] (its tail at t[tb...]) holds the key at keys[base...], context
 * aside (the caller compares context ids): the words [K0, W_ARP_SHA_HI), then for other than
 * IPv4 keys the tail. Extraction writes the tail words only for ARP and IPv6 frames (zero
 * otherwise), and the ethertype word is compared first, so two IPv4 keys equal on the other
 * words are equal.
 */
function entryEq(e: Uint32Array, m: number, keys: Uint32Array, base: number, t: Uint32Array, tb: number): boolean {
  if (e[m + 5] !== keys[base + 6] || e[m + 6] !== keys[base + 7] || e[m + 7] !== keys[base + 8] ||
      e[m + 8] !== keys[base + 9] || e[m + 9] !== keys[base + 10] || e[m + 10] !== keys[base + 11] ||
      e[m + 11] !== keys[base + 12] || e[m + 12] !== keys[base + 13] || e[m + 13] !== keys[base + 14] ||
      e[m + 14] !== keys[base + 15]) return false;
  return (keys[base + 10] & 0xffff) === 0x0800 || tailEq(t, tb, keys, base);
}

/** entryEq's tail compare (ARP, IPv6 and every other non-IPv4 key). */
function tailEq(t: Uint32Array, tb: number, keys: Uint32Array, base: number): boolean {
  for (let w = 0; w < TAIL_WORDS; w++) if (t[tb + w] !== keys[base + W_ARP_SHA_HI + w]) return false;
  return true;
}

/**
 * When the EMC is looked up (module header, "Lookup policy"): runs of `runFrames` frames in
 * the chosen mode, each followed by a probe: `probeFrames` frames with the EMC looked up, then
 * as many bypassing it, each pass's lookup stages timed; the mode with the lower median time
 * per frame runs next (bypassing only when that is `marginPct` percent lower and the EMC hit
 * fewer than `maxHitPct` percent of the probe's frames). The run after a change of mode is
 * 2 * probeFrames long; runs double while probes keep choosing the same mode, up to runFrames.
 */
export interface EmcLookupPolicy {
  readonly runFrames: number;
  readonly probeFrames: number;
  readonly marginPct: number;
  /** Bypassing also needs the EMC to have hit fewer than this percentage of the probe's frames. */
  readonly maxHitPct: number;
  /**
   * While a run bypasses the EMC, misses are offered for insertion only in its last
   * `fillFrames` frames (and in the probe after it): the probe then times the EMC that recent
   * traffic gives it, without a run's worth of insertions nobody looks up.
   */
  readonly fillFrames: number;
}

/** The default policy (measured in the module header). */
export const EMC_DEFAULT_POLICY: EmcLookupPolicy = { runFrames: 262144, probeFrames: 2048, marginPct: 5, maxHitPct: 50, fillFrames: 16384 };

/** The policy that never probes, so never bypasses (bench/inmem.ts d100A, tests). */
export const EMC_ALWAYS: EmcLookupPolicy = { runFrames: 65536, probeFrames: 0, marginPct: 0, maxHitPct: 0, fillFrames: 0 };

/** Probe passes timed per mode at most (samples beyond are not kept). */
const MAX_SAMPLES = 256;

const RUN = 0;
const PROBE_ON = 1;
const PROBE_OFF = 2;

export class Emc {
  readonly nSlots: number;
  readonly slotMask: number;
  /** `slot`'s buffer as uint32 words, for the key words (entryEq). */
  private readonly keys: Uint32Array;
  /**
   * Per slot, SLOT_WORDS side by side: the entry's hash (int32, as lookups pass it), its
   * generation at insertion, its megaflow id (-1: none) and that megaflow's serial at insertion
   * (int32 bits of the uint32 serial), its context id, then its key words (from S_KEY, read
   * through `keys`).
   */
  private readonly slot: Int32Array;
  /** Per slot, TAIL_WORDS: the key words [W_ARP_SHA_HI, PACKET_WORDS). */
  private readonly tail: Uint32Array;
  /** The context table: context c's words at ctxRows[c * CTX_WORDS ...] (ctxEq's order). */
  private readonly ctxRows: Uint32Array;
  /** The table's index: open addressing by ctxHash, context id + 1 (0: empty). */
  private readonly ctxIndex: Int32Array;
  readonly maxContexts: number;
  nContexts = 0;
  /** The context of the last insertion and a copy of its words (contextIs). */
  private lastCtx = -1;
  private readonly lastWords = new Uint32Array(CTX_WORDS);
  /** bucketsOf's answers, per position in the batch's live list. */
  readonly cand = new Int32Array(MAX_BATCH);
  /** Context table resets (each flushed the EMC). */
  nContextResets = 0;
  curGen = 1;
  private invProb = 0;
  /** maybeInsert goes on when its 32-bit random number is below this (2^32 / insertInvProb). */
  private threshold = 0;
  /**
   * maybeInsert's xorshift32 state, in a typed array rather than a field: its values span all
   * 32 bits, and a field holding numbers outside V8's small integers (31 bits) is a boxed
   * double, loaded and stored through its box for every offer (measured on scenario (d)'s
   * megaflow stage, hot caches: 20.6 -> 16.3 ns/frame with insertion nearly never, 21.6 ->
   * 19.5 at 1/100).
   */
  private readonly rng = Int32Array.of(0x9e3779b9 | 0);
  nInserts = 0;
  /**
   * True while lookups are skipped (stages.ts emcLookup sends every frame to the megaflow
   * cache): the last probe found the lookup stages faster without the EMC, or the EMC is off
   * (insertion 0).
   */
  bypassing = false;
  /** True while a probe times each pass (stages.ts emcLookup starts the clock, dpclsLookup stops it). */
  timing = false;
  private policy: EmcLookupPolicy = EMC_DEFAULT_POLICY;
  /** The probe's clock in ms (tests pass a fake one). */
  clock: () => number = () => performance.now();
  private phase = RUN;
  /** Frames left in the current phase; frames of the pass being timed; its start (ms). */
  private left = 0;
  /** The length of the current run, and the mode the last probe chose. */
  private runLen = 0;
  private lastBypassing = false;
  private passFrames = 0;
  /**
   * The probe's fractional numbers, in a typed array rather than fields: [the timed pass's start
   * (ms), the last probe's median ns/frame with and without the EMC, its hit rate (%)]. A field
   * that held 0 and then gets its first fraction changes the object's hidden class, which
   * deoptimized every stage that holds the EMC (emcLookup, emcProbe, dpclsLookup, megaflowHits:
   * "wrong map" in --trace-deopt) at the end of the first probes, and they ran unoptimized,
   * boxing numbers, until optimized again.
   */
  private readonly probeF = new Float64Array(4);
  /** The probe's per-pass times per frame (ns), with and without the EMC, and their counts. */
  private readonly onNs = new Float64Array(MAX_SAMPLES);
  private readonly offNs = new Float64Array(MAX_SAMPLES);
  private nOn = 0;
  private nOff = 0;
  /**
   * The probe's frames with the EMC looked up, and its hits among them: stages.ts emcProbe
   * counts probeHits on every pass (no branch on `timing`, see there), so it holds the hits
   * since the last probe started (reset then), which at the probe's end are the probe's.
   */
  private probeLooked = 0;
  probeHits = 0;
  /** Frames that skipped the lookup, runs bypassed, and the last probe's medians (ns/frame). */
  nBypassed = 0;
  nBypasses = 0;
  get lastOnNs(): number { return this.probeF[F_ON_NS]; }
  get lastOffNs(): number { return this.probeF[F_OFF_NS]; }
  get lastHitPct(): number { return this.probeF[F_HIT_PCT]; }

  constructor(nSlots = EMC_DEFAULT_SLOTS, insertInvProb = EMC_DEFAULT_INSERT_INV_PROB, maxContexts = nSlots) {
    countersAsDoubles<Emc>(this, 'nInserts', 'nBypassed');
    if (nSlots < 2 || nSlots > MAX_SLOTS || (nSlots & (nSlots - 1)) !== 0) throw new RangeError(`EMC size must be a power of two in [2, ${MAX_SLOTS}]`);
    if (!(maxContexts >= 1 && maxContexts <= MAX_CONTEXT_ID + 1)) throw new RangeError(`EMC contexts must be in [1, ${MAX_CONTEXT_ID + 1}]`);
    this.nSlots = nSlots;
    this.slotMask = nSlots - 1;
    this.slot = new Int32Array(nSlots * SLOT_WORDS);
    this.keys = new Uint32Array(this.slot.buffer);
    this.tail = new Uint32Array(nSlots * TAIL_WORDS);
    this.maxContexts = maxContexts;
    this.ctxRows = new Uint32Array(maxContexts * CTX_WORDS);
    let n = 2;
    while (n < 2 * maxContexts) n *= 2;
    this.ctxIndex = new Int32Array(n);
    for (let s = 0; s < nSlots; s++) this.slot[s * SLOT_WORDS + S_FLOW] = -1;
    this.insertInvProb = insertInvProb;
  }

  /** Insert one miss in this many (1 = always, 0 = never). */
  get insertInvProb(): number {
    return this.invProb;
  }

  set insertInvProb(v: number) {
    this.invProb = v;
    this.threshold = v > 1 ? Math.floor(0x100000000 / v) : 0;
    this.restartPolicy();
  }

  get lookupPolicy(): EmcLookupPolicy {
    return this.policy;
  }

  /** Sets the lookup policy and starts it afresh (a run with the EMC looked up). */
  set lookupPolicy(p: EmcLookupPolicy) {
    if (!(p.runFrames >= 1 && p.probeFrames >= 0 && p.marginPct >= 0 && p.maxHitPct >= 0 && p.fillFrames >= 0)) {
      throw new RangeError(`EMC lookup policy: run ${p.runFrames} frames must be >= 1, probe ${p.probeFrames}, ` +
        `margin ${p.marginPct} % and fill ${p.fillFrames} frames >= 0`);
    }
    this.policy = p;
    this.restartPolicy();
  }

  private restartPolicy(): void {
    this.phase = RUN;
    this.left = this.runLen = this.policy.runFrames;
    this.lastBypassing = false;
    this.timing = false;
    this.bypassing = this.invProb <= 0; // off: nothing is ever inserted, so nothing can hit
  }

  /** Called by stages.ts emcLookup as a pass's lookups start (`frames` of them). */
  lookupsStart(frames: number): void {
    this.passFrames = frames;
    if (this.timing) this.probeF[F_T0] = this.clock();
  }

  /**
   * Called by stages.ts dpclsLookup as the pass's lookups end: counts the pass's frames
   * against the phase, keeps its time when probing, and moves to the next phase when this one
   * has run its frames.
   */
  lookupsEnd(): void {
    const n = this.passFrames;
    if (this.bypassing) this.nBypassed += n;
    if (this.timing && n > 0) {
      const ns = (this.clock() - this.probeF[F_T0]) * 1e6 / n;
      if (this.phase === PROBE_ON) { this.probeLooked += n; if (this.nOn < MAX_SAMPLES) this.onNs[this.nOn++] = ns; }
      else if (this.nOff < MAX_SAMPLES) this.offNs[this.nOff++] = ns;
    }
    this.left -= n;
    if (this.left > 0 || this.invProb <= 0) return;
    const p = this.policy;
    if (this.phase === RUN && p.probeFrames > 0) {
      this.phase = PROBE_ON;
      this.left = p.probeFrames;
      this.bypassing = false;
      this.timing = true;
      this.nOn = 0;
      this.nOff = 0;
      this.probeLooked = 0;
      this.probeHits = 0;
    } else if (this.phase === PROBE_ON) {
      this.phase = PROBE_OFF;
      this.left = p.probeFrames;
      this.bypassing = true;
    } else {
      if (this.phase === PROBE_OFF) {
        const f = this.probeF;
        f[F_ON_NS] = median(this.onNs, this.nOn);
        f[F_OFF_NS] = median(this.offNs, this.nOff);
        f[F_HIT_PCT] = this.probeLooked === 0 ? 0 : 100 * this.probeHits / this.probeLooked;
        this.bypassing = this.nOn > 0 && this.nOff > 0 && f[F_OFF_NS] * 100 < f[F_ON_NS] * (100 - p.marginPct) &&
          f[F_HIT_PCT] < p.maxHitPct;
        if (this.bypassing) this.nBypasses++;
      }
      // A run after a change of mode is short, and runs double while the probes keep choosing
      // the same mode: a change is checked again soon (the EMC the probe timed may have been
      // still filling), a settled mode is probed rarely.
      this.runLen = this.bypassing !== this.lastBypassing ? 2 * p.probeFrames : Math.min(2 * this.runLen, p.runFrames);
      this.lastBypassing = this.bypassing;
      this.phase = RUN;
      this.left = this.runLen;
      this.timing = false;
    }
  }

  /**
   * Returns the megaflow id cached for the key at `keys[base...]` with hash `h`, or -1.
   * `serials` is the megaflow cache's serial array (MegaflowCache.serial).
   */
  lookup(keys: Uint32Array, base: number, h: number, serials: Uint32Array): number {
    return this.lookupFrom(this.bucketOf(h), keys, base, h, serials);
  }

  /** The first slot of the bucket of hash `h`. */
  bucketOf(h: number): number {
    return h & this.slotMask & (MAX_SLOTS - 2);
  }

  /**
   * The first half of the lookups of the frames live[0, n) that lead the batch with keys of
   * their own (sameKey -1; n: up to the first frame known equal to the one before it): for
   * each, the slot of its bucket whose hash word is the frame's cache hash (the first of the two
   * if both), else -1, in Emc.cand[k] (lookupFrom's first slot). Returns n. The loads of these
   * buckets do not depend on one another, so the CPU overlaps their cache misses (the table is
   * larger than L1 with 1k flows), which one loop of whole lookups, a hundred instructions each
   * between two buckets' loads, did not. Only the leading frames: a batch of runs of equal keys
   * probes a few frames, and a pass over all of its frames to find them cost (a), (f) and (g)
   * 3-4 % (in-process A/B).
   */
  bucketsOf(live: Uint16Array, count: number, cacheHash: Uint32Array, same: Int16Array): number {
    const sl = this.slot, cand = this.cand, mask = this.slotMask & (MAX_SLOTS - 2);
    let k = 0;
    for (; k < count; k++) {
      const i = live[k];
      if (same[i] >= 0) break;
      const h = cacheHash[i] | 0, s0 = h & mask;
      cand[k] = sl[s0 * SLOT_WORDS + S_HASH] === h ? s0 : sl[(s0 + 1) * SLOT_WORDS + S_HASH] === h ? s0 + 1 : -1;
    }
    return k;
  }

  /**
   * lookup from slot `s` of the key's bucket on (the bucket's first slot, or bucketsOf's
   * candidate): the megaflow id cached for the key at `keys[base...]` with hash `h`, or -1.
   */
  lookupFrom(s: number, keys: Uint32Array, base: number, h: number, serials: Uint32Array): number {
    h |= 0;
    const sl = this.slot, cur = this.curGen | 0;
    s &= MAX_SLOTS - 1;
    for (const s1 = s | 1; s <= s1; s++) {
      const m = s * SLOT_WORDS;
      if (sl[m + S_HASH] !== h || sl[m + S_GEN] !== cur) continue;
      const f = sl[m + S_FLOW];
      if (f < 0 || (serials[f] | 0) !== sl[m + S_SERIAL]) continue;
      if (this.contextIs(sl[m + S_CTX], keys, base) && entryEq(this.keys, m, keys, base, this.tail, s * TAIL_WORDS)) return f;
    }
    return -1;
  }

  /**
   * Whether context `c`'s words are the key's: for the context of the last insertion compared
   * with lastWords, at constant indexes and without waiting for the slot's id, else with the
   * table's row (the id masked to its range, so that V8 needs no overflow checks on the row's
   * indexes).
   */
  private contextIs(c: number, keys: Uint32Array, base: number): boolean {
    return c === this.lastCtx ? ctxEq(this.lastWords, 0, keys, base) : ctxEq(this.ctxRows, (c & MAX_CONTEXT_ID) * CTX_WORDS, keys, base);
  }

  /** The id of the key's context words in the context table, or -1 if they are not in it. */
  private findContext(keys: Uint32Array, base: number): number {
    const index = this.ctxIndex, mask = index.length - 1;
    for (let p = ctxHash(keys, base) & mask; ; p = (p + 1) & mask) {
      const c = index[p] - 1;
      if (c < 0 || ctxEq(this.ctxRows, c * CTX_WORDS, keys, base)) return c;
    }
  }

  /** The id of the key's context, added to the table if it is not in it (insert). */
  private internContext(keys: Uint32Array, base: number): number {
    // The context of the last insertion (lastWords are its row's words: see below) needs no hash.
    if (this.lastCtx >= 0 && ctxEq(this.lastWords, 0, keys, base)) return this.lastCtx;
    let c = this.findContext(keys, base);
    if (c < 0) c = this.addContext(keys, base);
    // Copied even when c is lastCtx: after a restart of the table the id may name other words.
    this.lastCtx = c;
    for (let w = 0; w < CTX_WORDS; w++) this.lastWords[w] = this.ctxRows[c * CTX_WORDS + w];
    return c;
  }

  /**
   * Adds the key's context to the table; returns its id. A full table starts afresh, and the EMC
   * is flushed with it: no live entry keeps an id the table gives again.
   */
  private addContext(keys: Uint32Array, base: number): number {
    if (this.nContexts === this.maxContexts) {
      this.ctxIndex.fill(0);
      this.nContexts = 0;
      this.nContextResets++;
      this.flush();
    }
    const c = this.nContexts++;
    const r = this.ctxRows, o = c * CTX_WORDS;
    for (let w = 0; w < 6; w++) r[o + w] = keys[base + w];
    for (let w = 0; w < 3; w++) r[o + 6 + w] = keys[base + PACKET_WORDS + w];
    const index = this.ctxIndex, mask = index.length - 1;
    let p = ctxHash(keys, base) & mask;
    while (index[p] !== 0) p = (p + 1) & mask;
    index[p] = c + 1;
    return c;
  }

  private live(s: number, serials: Uint32Array): boolean {
    const sl = this.slot, m = s * SLOT_WORDS;
    const f = sl[m + S_FLOW];
    return sl[m + S_GEN] === (this.curGen | 0) && f >= 0 && (serials[f] | 0) === sl[m + S_SERIAL];
  }

  /**
   * Offers the key to the cache after a megaflow hit or an install. One offer in
   * insertInvProb goes on (decided first, as OVS's emc_probabilistic_insert, so the other
   * offers cost no probe): an entry for the same key in the bucket (dead, or made by an earlier
   * frame of the batch) is re-pointed, else the key goes into a dead slot of the bucket if
   * there is one, else over the slot the hash's top bit picks.
   */
  maybeInsert(keys: Uint32Array, base: number, h: number, flowId: number, serials: Uint32Array): void {
    const inv = this.invProb;
    if (inv <= 0 || (this.bypassing && this.phase === RUN && this.left > this.policy.fillFrames)) return;
    if (inv > 1) {
      const rng = this.rng;
      let x = rng[0];
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      rng[0] = x;
      // A compare, not `% inv` (an integer division per offer: 6 % of scenario (d)), as OVS's
      // emc_probabilistic_insert compares its random number with a threshold.
      if ((x >>> 0) >= this.threshold) return;
    }
    // The insertion in a function of its own, so that this decision, small, is inlined into
    // the caller's loop (written as one, maybeInsert was called for every offer: 6.8 % of (d)).
    this.insert(keys, base, h, flowId, serials);
  }

  private insert(keys: Uint32Array, base: number, h: number, flowId: number, serials: Uint32Array): void {
    h |= 0;
    const ctx = this.internContext(keys, base);
    const sl = this.slot, cur = this.curGen | 0;
    const s0 = h & this.slotMask & (MAX_SLOTS - 2); // lookup's bucket
    for (let s = s0; s <= s0 + 1; s++) {
      const m = s * SLOT_WORDS;
      if (sl[m + S_HASH] === h && sl[m + S_GEN] === cur && sl[m + S_CTX] === ctx &&
          entryEq(this.keys, m, keys, base, this.tail, s * TAIL_WORDS)) {
        sl[m + S_FLOW] = flowId;
        sl[m + S_SERIAL] = serials[flowId] | 0;
        return;
      }
    }
    let s = s0 + (h >>> 31);
    if (!this.live(s0, serials)) s = s0;
    else if (!this.live(s0 + 1, serials)) s = s0 + 1;
    const m = s * SLOT_WORDS, ek = this.keys, t = this.tail, tb = s * TAIL_WORDS;
    for (let w = K0; w < W_ARP_SHA_HI; w++) ek[m + S_KEY - K0 + w] = keys[base + w];
    // An IPv4 key's tail is zero and never compared (entryEq): not written, its two lines untouched.
    if ((keys[base + W_VLAN_DLTYPE] & 0xffff) !== 0x0800) for (let w = 0; w < TAIL_WORDS; w++) t[tb + w] = keys[base + W_ARP_SHA_HI + w];
    sl[m + S_CTX] = ctx;
    sl[m + S_HASH] = h;
    sl[m + S_FLOW] = flowId;
    sl[m + S_SERIAL] = serials[flowId] | 0;
    sl[m + S_GEN] = cur;
    this.nInserts++;
  }

  /** Writes the key of the entry in `slot` to out[0, EMC_KEY_WORDS) in key order (dump.ts). */
  entryKey(slot: number, out: Uint32Array): void {
    const m = slot * SLOT_WORDS, ek = this.keys, t = this.tail, tb = slot * TAIL_WORDS;
    const r = this.ctxRows, o = this.slot[m + S_CTX] * CTX_WORDS;
    for (let w = 0; w < 6; w++) out[w] = r[o + w];
    for (let w = K0; w < W_ARP_SHA_HI; w++) out[w] = ek[m + S_KEY - K0 + w];
    const ipv4 = (out[W_VLAN_DLTYPE] & 0xffff) === 0x0800; // its tail was not written (insert)
    for (let w = 0; w < TAIL_WORDS; w++) out[W_ARP_SHA_HI + w] = ipv4 ? 0 : t[tb + w];
    for (let w = 0; w < 3; w++) out[PACKET_WORDS + w] = r[o + 6 + w];
  }

  /** Invalidates every entry in O(1). */
  flush(): void {
    this.curGen = (this.curGen + 1) >>> 0;
    if (this.curGen === 0) {
      for (let s = 0; s < this.nSlots; s++) this.slot[s * SLOT_WORDS + S_GEN] = 0;
      this.curGen = 1;
    }
  }

  /** Live entries (O(nSlots); for stats and dumps, not the hot path). */
  countLive(serials: Uint32Array): number {
    let n = 0;
    for (let s = 0; s < this.nSlots; s++) if (this.live(s, serials)) n++;
    return n;
  }

  /** Calls `fn` for each live entry: slot index and megaflow id (for dumps). */
  forEachLive(serials: Uint32Array, fn: (slot: number, flowId: number) => void): void {
    for (let s = 0; s < this.nSlots; s++) if (this.live(s, serials)) fn(s, this.slot[s * SLOT_WORDS + S_FLOW]);
  }
}

/** Emc.probeF's entries. */
const F_T0 = 0, F_ON_NS = 1, F_OFF_NS = 2, F_HIT_PCT = 3;

/** The median of a[0, n) (insertion-sorts that range in place, allocating nothing; once per probe). */
function median(a: Float64Array, n: number): number {
  if (n === 0) return 0;
  for (let i = 1; i < n; i++) {
    const x = a[i];
    let j = i - 1;
    for (; j >= 0 && a[j] > x; j--) a[j + 1] = a[j];
    a[j + 1] = x;
  }
  return n % 2 === 1 ? a[(n - 1) >> 1] : (a[n / 2 - 1] + a[n / 2]) / 2;
}
