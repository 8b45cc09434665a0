/**
 * Numeric hashes of flow keys for the fast path (dpif/emc.ts, dpif/megaflow.ts) and the
 * tunnel source port (dpif/tunnel-header.ts).
 *
 * Called by: dpif/ (once per packet per cache level) and ofproto/classifier.ts; never allocates.
 * The mixing is MurmurHash3's 32-bit block step and finaliser over whole words (Math.imul keeps
 * every product in int32), which spreads the low bits well enough for power-of-two tables; the
 * megaflow hash (hashMaskedKey) folds each word with one multiply (maskedStep) and no
 * finaliser (its users index by its top bits), and the ingress hash runs two multiply chains
 * (ingressHash).
 * Invariant: equal words give equal hashes for the same `nWords`/mask; results are uint32,
 * except hashMaskedKey's and ingressHash's (int32).
 */
import { W } from '../packet/flowkey-layout';
import { ingressMix } from '../packet/ingress-hash';

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** murmur3's finaliser: spreads the bits before a hash is used as a table index. */
export function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** murmur3's 32-bit block step: folds word `k` into running hash `h` (int32). */
export function hashWord(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
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
 * The megaflow hash's step (hashMaskedKey; dpif/megaflow.ts searchSmall writes it out): folds
 * masked word `k` into running hash `h` (int32) with one multiply, after rotating `h` so that
 * the high bits the last multiply produced reach the low bits this one mixes upward (as
 * FxHash does). hashWord's murmur step takes three multiplies per word: the megaflow hash is
 * paid by every frame an exact-match lookup did not resolve (every frame of scenario (d)).
 */
export function maskedStep(h: number, k: number): number {
  return Math.imul(((h << 5) | (h >>> 27)) ^ k, 0x9e3779b1);
}

/**
 * Hash of the key at `base` under a mask, visiting only the mask's non-zero words, listed in
 * `words[0, nWords)` with their masks in `wordMask`. Two keys equal under the mask hash equally.
 * int32, and without a finaliser: its top bits are the well-mixed ones (the last multiply
 * carries every bit of its operand upward into them, as in Fibonacci hashing), so tables index
 * by them (megaflow.ts Subtable.home), not by the low bits, which see only the words' low bits.
 */
export function hashMaskedKey(keys: Uint32Array, base: number, words: Int32Array, wordMask: Int32Array,
                              nWords: number, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < nWords; i++) h = maskedStep(h, keys[base + words[i]] & wordMask[i]);
  return h;
}

/** Lists the non-zero words of a W.KEY_WORDS mask. */
export function maskWords(mask: Uint32Array): Int32Array {
  let n = 0;
  for (let w = 0; w < W.KEY_WORDS; w++) if (mask[w] !== 0) n++;
  const out = new Int32Array(n);
  n = 0;
  for (let w = 0; w < W.KEY_WORDS; w++) if (mask[w] !== 0) out[n++] = w;
  return out;
}

/** OVS's default tunnel source port range (tnl_udp_port_min/max). */
export const TNL_SRC_PORT_MIN = 32768;
export const TNL_SRC_PORT_MAX = 61000;

/**
 * UDP source port of an encapsulated frame from the inner flow's hash: scaled (not taken
 * modulo) into [32768, 61000), the way OVS scales its RSS hash, so every port is equally likely.
 * The port is floor(h * 28232 / 2^32) + 32768 for h the hash as uint32, computed in int32
 * maths on the 16-bit halves h = hi * 2^16 + lo: floor((hi * 28232 + floor(lo * 28232 / 2^16))
 * / 2^16), exact because dropping a fraction below 1 before a floor by 2^16 changes nothing;
 * every product stays below 2^31 (65535 * 28232 + 28232). 28232 is TNL_SRC_PORT_MAX - MIN
 * written out (as 32768) so the function stays literal maths; test/dpif/tunnel-header.test.ts
 * compares it with the float form.
 */
export function tunnelSrcPort(flowHash: number): number {
  return 32768 + ((((flowHash >>> 16) * 28232) + (((flowHash & 0xffff) * 28232) >>> 16)) >>> 16);
}

/**
 * Hash of an ingress key for the EMC and the tunnel UDP source port (packet/ingress-hash.ts
 * ingressMix): two independent multiply chains over the ten words that tell flows apart in
 * practice (in_port, tun_id, MAC low words, VLAN/ethertype, IPv4 addresses, proto/tos/ttl,
 * ports, TCP flags), plus the IPv6 addresses for IPv6 frames (folded into one word first).
 * Words it skips (MAC high halves, tunnel endpoints, ARP hardware addresses) only make
 * collisions more likely, never wrong answers: the EMC compares whole keys.
 * Returns int32; the datapath keeps it in Uint32Array columns (which store the same bits).
 * extractCommon (packet/flowkey.ts) hashes the frames it parses with the same ingressMix from
 * its locals, so a key hashes alike made either way (test/packet/flowkey-common.test.ts).
 * Why not hashKeyWords over all 28 words: measured here, 3-4x slower (a serial chain of 84
 * multiplies), and the EMC hash is paid by every packet.
 * Word offsets are written as numbers (checked against the layout below): with the imported
 * names the function's bytecode passed V8's inlining limit (460 bytes), and inlined into the
 * extract stage it costs about 15 % less per packet of scenario (a).
 */
export function ingressHash(k: Uint32Array, b: number): number {
  const et = k[b + 10];                                      // vlan_tci, dl_type
  return ingressMix(k[b], k[b + 3], k[b + 7], k[b + 9], et, k[b + 11], k[b + 12], k[b + 14], k[b + 15], k[b + 13],
    (et & 0xffff) === 0x86dd ? ipv6Fold(k, b) : 0);
}

/** The IPv6 addresses folded into one word for ingressMix (a chain of its own). */
function ipv6Fold(k: Uint32Array, b: number): number {
  let x = 0x27d4eb2f;
  for (let w = 0; w < 4; w++) {
    x = Math.imul(x ^ k[b + W.IPV6_SRC + w], 0x9e3779b1);
    x = Math.imul(x ^ k[b + W.IPV6_DST + w], 0x85ebca6b);
  }
  return x ^ (x >>> 15);
}

// ingressHash names these words by number.
if (W.IN_PORT !== 0 || W.TUN_ID_LO !== 3 || W.DL_DST_LO !== 7 || W.DL_SRC_LO !== 9 || W.VLAN_DLTYPE !== 10 ||
    W.NW_SRC !== 11 || W.NW_DST !== 12 || W.NW_MISC !== 13 || W.TP !== 14 || W.TCP_FLAGS !== 15) {
  throw new Error('flow-hash.ts ingressHash: flow key layout changed');
}
