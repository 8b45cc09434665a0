/**
 * Finishing offload frames where they cannot stay whole: a TCP GSO super-frame or a
 * checksum-partial frame (vnet metadata, netdev/batch.ts) that leaves for a port whose send
 * cannot take a virtio_net_hdr (pcap, anything without `txOffload`; to a tunnel port only what
 * dpif/tunnel-gso.ts does not take: partial-checksum frames, UDP GSO), or that runs a program
 * that is not `offloadSafe` (compile.ts: a SLOW list, or ct steps; conntrack and NAT see
 * segments).
 *
 * Called by: dpif/ports.ts (emit to a port without offload, or with a tunnel header) and
 * dpif/datapath.ts (such a SLOW program on an offload frame). Both then handle the pieces as
 * ordinary frames.
 *
 * How: the native addon's offload.c (the same code that segments on receive when the caller
 * does not keep frames whole), through its offloadFrame entry point: segments get their own IP
 * length/ID/checksum and TCP sequence/flags/checksum, a lone partial checksum is completed.
 * The pieces go to `out` from slot 0 (2 KB slots are enough for MTU-sized segments).
 *
 * Ownership: reads the source frame and its 10 header bytes, writes only `out`; keeps nothing.
 * Allocation: two subarray views per finished frame (once per super-frame, not per segment).
 */
import { HEADROOM, PacketBatch, VNET_HDR_BYTES } from '../netdev/batch';
import { loadNativeIo, NativeIo } from '../native/io';

/** Segments per finished frame that `out` must be able to take (64 KB / 256-byte MSS). */
export const GSO_MAX_SEGMENTS = 256;

let io: NativeIo | null = null;

/**
 * Writes frame src[off, off+len) with vnet header vnet[vOff, vOff+10) as complete frames into
 * `out` from slot 0 and sets out.count (in/tunnel metadata is the caller's business). Returns
 * the number of frames, or a negative OffloadResult (TooBig, BadGso, BadCsum) when the frame
 * cannot be finished (nothing usable written, out.count 0). When `out` has fewer slots than
 * segments, only the first out.capacity segments are written (size `out` with
 * GSO_MAX_SEGMENTS).
 */
export function finishOffload(src: Uint8Array, off: number, len: number, vnet: Uint8Array, vOff: number,
                              out: PacketBatch): number {
  if (io === null) io = loadNativeIo();
  const n = io.offloadFrame(vnet.subarray(vOff, vOff + VNET_HDR_BYTES), src.subarray(off, off + len),
    out.buf, out.slotBytes, HEADROOM, out.capacity, out.off, out.len);
  out.count = n > 0 ? n : 0;
  return n;
}
