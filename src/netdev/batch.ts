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
 *
 * Offload metadata (only in batches made with `withVnet`, else `vnet` is null): per slot the
 * 10-byte virtio_net_hdr the kernel gave the frame (vnet[i * VNET_HDR_BYTES ...], x86
 * little-endian: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset), all zeros for
 * a complete frame. Non-zero means the frame is a TCP GSO super-frame (up to 64 KB, one
 * IP/TCP header for all of it) and/or its L4 checksum field holds only the pseudo-header sum
 * (NEEDS_CSUM). Invariant: csum_start is relative to the frame start (off[i]), so whoever
 * moves the L3 header inside the frame (VLAN push/pop) moves csum_start with it
 * (shiftCsumStart). Such frames are finished (segmented, checksummed) only where they leave
 * for a port that cannot take them: dpif/gso.ts.
 */
export const HEADROOM = 128;
export const DEFAULT_SLOT_BYTES = 2048;
export const MAX_BATCH = 256;
/** Size of struct virtio_net_hdr as used with PACKET_VNET_HDR / IFF_VNET_HDR. */
export const VNET_HDR_BYTES = 10;
/** virtio_net_hdr flags bit: the L4 checksum is partial (VIRTIO_NET_HDR_F_NEEDS_CSUM). */
export const VNET_F_NEEDS_CSUM = 1;
/** virtio_net_hdr flags bit: checksums verified (or generated locally; VIRTIO_NET_HDR_F_DATA_VALID). */
export const VNET_F_DATA_VALID = 2;
/** Byte offsets inside a virtio_net_hdr. */
export const VNET_OFF_GSO_TYPE = 1;
export const VNET_OFF_GSO_SIZE = 4;
export const VNET_OFF_CSUM_START = 6;
/**
 * Slot size that holds a whole GSO super-frame: 64 KiB IPv4/IPv6 packet + Ethernet + one
 * VLAN tag + HEADROOM + 3 bytes of alignment shift (dpif/ports.ts), rounded up.
 */
export const GSO_SLOT_BYTES = 65536 + 256;

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
  /** Per-slot virtio_net_hdr (see the header), or null when the batch carries no offloads. */
  readonly vnet: Uint8Array | null;
  /** A DataView over exactly `buf` (same indexes): big-endian header loads (packet/flowkey.ts). */
  readonly view: DataView;
  /** `buf` as 32-bit words (index = byte offset / 4), or null when buf is not 4-aligned: word copies (dpif/ports.ts). */
  readonly words: Uint32Array | null;

  /**
   * `buf`: use this buffer instead of allocating one (a view over another batch's memory, as
   * for dpif/ports.ts's direct send of a super-frame); it must hold capacity * slotBytes bytes.
   */
  constructor(readonly capacity = MAX_BATCH, readonly slotBytes = DEFAULT_SLOT_BYTES, withVnet = false,
              buf?: Uint8Array) {
    this.vnet = withVnet ? new Uint8Array(capacity * VNET_HDR_BYTES) : null;
    if (buf !== undefined && buf.length < capacity * slotBytes) throw new RangeError('buffer smaller than the batch');
    this.buf = buf ?? new Uint8Array(capacity * slotBytes);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.words = (this.buf.byteOffset & 3) === 0
      ? new Uint32Array(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength >>> 2) : null;
    // The metadata columns lie side by side in one allocation, in the order the stages read
    // them: a batch's metadata is one stretch of memory, not nine allocations wherever the
    // allocator put them.
    const cols = new Uint32Array(9 * capacity);
    const col = (k: number): Uint32Array => cols.subarray(k * capacity, (k + 1) * capacity);
    this.off = col(0);
    this.len = col(1);
    this.inPort = col(2);
    this.tunIdHi = col(3);
    this.tunIdLo = col(4);
    this.tunSrc = col(5);
    this.tunDst = col(6);
    this.tsSec = col(7);
    this.tsNsec = col(8);
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
    if (this.vnet !== null) this.vnet.fill(0, i * VNET_HDR_BYTES, (i + 1) * VNET_HDR_BYTES);
  }

  /** True when frame `i` carries offload metadata (GSO and/or a partial checksum). */
  hasOffload(i: number): boolean {
    const v = this.vnet;
    if (v === null) return false;
    const o = i * VNET_HDR_BYTES;
    return v[o] !== 0 || v[o + VNET_OFF_GSO_TYPE] !== 0;
  }

  /** True when frame `i`'s L4 checksum field holds only the pseudo-header sum. */
  csumPartial(i: number): boolean {
    return this.vnet !== null && (this.vnet[i * VNET_HDR_BYTES] & VNET_F_NEEDS_CSUM) !== 0;
  }

  /** Moves frame `i`'s csum_start by `delta` bytes (after a VLAN push +4 or pop -4). */
  shiftCsumStart(i: number, delta: number): void {
    const v = this.vnet;
    if (v === null || !this.hasOffload(i)) return;
    const o = i * VNET_HDR_BYTES + VNET_OFF_CSUM_START;
    const cs = (v[o] | (v[o + 1] << 8)) + delta;
    v[o] = cs & 0xff; v[o + 1] = (cs >>> 8) & 0xff;
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
    if (src !== undefined) this.copyMeta(i, src, j);
    return i;
  }

  /**
   * Copies slot `j` of `src`'s metadata (in_port, tunnel, timestamp and, when this batch has
   * offload headers, the offload header: zeros when `src` has none) to slot `i`. The one per-slot metadata copy: append, the
   * datapath's queues and finished offload pieces all use it. Allocates nothing.
   */
  copyMeta(i: number, src: PacketBatch, j: number): void {
    this.inPort[i] = src.inPort[j];
    this.tunIdHi[i] = src.tunIdHi[j];
    this.tunIdLo[i] = src.tunIdLo[j];
    this.tunSrc[i] = src.tunSrc[j];
    this.tunDst[i] = src.tunDst[j];
    this.tsSec[i] = src.tsSec[j];
    this.tsNsec[i] = src.tsNsec[j];
    const v = this.vnet, sv = src.vnet;
    if (v !== null) {
      const d = i * VNET_HDR_BYTES, s = j * VNET_HDR_BYTES;
      for (let k = 0; k < VNET_HDR_BYTES; k++) v[d + k] = sv === null ? 0 : sv[s + k];
    }
  }

  /** A view of frame `i` (no copy; valid until the slot is reused). */
  frame(i: number): Uint8Array {
    return this.buf.subarray(this.off[i], this.off[i] + this.len[i]);
  }
}
