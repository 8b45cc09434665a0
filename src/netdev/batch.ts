/**
 * PacketBatch: a fixed set of frame slots in one buffer, plus per-frame metadata.
 *
 * Who uses it: every netdev fills batches on recv and drains them on send; dpif/ runs a
 * batch through the caches and gathers outputs into one batch per output port.
 *
 * Slot i occupies buf[i * slotBytes, (i + 1) * slotBytes). The frame starts at off[i]
 * (absolute index into buf) and is len[i] bytes long. A fresh slot starts at HEADROOM
 * bytes into the slot, so a VLAN push (4 bytes) or a tunnel header (50 bytes for VXLAN,
 * 42 for GRE) is prepended by moving off[i] back, never by copying the frame.
 * Invariant: slotStart(i) <= off[i] and off[i] + len[i] <= slotStart(i) + slotBytes.
 *
 * Metadata per frame: the OpenFlow port it came in on and the tunnel it came out of
 * (tun_id as two 32-bit halves, outer source and destination IPv4, 0 when not tunnelled),
 * and a capture timestamp (seconds + nanoseconds) kept for pcap replay.
 */
export const HEADROOM = 128;
export const DEFAULT_SLOT_BYTES = 2048;
export const MAX_BATCH = 256;

export class PacketBatch {
  count = 0;
  readonly buf: Uint8Array;
  readonly off: Uint32Array;
  readonly len: Uint32Array;
  readonly inPort: Uint32Array;
  readonly tunIdHi: Uint32Array;
  readonly tunIdLo: Uint32Array;
  readonly tunSrc: Uint32Array;
  readonly tunDst: Uint32Array;
  readonly tsSec: Uint32Array;
  readonly tsNsec: Uint32Array;

  constructor(readonly capacity = MAX_BATCH, readonly slotBytes = DEFAULT_SLOT_BYTES) {
    this.buf = new Uint8Array(capacity * slotBytes);
    this.off = new Uint32Array(capacity);
    this.len = new Uint32Array(capacity);
    this.inPort = new Uint32Array(capacity);
    this.tunIdHi = new Uint32Array(capacity);
    this.tunIdLo = new Uint32Array(capacity);
    this.tunSrc = new Uint32Array(capacity);
    this.tunDst = new Uint32Array(capacity);
    this.tsSec = new Uint32Array(capacity);
    this.tsNsec = new Uint32Array(capacity);
  }

  /** Absolute index of slot `i`'s first byte. */
  slotStart(i: number): number {
    return i * this.slotBytes;
  }

  /** Largest frame a slot can hold with the default headroom. */
  get maxFrameBytes(): number {
    return this.slotBytes - HEADROOM;
  }

  /** Resets slot `i` to an empty frame at the default headroom with no metadata. */
  resetSlot(i: number): void {
    this.off[i] = i * this.slotBytes + HEADROOM;
    this.len[i] = 0;
    this.inPort[i] = 0;
    this.tunIdHi[i] = 0;
    this.tunIdLo[i] = 0;
    this.tunSrc[i] = 0;
    this.tunDst[i] = 0;
    this.tsSec[i] = 0;
    this.tsNsec[i] = 0;
  }

  /**
   * Appends a copy of `frame` (with `src`'s metadata from slot `j` if given); returns the
   * slot index, or -1 when the batch is full or the frame does not fit a slot.
   */
  append(frame: Uint8Array, src?: PacketBatch, j = 0): number {
    if (this.count >= this.capacity || frame.length > this.maxFrameBytes) return -1;
    const i = this.count++;
    this.resetSlot(i);
    this.buf.set(frame, this.off[i]);
    this.len[i] = frame.length;
    if (src !== undefined) {
      this.inPort[i] = src.inPort[j];
      this.tunIdHi[i] = src.tunIdHi[j];
      this.tunIdLo[i] = src.tunIdLo[j];
      this.tunSrc[i] = src.tunSrc[j];
      this.tunDst[i] = src.tunDst[j];
      this.tsSec[i] = src.tsSec[j];
      this.tsNsec[i] = src.tsNsec[j];
    }
    return i;
  }

  /** A view of frame `i` (no copy; valid until the slot is reused). */
  frame(i: number): Uint8Array {
    return this.buf.subarray(this.off[i], this.off[i] + this.len[i]);
  }
}
