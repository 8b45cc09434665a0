/**
 * mulberry32: a small seeded PRNG for tests that draw their own random cases (fast-check does
 * its own), so a failure is reproducible from the seed. Values in [0, 1).
 * Used by: test/dvr/firewall-oracle.test.ts, test/control/topology-apply.test.ts.
 */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
