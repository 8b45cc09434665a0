/**
 * Why the datapath ended a frame a port handed it: the reasons a port's `rxDrops` counters are
 * indexed by, one dense table. Every frame a port receives ends forwarded (at least one output)
 * or dropped under exactly one of these, counted on the port it came in on (a recirculated frame
 * keeps its in_port, so its end counts there too); a frame queued for a later pass (a miss over
 * the upcall budget, a recirculation) has not ended yet.
 * - the parse stops of packet/stop.ts (a malformed frame), under their own names;
 * - the action drops of dp-actions.ts (`action_pipeline`: a drop flow, a table miss, no output;
 *   `action_ttl_exceeded`, ...);
 * - `lost_upcall` (a miss that found the miss queue full), `upcall_error` (translation threw),
 *   `ct_drop` (conntrack refused it: a zone limit, NAT exhausted, an invalid packet dropped),
 *   `offload_bad` (a super-frame whose offload metadata could not be finished into segments).
 * Called by: dpif/stages.ts and dpif/datapath.ts (counting), control/switch.ts (reporting).
 * A fork (a ct step that recirculates a copy while the original goes on, rare in real flow
 * tables) can end twice: each end is counted.
 */
import { DP_DROP_NAMES } from './dp-actions';
import { N_STOP, STOP_NAMES } from '../packet/stop';

export const RXD_ACTION0 = N_STOP;
export const RXD_LOST_UPCALL = RXD_ACTION0 + DP_DROP_NAMES.length;
export const RXD_UPCALL_ERROR = RXD_LOST_UPCALL + 1;
export const RXD_CT = RXD_UPCALL_ERROR + 1;
export const RXD_OFFLOAD_BAD = RXD_CT + 1;
export const N_RX_DROP = RXD_OFFLOAD_BAD + 1;

export const RX_DROP_NAMES: readonly string[] = [
  ...STOP_NAMES.slice(0, N_STOP),
  ...DP_DROP_NAMES.map((n) => `action_${n}`),
  'lost_upcall', 'upcall_error', 'ct_drop', 'offload_bad',
];

/** The non-zero counters of `drops` by name. */
export function rxDropRecord(drops: Float64Array): Record<string, number> {
  const out: Record<string, number> = {};
  for (let r = 0; r < N_RX_DROP; r++) if (drops[r] > 0) out[RX_DROP_NAMES[r]] = drops[r];
  return out;
}
