/**
 * Netdevs backed by one native handle: `afpacket` (an existing veth/TAP/any interface, through
 * an AF_PACKET ring) and `tap` (a TAP device flowd creates and owns). Both move whole Ethernet
 * frames, one native call per batch, and wake the daemon through libuv (no spinning).
 *
 * Frames arrive complete: the addon finishes partial checksums and segments GSO super-frames
 * (native-notes/veth-offloads.md), so everything above sees frames no larger than the MTU.
 */
import { HEADROOM, PacketBatch } from './batch';
import { Netdev, NetdevStats } from './netdev';
import { loadNativeIo, NativeHandle, NativeIo, packetOpen, tapOpen } from '../native/io';

export class NativePort implements Netdev {
  private readonly io: NativeIo;
  private closed = false;

  private constructor(readonly name: string, readonly kind: 'afpacket' | 'tap' | 'internal',
                      private readonly h: NativeHandle) {
    this.io = loadNativeIo();
  }

  /** An AF_PACKET port on an existing interface (promiscuous while open). */
  static afpacket(ifname: string, ringFrames?: number): NativePort {
    return new NativePort(ifname, 'afpacket', packetOpen(ifname, { ringFrames, promisc: true }));
  }

  /** A TAP device: created and owned by flowd when `create`, else attached. */
  static tap(name: string, create: boolean, kind: 'tap' | 'internal' = 'tap'): NativePort {
    return new NativePort(name, kind, tapOpen(name, { create, offload: true }));
  }

  recv(batch: PacketBatch): number {
    const n = this.io.recv(this.h, batch.buf, batch.slotBytes, HEADROOM, batch.capacity, batch.off, batch.len);
    for (let i = 0; i < n; i++) {
      batch.inPort[i] = 0;
      batch.tunIdHi[i] = 0;
      batch.tunIdLo[i] = 0;
      batch.tunSrc[i] = 0;
      batch.tunDst[i] = 0;
    }
    batch.count = n;
    return n;
  }

  send(batch: PacketBatch, count: number): number {
    return this.io.send(this.h, batch.buf, batch.off, batch.len, count);
  }

  stats(out: NetdevStats): void {
    const s = this.io.stats(this.h);
    out.rxPackets = s.rxPackets;
    out.rxBytes = s.rxBytes;
    out.rxDropped = s.rxDropped + s.rxTooBig + s.rxTruncated + s.rxBadOffload;
    out.rxErrors = s.rxErrors;
    out.txPackets = s.txPackets;
    out.txBytes = s.txBytes;
    out.txDropped = 0;
    out.txErrors = s.txErrors;
  }

  onReadable(cb: () => void): void {
    this.io.startPoll(this.h, cb);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.io.stopPoll(this.h);
    this.io.close(this.h);
  }
}
