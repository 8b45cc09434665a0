/**
 * The ingress flow hash's mixing over the ten words that tell flows apart, taken as values:
 * dpif/flow-hash.ts ingressHash reads them from a key, packet/flowkey.ts extractCommon passes
 * the values its parse holds in locals (no reload of ten words after the key is written). One
 * function for both, so a flow hashes alike whichever way its key was made (the EMC finds
 * entries either way made, and the tunnel UDP source port is stable per flow).
 * Called by: dpif/flow-hash.ts ingressHash, packet/flowkey.ts extractCommon.
 * Two independent multiply chains (a and c), then a short finish; int32 result (a Smi; the
 * datapath stores it in Uint32Array columns). `extra` is 0 except for IPv6 keys, whose
 * addresses dpif/flow-hash.ts folds into it first.
 */

/** Seed of the ingress flow hash (EMC hash and tunnel source port). */
export const INGRESS_HASH_SEED = 0x2545f491;

export function ingressMix(inPort: number, tunIdLo: number, dstLo: number, srcLo: number, vt: number, nwSrc: number,
                           nwDst: number, tp: number, flags: number, misc: number, extra: number): number {
  let a = Math.imul(INGRESS_HASH_SEED ^ inPort, 0x9e3779b1);
  let c = Math.imul(0x9e3779b9 ^ tunIdLo, 0x85ebca6b);
  a = Math.imul(a ^ dstLo, 0x9e3779b1);
  c = Math.imul(c ^ srcLo, 0x85ebca6b);
  a = Math.imul(a ^ vt, 0x9e3779b1);
  c = Math.imul(c ^ nwSrc, 0x85ebca6b);
  a = Math.imul(a ^ nwDst, 0x9e3779b1);
  c = Math.imul(c ^ tp, 0x85ebca6b);
  a = Math.imul(a ^ flags, 0x9e3779b1);
  c = Math.imul(c ^ misc ^ extra, 0x85ebca6b);
  let h = a ^ (c >>> 15) ^ (a >>> 16) ^ (c << 7);
  h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35);
  h ^= h >>> 13;
  return h;
}
