/**
 * Netdev: one interface for every port kind (afpacket, tap, internal, vxlan, gre, patch,
 * pcap), in the manner of OVS's lib/netdev-provider.h.
 *
 * Buffer ownership:
 * - recv(batch) fills `batch` from slot 0, sets batch.count and returns it. The frames
 *   belong to the batch; the netdev keeps no reference.
 * - send(batch, count) transmits slots [0, count). The netdev is done with the batch when
 *   send returns (it copies what it must keep), even on error: frames it could not send
 *   are counted in txDropped, never thrown.
 */
import { PacketBatch } from './batch';
import { countersAsDoubles } from '../counters';

export class NetdevStats {
  rxPackets = 0;
  rxBytes = 0;
  rxDropped = 0;
  txPackets = 0;
  txBytes = 0;
  txDropped = 0;
  rxErrors = 0;
  txErrors = 0;
  /** rxDropped by reason (reason -> frames): the values add up to rxDropped. */
  rxDropReasons: Record<string, number> = {};
  /** txDropped by reason: the values add up to txDropped. */
  txDropReasons: Record<string, number> = {};

  constructor() {
    countersAsDoubles<NetdevStats>(this, 'rxPackets', 'rxBytes', 'rxDropped', 'txPackets', 'txBytes', 'txDropped');
  }
}

/** The non-zero entries of `pairs` as a reason record (for a netdev's stats()). */
export function dropReasons(pairs: readonly (readonly [string, number])[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of pairs) if (v > 0) out[k] = v;
  return out;
}

export interface Netdev {
  readonly name: string;
  /** Port kind as the config names it: afpacket, tap, internal, vxlan, gre, patch, pcap. */
  readonly kind: string;
  /**
   * The largest frame the port sends, when more than a default 2 KB batch slot holds (pcap
   * files: any captured frame, jumbo frames included); the datapath sizes its output slots by it.
   */
  readonly maxTxFrameBytes?: number;
  recv(batch: PacketBatch): number;
  send(batch: PacketBatch, count: number): number;
  stats(out: NetdevStats): void;
  close(): void;
  /**
   * Calls `cb` whenever frames may be waiting (the daemon's poll loop). Offline netdevs
   * (pcap) never call it; the replay driver pulls them in timestamp order instead.
   */
  onReadable?(cb: () => void): void;
  /**
   * Whether the link is up (carrier), for OpenFlow port state; absent means always up. Read
   * by the control plane about once a second, never per packet.
   */
  linkUp?(): boolean;
}
