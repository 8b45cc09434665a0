/**
 * Counters that hold doubles from the start. V8 keeps a numeric field a small integer (Smi)
 * while every value stored in it is one; the first store past 2^31 - 1 turns the field into a
 * double, which gives every object of that class a new hidden class and throws away the
 * optimized code that was built for the old one. For the datapath's ports that was every stage
 * at once: when a port's byte count passed 2 GB (seconds into a TCP stream), or its packet count
 * 2^31 frames (half an hour at 1 Mpps), one batch took 12.5 ms instead of 2 us while the stages
 * were compiled again (native-notes/tunnel-gso.md, "2026-12-06, 09:00-09:40 UTC"), long enough to
 * overflow a receive ring at line rate. A field made a double in the constructor never changes
 * representation again, so nothing is thrown away when it grows.
 *
 * Called by the constructors of the objects whose counters grow per frame or per byte:
 * dpif/ports.ts DpPort and PortTable, dpif/datapath.ts, dpif/conntrack.ts, dpif/emc.ts,
 * dpif/megaflow.ts, dpif/tunnel-gso.ts, netdev/netdev.ts NetdevStats, netdev/underlay.ts,
 * ofproto/rule.ts. Numbers that only need to differ from the last value (pass numbers) wrap
 * instead (dpif/datapath.ts MAX_PASS_NO).
 */

/** The names of `T`'s number fields. */
export type NumberKeys<T> = { [K in keyof T]: T[K] extends number ? K : never }[keyof T] & string;

/**
 * Makes the number fields `keys` of `o` (already initialized) doubles, keeping their values:
 * a store of a non-integer makes the field's representation double (for the first object of
 * the class; later objects find it so), the second store puts the value back.
 */
export function countersAsDoubles<T extends object>(o: T, ...keys: NumberKeys<T>[]): void {
  const r = o as unknown as Record<string, number>;
  for (const k of keys) {
    const v = r[k];
    r[k] = 0.5;
    r[k] = v;
  }
}
