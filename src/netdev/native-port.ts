/**
 * Netdevs backed by one native handle: `afpacket` (an existing veth/TAP/any interface, through
 * an AF_PACKET ring) and `tap` (a TAP device flowd creates and owns). Both move whole Ethernet
 * frames, one native call per batch, and wake the daemon through libuv; under load (a wake
 * that read 64 frames or more) a port is read once per event-loop turn instead, until it has been
 * idle for 200 us (busy polling, onReadable; FLOWD_BUSY_POLL=0 turns it off).
 * Called by: control/daemon.ts (opens afpacket/tap/internal ports, polls them through onReadable).
 *
 * Offloads: into a batch without `vnet`, frames arrive complete (the addon finishes partial
 * checksums and segments GSO super-frames, native-notes/veth-offloads.md). Into a batch with
 * `vnet` (PacketBatch withVnet, GSO_SLOT_BYTES slots), TCP super-frames and checksum-partial
 * frames that fit a slot arrive whole with their virtio_net_hdr; send always passes the
 * batch's `vnet` (if any) so such frames leave whole and the kernel finishes them
 * (`txOffload`: dpif/ports.ts gives these ports offload frames instead of finishing them).
 * FLOWD_OFFLOAD_WHOLE=0 in the environment turns keep-whole receive off (every frame arrives
 * complete, as before; for A/B benchmarks and as an escape hatch). FLOWD_TX_FROM_INPUT=0 makes the
 * datapath copy every output into the port's own batch instead of sending its input batch
 * itself (dpif/ports.ts emitLast; same purpose).
 */
import * as fs from 'node:fs';
import { HEADROOM, PacketBatch, VNET_HDR_BYTES } from './batch';
import { dropReasons, Netdev, NetdevStats } from './netdev';
import { loadNativeIo, NativeHandle, NativeIo, packetOpen, tapOpen } from '../native/io';

/** Keep-whole receive unless FLOWD_OFFLOAD_WHOLE=0 (read once at load). */
const KEEP_WHOLE = process.env.FLOWD_OFFLOAD_WHOLE !== '0';
/** Sends straight from the datapath's input batch unless FLOWD_TX_FROM_INPUT=0 (read once at load; A/B runs). */
const TX_FROM_INPUT = process.env.FLOWD_TX_FROM_INPUT !== '0';

/**
 * Busy polling under load (see onReadable). A wake that read at least BUSY_ENTER_FRAMES frames
 * takes the port out of epoll; it is then read once per turn of the event loop until
 * BUSY_IDLE_MS pass without a frame, and goes back to epoll. FLOWD_BUSY_POLL=0 turns it off
 * (A/B runs); FLOWD_BUSY_IDLE_US sets the idle time (read once at load).
 */
const BUSY_POLL = process.env.FLOWD_BUSY_POLL !== '0';
const BUSY_ENTER_FRAMES = Number(process.env.FLOWD_BUSY_ENTER ?? 64);
const BUSY_IDLE_MS = Number(process.env.FLOWD_BUSY_IDLE_US ?? 200) / 1000;

export class NativePort implements Netdev {
  private readonly io: NativeIo;
  private closed = false;
  /** Frames read since the last wake (busy polling's load measure). */
  private rxSinceWake = 0;
  /** Read from setImmediate turns instead of epoll (busy polling). */
  private busy = false;
  /** When the busy loop last read a frame (performance.now(), ms; no allocation per turn). */
  private busyLastRx = 0;
  private readableCb: (() => void) | null = null;
  private readonly busyTurn = (): void => this.onBusyTurn();
  private readonly wake = (): void => this.onWake();
  /** This port's send takes GSO / checksum-partial frames with their vnet header. */
  readonly txOffload = true;
  /** send reads only buf, off, len and vnet: the datapath may pass its input batch (dpif/ports.ts). */
  readonly txFromInput = TX_FROM_INPUT;

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

  /** The interface's carrier (/sys/class/net/NAME/carrier, of the namespace flowd runs in); up when unreadable. */
  linkUp(): boolean {
    try {
      return fs.readFileSync(`/sys/class/net/${this.name}/carrier`, 'latin1').trim() !== '0';
    } catch (e) {
      // EINVAL: the interface is administratively down (no carrier to read).
      return (e as NodeJS.ErrnoException).code !== 'EINVAL';
    }
  }

  recv(batch: PacketBatch): number {
    const n = batch.vnet === null || !KEEP_WHOLE
      ? this.io.recv(this.h, batch.buf, batch.slotBytes, HEADROOM, batch.capacity, batch.off, batch.len)
      : this.io.recv(this.h, batch.buf, batch.slotBytes, HEADROOM, batch.capacity, batch.off, batch.len,
        undefined, undefined, batch.vnet);
    for (let i = 0; i < n; i++) {
      batch.inPort[i] = 0;
      batch.tunIdHi[i] = 0;
      batch.tunIdLo[i] = 0;
      batch.tunSrc[i] = 0;
      batch.tunDst[i] = 0;
    }
    if (batch.vnet !== null && !KEEP_WHOLE) batch.vnet.fill(0, 0, n * VNET_HDR_BYTES);
    batch.count = n;
    this.rxSinceWake += n;
    return n;
  }

  send(batch: PacketBatch, count: number): number {
    if (batch.vnet === null) return this.io.send(this.h, batch.buf, batch.off, batch.len, count);
    return this.io.send(this.h, batch.buf, batch.off, batch.len, count, undefined, undefined, batch.vnet);
  }

  stats(out: NetdevStats): void {
    const s = this.io.stats(this.h);
    out.rxPackets = s.rxPackets;
    out.rxBytes = s.rxBytes;
    out.rxDropped = s.rxDropped + s.rxTooBig + s.rxTruncated + s.rxBadOffload;
    // rxDropped: the kernel's count of frames its ring had no room for (PACKET_STATISTICS).
    out.rxDropReasons = dropReasons([['ring_full', s.rxDropped], ['too_big', s.rxTooBig],
      ['truncated', s.rxTruncated], ['bad_offload', s.rxBadOffload]]);
    out.rxErrors = s.rxErrors;
    out.txPackets = s.txPackets;
    out.txBytes = s.txBytes;
    out.txDropped = 0;
    out.txErrors = s.txErrors;
  }

  /**
   * Calls `cb` when frames wait. Under load the port leaves epoll: while the socket is in an
   * epoll set, every frame the kernel queues runs the epoll callback under the wait-queue lock
   * with interrupts off, on the *sender's* core (veth delivers there), whether flowd sleeps or
   * not; a socket nobody waits on costs the sender nothing. So a wake that read
   * BUSY_ENTER_FRAMES or more stops the poll and reads the port once per event-loop turn
   * (setImmediate, so timers and the other ports still run), and re-arms the poll after
   * BUSY_IDLE_MS without a frame (native-notes/bench-io.md, "Busy polling").
   */
  onReadable(cb: () => void): void {
    this.readableCb = cb;
    this.io.startPoll(this.h, this.wake);
  }

  /** True while the port is read from event-loop turns instead of epoll (tests, diagnostics). */
  get busyPolling(): boolean {
    return this.busy;
  }

  private onWake(): void {
    this.rxSinceWake = 0;
    (this.readableCb as () => void)();
    if (BUSY_POLL && !this.busy && !this.closed && this.rxSinceWake >= BUSY_ENTER_FRAMES) {
      this.busy = true;
      this.io.stopPoll(this.h);
      this.busyLastRx = performance.now();
      setImmediate(this.busyTurn);
    }
  }

  private onBusyTurn(): void {
    if (this.closed) return;
    this.rxSinceWake = 0;
    (this.readableCb as () => void)();
    const now = performance.now();
    if (this.rxSinceWake > 0) this.busyLastRx = now;
    else if (now - this.busyLastRx > BUSY_IDLE_MS) {
      this.busy = false;
      this.io.startPoll(this.h, this.wake);
      return;
    }
    setImmediate(this.busyTurn);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.io.stopPoll(this.h);
    this.io.close(this.h);
  }
}
