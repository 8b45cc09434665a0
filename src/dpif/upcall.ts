/**
 * What the fast path needs from the slow path (ofproto), as a small interface so dpif/ does not
 * import ofproto/ (layers call downward only; the daemon wires ofproto's xlate into this).
 *
 * upcall(): translate one packet that missed both caches. May have side effects (NORMAL MAC
 * learning, learn actions, which change rules); the datapath counts every resulting rule change
 * through Datapath.rulesChanged() and revalidates before the next packet is looked up.
 * It must NOT credit rule counters: the datapath credits `rules` for every packet of the
 * megaflow, the upcalled one included, so dump-flows stays exact.
 * revalidate(): the same translation without side effects, for a megaflow's representative key.
 */
import type { PacketBatch } from '../netdev/batch';
import type { DpAction } from './dp-actions';

/** What the datapath credits per batch; ofproto's Rule has these fields. */
export interface StatsRule {
  nPackets: number;
  nBytes: number;
  lastUsedMs: number;
}

export interface UpcallResult {
  /** Datapath actions. The datapath keeps the objects (never mutate them afterwards) but not the
   *  array: it shares one compiled program among equal lists (dpif/program-cache.ts). */
  readonly actions: readonly DpAction[];
  /** Megaflow mask (KEY_WORDS): every key equal to this one under it gets the same result.
   *  The datapath copies it before returning; the upcaller may reuse the array. */
  readonly mask: Uint32Array;
  /** Rules the translation matched, credited per packet (repeats credit repeatedly). */
  readonly rules: readonly StatsRule[];
  /** False when the result must not be cached (each packet of the flow upcalls). */
  readonly cacheable: boolean;
  /**
   * Side effects a cached hit must repeat, in packet order (OVS's xlate cache, e.g. NORMAL's MAC
   * learning): called for every packet served from the caches by this megaflow; returns true
   * when it changed state that translations read (then the datapath revalidates before the next
   * packet). Created once per upcall (or revalidation), never per packet. Null when there are none.
   * Idempotent at one clock reading: called again with the same `nowMs` and nothing else run
   * in between, it changes nothing, so the datapath calls it once for a stretch of consecutive
   * frames of one megaflow (Datapath.upcall).
   */
  readonly refresh?: ((nowMs: number) => boolean) | null;
}

export interface Upcaller {
  /** `nowMs`: the datapath's clock at the batch (the time side effects such as MAC learning
   *  record); absent, the upcaller reads its own clock. */
  upcall(keys: Uint32Array, base: number, batch: PacketBatch, slot: number, nowMs?: number): UpcallResult | null;
  revalidate(keys: Uint32Array, base: number): UpcallResult | null;
  /**
   * After Datapath.destinationsChanged(): the destination MACs (48-bit values) whose
   * translations may have changed since the last call, or null for "any flow may have".
   * Forgets them. Absent: every such change revalidates every megaflow.
   */
  takeChangedDestinations?(): number[] | null;
}
