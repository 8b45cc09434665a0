/**
 * The datapath's packet-in queue: frames a `controller` datapath action sent up, waiting for the
 * OpenFlow layer (control/openflow/endpoints.ts) to turn them into PACKET_IN messages.
 *
 * Who calls: dpif/datapath.ts pushes (from its DpHook, during a batch) and starts each batch
 * with newBatch(); the OpenFlow endpoints drain it on a later turn of the event loop, woken by
 * `onReady`. Offline (replay) nobody drains: the queue fills and the rest is counted as dropped.
 *
 * Bounds, so the datapath never waits for a controller: at most `perBatch` packet-ins per
 * processBatch and `capacity` waiting in all; a frame over either bound is dropped and counted
 * (nDroppedBatch, nDroppedFull). Each entry keeps the whole frame: flowd buffers nothing, so a
 * packet-in has buffer_id NO_BUFFER and then carries the complete packet whatever the action's
 * max_len (OpenFlow 1.3 s7.2.6.1; Open vSwitch 3.1 does the same, checked by the oracle test).
 *
 * Memory: `capacity` slot buffers, each grown to the largest frame it held and then reused, so
 * a steady stream of packet-ins allocates nothing. Entries are drained in push order.
 */
import type { DpController, PacketInInfo } from './dp-actions';

export const PACKET_IN_QUEUE_CAPACITY = 256;
export const PACKET_INS_PER_BATCH = 64;

export type PacketInSink = (info: PacketInInfo, data: Uint8Array, totalLen: number) => void;

export class PacketInQueue {
  private readonly bufs: Uint8Array[] = [];
  private readonly lens: Uint32Array;
  private readonly totals: Uint32Array;
  private readonly infos: (PacketInInfo | null)[];
  private head = 0;
  private count = 0;
  private inBatch = 0;
  nQueued = 0;
  nDroppedBatch = 0;
  nDroppedFull = 0;
  /** Called when the queue goes from empty to not empty (the drainer schedules itself). */
  onReady: (() => void) | null = null;

  constructor(readonly capacity = PACKET_IN_QUEUE_CAPACITY, readonly perBatch = PACKET_INS_PER_BATCH) {
    this.lens = new Uint32Array(capacity);
    this.totals = new Uint32Array(capacity);
    this.infos = new Array<PacketInInfo | null>(capacity).fill(null);
    for (let i = 0; i < capacity; i++) this.bufs.push(new Uint8Array(0));
  }

  get size(): number { return this.count; }

  /** A new batch starts: its packet-in budget is full again. */
  newBatch(): void { this.inBatch = 0; }

  /** Copies frame bytes [off, off+len) of `buf` for action `a`; false when dropped (counted). */
  push(a: DpController, buf: Uint8Array, off: number, len: number): boolean {
    if (this.inBatch >= this.perBatch) { this.nDroppedBatch++; return false; }
    if (this.count >= this.capacity) { this.nDroppedFull++; return false; }
    this.inBatch++;
    const i = (this.head + this.count) % this.capacity;
    const n = len;
    if (this.bufs[i].length < n) this.bufs[i] = new Uint8Array(Math.max(n, 2048));
    this.bufs[i].set(buf.subarray(off, off + n));
    this.lens[i] = n;
    this.totals[i] = len;
    this.infos[i] = a.info;
    this.count++;
    this.nQueued++;
    if (this.count === 1 && this.onReady !== null) this.onReady();
    return true;
  }

  /**
   * Hands up to `max` entries to `sink` in push order and removes them; `data` is valid only
   * during the call. Returns how many are left.
   */
  drain(sink: PacketInSink, max: number): number {
    for (let k = 0; k < max && this.count > 0; k++) {
      const i = this.head;
      const info = this.infos[i] as PacketInInfo;
      this.infos[i] = null;
      this.head = (this.head + 1) % this.capacity;
      this.count--;
      sink(info, this.bufs[i].subarray(0, this.lens[i]), this.totals[i]);
    }
    return this.count;
  }
}
