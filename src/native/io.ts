/**
 * Typed wrapper for the native I/O addon (build/Release/flowd_io.node, from
 * src/native/flowd_io.c and offload.c; built by scripts/build-native.sh).
 *
 * Who calls: netdev/afpacket, netdev/tap, netdev/vxlan and netdev/gre, once per batch;
 * tests in test/native/. Nothing above netdev/ should need it.
 *
 * Batch shape (matches netdev/batch.ts PacketBatch): `recv` writes frame i at
 * buf[i * slotBytes + headroom ...], sets offOut[i] to that absolute index and lenOut[i] to
 * its length, and returns the count. `send` sends frames buf[offs[i], offs[i] + lens[i])
 * for i < count and returns how many the kernel took; the rest are counted in txErrors.
 *
 * Ownership: C keeps no reference to `buf` or the arrays after a call returns. A handle
 * owns an fd (and for afpacket an mmap'ed ring); close() frees them at once, and the GC
 * finalizer does so if close() is forgotten. Calls on a closed handle throw ERR_CLOSED.
 *
 * Errors: opening throws NativeIoError with `code` = the errno name (ENODEV, EPERM, ...)
 * and a message naming the interface and the failing call. recv/send never throw for I/O
 * failures, only for wrong arguments (TypeError).
 *
 * What the frames look like: complete Ethernet frames. Partial checksums are completed and
 * GSO super-frames segmented in C (see native-notes/veth-offloads.md); a VLAN tag the kernel
 * kept out of band is put back after the MAC addresses.
 *
 * Keep-whole mode (afpacket and tap only): when recv gets `vnetOut` (VNET_HDR_BYTES per
 * frame), a TCP GSO super-frame or a checksum-partial frame that fits a slot is delivered
 * as it is, with its virtio_net_hdr (little-endian, csum_start relative to the delivered
 * frame, hdr_len 0) at vnetOut[i * 10]; every other frame gets 10 zero bytes there. send
 * with `vnet` gives frame i's header to the kernel (hdr_len recomputed; all zeros = complete
 * frame), so the kernel or the receiving stack segments it. See native-notes/veth-offloads.md.
 */
import * as path from 'path';
import { FlowdError } from '../errors';
import { ipv4FromString } from '../packet/ipv4';

/** An open native socket/device. Opaque: only this module's functions use it. */
export interface NativeHandle {
  readonly __flowdIoHandle: never;
}

export interface NativeStats {
  /** Frames handed to JS (after segmentation) and their bytes. */
  rxPackets: number;
  rxBytes: number;
  /** Frames the kernel dropped because the ring or socket queue was full (PACKET_STATISTICS). */
  rxDropped: number;
  /** Failed receive syscalls or short reads. */
  rxErrors: number;
  /** Frames too big for a ring slot whose whole copy could not be queued (dropped). */
  rxTruncated: number;
  /** Frames or segments bigger than a caller slot (dropped). */
  rxTooBig: number;
  /** Frames with offload metadata we cannot finish (UFO, bad csum_start; dropped). */
  rxBadOffload: number;
  /** GSO super-frames received (each became several rxPackets). */
  rxSuperFrames: number;
  /** Frames whose partial L4 checksum was completed here. */
  rxCsumCompleted: number;
  /** Frames that came through the socket queue instead of the ring (too big for a slot). */
  rxCopyPath: number;
  /** System calls that read them (one recvmmsg takes a run of them in keep-whole mode). */
  rxCopyCalls: number;
  /** Keep-whole mode: TCP super-frames delivered whole, and checksum-partial frames left partial. */
  rxGsoWhole: number;
  rxCsumWhole: number;
  /** Frames sent with a GSO vnet header (the kernel segments them), and with NEEDS_CSUM only. */
  txGso: number;
  txCsumPartial: number;
  txPackets: number;
  txBytes: number;
  /** Frames the kernel refused (ENOBUFS, EAGAIN, ...) or bad descriptors. */
  txErrors: number;
}

export interface NativeInfo {
  kind: 'afpacket' | 'tap' | 'udp' | 'gre';
  name: string;
  fd: number;
  ifindex: number;
  ringFrames: number;
  ringBytes: number;
  /** Bound UDP port (useful after binding port 0); 0 for other kinds. */
  localPort: number;
  polling: boolean;
}

export interface PacketOpenOptions {
  /** RX ring slots (2 KB each); rounded up to a multiple of 32. Default 4096 (8 MB). */
  ringFrames?: number;
  /** Put the interface in promiscuous mode while open (default true, as a switch port). */
  promisc?: boolean;
  /**
   * With recv's vnetOut: frames the addon finished from a checksum-partial frame (segments of
   * a GSO frame, completed sums) carry vnet flags DATA_VALID (2) instead of zeros, so the
   * caller need not verify their checksums again (netdev/underlay.ts). Default false.
   */
  markValid?: boolean;
}

export interface TapOpenOptions {
  /** true: create the TAP (flowd owns it; it vanishes on close); false: attach to an existing one. */
  create?: boolean;
  /** Accept partial checksums and TSO super-frames from the kernel (default true). */
  offload?: boolean;
}

/**
 * The addon's exports, typed. recv/send are the per-batch calls (see the header):
 * - recv on udp/gre handles also fills srcIpOut[i] (host order) and, for udp, srcPortOut[i];
 *   a udp payload starts at the VXLAN header, a gre "frame" is the whole IPv4 packet.
 * - send on udp handles needs dstIps/dstPorts, on gre handles dstIps (the kernel builds the
 *   IPv4 header); afpacket and tap sends take whole Ethernet frames.
 * - offloadFrame is the test hook for offload.c: returns frames written or an OffloadResult.
 * - tunnelEmit / coalesce run tunnel-offload.c (dpif/tunnel-gso.ts, netdev/underlay.ts):
 *   tunnelEmit encapsulates a TCP super-frame (UDP GSO-packed VXLAN or one outer frame per
 *   segment) into slots [first, maxFrames) and returns the slots written or an OffloadResult
 *   (NotTcpGso: the caller finishes the frame another way); state[0] is the segment to start
 *   and resume at (with vOff/fOff/fLen: vnetHdr and frame are whole arrays, the header and
 *   frame at those offsets); a 2-word state gets state[1] = 1 when the frame was UDP GSO-packed;
 *   udpGso is TUNNEL_EMIT_UDP_GSO, plus TUNNEL_EMIT_EXTEND to let the frame in slot first - 1
 *   (the previous packed frame to the same port) take the first datagrams. coalesce copies frames into slots merging TCP segment runs into super-frames
 *   (stats[0] = inputs consumed, stats[1] += inputs merged) and returns the slots written;
 *   trusted[i] != 0: input i's TCP checksum is vouched for (not verified again before merging);
 *   stride[i] > 8: input i is a decapsulated VXLAN UDP GSO frame whose inner frames are
 *   stride[i] bytes apart (walked without a cut); with a 4-word stats, stats[2] is the
 *   sub-frame to start at / resume at and stats[3] += sub-frames dropped.
 */
export interface NativeIo {
  packetOpen(ifname: string, ringFrames?: number, promisc?: boolean, markValid?: boolean): NativeHandle;
  tapOpen(name: string, create?: boolean, offload?: boolean): NativeHandle;
  udpOpen(localIpHost: number, port: number): NativeHandle;
  greOpen(localIpHost: number): NativeHandle;
  recv(h: NativeHandle, buf: Uint8Array, slotBytes: number, headroom: number, maxFrames: number,
       offOut: Uint32Array, lenOut: Uint32Array, srcIpOut?: Uint32Array, srcPortOut?: Uint32Array,
       vnetOut?: Uint8Array): number;
  send(h: NativeHandle, buf: Uint8Array, offs: Uint32Array, lens: Uint32Array, count: number,
       dstIps?: Uint32Array, dstPorts?: Uint32Array, vnet?: Uint8Array): number;
  startPoll(h: NativeHandle, cb: () => void): void;
  stopPoll(h: NativeHandle): void;
  stats(h: NativeHandle): NativeStats;
  info(h: NativeHandle): NativeInfo;
  close(h: NativeHandle): void;
  offloadFrame(vnetHdr: Uint8Array, frame: Uint8Array, buf: Uint8Array, slotBytes: number,
               headroom: number, maxFrames: number, offOut: Uint32Array, lenOut: Uint32Array): number;
  tunnelEmit(vnetHdr: Uint8Array, frame: Uint8Array, tmpl: Uint8Array, kind: number, udpGso: number, mtu: number,
             buf: Uint8Array, slotBytes: number, headroom: number, first: number, maxFrames: number,
             offOut: Uint32Array, lenOut: Uint32Array, vnetOut: Uint8Array | undefined, state: Uint32Array,
             vOff?: number, fOff?: number, fLen?: number): number;
  coalesce(inBuf: Uint8Array, inOff: Uint32Array, inLen: Uint32Array, n: number, grp: Uint32Array, grpWords: number,
           buf: Uint8Array, slotBytes: number, headroom: number, maxFrames: number, offOut: Uint32Array,
           lenOut: Uint32Array, vnetOut: Uint8Array | undefined, srcIdx: Uint32Array, stats: Uint32Array,
           trusted?: Uint8Array, stride?: Uint32Array): number;
}

/** The addon is not built (or cannot load): says how to build it. */
export class NativeAddonMissingError extends FlowdError {
  constructor(readonly addonPath: string, cause: string) {
    super('E_NATIVE_MISSING',
      `native I/O addon not available at ${addonPath} (${cause}); build it with ` +
      '`npm run build:native` (or scripts/build-native.sh; needs gcc, make and Node headers)');
  }
}

/** An open-time syscall failure: `code` is the errno name, `ifname` the interface. */
export interface NativeIoError extends Error {
  code: string;
  errno: number;
  syscall: string;
  ifname: string;
}

/** Results of offloadFrame() when the frame is dropped (mirrors offload.h). */
export enum OffloadResult {
  TooBig = -1,
  BadGso = -2,
  BadCsum = -3,
  /** tunnelEmit: not a TCP GSO super-frame (the caller segments/completes it with offloadFrame). */
  NotTcpGso = -4,
  /** tunnelEmit: no slot free for its first write (nothing written; dpif/ports.ts leaves one free). */
  NoRoom = -5,
}

/** tunnelEmit's `kind` (tunnel-offload.h). */
export const TUNNEL_EMIT_VXLAN = 1;
export const TUNNEL_EMIT_GRE = 2;
/** tunnelEmit's `udpGso` bits (tunnel-offload.h FIO_EMIT_UDP_GSO / FIO_EMIT_EXTEND). */
export const TUNNEL_EMIT_UDP_GSO = 1;
export const TUNNEL_EMIT_EXTEND = 2;

/** Where the addon is looked for; FLOWD_NATIVE_ADDON overrides (tests, packaging). */
export const ADDON_PATH = process.env.FLOWD_NATIVE_ADDON ??
  path.resolve(__dirname, '..', '..', '..', 'build', 'Release', 'flowd_io.node');

let loaded: NativeIo | null = null;
let loadError: string | null = null;

/** Loads the addon once; throws NativeAddonMissingError with build instructions. */
export function loadNativeIo(): NativeIo {
  if (loaded !== null) return loaded;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(ADDON_PATH) as NativeIo;
    return loaded;
  } catch (e) {
    loadError = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new NativeAddonMissingError(ADDON_PATH, loadError);
  }
}

/** True when the addon loads; `nativeLoadError()` says why not. Never throws. */
export function nativeAvailable(): boolean {
  try {
    loadNativeIo();
    return true;
  } catch {
    return false;
  }
}

export function nativeLoadError(): string | null {
  return loadError;
}

/** AF_PACKET socket on `ifname` with an RX ring; needs CAP_NET_RAW. */
export function packetOpen(ifname: string, opts: PacketOpenOptions = {}): NativeHandle {
  return loadNativeIo().packetOpen(ifname, opts.ringFrames, opts.promisc, opts.markValid);
}

/** TAP device `name` (created or attached); needs CAP_NET_ADMIN. */
export function tapOpen(name: string, opts: TapOpenOptions = {}): NativeHandle {
  return loadNativeIo().tapOpen(name, opts.create ?? false, opts.offload ?? true);
}

/** UDP socket bound to (localIp, port), for VXLAN. */
export function udpOpen(localIp: string | number, port: number): NativeHandle {
  return loadNativeIo().udpOpen(typeof localIp === 'number' ? localIp : ipv4FromString(localIp), port);
}

/** Raw IPv4 protocol-47 socket bound to localIp, for GRE; needs CAP_NET_RAW. */
export function greOpen(localIp: string | number): NativeHandle {
  return loadNativeIo().greOpen(typeof localIp === 'number' ? localIp : ipv4FromString(localIp));
}
