/**
 * The pcap port: a netdev whose wire is a pair of capture files, so any topology can run
 * offline (flowd replay) through the same datapath code as the daemon.
 *
 * Receive side: the records of an input capture, handed out in file order, but never past
 * the horizon the replay driver sets (so several input files interleave by timestamp).
 * Send side: every frame sent is appended to an output capture, created on the first send
 * (a port that sent nothing leaves no file). A frame is stamped with the replay clock, the
 * capture time of the input batch that caused it, so output captures line up with inputs.
 */
import { PacketBatch } from './batch';
import { dropReasons, Netdev, NetdevStats } from './netdev';
import { PcapRecord, PcapWriter } from './pcap-file';

export class PcapNetdev implements Netdev {
  readonly kind = 'pcap';
  /** A capture holds whatever was captured: up to libpcap's largest snap length we write. */
  readonly maxTxFrameBytes = 65535;
  private next = 0;
  private writer: PcapWriter | null = null;
  private readonly st = new NetdevStats();
  /** Frames with a timestamp after (horizonSec, horizonNsec) wait for a later recv. */
  horizonSec = Infinity;
  horizonNsec = 0;
  /** Input frames that did not fit a batch slot. */
  rxOversize = 0;

  /**
   * `input`: records to feed (may be empty); `outFile`: where sent frames go (null: they are
   * counted and discarded).
   */
  constructor(readonly name: string, private readonly input: readonly PcapRecord[],
              private readonly outFile: string | null, private readonly nowMs: () => number = Date.now) {}

  /** True while input records remain. */
  get pending(): boolean {
    return this.next < this.input.length;
  }

  /** Timestamp of the next input record as [sec, nsec]; only valid while `pending`. */
  peekTime(out: Float64Array): void {
    const r = this.input[this.next];
    out[0] = r.tsSec;
    out[1] = r.tsNsec;
  }

  recv(batch: PacketBatch): number {
    batch.count = 0;
    while (this.next < this.input.length && batch.count < batch.capacity) {
      const r = this.input[this.next];
      if (r.tsSec > this.horizonSec || (r.tsSec === this.horizonSec && r.tsNsec > this.horizonNsec)) {
        break;
      }
      this.next++;
      const i = batch.append(r.data);
      if (i < 0) {
        this.rxOversize++;
        this.st.rxDropped++;
        continue;
      }
      batch.tsSec[i] = r.tsSec;
      batch.tsNsec[i] = r.tsNsec;
      this.st.rxPackets++;
      this.st.rxBytes += r.data.length;
    }
    return batch.count;
  }

  send(batch: PacketBatch, count: number): number {
    if (this.outFile !== null && this.writer === null && count > 0) {
      this.writer = new PcapWriter(this.outFile);
    }
    // Output batches do not carry the input's timestamp: frames get the replay clock, which is
    // the capture time of the batch that produced them.
    const now = this.nowMs();
    const sec = Math.floor(now / 1000);
    const nsec = Math.round((now - sec * 1000) * 1e6);
    for (let i = 0; i < count; i++) {
      const stamped = batch.tsSec[i] !== 0;
      if (this.writer !== null) this.writer.write(batch.frame(i), stamped ? batch.tsSec[i] : sec, stamped ? batch.tsNsec[i] : nsec);
      this.st.txPackets++;
      this.st.txBytes += batch.len[i];
    }
    return count;
  }

  stats(out: NetdevStats): void {
    Object.assign(out, this.st);
    out.rxDropReasons = dropReasons([['oversize', this.rxOversize]]);
  }

  /** Flushes the output capture (if any frame was sent). */
  close(): void {
    if (this.writer !== null) this.writer.close();
  }

  /** Path of the capture written, or null when nothing was sent. */
  get writtenFile(): string | null {
    return this.writer === null ? null : this.outFile;
  }
}
