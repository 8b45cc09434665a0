/**
 * Compiled programs interned by an action digest: every megaflow whose upcall returned an equal
 * datapath action list (dpif/dp-actions.ts) shares one Program (dpif/compile.ts), compiled once.
 * Many megaflows share a list (every MAC of a network is "output to the tunnel port"), so an
 * upcall usually compiles nothing and allocates no program.
 *
 * Called by: dpif/datapath.ts, once per upcall (the upcall stage) and per megaflow re-translated
 * by revalidation; cleared with the caches (flushCaches), since programs hold port indexes and
 * memoised tunnel headers.
 *
 * Equality is structural and the same for every action kind, present and future: two lists are
 * equal when they have the same length and their actions have the same own enumerable fields
 * with equal values (numbers, strings, booleans, bigints, null/undefined, nested lists and
 * objects, typed arrays element by element), in any field order. The digest hashes the same
 * values (an object's fields as a sum, so order does not count); equal lists have equal
 * digests, and a digest collision is only a failed compare.
 *
 * Ownership: get() keeps its own copy of a list it has not seen (the caller may reuse its
 * array; the action objects must not be mutated after they are handed over, as for any cached
 * list). Growth is bounded: past `maxPrograms` the table starts over (programs stay with their
 * megaflows; only sharing with later upcalls is lost).
 */
import { CompileEnv, compileActions, Program } from './compile';
import { hashWord } from './flow-hash';
import type { DpAction } from './dp-actions';

/** Default bound on interned programs. */
export const PROGRAM_CACHE_DEFAULT_MAX = 16384;

const SEED = 0x3c6ef372;

/** Folds any action field value into `h` (see the header: the values equalValues compares). */
function hashValue(h: number, v: unknown): number {
  switch (typeof v) {
    case 'number':
      // 48-bit MACs and -1 ("leave alone") are numbers: both halves count.
      return hashWord(hashWord(h, v >>> 0), Math.floor(v / 4294967296) | 0);
    case 'string':
      // Strings are action kinds and names: length and end characters tell them apart enough
      // (equality is exact anyway; a collision only costs a compare).
      return v.length === 0 ? hashWord(h, 0x15) : hashWord(h, v.length | (v.charCodeAt(0) << 8) | (v.charCodeAt(v.length - 1) << 20));
    case 'boolean': return hashWord(h, v ? 0x11 : 0x10);
    case 'bigint': return hashWord(h, Number(BigInt.asUintN(32, v)));
    case 'undefined': return hashWord(h, 0x12);
    case 'object': {
      if (v === null) return hashWord(h, 0x13);
      if (Array.isArray(v)) {
        h = hashWord(h, v.length);
        for (let i = 0; i < v.length; i++) h = hashValue(h, v[i]);
        return h;
      }
      if (ArrayBuffer.isView(v)) {
        const a = v as unknown as ArrayLike<number>;
        h = hashWord(h, a.length);
        for (let i = 0; i < a.length; i++) h = hashWord(h, a[i]);
        return h;
      }
      // Fields in any order (equalValues ignores order): a sum of per-field hashes.
      const o = v as Record<string, unknown>;
      let sum = 0;
      for (const k in o) sum = (sum + hashValue(hashValue(SEED, k), o[k])) | 0;
      return hashWord(h, sum);
    }
    default: return hashWord(h, 0x14);
  }
}

/** Structural equality of action field values (see the header). */
function equalValues(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!equalValues(a[i], b[i])) return false;
    return true;
  }
  if (ArrayBuffer.isView(a)) {
    if (!ArrayBuffer.isView(b) || a.constructor !== b.constructor) return false;
    const x = a as unknown as ArrayLike<number>, y = b as unknown as ArrayLike<number>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  if (Array.isArray(b) || ArrayBuffer.isView(b)) return false;
  const x = a as Record<string, unknown>, y = b as Record<string, unknown>;
  let n = 0;
  for (const k in x) {
    if (!(k in y) || !equalValues(x[k], y[k])) return false;
    n++;
  }
  for (const _k in y) n--;
  return n === 0;
}

/** Digest of an action list: equal lists (sameActions) have equal digests. */
export function actionsDigest(actions: readonly DpAction[]): number {
  return hashValue(SEED, actions) >>> 0;
}

/** True when the two lists are structurally equal (then they do the same to every frame). */
export function sameActions(a: readonly DpAction[], b: readonly DpAction[]): boolean {
  return equalValues(a, b);
}

export class ProgramCache {
  /** Programs by digest of their action list; a list because digests may collide. */
  private byDigest = new Map<number, Program[]>();
  private nPrograms = 0;
  /** Lists compiled, lists served from the table (for perf-show and tests). */
  nCompiled = 0;
  nShared = 0;

  constructor(private readonly env: CompileEnv, readonly maxPrograms = PROGRAM_CACHE_DEFAULT_MAX) {}

  /** Number of programs held. */
  get size(): number {
    return this.nPrograms;
  }

  /** The program for `actions`: the interned one of an equal list, else compiled now. */
  get(actions: readonly DpAction[]): Program {
    const d = actionsDigest(actions);
    let list = this.byDigest.get(d);
    if (list !== undefined) {
      for (let i = 0; i < list.length; i++) {
        if (sameActions(list[i].actions, actions)) { this.nShared++; return list[i]; }
      }
    }
    if (this.nPrograms >= this.maxPrograms) { this.clear(); list = undefined; }
    const p = compileActions(actions.slice(), this.env);
    this.nCompiled++;
    if (list === undefined) { list = []; this.byDigest.set(d, list); }
    list.push(p);
    this.nPrograms++;
    return p;
  }

  /** Forgets every program (ports or tunnel headers changed). */
  clear(): void {
    this.byDigest = new Map<number, Program[]>();
    this.nPrograms = 0;
  }
}
