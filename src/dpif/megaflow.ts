/**
 * Megaflow cache: tuple-space search over one hash table per distinct mask, in the manner of
 * OVS's dpcls (lib/dpif-netdev.c, struct dpcls / dpcls_subtable).
 *
 * Called by: dpif/stages.ts (lookupBatch once per batch for the EMC misses), dpif/datapath.ts
 * (lookup again after an upcall, install per upcall, delete on revalidation and idle expiry);
 * dpif/dump.ts for dumps.
 *
 * A megaflow is (mask, value): key K belongs to it when (K[w] & mask[w]) === value[w] for every
 * word w. Each megaflow carries a payload of type T (the datapath stores the compiled action
 * program, the credited rules and the action text there), stats (packets, bytes, last use) and
 * the full key of the packet that created it (the representative key revalidation re-translates).
 *
 * Storage: megaflow ids index typed arrays that grow by doubling up to `maxFlows`; freed ids are
 * reused. `serial[id]` is bumped whenever the id is freed, which is how EMC entries that point at
 * a deleted megaflow become invalid in O(1) (dpif/emc.ts).
 * Subtables: open addressing with linear probing over Int32Array slots (-1 empty, -2 deleted),
 * load <= 1/2 counting tombstones; hashes of the masked key over the mask's non-zero words only.
 * lookupBatch searches a subtable of 1-4 mask words (most megaflows: in_port + MAC, in_port +
 * VLAN + IP) with a loop written for that size (searchSmall), the others with the general one.
 * Ranking: `ranked` is the lookup order; rank() sorts it by hits since the last rank and is called
 * by the datapath every few hundred batches, never per packet.
 * Invariant: the value of every megaflow is already masked (value & ~mask === 0).
 */
import { W } from '../packet/flowkey-layout';
import { fmix, hashKeyWords, hashMaskedKey, maskedStep, maskWords } from './flow-hash';

const EMPTY = -1;
const DELETED = -2;
const SEED = 0x5bd1e995;
export const MEGAFLOW_DEFAULT_MAX = 200000; // OVS's default flow-limit
/** Masks of at most this many non-zero words are searched by MegaflowCache.searchSmall. */
const SMALL_MASK_WORDS = 4;

export class Subtable {
  readonly mask: Uint32Array;
  readonly words: Int32Array;
  readonly nWords: number;
  /** Hash of `mask`, for finding the subtable of a new megaflow. */
  readonly maskHash: number;
  slots: Int32Array;
  slotHash: Uint32Array;
  slotMask: number;
  nUsed = 0;
  nLive = 0;
  hits = 0;
  /** Position in MegaflowCache.subtables (subtables are never removed, only emptied). */
  index = -1;

  constructor(mask: Uint32Array, maskHash: number) {
    this.mask = Uint32Array.from(mask);
    this.words = maskWords(mask);
    this.nWords = this.words.length;
    this.maskHash = maskHash;
    this.slots = new Int32Array(16).fill(EMPTY);
    this.slotHash = new Uint32Array(16);
    this.slotMask = 15;
  }

  hashOf(keys: Uint32Array, base: number): number {
    return hashMaskedKey(keys, base, this.mask, this.words, this.nWords, SEED);
  }
}

export class MegaflowCache<T> {
  readonly maxFlows: number;
  capacity: number;
  /** Masked match value, W.KEY_WORDS per id. */
  value: Uint32Array;
  /** Full key of the packet that created the megaflow, W.KEY_WORDS per id. */
  repKey: Uint32Array;
  serial: Uint32Array;
  live: Uint8Array;
  subtableOf: Int32Array;
  nPackets: Float64Array;
  nBytes: Float64Array;
  usedMs: Float64Array;
  readonly payload: (T | null)[] = [];
  readonly subtables: Subtable[] = [];
  /** Lookup order (most hit first). */
  ranked: Subtable[] = [];
  private readonly byMask = new Map<number, Subtable[]>();
  private readonly freeIds: number[] = [];
  /** The subtable of the last install (install's first guess for the next mask). */
  private lastInstalled: Subtable | null = null;
  private nextId = 0;
  nFlows = 0;
  /**
   * Keys looked up by lookupBatch, and the subtables searched for them (a key counts once per
   * subtable searched): their ratio is what a lookup costs, which the EMC's lookup policy
   * weighs (emc.ts) and pmd-perf-show prints, as OVS's "avg. subtable lookups per megaflow hit".
   */
  nBatchLookups = 0;
  nSubtableSearches = 0;

  constructor(maxFlows = MEGAFLOW_DEFAULT_MAX, initialCapacity = 1024) {
    this.maxFlows = maxFlows;
    this.capacity = Math.min(Math.max(initialCapacity, 1), maxFlows);
    const c = this.capacity;
    this.value = new Uint32Array(c * W.KEY_WORDS);
    this.repKey = new Uint32Array(c * W.KEY_WORDS);
    this.serial = new Uint32Array(c);
    this.live = new Uint8Array(c);
    this.subtableOf = new Int32Array(c);
    this.nPackets = new Float64Array(c);
    this.nBytes = new Float64Array(c);
    this.usedMs = new Float64Array(c);
  }

  /**
   * Megaflow id matching the key at `keys[base...]`, or -1. Tries subtables in rank order and
   * returns the first match; installed megaflows never disagree where they overlap, because
   * each one is exact for every key inside its mask.
   */
  lookup(keys: Uint32Array, base: number): number {
    const ranked = this.ranked;
    for (let t = 0; t < ranked.length; t++) {
      const st = ranked[t];
      const id = this.lookupIn(st, keys, base);
      if (id >= 0) { st.hits++; return id; }
    }
    return -1;
  }

  /**
   * The batch lookup (OVS's dpcls_lookup): each subtable, in rank order, is searched once for
   * all the slots of `idx[0, n)` still unresolved (key of slot i at i * W.KEY_WORDS). Every slot
   * of idx gets `flowOut[slot]`: its megaflow, or -1. Returns how many found none, listed in
   * their order at the front of `left` (by default `idx` itself; `idx` is left as it was when
   * `left` is another array, so the caller keeps its list without copying it first). A subtable
   * whose mask has 1 to SMALL_MASK_WORDS words is searched by searchSmall, the others (an empty
   * mask too) by searchAny (the same answers).
   */
  lookupBatch(keys: Uint32Array, idx: Uint16Array, n: number, flowOut: Int32Array, left: Uint16Array = idx): number {
    const ranked = this.ranked;
    this.nBatchLookups += n;
    if (ranked.length === 0 || n === 0) {
      for (let k = 0; k < n; k++) { const i = idx[k]; flowOut[i] = -1; left[k] = i; }
      return n;
    }
    // The first subtable reads idx and lists its misses in `left`; the next ones search `left`.
    let from = idx, searches = 0;
    for (let t = 0; t < ranked.length && n > 0; t++) {
      const st = ranked[t];
      searches += n;
      const nLeft = st.nWords >= 1 && st.nWords <= SMALL_MASK_WORDS ? this.searchSmall(st, keys, from, n, flowOut, left)
        : this.searchAny(st, keys, from, n, flowOut, left);
      st.hits += n - nLeft;
      n = nLeft;
      from = left;
    }
    this.nSubtableSearches += searches;
    return n;
  }

  /**
   * lookupIn written out for a batch over subtable `st`: the subtable's fields are loaded
   * once; each key of idx[0, n) gets flowOut[slot] (its megaflow here, or -1), and those it
   * does not resolve are listed in `left`, in order (`left` may be `idx`). Returns their count.
   */
  private searchAny(st: Subtable, keys: Uint32Array, idx: Uint16Array, n: number, flowOut: Int32Array,
                    left: Uint16Array): number {
    const value = this.value;
    const slots = st.slots, slotHash = st.slotHash, m = st.slotMask, mask = st.mask, words = st.words;
    const nWords = st.nWords;
    let nLeft = 0;
    for (let k = 0; k < n; k++) {
      const i = idx[k];
      const base = i * W.KEY_WORDS;
      const h = hashMaskedKey(keys, base, mask, words, nWords, SEED);
      let id = -1;
      for (let s = h & m; ; s = (s + 1) & m) {
        const c = slots[s];
        if (c === EMPTY) break;
        if (c < 0 || slotHash[s] !== h) continue;
        const v = c * W.KEY_WORDS;
        let j = 0;
        while (j < nWords && ((keys[base + words[j]] & mask[words[j]]) ^ value[v + words[j]]) === 0) j++;
        if (j === nWords) { id = c; break; }
      }
      flowOut[i] = id;
      if (id < 0) left[nLeft++] = i;
    }
    return nLeft;
  }

  /**
   * searchAny for a mask of 1 to SMALL_MASK_WORDS words (in_port + MAC, in_port + VLAN + IP
   * destination, ...: the masks most megaflows have), in the manner of OVS's dpcls lookup
   * functions specialized by miniflow size: the words' indexes and masks sit in locals, each
   * key word is loaded and masked once for both the hash (the same as hashMaskedKey: the
   * branches on the word count do not change within the batch) and the compare, which tests
   * all words at once. Words past the mask's count repeat its first word (comparing it again
   * changes nothing).
   */
  private searchSmall(st: Subtable, keys: Uint32Array, idx: Uint16Array, n: number, flowOut: Int32Array,
                      left: Uint16Array): number {
    const value = this.value;
    const slots = st.slots, slotHash = st.slotHash, m = st.slotMask, mask = st.mask, words = st.words;
    const nWords = st.nWords;
    const w0 = words[0], w1 = nWords > 1 ? words[1] : w0, w2 = nWords > 2 ? words[2] : w0, w3 = nWords > 3 ? words[3] : w0;
    const m0 = mask[w0], m1 = mask[w1], m2 = mask[w2], m3 = mask[w3];
    let nLeft = 0;
    for (let k = 0; k < n; k++) {
      const i = idx[k];
      const base = i * W.KEY_WORDS;
      const k0 = keys[base + w0] & m0, k1 = keys[base + w1] & m1, k2 = keys[base + w2] & m2, k3 = keys[base + w3] & m3;
      let h = maskedStep(SEED, k0);
      if (nWords > 1) h = maskedStep(h, k1);
      if (nWords > 2) h = maskedStep(h, k2);
      if (nWords > 3) h = maskedStep(h, k3);
      h = fmix(h ^ nWords);
      let id = -1;
      for (let s = h & m; ; s = (s + 1) & m) {
        const c = slots[s];
        if (c === EMPTY) break;
        if (c < 0 || slotHash[s] !== h) continue;
        const v = c * W.KEY_WORDS;
        // XOR, not !==: `&` yields int32 (negative when bit 31 is set), the array holds uint32.
        if (((k0 ^ value[v + w0]) | (k1 ^ value[v + w1]) | (k2 ^ value[v + w2]) | (k3 ^ value[v + w3])) === 0) {
          id = c;
          break;
        }
      }
      flowOut[i] = id;
      if (id < 0) left[nLeft++] = i;
    }
    return nLeft;
  }

  private lookupIn(st: Subtable, keys: Uint32Array, base: number): number {
    const h = st.hashOf(keys, base);
    const slots = st.slots;
    const m = st.slotMask;
    const mask = st.mask;
    const words = st.words;
    const nWords = st.nWords;
    const value = this.value;
    for (let i = h & m; ; i = (i + 1) & m) {
      const id = slots[i];
      if (id === EMPTY) return -1;
      if (id < 0 || st.slotHash[i] !== h) continue;
      const v = id * W.KEY_WORDS;
      let eq = true;
      for (let j = 0; j < nWords; j++) {
        const w = words[j];
        // XOR, not !==: `&` yields int32 (negative when bit 31 is set), the array holds uint32.
        if (((keys[base + w] & mask[w]) ^ value[v + w]) !== 0) { eq = false; break; }
      }
      if (eq) return id;
    }
  }

  /**
   * Installs the megaflow (`mask`, key at `keys[base...]`) with `payload`; returns its id, the id
   * of an identical megaflow already present (its payload is replaced), or -1 at `maxFlows`.
   */
  install(keys: Uint32Array, base: number, mask: Uint32Array, payload: T, nowMs: number): number {
    // Upcalls in a row mostly produce one mask: try the subtable of the last install first.
    let st: Subtable | undefined = this.lastInstalled ?? undefined;
    let mh = 0;
    if (st === undefined || !sameMask(st.mask, mask)) {
      st = undefined;
      mh = hashKeyWords(mask, 0, W.KEY_WORDS, SEED);
      const list = this.byMask.get(mh);
      if (list !== undefined) for (let k = 0; k < list.length; k++) if (sameMask(list[k].mask, mask)) st = list[k];
    }
    if (st !== undefined) {
      const old = this.lookupIn(st, keys, base);
      if (old >= 0) { this.payload[old] = payload; return old; }
    }
    const id = this.allocId();
    if (id < 0) return -1;
    if (st === undefined) {
      st = new Subtable(mask, mh);
      let list = this.byMask.get(mh);
      if (list === undefined) { list = []; this.byMask.set(mh, list); }
      list.push(st);
      st.index = this.subtables.length;
      this.subtables.push(st);
      this.ranked.push(st);
    } else if (st.nLive === 0) {
      this.ranked.push(st); // emptied subtables leave the lookup order; this one is back
    }
    this.lastInstalled = st;
    const v = id * W.KEY_WORDS, value = this.value, repKey = this.repKey;
    for (let w = 0; w < W.KEY_WORDS; w++) {
      const x = keys[base + w];
      value[v + w] = x & mask[w];
      repKey[v + w] = x;
    }
    this.live[id] = 1;
    this.subtableOf[id] = st.index;
    this.nPackets[id] = 0;
    this.nBytes[id] = 0;
    this.usedMs[id] = nowMs;
    this.payload[id] = payload;
    this.insertIn(st, id, st.hashOf(keys, base));
    this.nFlows++;
    return id;
  }

  private insertIn(st: Subtable, id: number, h: number): void {
    if ((st.nUsed + 1) * 2 > st.slots.length) this.resize(st);
    const m = st.slotMask;
    let i = h & m;
    while (st.slots[i] >= 0) i = (i + 1) & m;
    if (st.slots[i] === EMPTY) st.nUsed++;
    st.slots[i] = id;
    st.slotHash[i] = h;
    st.nLive++;
  }

  private resize(st: Subtable): void {
    let size = st.slots.length;
    while ((st.nLive + 1) * 4 > size) size *= 2; // after rehash at most 1/4 full
    if ((st.nLive + 1) * 4 <= size / 2 && size > 16) size = Math.max(16, size / 2);
    const oldSlots = st.slots;
    const oldHash = st.slotHash;
    st.slots = new Int32Array(size).fill(EMPTY);
    st.slotHash = new Uint32Array(size);
    st.slotMask = size - 1;
    st.nUsed = 0;
    for (let i = 0; i < oldSlots.length; i++) {
      const id = oldSlots[i];
      if (id < 0) continue;
      let j = oldHash[i] & st.slotMask;
      while (st.slots[j] !== EMPTY) j = (j + 1) & st.slotMask;
      st.slots[j] = id;
      st.slotHash[j] = oldHash[i];
      st.nUsed++;
    }
  }

  private allocId(): number {
    if (this.freeIds.length > 0) return this.freeIds.pop() as number;
    if (this.nextId >= this.capacity) {
      if (this.capacity >= this.maxFlows) return -1;
      this.grow(Math.min(this.capacity * 2, this.maxFlows));
    }
    return this.nextId++;
  }

  private grow(c: number): void {
    const g32 = (a: Uint32Array, n: number) => { const b = new Uint32Array(n); b.set(a); return b; };
    const g64 = (a: Float64Array, n: number) => { const b = new Float64Array(n); b.set(a); return b; };
    this.value = g32(this.value, c * W.KEY_WORDS);
    this.repKey = g32(this.repKey, c * W.KEY_WORDS);
    this.serial = g32(this.serial, c);
    const live = new Uint8Array(c); live.set(this.live); this.live = live;
    const sub = new Int32Array(c); sub.set(this.subtableOf); this.subtableOf = sub;
    this.nPackets = g64(this.nPackets, c);
    this.nBytes = g64(this.nBytes, c);
    this.usedMs = g64(this.usedMs, c);
    this.capacity = c;
  }

  /** Removes megaflow `id`; its EMC entries die with the serial bump. */
  remove(id: number): void {
    if (this.live[id] !== 1) return;
    const st = this.subtables[this.subtableOf[id]];
    const h = st.hashOf(this.value, id * W.KEY_WORDS); // value is masked, so it hashes like its keys
    const m = st.slotMask;
    for (let i = h & m; st.slots[i] !== EMPTY; i = (i + 1) & m) {
      if (st.slots[i] === id) { st.slots[i] = DELETED; st.nLive--; break; }
    }
    if (st.nLive === 0) {
      const r = this.ranked.indexOf(st);
      if (r >= 0) this.ranked.splice(r, 1);
      st.slots.fill(EMPTY);
      st.nUsed = 0;
    }
    this.live[id] = 0;
    this.serial[id] = (this.serial[id] + 1) >>> 0;
    this.payload[id] = null;
    this.freeIds.push(id);
    this.nFlows--;
  }

  /** Sorts subtables by hits since the last call (most first) and resets the hit counts. */
  rank(): void {
    this.ranked.sort((a, b) => b.hits - a.hits);
    for (let i = 0; i < this.ranked.length; i++) this.ranked[i].hits = 0;
  }

  /** Removes every megaflow. */
  clear(): void {
    for (let id = 0; id < this.nextId; id++) if (this.live[id] === 1) this.remove(id);
  }

  /** Ids of live megaflows (control path). */
  liveIds(): number[] {
    const out: number[] = [];
    for (let id = 0; id < this.nextId; id++) if (this.live[id] === 1) out.push(id);
    return out;
  }
}

export function sameMask(a: Uint32Array, b: Uint32Array): boolean {
  for (let w = 0; w < W.KEY_WORDS; w++) if (a[w] !== b[w]) return false;
  return true;
}
