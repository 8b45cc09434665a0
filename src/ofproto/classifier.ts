/**
 * The classifier: finds the highest-priority rule whose match covers a flow key, and records
 * which key bits the decision depended on (the megaflow wildcards), as OVS's lib/classifier.c.
 *
 * Who calls: ofproto/bridge.ts keeps one Classifier per table and inserts/removes rules on
 * flow-mods; ofproto/xlate.ts calls lookup() once per table visit of an upcall (slow path).
 *
 * Structure (tuple-space search): one Subtable per distinct mask. A subtable is an
 * open-addressing hash table keyed by a numeric hash of the masked key words; each slot holds a
 * Bucket (one match value) with its rules sorted by priority, highest first. Subtables are kept
 * in `order`, sorted by the highest priority they hold (ties: the older subtable first), and a
 * lookup stops as soon as the next subtable cannot beat the best rule found so far.
 *
 * Staged lookup: a subtable's mask words are split into the stages OVS uses (metadata, L2, L3,
 * L4). For every stage but the last the subtable keeps a counted set of the cumulative hashes of
 * its rules' values up to that stage. When the packet's cumulative hash is absent at stage k, no
 * rule in the subtable can match, whatever the later stages hold, so only the bits of stages
 * 0..k are un-wildcarded. A found rule, or a miss in the final stage, un-wildcards the whole
 * subtable mask. Subtables skipped by the priority early-exit un-wildcard nothing.
 *
 * Prefix tries (OVS's classifier tries on nw_src and nw_dst): every rule whose mask on one of
 * those words is a CIDR prefix puts (value, length) into that word's binary trie. When a lookup
 * reaches the L3 stage of a subtable whose mask is a /L prefix there, one walk of the trie with
 * the packet's address tells whether any rule of the classifier has an /L prefix containing it.
 * If none does, the subtable is skipped having un-wildcarded only its metadata/L2 stages and
 * the top min(L, d + 1) address bits, d being how deep the walk went: enough to prove that no
 * /L prefix matches, and usually far fewer than the /L a plain miss would cost.
 *
 * Megaflow invariant: every key that agrees with the looked-up key on the bits OR-ed into `wc`
 * gets the same rule. An extra 1-bit in `wc` is safe (a narrower megaflow), a missing one is not.
 *
 * Equal priorities: OVS leaves the choice among overlapping rules of equal priority undefined (in
 * practice it is the first subtable of its priority vector to reach that priority, which in the
 * cases test/ofproto/ovs-diff.test.ts checks is the rule inserted earliest). flowd defines it:
 * the rule inserted earliest wins. A rule that replaces an identical one (same match and priority)
 * takes over the old rule's place in that order. To honour this the lookup also visits
 * subtables whose highest priority equals the best found so far.
 *
 * Conjunctions (OVS's conjunctive matches, `conjunction(id,k/n)` and `conj_id`): a rule whose
 * `conj` is set is a "soft" match, never returned itself. A lookup first finds the best hard
 * rule as above, noting every soft match of higher priority met on the way; then, among the
 * soft matches of the highest priority, a conjunction whose clauses 1..n all matched sets the
 * key's conj_id and the key is looked up again (without conjunctions); a rule found that way
 * wins. Otherwise the soft matches fall back to lower-priority rules of identical match, round
 * after round, until none is left above the hard rule (OVS's classifier_lookup__, exactly).
 * Every subtable either pass visited joins the wildcards, conj_id included (callers drop it:
 * it is 0 in every packet).
 *
 * Invariants: match.value[w] & ~match.mask[w] === 0 for every rule (parsers normalise).
 * Ownership: the classifier keeps references to the rules and their Match arrays; callers must
 * not mutate a rule's match while it is inserted. lookup() allocates nothing.
 */
import {
  KEY_WORDS, W_IN_PORT, W_RECIRC_ID, W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC, W_TUN_DST,
  W_DL_DST_HI, W_DL_DST_LO, W_DL_SRC_HI, W_DL_SRC_LO, W_VLAN_DLTYPE,
  W_NW_SRC, W_NW_DST, W_NW_MISC, W_TP, W_TCP_FLAGS, W_ARP_SHA_HI, W_ARP_SHA_LO,
  W_ARP_THA_HI, W_ARP_THA_LO, W_IPV6_SRC, W_IPV6_DST,
  W_CT_STATE, W_CT_ZONE, W_CT_MARK, W_METADATA_HI, W_METADATA_LO, W_REG0, N_REGS, W_CONJ_ID,
} from '../packet/flowkey-layout';
import type { ClassifierRule, ConjClause, Match } from './types';
import { fmix, hashWord } from '../dpif/flow-hash';

/** Number of lookup stages (metadata, L2, L3, L4), as OVS's classifier. */
export const N_STAGES = 4;

/** Stage of every key word: 0 metadata, 1 L2, 2 L3, 3 L4. */
export const WORD_STAGE: Uint8Array = (() => {
  const s = new Uint8Array(KEY_WORDS);
  const meta = [W_IN_PORT, W_RECIRC_ID, W_TUN_ID_HI, W_TUN_ID_LO, W_TUN_SRC, W_TUN_DST,
    W_CT_STATE, W_CT_ZONE, W_CT_MARK, W_METADATA_HI, W_METADATA_LO, W_CONJ_ID];
  for (let r = 0; r < N_REGS; r++) meta.push(W_REG0 + r);
  for (const w of meta) s[w] = 0;
  for (const w of [W_DL_DST_HI, W_DL_DST_LO, W_DL_SRC_HI, W_DL_SRC_LO, W_VLAN_DLTYPE]) s[w] = 1;
  // OVS keeps tcp_flags and the ARP hardware addresses in its L3 segment; so do we.
  const l3 = [W_NW_SRC, W_NW_DST, W_NW_MISC, W_TCP_FLAGS, W_ARP_SHA_HI, W_ARP_SHA_LO,
    W_ARP_THA_HI, W_ARP_THA_LO];
  for (let i = 0; i < 4; i++) l3.push(W_IPV6_SRC + i, W_IPV6_DST + i);
  for (const w of l3) s[w] = 2;
  s[W_TP] = 3;
  return s;
})();

const HASH_BASIS = 0x2f1b5a3d;



/**
 * A counted set of 32-bit hashes (open addressing, linear probing), used for the stage indices.
 * count[i] > 0: live; 0: never used; -1: deleted (tombstone).
 */
class HashCountSet {
  private keys = new Uint32Array(16);
  private counts = new Int32Array(16);
  private nUsed = 0; // live + tombstones

  has(h: number): boolean {
    const mask = this.keys.length - 1;
    let i = fmix(h) & mask;
    for (;;) {
      const c = this.counts[i];
      if (c === 0) return false;
      if (c > 0 && this.keys[i] === (h >>> 0)) return true;
      i = (i + 1) & mask;
    }
  }

  add(h: number): void {
    const mask = this.keys.length - 1;
    let i = fmix(h) & mask;
    let tomb = -1;
    for (;;) {
      const c = this.counts[i];
      if (c === 0) break;
      if (c > 0 && this.keys[i] === (h >>> 0)) { this.counts[i]++; return; }
      if (c < 0 && tomb < 0) tomb = i;
      i = (i + 1) & mask;
    }
    if (tomb >= 0) i = tomb; else this.nUsed++;
    this.keys[i] = h >>> 0;
    this.counts[i] = 1;
    if (this.nUsed * 2 > this.keys.length) this.rehash(this.keys.length * 2);
  }

  remove(h: number): void {
    const mask = this.keys.length - 1;
    let i = fmix(h) & mask;
    for (;;) {
      const c = this.counts[i];
      if (c === 0) return;
      if (c > 0 && this.keys[i] === (h >>> 0)) {
        if (--this.counts[i] === 0) this.counts[i] = -1;
        return;
      }
      i = (i + 1) & mask;
    }
  }

  private rehash(cap: number): void {
    const oldKeys = this.keys, oldCounts = this.counts;
    this.keys = new Uint32Array(cap);
    this.counts = new Int32Array(cap);
    this.nUsed = 0;
    const mask = cap - 1;
    for (let j = 0; j < oldKeys.length; j++) {
      if (oldCounts[j] <= 0) continue;
      let i = fmix(oldKeys[j]) & mask;
      while (this.counts[i] !== 0) i = (i + 1) & mask;
      this.keys[i] = oldKeys[j];
      this.counts[i] = oldCounts[j];
      this.nUsed++;
    }
  }
}

/**
 * The prefixes of one key word, kept as a trie flattened into hash sets: `nodes[k]` counts the
 * k-bit prefixes of every stored prefix (the trie's nodes at depth k), `ends[L]` the stored /L
 * prefixes themselves. "Does a stored /L contain addr?" is one probe; how deep addr's path
 * goes is a binary search over depths (membership shrinks with depth), ~6 probes, and only
 * needed when a subtable is skipped. Control path: add() allocates the sets on first use.
 */
class PrefixTrie {
  private readonly nodes: (HashCountSet | null)[] = new Array<HashCountSet | null>(33).fill(null);
  private readonly ends: (HashCountSet | null)[] = new Array<HashCountSet | null>(33).fill(null);
  /** depth() of the last address asked, valid until the next add(): a lookup asks once per subtable. */
  private memoAddr = 0;
  private memoDepth = -1;

  add(addr: number, len: number, delta: number): void {
    this.memoDepth = -1;
    for (let k = 1; k <= len; k++) {
      let set = this.nodes[k];
      if (set === null) { set = new HashCountSet(); this.nodes[k] = set; }
      if (delta > 0) set.add((addr & topBits(k)) >>> 0); else set.remove((addr & topBits(k)) >>> 0);
    }
    let e = this.ends[len];
    if (e === null) { e = new HashCountSet(); this.ends[len] = e; }
    if (delta > 0) e.add((addr & topBits(len)) >>> 0); else e.remove((addr & topBits(len)) >>> 0);
  }

  /** True when a stored /len prefix contains `addr`. */
  hasEnd(addr: number, len: number): boolean {
    const e = this.ends[len];
    return e !== null && e.has((addr & topBits(len)) >>> 0);
  }

  /** How many leading bits of `addr` follow some stored prefix (0..32). */
  depth(addr: number): number {
    if (this.memoDepth >= 0 && this.memoAddr === addr) return this.memoDepth;
    let lo = 0, hi = 32; // invariant: depth >= lo, depth <= hi
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      const set = this.nodes[mid];
      if (set !== null && set.has((addr & topBits(mid)) >>> 0)) lo = mid; else hi = mid - 1;
    }
    this.memoAddr = addr;
    this.memoDepth = lo;
    return lo;
  }
}

/** Key words that get a prefix trie. */
const TRIE_WORDS = [W_NW_SRC, W_NW_DST];

/** Length of `m` as a CIDR prefix mask (leading ones only), or -1. */
function prefixLength(m: number): number {
  m >>>= 0;
  if (m === 0) return 0;
  const len = Math.clz32(~m >>> 0);
  const want = len >= 32 ? 0xffffffff : (~(0xffffffff >>> len)) >>> 0;
  return want === m ? len : -1;
}

/** The top `n` bits set (n in 0..32). */
function topBits(n: number): number {
  return n <= 0 ? 0 : n >= 32 ? 0xffffffff : (~(0xffffffff >>> n)) >>> 0;
}

/** All rules of one subtable with one match value, highest priority first. */
class Bucket<R> {
  readonly rules: R[] = [];
  /** Insertion sequence of rules[i], for the equal-priority tie-break across subtables. */
  readonly seqs: number[] = [];
  constructor(readonly hash: number, readonly value: Uint32Array) {}
}

const TOMB = new Bucket<never>(0, new Uint32Array(0));

/** One mask, its stage layout and its hash table of buckets. */
class Subtable<R extends ClassifierRule> {
  readonly mask: Uint32Array;
  /** Key word indices with a non-zero mask, in stage order. */
  readonly words: Int32Array;
  /** words[stageEnd[s - 1] .. stageEnd[s]) are stage s's words (stageEnd[-1] = 0). */
  readonly stageEnd = new Int32Array(N_STAGES);
  /** Index of the last stage that has words (stages after it are empty). */
  readonly lastStage: number;
  /** Cumulative hashes up to the end of stage s, for every stage before lastStage. */
  readonly stageIndex: HashCountSet[] = [];
  // The hash table, one entry per slot in parallel arrays, so that a probe reads the slot's
  // hash and masked words and, on a match, its head rule, without visiting the bucket (a lookup
  // over thousands of rules is bound by cache misses, not by instructions).
  hashes = new Uint32Array(8);
  /** Masked value of each slot's bucket over `words`, words.length per slot. */
  vals: Uint32Array;
  slots: (Bucket<R> | null)[] = new Array<Bucket<R> | null>(8).fill(null);
  /** rules[0] of each slot's bucket (null: empty or deleted slot) and its insertion sequence. */
  heads: (R | null)[] = new Array<R | null>(8).fill(null);
  headSeqs = new Float64Array(8);
  nSlotsUsed = 0; // live + tombstones
  nRules = 0;
  maxPriority = -1;
  /** Rule count per priority, to recompute maxPriority after removals. */
  readonly priorityCounts = new Map<number, number>();
  /** Per TRIE_WORDS entry: the subtable's prefix length on that word (>= 1), or 0 when unused. */
  readonly trieLen = new Int32Array(TRIE_WORDS.length);
  /** Whether any trieLen is set and the subtable has an L3 stage to skip at. */
  readonly usesTries: boolean;

  constructor(mask: Uint32Array, readonly id: number) {
    this.mask = mask.slice();
    const ws: number[] = [];
    for (let s = 0; s < N_STAGES; s++) {
      for (let w = 0; w < KEY_WORDS; w++) if (mask[w] !== 0 && WORD_STAGE[w] === s) ws.push(w);
      this.stageEnd[s] = ws.length;
    }
    this.words = Int32Array.from(ws);
    this.vals = new Uint32Array(8 * ws.length);
    let last = 0;
    for (let s = 0; s < N_STAGES; s++) if (this.stageEnd[s] > (s > 0 ? this.stageEnd[s - 1] : 0)) last = s;
    this.lastStage = last;
    for (let s = 0; s < last; s++) this.stageIndex.push(new HashCountSet());
    let uses = false;
    for (let t = 0; t < TRIE_WORDS.length; t++) {
      const len = prefixLength(mask[TRIE_WORDS[t]]);
      this.trieLen[t] = len > 0 ? len : 0;
      if (len > 0) uses = true;
    }
    this.usesTries = uses;
  }

  /** Hash of `value` (already masked) over all mask words; also fills stage hashes in `out`. */
  hashValue(value: Uint32Array, out: number[] | null): number {
    let h = HASH_BASIS;
    let i = 0;
    for (let s = 0; s <= this.lastStage; s++) {
      const end = this.stageEnd[s];
      for (; i < end; i++) h = hashWord(h, value[this.words[i]]);
      if (out !== null && s < this.lastStage) out.push(h);
    }
    return h >>> 0;
  }

  findBucket(hash: number, value: Uint32Array): Bucket<R> | null {
    const cap = this.slots.length - 1;
    let i = fmix(hash) & cap;
    for (;;) {
      const b = this.slots[i];
      if (b === null) return null;
      if (b !== TOMB && this.hashes[i] === hash && this.sameValue(b.value, value)) return b;
      i = (i + 1) & cap;
    }
  }

  private sameValue(a: Uint32Array, b: Uint32Array): boolean {
    const words = this.words;
    for (let i = 0; i < words.length; i++) if (a[words[i]] !== b[words[i]]) return false;
    return true;
  }

  /** Slot of live bucket `b`, or -1. */
  private slotOf(b: Bucket<R>): number {
    const cap = this.slots.length - 1;
    let i = fmix(b.hash) & cap;
    while (this.slots[i] !== null) {
      if (this.slots[i] === b) return i;
      i = (i + 1) & cap;
    }
    return -1;
  }

  /** Copies `b`'s head rule and its sequence into slot `i` (after b.rules changed). */
  private setHead(i: number, b: Bucket<R>): void {
    this.heads[i] = b.rules.length > 0 ? b.rules[0] : null;
    this.headSeqs[i] = b.seqs.length > 0 ? b.seqs[0] : 0;
  }

  /** b.rules[0] or b.seqs[0] changed: refreshes the slot's copy. */
  headChanged(b: Bucket<R>): void {
    const i = this.slotOf(b);
    if (i >= 0) this.setHead(i, b);
  }

  addBucket(b: Bucket<R>): void {
    const cap = this.slots.length - 1;
    let i = fmix(b.hash) & cap;
    let tomb = -1;
    while (this.slots[i] !== null) {
      if (this.slots[i] === TOMB && tomb < 0) tomb = i;
      i = (i + 1) & cap;
    }
    if (tomb >= 0) i = tomb; else this.nSlotsUsed++;
    this.slots[i] = b;
    this.hashes[i] = b.hash;
    const words = this.words, n = words.length, o = i * n;
    for (let j = 0; j < n; j++) this.vals[o + j] = b.value[words[j]];
    this.setHead(i, b);
    if (this.nSlotsUsed * 2 > this.slots.length) this.rehash(this.slots.length * 2);
  }

  removeBucket(b: Bucket<R>): void {
    const i = this.slotOf(b);
    if (i < 0) return;
    this.slots[i] = TOMB as Bucket<R>;
    this.heads[i] = null;
  }

  private rehash(size: number): void {
    const old = this.slots;
    this.slots = new Array<Bucket<R> | null>(size).fill(null);
    this.heads = new Array<R | null>(size).fill(null);
    this.hashes = new Uint32Array(size);
    this.vals = new Uint32Array(size * this.words.length);
    this.headSeqs = new Float64Array(size);
    this.nSlotsUsed = 0;
    for (let j = 0; j < old.length; j++) {
      const b = old[j];
      if (b !== null && b !== TOMB) this.addBucket(b);
    }
  }

  /** Every bucket, live ones only. */
  buckets(): Bucket<R>[] {
    const out: Bucket<R>[] = [];
    for (const b of this.slots) if (b !== null && b !== TOMB) out.push(b);
    return out;
  }

  notePriorityAdded(p: number): void {
    this.priorityCounts.set(p, (this.priorityCounts.get(p) ?? 0) + 1);
    if (p > this.maxPriority) this.maxPriority = p;
  }

  notePriorityRemoved(p: number): void {
    const n = (this.priorityCounts.get(p) ?? 1) - 1;
    if (n > 0) { this.priorityCounts.set(p, n); return; }
    this.priorityCounts.delete(p);
    if (p === this.maxPriority) {
      let m = -1;
      for (const q of this.priorityCounts.keys()) if (q > m) m = q;
      this.maxPriority = m;
    }
  }
}

function maskHash(mask: Uint32Array): number {
  let h = HASH_BASIS;
  for (let w = 0; w < KEY_WORDS; w++) h = hashWord(h, mask[w]);
  return h >>> 0;
}

function sameMask(a: Uint32Array, b: Uint32Array): boolean {
  for (let w = 0; w < KEY_WORDS; w++) if (a[w] !== b[w]) return false;
  return true;
}

/** Scratch array of stage hashes used while inserting/removing (control path only). */
const stageScratch: number[] = [];

export class Classifier<R extends ClassifierRule> {
  /** Subtables by maskHash; a list because different masks may share a hash. */
  private readonly byMask = new Map<number, Subtable<R>[]>();
  /** Subtables in lookup order: maxPriority descending, then older subtable first. */
  private order: Subtable<R>[] = [];
  private nRules = 0;
  private nextSeq = 0;
  private nextSubtableId = 0;
  private readonly tries: PrefixTrie[] = TRIE_WORDS.map(() => new PrefixTrie());
  /** Soft matches of the lookup in progress: bucket and index of the clause rule in it. */
  private readonly softBuckets: (Bucket<R> | null)[] = [];
  private readonly softIdx: number[] = [];
  private nSoft = 0;

  /** Number of rules held. */
  get size(): number {
    return this.nRules;
  }

  /** Number of distinct masks (subtables); exposed for stats and tests. */
  get nSubtables(): number {
    return this.order.length;
  }

  private subtableFor(mask: Uint32Array, create: boolean): Subtable<R> | undefined {
    const h = maskHash(mask);
    let list = this.byMask.get(h);
    if (list !== undefined) for (const st of list) if (sameMask(st.mask, mask)) return st;
    if (!create) return undefined;
    const st = new Subtable<R>(mask, this.nextSubtableId++);
    if (list === undefined) { list = []; this.byMask.set(h, list); }
    list.push(st);
    this.order.push(st);
    return st;
  }

  private resort(): void {
    this.order.sort((a, b) => (b.maxPriority - a.maxPriority) || (a.id - b.id));
  }

  /**
   * Inserts `rule`. When a rule with the same match and priority exists, `rule` replaces it (and
   * keeps its place in the equal-priority order) and the old rule is returned; else undefined.
   */
  insert(rule: R): R | undefined {
    const m = rule.match;
    const st = this.subtableFor(m.mask, true) as Subtable<R>;
    stageScratch.length = 0;
    const hash = st.hashValue(m.value, stageScratch);
    let b = st.findBucket(hash, m.value);
    if (b === null) {
      b = new Bucket<R>(hash, m.value);
      st.addBucket(b);
    }
    const rules = b.rules;
    let i = 0;
    while (i < rules.length && rules[i].priority > rule.priority) i++;
    if (i < rules.length && rules[i].priority === rule.priority) {
      const old = rules[i];
      rules[i] = rule;
      if (i === 0) st.headChanged(b);
      return old;
    }
    rules.splice(i, 0, rule);
    b.seqs.splice(i, 0, this.nextSeq++);
    if (i === 0) st.headChanged(b);
    for (let s = 0; s < stageScratch.length; s++) st.stageIndex[s].add(stageScratch[s]);
    for (let t = 0; t < TRIE_WORDS.length; t++) {
      if (st.trieLen[t] > 0) this.tries[t].add(m.value[TRIE_WORDS[t]], st.trieLen[t], 1);
    }
    st.nRules++;
    this.nRules++;
    const before = st.maxPriority;
    st.notePriorityAdded(rule.priority);
    if (st.maxPriority !== before || st.nRules === 1) this.resort();
    return undefined;
  }

  /** Removes exactly `rule` (by identity); returns false when it is not in the classifier. */
  remove(rule: R): boolean {
    const m = rule.match;
    const st = this.subtableFor(m.mask, false);
    if (st === undefined) return false;
    stageScratch.length = 0;
    const hash = st.hashValue(m.value, stageScratch);
    const b = st.findBucket(hash, m.value);
    if (b === null) return false;
    const i = b.rules.indexOf(rule);
    if (i < 0) return false;
    b.rules.splice(i, 1);
    b.seqs.splice(i, 1);
    if (b.rules.length === 0) st.removeBucket(b);
    else if (i === 0) st.headChanged(b);
    for (let s = 0; s < stageScratch.length; s++) st.stageIndex[s].remove(stageScratch[s]);
    for (let t = 0; t < TRIE_WORDS.length; t++) {
      if (st.trieLen[t] > 0) this.tries[t].add(m.value[TRIE_WORDS[t]], st.trieLen[t], -1);
    }
    st.nRules--;
    this.nRules--;
    const before = st.maxPriority;
    st.notePriorityRemoved(rule.priority);
    if (st.nRules === 0) {
      const h = maskHash(st.mask);
      const list = this.byMask.get(h) as Subtable<R>[];
      list.splice(list.indexOf(st), 1);
      if (list.length === 0) this.byMask.delete(h);
      this.order.splice(this.order.indexOf(st), 1);
    } else if (st.maxPriority !== before) {
      this.resort();
    }
    return true;
  }

  /** The rule with exactly this match and priority (ovs-ofctl's "strict" identity), if any. */
  findExact(match: Match, priority: number): R | undefined {
    const st = this.subtableFor(match.mask, false);
    if (st === undefined) return undefined;
    const b = st.findBucket(st.hashValue(match.value, null), match.value);
    if (b === null) return undefined;
    for (const r of b.rules) if (r.priority === priority) return r;
    return undefined;
  }

  /** All rules, highest priority first (ties: insertion order). A fresh array. */
  rules(): R[] {
    const all: { r: R; seq: number }[] = [];
    for (const st of this.order) {
      for (const b of st.buckets()) for (let i = 0; i < b.rules.length; i++) all.push({ r: b.rules[i], seq: b.seqs[i] });
    }
    all.sort((a, b) => (b.r.priority - a.r.priority) || (a.seq - b.seq));
    return all.map((x) => x.r);
  }

  /**
   * True when a trie proves no rule of `st` can match (no /L prefix of the classifier contains
   * the packet's address); then ORs into `wc` the words before L3 (`prefixEnd` of st.words)
   * and the address bits the proof used.
   */
  private trieSkip(st: Subtable<R>, keys: Uint32Array, base: number, wc: Uint32Array | null,
                   prefixEnd: number): boolean {
    for (let t = 0; t < TRIE_WORDS.length; t++) {
      const len = st.trieLen[t];
      if (len === 0) continue;
      const trie = this.tries[t];
      const addr = keys[base + TRIE_WORDS[t]];
      if (trie.hasEnd(addr, len)) continue;
      if (wc !== null) {
        const words = st.words, mask = st.mask;
        for (let j = 0; j < prefixEnd; j++) { const w = words[j]; wc[w] |= mask[w]; }
        wc[TRIE_WORDS[t]] |= topBits(Math.min(len, trie.depth(addr) + 1));
      }
      return true;
    }
    return false;
  }

  /**
   * Finds the highest-priority rule matching the key at `keys[base .. base + KEY_WORDS)`.
   * When `wc` is given (a KEY_WORDS mask), ORs into it every key bit the decision depended on.
   * Conjunctive matches follow OVS (see "Conjunctions" in the header). Allocates nothing
   * unless a conjunction clause matches.
   */
  lookup(keys: Uint32Array, base: number, wc: Uint32Array | null): R | undefined {
    this.nSoft = 0;
    const hard = this.scan(keys, base, wc, true);
    if (this.nSoft === 0) return hard;
    return this.softLookup(keys, base, wc, hard);
  }

  /**
   * One pass over the subtables (OVS's main loop of classifier_lookup__): returns the best
   * "hard" (non-conjunctive) rule and, when `allowConj`, records in soft* every bucket whose
   * head rule is a conjunction clause of higher priority than the best hard rule found so far.
   */
  private scan(keys: Uint32Array, base: number, wc: Uint32Array | null, allowConj: boolean): R | undefined {
    let best: R | undefined;
    let bestPriority = -1;
    let bestSeq = 0;
    const order = this.order;
    for (let t = 0; t < order.length; t++) {
      const st = order[t];
      if (st.maxPriority < bestPriority) break;
      const mask = st.mask, words = st.words, stageEnd = st.stageEnd, lastStage = st.lastStage;
      let h = HASH_BASIS;
      let i = 0;
      let missEnd = -1; // words [0, missEnd) were looked at before a stage miss
      for (let s = 0; s <= lastStage; s++) {
        // Entering L3: the prefix tries may rule the subtable out on a few address bits.
        if (s === 2 && st.usesTries && this.trieSkip(st, keys, base, wc, i)) { missEnd = -2; break; }
        if (s === lastStage) break;
        const end = stageEnd[s];
        if (end === i) continue; // empty stage: nothing to test
        for (; i < end; i++) { const w = words[i]; h = hashWord(h, keys[base + w] & mask[w]); }
        if (!st.stageIndex[s].has(h)) { missEnd = end; break; }
      }
      if (missEnd === -2) continue;
      if (missEnd >= 0) {
        if (wc !== null) for (let j = 0; j < missEnd; j++) { const w = words[j]; wc[w] |= mask[w]; }
        continue;
      }
      const n = words.length;
      for (; i < n; i++) { const w = words[i]; h = hashWord(h, keys[base + w] & mask[w]); }
      if (wc !== null) for (let j = 0; j < n; j++) { const w = words[j]; wc[w] |= mask[w]; }
      const hash = h >>> 0;
      const slots = st.slots, hashes = st.hashes, vals = st.vals, cap = slots.length - 1;
      let k = fmix(hash) & cap;
      for (;;) {
        const b = slots[k];
        if (b === null) break;
        if (hashes[k] === hash && b !== TOMB) {
          const o = k * n;
          let eq = true;
          for (let j = 0; j < n; j++) {
            const w = words[j];
            // XOR then test: `&` yields a signed int32, which never equals a Uint32 value >= 2^31.
            if (((keys[base + w] & mask[w]) ^ vals[o + j]) !== 0) { eq = false; break; }
          }
          if (eq) {
            const r = st.heads[k] as R;
            const conj = r.conj;
            if (conj !== undefined && conj !== null && conj.length > 0) {
              if (allowConj && r.priority > bestPriority) this.pushSoft(b, 0);
            } else if (r.priority > bestPriority || (r.priority === bestPriority && st.headSeqs[k] < bestSeq)) {
              best = r;
              bestPriority = r.priority;
              bestSeq = st.headSeqs[k];
            }
            break;
          }
        }
        k = (k + 1) & cap;
      }
    }
    return best;
  }

  private pushSoft(b: Bucket<R>, idx: number): void {
    this.softBuckets[this.nSoft] = b;
    this.softIdx[this.nSoft] = idx;
    this.nSoft++;
  }

  /**
   * The soft-match rounds of OVS's classifier_lookup__: among the conjunction clauses of the
   * highest priority above the hard match, the first conjunction id whose clauses 1..n all
   * matched sets conj_id and looks the key up again without conjunctions; the first rule that
   * lookup finds is the answer. When none completes, each of those clauses gives way to the
   * next lower-priority rule of its bucket (identical match): a clause again, or a hard rule
   * that may beat the hard match. conj_id is restored before returning.
   */
  private softLookup(keys: Uint32Array, base: number, wc: Uint32Array | null, hard: R | undefined): R | undefined {
    let hardPri = hard === undefined ? -1 : hard.priority;
    const bk = this.softBuckets, ix = this.softIdx;
    for (;;) {
      let n = 0;
      for (let i = 0; i < this.nSoft; i++) {
        const b = bk[i];
        if (b === null || b.rules[ix[i]].priority <= hardPri) continue;
        bk[n] = b; ix[n] = ix[i]; n++;
      }
      this.nSoft = n;
      if (n === 0) break;
      let softPri = -1, nSoftPri = 0;
      for (let i = 0; i < n; i++) {
        const p = (bk[i] as Bucket<R>).rules[ix[i]].priority;
        if (p > softPri) { softPri = p; nSoftPri = 1; } else if (p === softPri) nSoftPri++;
      }
      // Clause bitmaps per conjunction id: bits of absent clauses start set (OVS's
      // UINT64_MAX << n_clauses), so a conjunction is complete when all 64 bits are.
      const clauses = new Map<number, bigint>();
      for (let i = 0; i < n; i++) {
        const r = (bk[i] as Bucket<R>).rules[ix[i]];
        if (r.priority !== softPri) continue;
        const id = completedConjunction(r.conj as readonly ConjClause[], nSoftPri, clauses);
        if (id < 0) continue;
        const saved = keys[base + W_CONJ_ID];
        keys[base + W_CONJ_ID] = id;
        const found = this.scan(keys, base, wc, false);
        keys[base + W_CONJ_ID] = saved;
        if (found !== undefined) { this.nSoft = 0; return found; }
      }
      for (let i = 0; i < n; i++) {
        const b = bk[i] as Bucket<R>;
        if (b.rules[ix[i]].priority !== softPri) continue;
        const next = ix[i] + 1;
        if (next >= b.rules.length) { bk[i] = null; continue; }
        const r = b.rules[next];
        if (r.conj !== undefined && r.conj !== null && r.conj.length > 0) { ix[i] = next; continue; }
        bk[i] = null;
        if (r.priority > hardPri) { hard = r; hardPri = r.priority; }
      }
    }
    return hard;
  }
}

/**
 * Adds the clauses of one soft match to `clauses` (OVS's find_conjunctive_match) and returns
 * the first conjunction id they complete, or -1. A conjunction of more clauses than there are
 * soft matches at this priority (`maxClauses`) cannot complete and is skipped.
 */
function completedConjunction(conj: readonly ConjClause[], maxClauses: number,
                              clauses: Map<number, bigint>): number {
  for (let i = 0; i < conj.length; i++) {
    const c = conj[i];
    if (c.nClauses > maxClauses) continue;
    let bits = clauses.get(c.id);
    if (bits === undefined) bits = (ALL64 << BigInt(c.nClauses)) & ALL64;
    bits |= 1n << BigInt(c.clause);
    clauses.set(c.id, bits);
    if (bits === ALL64) return c.id;
  }
  return -1;
}

const ALL64 = 0xffffffffffffffffn;
