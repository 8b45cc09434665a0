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
 * Subtables: open addressing with linear probing, load <= 1/2 counting tombstones; hashes of
 * the masked key over the mask's non-zero words only, the home slot from the hash's top bits.
 * A slot is one entry in one Int32Array (Subtable.ents): the hash, the megaflow id (-1 empty,
 * -2 deleted) and the masked words the mask keeps, so a probe reads one place instead of a slot
 * array, a hash array and the megaflow's 220-byte value row (the masked words are kept twice:
 * `value` serves dumps, removal and revalidation). lookupBatch searches a subtable of 1-4 mask
 * words (most megaflows: in_port + MAC, in_port + VLAN + IP) with a loop written for that size
 * (searchSmall, 8-word entries), the others with the general one.
 * Ranking: `ranked` is the lookup order; rank() sorts it by hits since the last rank and is called
 * by the datapath every few hundred batches, never per packet.
 * Invariant: the value of every megaflow is already masked (value & ~mask === 0).
 */
import { W } from '../packet/flowkey-layout';
import { hashKeyWords, hashMaskedKey, maskWords } from './flow-hash';
import { countersAsDoubles } from '../counters';

const EMPTY = -1;
const DELETED = -2;
const SEED = 0x5bd1e995;
/** SEED rotated as maskedStep rotates its running hash (searchSmall's first step). */
const SEED_ROT = ((SEED << 5) | (SEED >>> 27)) | 0;
export const MEGAFLOW_DEFAULT_MAX = 200000; // OVS's default flow-limit
/** Masks of at most this many non-zero words are searched by MegaflowCache.searchSmall. */
const SMALL_MASK_WORDS = 4;
/**
 * A subtable entry (Subtable.ents, `stride` words per slot): the hash of the masked key, the
 * megaflow id (EMPTY, DELETED or >= 0), then the masked key words the mask keeps, in the order
 * of Subtable.words (a subtable of a small mask pads them to SMALL_MASK_WORDS with zeros).
 */
const E_HASH = 0;
const E_ID = 1;
const E_WORDS = 2;
/** The entry stride of a small mask's subtable: E_WORDS + SMALL_MASK_WORDS, rounded up to 8. */
const SMALL_STRIDE = 8;
/**
 * Slot indexes are masked to [0, MAX_SLOTS) (a subtable never has more: maxFlows is at most a
 * few hundred thousand and a table stays at least half empty), so that V8 knows an entry's
 * word offsets fit in int32 and drops the overflow check it made on every index computation.
 */
const MAX_SLOTS = 1 << 22;

export class Subtable {
  readonly mask: Uint32Array;
  /** The mask's non-zero words, and the mask of each (wordMask[j] = mask[words[j]], as int32). */
  readonly words: Int32Array;
  readonly wordMask: Int32Array;
  readonly nWords: number;
  /** Hash of `mask`, for finding the subtable of a new megaflow. */
  readonly maskHash: number;
  /** Words per entry: SMALL_STRIDE for a mask of 1 to SMALL_MASK_WORDS words, else E_WORDS + nWords. */
  readonly stride: number;
  /** Entries, open addressing with linear probing, `stride` words per slot (E_*). */
  ents: Int32Array;
  /** Slots - 1 (a power of two minus one); a hash's home slot is its top bits, h >>> shift. */
  slotMask: number;
  shift: number;
  nUsed = 0;
  nLive = 0;
  hits = 0;
  /** Position in MegaflowCache.subtables (subtables are never removed, only emptied). */
  index = -1;

  constructor(mask: Uint32Array, maskHash: number) {
    this.mask = Uint32Array.from(mask);
    this.words = maskWords(mask);
    this.nWords = this.words.length;
    this.wordMask = Int32Array.from(this.words, (w) => mask[w] | 0);
    this.maskHash = maskHash;
    this.stride = this.nWords >= 1 && this.nWords <= SMALL_MASK_WORDS ? SMALL_STRIDE : E_WORDS + this.nWords;
    this.ents = emptyEntries(16, this.stride);
    this.slotMask = 15;
    this.shift = 28;
  }

  hashOf(keys: Uint32Array, base: number): number {
    return hashMaskedKey(keys, base, this.words, this.wordMask, this.nWords, SEED);
  }

  /** The home slot of hash `h`: its top bits (the hash's last multiply mixes into them). */
  home(h: number): number {
    return (h >>> this.shift) & this.slotMask & (MAX_SLOTS - 1);
  }
}

/** `nSlots` empty entries of `stride` words. */
function emptyEntries(nSlots: number, stride: number): Int32Array {
  const ents = new Int32Array(nSlots * stride);
  for (let s = 0; s < nSlots; s++) ents[s * stride + E_ID] = EMPTY;
  return ents;
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
    countersAsDoubles<MegaflowCache<T>>(this, 'nBatchLookups', 'nSubtableSearches');
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
      const id = this.lookupIn(st, keys, base, st.hashOf(keys, base));
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
      const nLeft = st.nWords >= 1 && st.nWords <= SMALL_MASK_WORDS ? searchSmall(st, keys, from, n, flowOut, left)
        : searchAny(st, keys, from, n, flowOut, left);
      st.hits += n - nLeft;
      n = nLeft;
      from = left;
    }
    this.nSubtableSearches += searches;
    return n;
  }

  /** The megaflow matching the key at `base` (its hash in `st`: `h`) in subtable `st`, or -1 (searchAny for one key). */
  private lookupIn(st: Subtable, keys: Uint32Array, base: number, h: number): number {
    const ents = st.ents, stride = st.stride, m = st.slotMask, words = st.words, wm = st.wordMask;
    const nWords = st.nWords;
    for (let s = st.home(h); ; s = (s + 1) & m) {
      const e = s * stride;
      const id = ents[e + E_ID];
      if (id === EMPTY) return -1;
      if (id < 0 || ents[e + E_HASH] !== h) continue;
      let j = 0;
      while (j < nWords && ((keys[base + words[j]] & wm[j]) ^ ents[e + E_WORDS + j]) === 0) j++;
      if (j === nWords) return id;
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
    let h = 0;
    if (st !== undefined) {
      h = st.hashOf(keys, base); // for the lookup and the insertion both
      const old = this.lookupIn(st, keys, base, h);
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
      h = st.hashOf(keys, base);
    } else if (st.nLive === 0) {
      this.ranked.push(st); // emptied subtables leave the lookup order; this one is back
    }
    this.lastInstalled = st;
    const v = id * W.KEY_WORDS, value = this.value, repKey = this.repKey;
    for (let w = 0; w < W.KEY_WORDS; w++) repKey[v + w] = keys[base + w];
    // The value row: zero but for the mask's words (a loop over all 55 words masking each was
    // most of an install, which every upcall pays).
    value.fill(0, v, v + W.KEY_WORDS);
    const words = st.words, wm = st.wordMask;
    for (let j = 0; j < st.nWords; j++) value[v + words[j]] = keys[base + words[j]] & wm[j];
    this.live[id] = 1;
    this.subtableOf[id] = st.index;
    this.nPackets[id] = 0;
    this.nBytes[id] = 0;
    this.usedMs[id] = nowMs;
    this.payload[id] = payload;
    insertIn(st, id, keys, base, h);
    this.nFlows++;
    return id;
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
    const ents = st.ents, stride = st.stride, m = st.slotMask;
    for (let s = st.home(h); ents[s * stride + E_ID] !== EMPTY; s = (s + 1) & m) {
      if (ents[s * stride + E_ID] === id) { ents[s * stride + E_ID] = DELETED; st.nLive--; break; }
    }
    if (st.nLive === 0) {
      const r = this.ranked.indexOf(st);
      if (r >= 0) this.ranked.splice(r, 1);
      for (let e = E_ID; e < ents.length; e += stride) ents[e] = EMPTY;
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

/**
 * Enters megaflow `id` (key at `keys[base...]`, hash `h`) in subtable `st`: its hash, id and masked words
 * in the first free or deleted slot of its probe sequence. Keeps the table at most half full,
 * deleted slots included (resize rehashes the live entries only).
 */
function insertIn(st: Subtable, id: number, keys: Uint32Array, base: number, h: number): void {
  if ((st.nUsed + 1) * 2 > st.slotMask + 1) resize(st);
  const ents = st.ents, stride = st.stride, m = st.slotMask, words = st.words, wm = st.wordMask;
  let s = st.home(h);
  while (ents[s * stride + E_ID] >= 0) s = (s + 1) & m;
  const e = s * stride;
  if (ents[e + E_ID] === EMPTY) st.nUsed++;
  ents[e + E_HASH] = h;
  ents[e + E_ID] = id;
  for (let j = 0; j < st.nWords; j++) ents[e + E_WORDS + j] = keys[base + words[j]] & wm[j];
  st.nLive++;
}

/** Rehashes `st`'s live entries into a table at most 1/4 full (grown or shrunk; 16 slots at least). */
function resize(st: Subtable): void {
  let size = st.slotMask + 1;
  while ((st.nLive + 1) * 4 > size) size *= 2;
  while ((st.nLive + 1) * 4 <= size >>> 1 && size > 16) size >>>= 1;
  const old = st.ents, stride = st.stride;
  const ents = emptyEntries(size, stride);
  st.ents = ents;
  st.slotMask = size - 1;
  st.shift = Math.clz32(size) + 1;
  st.nUsed = 0;
  for (let o = 0; o < old.length; o += stride) {
    if (old[o + E_ID] < 0) continue;
    let s = st.home(old[o + E_HASH]);
    while (ents[s * stride + E_ID] !== EMPTY) s = (s + 1) & st.slotMask;
    for (let j = 0; j < stride; j++) ents[s * stride + j] = old[o + j];
    st.nUsed++;
  }
}

/**
 * lookupIn written out for a batch over subtable `st`, for masks of more than
 * SMALL_MASK_WORDS words or none: the subtable's fields are loaded once; each key of
 * idx[0, n) gets flowOut[slot] (its megaflow here, or -1), and those it does not resolve are
 * listed in `left`, in order (`left` may be `idx`). Returns their count.
 */
function searchAny(st: Subtable, keys: Uint32Array, idx: Uint16Array, n: number, flowOut: Int32Array,
                   left: Uint16Array): number {
  const ents = st.ents, stride = st.stride, m = st.slotMask, shift = st.shift, words = st.words, wm = st.wordMask;
  const nWords = st.nWords;
  let nLeft = 0;
  for (let k = 0; k < n; k++) {
    const i = idx[k];
    const base = i * W.KEY_WORDS;
    const h = hashMaskedKey(keys, base, words, wm, nWords, SEED);
    let id = -1;
    for (let s = (h >>> shift) & m & (MAX_SLOTS - 1); ; s = (s + 1) & m & (MAX_SLOTS - 1)) {
      const e = s * stride;
      const c = ents[e + E_ID];
      if (c === EMPTY) break;
      if (c < 0 || ents[e + E_HASH] !== h) continue;
      let j = 0;
      while (j < nWords && ((keys[base + words[j]] & wm[j]) ^ ents[e + E_WORDS + j]) === 0) j++;
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
 * key word is loaded and masked once for both the hash (hashMaskedKey's, written out: the
 * branches on the word count do not change within the batch) and the compare. An entry is 8
 * words, its hash, id and masked words side by side (the words past the mask's count are 0,
 * as the key's are here): one probe reads one entry, not a slot, a hash and a megaflow's value
 * row in three arrays, and the compare tests all words at once.
 */
function searchSmall(st: Subtable, keys: Uint32Array, idx: Uint16Array, n: number, flowOut: Int32Array,
                     left: Uint16Array): number {
  // `| 0`: V8 then converts the numbers once here, not at every use in the loop.
  const ents = st.ents, m = st.slotMask | 0, shift = st.shift | 0, words = st.words, wm = st.wordMask;
  const nWords = st.nWords | 0;
  // Word indexes are below W.KEY_WORDS; masked, V8 knows that base + w cannot overflow.
  const w0 = words[0] & 63, w1 = nWords > 1 ? words[1] & 63 : 0, w2 = nWords > 2 ? words[2] & 63 : 0;
  const w3 = nWords > 3 ? words[3] & 63 : 0;
  const m0 = wm[0], m1 = nWords > 1 ? wm[1] : 0, m2 = nWords > 2 ? wm[2] : 0, m3 = nWords > 3 ? wm[3] : 0;
  let nLeft = 0;
  for (let k = 0; k < n; k++) {
    const i = idx[k];
    const base = i * W.KEY_WORDS;
    // hashMaskedKey written out (maskedStep's rotate and multiply).
    const k0 = keys[base + w0] & m0;
    let h = Math.imul(SEED_ROT ^ k0, 0x9e3779b1);
    let k1 = 0, k2 = 0, k3 = 0;
    if (nWords > 1) { k1 = keys[base + w1] & m1; h = Math.imul(((h << 5) | (h >>> 27)) ^ k1, 0x9e3779b1); }
    if (nWords > 2) { k2 = keys[base + w2] & m2; h = Math.imul(((h << 5) | (h >>> 27)) ^ k2, 0x9e3779b1); }
    if (nWords > 3) { k3 = keys[base + w3] & m3; h = Math.imul(((h << 5) | (h >>> 27)) ^ k3, 0x9e3779b1); }
    let id = -1;
    // The words alone decide (a hash compare first would be one more load for every hit).
    for (let s = (h >>> shift) & m & (MAX_SLOTS - 1); ; s = (s + 1) & m & (MAX_SLOTS - 1)) {
      const e = s * SMALL_STRIDE;
      const c = ents[e + E_ID];
      if (c >= 0 && ((k0 ^ ents[e + E_WORDS]) | (k1 ^ ents[e + E_WORDS + 1]) | (k2 ^ ents[e + E_WORDS + 2]) |
                     (k3 ^ ents[e + E_WORDS + 3])) === 0) {
        id = c;
        break;
      }
      if (c === EMPTY) break;
    }
    flowOut[i] = id;
    if (id < 0) left[nLeft++] = i;
  }
  return nLeft;
}

export function sameMask(a: Uint32Array, b: Uint32Array): boolean {
  for (let w = 0; w < W.KEY_WORDS; w++) if (a[w] !== b[w]) return false;
  return true;
}
