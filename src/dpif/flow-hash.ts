/**
 * Numeric hashes of flow keys for the fast path (dpif/emc.ts, dpif/megaflow.ts) and the
 * tunnel source port (dpif/tunnel-header.ts).
 *
 * Called by: dpif/ only, once per packet per cache level; never allocates.
 * The mixing is MurmurHash3's 32-bit block step and finaliser over whole words (Math.imul keeps
 * every product in int32), which spreads the low bits well enough for power-of-two tables.
 * Invariant: equal words give equal hashes for the same `nWords`/mask; results are uint32.
 */
import { KEY_WORDS } from '../packet/flowkey-layout';

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of words [`base`, `base + nWords`) of `keys`. */
export function hashKeyWords(keys: Uint32Array, base: number, nWords: number, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < nWords; i++) {
    let k = Math.imul(keys[base + i], C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return fmix(h ^ nWords);
}

/**
 * Hash of the key at `base` under `mask`, visiting only the mask's non-zero words, listed in
 * `words[0, nWords)`. Two keys equal under the mask hash equally.
 */
export function hashMaskedKey(keys: Uint32Array, base: number, mask: Uint32Array,
                              words: Int32Array, nWords: number, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < nWords; i++) {
    const w = words[i];
    let k = Math.imul(keys[base + w] & mask[w], C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return fmix(h ^ nWords);
}

/** Lists the non-zero words of a KEY_WORDS mask. */
export function maskWords(mask: Uint32Array): Int32Array {
  let n = 0;
  for (let w = 0; w < KEY_WORDS; w++) if (mask[w] !== 0) n++;
  const out = new Int32Array(n);
  n = 0;
  for (let w = 0; w < KEY_WORDS; w++) if (mask[w] !== 0) out[n++] = w;
  return out;
}

/** OVS's default tunnel source port range (tnl_udp_port_min/max). */
export const TNL_SRC_PORT_MIN = 32768;
export const TNL_SRC_PORT_MAX = 61000;

/**
 * UDP source port of an encapsulated frame from the inner flow's hash: scaled (not taken
 * modulo) into [32768, 61000), the way OVS scales its RSS hash, so every port is equally likely.
 */
export function tunnelSrcPort(flowHash: number): number {
  return TNL_SRC_PORT_MIN +
    Math.floor(((flowHash >>> 0) * (TNL_SRC_PORT_MAX - TNL_SRC_PORT_MIN)) / 4294967296);
}

/** Seed of the ingress flow hash (EMC hash and tunnel source port). */
export const INGRESS_HASH_SEED = 0x2545f491;
