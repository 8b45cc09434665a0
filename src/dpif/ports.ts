/**
 * Datapath ports: dp port number -> Netdev, with one output batch per port that the compiled
 * programs of a batch append to and the datapath sends once at the end of the batch.
 *
 * Called by: dpif/datapath.ts (add/remove, flush per batch), dpif/compile.ts (emit per output),
 * dpif/stages.ts (execute: emitLast, and emitLastRun for a run of frames of one output-only flow),
 * dpif/compile.ts runStraight (emitLastRun / emitLastTunnelRun for a run of frames of one flow).
 * Ownership: a port's `out` batch belongs to the port; frames are copied into it (the input
 * batch is reused by the next recv) and handed to netdev.send, which is done with them when it
 * returns. Counters are plain numbers updated per emit and per flush (host order, packets/bytes).
 * Invariant: a port index is its position in PortTable.list; portIndex[portNo] maps numbers to it
 * (-1 for none). Removing a port flushes the caches (datapath.ts), so programs never hold a stale
 * index.
 *
 * Offload frames (GSO super-frames, partial checksums; vnet metadata in netdev/batch.ts): a port
 * whose netdev says `txOffload` (native afpacket/tap) gets an output batch of GSO_SLOT_BYTES
 * slots with vnet metadata (GSO_OUT_CAPACITY of them, about 4 MB) and such frames are copied
 * whole with their header; every other port, and every tunnel output, gets the frame finished
 * first (dpif/gso.ts: segmented / checksummed, then emitted piece by piece), except that a
 * TCP super-frame to a tunnel port is segmented and encapsulated in one native call
 * (dpif/tunnel-gso.ts): straight into the port's output batch, or, for VXLAN over an underlay
 * that takes it, as UDP GSO frames held in one batch (tunnelOut) and sent before the port's
 * other frames, the next super-frame of the pass filling up the last of them. A super-frame
 * (> DIRECT_SEND_BYTES) for an offload port is not copied at all: the port's pending frames
 * are sent, then the frame straight from the input buffer (one send call of its own through a
 * one-frame view batch), which keeps the port's frame order and saves a 64 KB copy.
 *
 * Sends from the input batch (no copy): a program's last output to a plain port whose netdev
 * allows it only notes the slot (emitLast, gather; emitLastRun notes a run of them); a last
 * output to a tunnel port writes the outer header into the frame's headroom in the input batch
 * and notes the outer frame in the port's view batch over the input buffer (emitLastTunnel;
 * emitLastTunnelRun for a run of them; encView), which sendPort hands to the netdev. The pass flushes before the next input batch, so the input buffer is unchanged
 * while those sends are pending; a copied frame for the same port first copies the noted ones.
 */
import { DEFAULT_SLOT_BYTES, GSO_SLOT_BYTES, HEADROOM, PacketBatch, VNET_HDR_BYTES, VNET_OFF_GSO_TYPE } from '../netdev/batch';
import { Netdev } from '../netdev/netdev';
import { finishOffload, GSO_MAX_SEGMENTS } from './gso';
import { N_RX_DROP } from './rx-drops';
import { encapFill, encapRun, TunnelDesc, TunnelHeader } from './tunnel-header';
import { TunnelSegmenter, TUNNEL_NOT_TCP_GSO } from './tunnel-gso';
import { countersAsDoubles } from '../counters';

/** Offload frames longer than this go out straight from the input buffer (no copy). */
export const DIRECT_SEND_BYTES = 8192;

/** Output batch capacity of ports that take offload frames whole (64 x 64 KB slots). */
export const GSO_OUT_CAPACITY = 64;

/** UDP GSO outer frames held per pass for a tunnel port (PortTable.emitTunnel); when full they
 * are sent and the pass goes on (a pass's input batch brought 3-4 super-frames in the lab). */
const TUNNEL_OUT_SLOTS = 8;

/** A netdev whose send takes frames with their vnet header (netdev/native-port.ts). */
interface OffloadCapable {
  readonly txOffload?: boolean;
}

/** A netdev whose send reads only buf, off, len and vnet of the batch and writes none of it. */
interface SendsAnyBatch {
  readonly txFromInput?: boolean;
}

/**
 * True when the datapath may hand `netdev.send` the input batch itself (PortTable.emitLast):
 * native afpacket/tap ports say so; pcap ports do not (they write the batch's timestamps).
 */
export function sendsFromInput(netdev: Netdev): boolean {
  return (netdev as Netdev & SendsAnyBatch).txFromInput === true;
}

/** True when `netdev` sends GSO / checksum-partial frames whole. */
export function takesOffload(netdev: Netdev): boolean {
  return (netdev as Netdev & OffloadCapable).txOffload === true;
}

/** Copies `len` bytes; a byte loop for small frames (no subarray view allocated per packet). */
export function copyBytes(dst: Uint8Array, dOff: number, src: Uint8Array, sOff: number, len: number): void {
  if (len <= 256) {
    for (let k = 0; k < len; k++) dst[dOff + k] = src[sOff + k];
  } else {
    dst.set(src.subarray(sOff, sOff + len), dOff);
  }
}

/** Frames longer than this are copied with TypedArray.set (memcpy) rather than a word loop. */
const COPY_MEMCPY_BYTES = 2048;

/** A 32-bit view of a batch buffer, or null when its offset is not 4-aligned. */
export function wordsOf(buf: Uint8Array): Uint32Array | null {
  return (buf.byteOffset & 3) === 0 ? new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2) : null;
}

/**
 * Copies `len` bytes from src[sOff] to dst[dOff], 4 bytes at a time through the word views
 * when both offsets have the same alignment (the datapath picks output offsets so they do):
 * about 4x fewer loads and stores than a byte loop for a 64-byte frame.
 */
export function copyFrame(dst: Uint8Array, dst32: Uint32Array | null, dOff: number,
                          src: Uint8Array, src32: Uint32Array | null, sOff: number, len: number): void {
  if (len > COPY_MEMCPY_BYTES) { // a super-frame: one native memcpy beats the word loop
    dst.set(src.subarray(sOff, sOff + len), dOff);
    return;
  }
  if (dst32 === null || src32 === null || ((dOff ^ sOff) & 3) !== 0 || len < 16) {
    copyBytes(dst, dOff, src, sOff, len);
    return;
  }
  let d = dOff, s = sOff, n = len;
  while ((s & 3) !== 0) { dst[d++] = src[s++]; n--; }
  let dw = d >>> 2, sw = s >>> 2;
  const nw = n >>> 2;
  const end = sw + nw;
  while (sw < end) dst32[dw++] = src32[sw++];
  d += nw << 2; s += nw << 2; n -= nw << 2;
  while (n > 0) { dst[d++] = src[s++]; n--; }
}

export class DpPort {
  readonly out: PacketBatch;
  readonly out32: Uint32Array | null;
  rxPackets = 0;
  rxBytes = 0;
  txPackets = 0;
  txBytes = 0;
  /** Frames that did not fit a slot (after encap) or that the netdev refused. */
  txDropped = 0;
  /** Frames from this port that left on at least one port (rx-drops.ts: how a frame ends). */
  rxForwarded = 0;
  /** Frames from this port the datapath dropped, by reason (indexed as rx-drops.ts names them). */
  readonly rxDrops = new Float64Array(N_RX_DROP);
  /** Batch number in which the port last got a frame (for the touched list). */
  stamp = -1;
  /**
   * Slots of the input batch to send as they are (PortTable.emitLast), in output order, and
   * their count; a tunnel port keeps only the count (its frames are in encView). Invariant:
   * nGather > 0 only while `out` is empty (a copy flushes them first).
   */
  readonly gather: Uint16Array;
  nGather = 0;
  /**
   * Zero while gather[k] === k for every k < nGather (the slots are 0, 1, 2, ...: sendPort may
   * send the input batch itself), else not: kept as slots are noted, so that sendGathered
   * does not check the list frame by frame once per pass (plain ports only; a loop of 32 per
   * flush in (a) and (d), where every batch goes out as it came in).
   */
  gatherOutOfOrder = 0;
  /** The port may be sent the input batch itself (a non-tunnel port whose netdev allows it). */
  readonly direct: boolean;
  /**
   * Tunnel ports: outer frames encapsulated in place in the input batch's headroom
   * (PortTable.emitLastTunnel), sent through `encView`, a batch over the input buffer whose
   * off/len (outer frames, in output order) belong to this port; made per input buffer.
   * Invariant: entries [0, nGather) of encView's off/len are the gathered outer frames.
   */
  encView: PacketBatch | null = null;
  private readonly encViews: WeakMap<Uint8Array, PacketBatch> | null;

  constructor(readonly portNo: number, readonly netdev: Netdev, readonly tunnel: TunnelDesc | null,
              readonly index: number, outCapacity: number) {
    countersAsDoubles<DpPort>(this, 'rxPackets', 'rxBytes', 'txPackets', 'txBytes', 'txDropped', 'rxForwarded');
    const big = (netdev.maxTxFrameBytes ?? 0) + HEADROOM + 3 > DEFAULT_SLOT_BYTES;
    this.out = takesOffload(netdev) || big
      ? new PacketBatch(Math.min(outCapacity, GSO_OUT_CAPACITY), GSO_SLOT_BYTES, takesOffload(netdev))
      : new PacketBatch(outCapacity);
    this.out32 = wordsOf(this.out.buf);
    this.gather = new Uint16Array(outCapacity);
    this.direct = tunnel === null && sendsFromInput(netdev);
    this.encViews = tunnel === null ? null : new WeakMap();
  }

  /**
   * The tunnel view batch over input buffer `buf` (made on first use per buffer): the last one
   * when it is over `buf` (a port's poll loop receives into one batch, control/switch.ts poll),
   * without a WeakMap lookup per pass.
   */
  encViewOf(buf: Uint8Array): PacketBatch {
    if (this.encView !== null && this.encView.buf === buf) return this.encView;
    const views = this.encViews as WeakMap<Uint8Array, PacketBatch>;
    let v = views.get(buf);
    if (v === undefined) {
      const cap = this.gather.length;
      v = new PacketBatch(cap, Math.floor(buf.length / cap), false, buf);
      views.set(buf, v);
    }
    return v;
  }
}

export class PortTable {
  readonly list: DpPort[] = [];
  readonly portIndex = new Int32Array(65536).fill(-1);
  readonly touched: Int32Array;
  nTouched = 0;
  /** Outputs to a port number the datapath does not have (counted, not sent). */
  nNoPort = 0;
  /** Current batch number, set by the datapath at the start of each batch. */
  batchNo = 0;
  /** Offload frames finished (segmented / checksummed) on the way to a port that cannot take them. */
  nOffloadFinished = 0;
  /** Offload frames whose metadata offload.c refused (counted per port in txDropped too). */
  nOffloadBad = 0;
  /** Scratch for finished pieces (made on first use: 256 x 2 KB). */
  private pieces: PacketBatch | null = null;
  /** Super-frames into tunnels (dpif/tunnel-gso.ts). */
  readonly tunnelSeg = new TunnelSegmenter();
  /** UDP GSO outer frames held for port tunnelOutPort until its next other frame or the end of
   * the pass (made on first use: TUNNEL_OUT_SLOTS x 64 KB). */
  private tunnelOut: PacketBatch | null = null;
  private tunnelOutPort: DpPort | null = null;
  /** Output batches that were the input batch itself (emitLast, sendGathered). */
  nInputSends = 0;
  /** Super-frames sent straight from the input buffer (no copy into an output batch). */
  nDirectSends = 0;
  /** One-frame view batches over input buffers, for direct sends. */
  private readonly directViews = new WeakMap<Uint8Array, PacketBatch>();
  /** The input batch, its buffer and its word view (setInput, once per pass). */
  private inBatch: PacketBatch | null = null;
  private inBuf: Uint8Array | null = null;
  private in32: Uint32Array | null = null;
  /** The word view of the buffer setInput named (null when not 4-aligned). */
  get inWords(): Uint32Array | null { return this.in32; }

  constructor(readonly outCapacity: number) {
    countersAsDoubles<PortTable>(this, 'nInputSends', 'nDirectSends', 'nOffloadFinished');
    this.touched = new Int32Array(65536);
  }

  add(portNo: number, netdev: Netdev, tunnel: TunnelDesc | null): DpPort {
    if (this.portIndex[portNo] >= 0) throw new RangeError(`dp port ${portNo} exists`);
    const p = new DpPort(portNo, netdev, tunnel, this.list.length, this.outCapacity);
    this.list.push(p);
    this.portIndex[portNo] = p.index;
    return p;
  }

  /** Removes a port; indexes of later ports shift, so the caller flushes its caches. */
  remove(portNo: number): void {
    const idx = this.portIndex[portNo];
    if (idx < 0) return;
    this.list.splice(idx, 1);
    this.portIndex.fill(-1);
    for (let k = 0; k < this.list.length; k++) {
      const p = this.list[k];
      (p as { index: number }).index = k;
      this.portIndex[p.portNo] = k;
    }
  }

  byNo(portNo: number): DpPort | undefined {
    const idx = this.portIndex[portNo];
    return idx < 0 ? undefined : this.list[idx];
  }

  /**
   * Tells emit() which batch frames come from (once per pass), with its buffer's word view.
   * The pass flushes (flushTouched) before the next setInput: gathered slots name this batch.
   */
  setInput(batch: PacketBatch): void {
    this.inBatch = batch;
    this.inBuf = batch.buf;
    this.in32 = batch.words;
  }

  /**
   * Appends a copy of `len` bytes at `src[off]` to port `idx`'s output batch, with `hdr` in front
   * when not null. Sends the port's batch first if it is full. `vnet[vOff, vOff+10)` is the
   * frame's offload header (null: a complete frame); see the header for where it stays whole.
   */
  emit(idx: number, src: Uint8Array, off: number, len: number, hdr: TunnelHeader | null, flowHash: number,
       vnet: Uint8Array | null = null, vOff = 0): void {
    const p = this.list[idx];
    if (p.nGather > 0) this.ungather(p);
    this.emitCopy(p, src, off, len, hdr, flowHash, vnet, vOff);
  }

  /**
   * Output of frame `slot` of `batch` (the input batch) to plain port `idx` as the last step of
   * its program, so the frame does not change after it. To a port that may be sent the input
   * batch (`direct`) with no copied frame pending, only the slot number is noted (gather) and
   * sendPort sends the input batch itself when the gathered slots are 0, 1, 2, ... (every frame
   * of the pass so far to this port, the common forwarding case), else copies them in order.
   * Otherwise the same as emit.
   */
  emitLast(idx: number, batch: PacketBatch, slot: number, flowHash: number): void {
    const p = this.list[idx];
    if (p.direct && batch === this.inBatch && p.out.count === 0 && p.nGather < p.gather.length &&
        (batch.vnet === null) === (p.out.vnet === null)) {
      if (p.stamp !== this.batchNo) {
        p.stamp = this.batchNo;
        this.touched[this.nTouched++] = idx;
      }
      p.gatherOutOfOrder |= slot ^ p.nGather;
      p.gather[p.nGather++] = slot;
      return;
    }
    this.emit(idx, batch.buf, batch.off[slot], batch.len[slot], null, flowHash, batch.vnet, slot * VNET_HDR_BYTES);
  }

  /**
   * emitLast for the frames in slots live[from, to) of `batch`, in that order (a run of frames
   * of one output-only flow; dpif/stages.ts execute): to a port that may be sent the input batch
   * with no copied frame pending, the slot numbers are noted in one loop (as many as the gather
   * list holds; the rest, if any, go frame by frame). `hashes` holds each slot's flow hash.
   */
  emitLastRun(idx: number, batch: PacketBatch, live: Uint16Array, from: number, to: number,
              hashes: Uint32Array): void {
    const p = this.list[idx];
    if (p.direct && batch === this.inBatch && p.out.count === 0 && (batch.vnet === null) === (p.out.vnet === null)) {
      if (p.stamp !== this.batchNo) {
        p.stamp = this.batchNo;
        this.touched[this.nTouched++] = idx;
      }
      const g = p.gather;
      let n = p.nGather, outOfOrder = 0;
      const end = Math.min(to, from + g.length - n);
      for (let k = from; k < end; k++) { const s = live[k]; outOfOrder |= s ^ n; g[n++] = s; }
      p.nGather = n;
      p.gatherOutOfOrder |= outOfOrder;
      from = end;
    }
    for (let k = from; k < to; k++) {
      const s = live[k];
      this.emitLast(idx, batch, s, hashes[s] | 0);
    }
  }

  /**
   * Output of frame `slot` of `batch` to tunnel port `idx` with header `hdr` as the last step of
   * its program. A complete frame of the input batch with room for the header in front of it in
   * its slot is encapsulated where it lies (the outer header written into its headroom; the
   * batch's off/len stay the inner frame's) and noted in the port's view batch, which sendPort
   * hands to the netdev: no copy into the port's output batch. Otherwise the same as emit.
   */
  emitLastTunnel(idx: number, batch: PacketBatch, slot: number, hdr: TunnelHeader, flowHash: number): void {
    const p = this.list[idx];
    const off = batch.off[slot], len = batch.len[slot];
    const vnet = batch.vnet, vOff = slot * VNET_HDR_BYTES;
    const hdrLen = hdr.bytes.length;
    if (batch === this.inBatch && p.out.count === 0 && p.nGather < p.gather.length &&
        off - hdrLen >= slot * batch.slotBytes &&
        (vnet === null || (vnet[vOff] === 0 && vnet[vOff + VNET_OFF_GSO_TYPE] === 0))) {
      if (p.stamp !== this.batchNo) {
        p.stamp = this.batchNo;
        this.touched[this.nTouched++] = idx;
      }
      if (p.nGather === 0) p.encView = p.encViewOf(batch.buf);
      const v = p.encView as PacketBatch;
      const n = p.nGather++;
      v.off[n] = encapFill(batch.buf, off, len, hdr, flowHash, this.in32);
      v.len[n] = len + hdrLen;
      return;
    }
    this.emit(idx, batch.buf, off, len, hdr, flowHash, vnet, vOff);
  }

  /**
   * emitLastTunnel for the frames in slots live[from, to) of `batch`, in that order, all with
   * header `hdr` (a run of frames of one flow whose program ends in this output; compile.ts
   * runStraight): while they may be encapsulated in place (tunnel-header.ts encapRun: complete
   * frames with headroom, in a batch with or without vnet headers), the checks and the port's
   * view are done once and each frame costs its header; the rest, if any, go frame by frame.
   * `hashes` holds each slot's flow hash (UDP source port).
   */
  emitLastTunnelRun(idx: number, batch: PacketBatch, live: Uint16Array, from: number, to: number, hdr: TunnelHeader,
                    hashes: Uint32Array): void {
    const p = this.list[idx];
    const in32 = this.in32;
    if (batch === this.inBatch && p.out.count === 0 && in32 !== null) {
      if (p.stamp !== this.batchNo) {
        p.stamp = this.batchNo;
        this.touched[this.nTouched++] = idx;
      }
      if (p.nGather === 0) p.encView = p.encViewOf(batch.buf);
      const n = p.nGather;
      const end = Math.min(to, from + p.gather.length - n);
      const stop = encapRun(batch, in32, live, from, end, hdr, hashes, p.encView as PacketBatch, n);
      p.nGather = n + stop - from;
      from = stop; // a frame without headroom or an offload frame: it and the rest frame by frame
    }
    for (; from < to; from++) {
      const s = live[from];
      this.emitLastTunnel(idx, batch, s, hdr, hashes[s] | 0);
    }
  }

  /**
   * Copies port `p`'s gathered frames into its output batch, in order: the input batch's slots
   * (emitLast), or a tunnel port's outer frames encapsulated in place (emitLastTunnel).
   */
  private ungather(p: DpPort): void {
    const b = this.inBatch as PacketBatch, g = p.gather, n = p.nGather;
    p.nGather = 0;
    p.gatherOutOfOrder = 0;
    const v = p.tunnel === null ? null : p.encView;
    for (let k = 0; k < n; k++) {
      if (v !== null) this.emitCopy(p, b.buf, v.off[k], v.len[k], null, 0, null, 0);
      else {
        const s = g[k];
        this.emitCopy(p, b.buf, b.off[s], b.len[s], null, 0, b.vnet, s * VNET_HDR_BYTES);
      }
    }
  }

  /** emit without gathered slots pending. */
  private emitCopy(p: DpPort, src: Uint8Array, off: number, len: number, hdr: TunnelHeader | null, flowHash: number,
                   vnet: Uint8Array | null, vOff: number): void {
    const idx = p.index;
    const out = p.out;
    const offload = vnet !== null && (vnet[vOff] !== 0 || vnet[vOff + 1] !== 0);
    if (offload && (hdr !== null || out.vnet === null)) {
      this.emitFinished(idx, src, off, len, hdr, flowHash, vnet, vOff);
      return;
    }
    if (offload && len > DIRECT_SEND_BYTES) {
      this.sendDirect(p, src, off, len, vnet as Uint8Array, vOff);
      return;
    }
    if (p.stamp !== this.batchNo) {
      p.stamp = this.batchNo;
      this.touched[this.nTouched++] = idx;
    }
    if (out.count >= out.capacity) this.sendPort(p);
    const hdrLen = hdr === null ? 0 : hdr.bytes.length;
    if (len + HEADROOM + 3 > out.slotBytes || hdrLen > HEADROOM) { p.txDropped++; return; }
    const s = out.count++;
    const frameOff = s * out.slotBytes + HEADROOM + (off & 3); // same alignment as the source
    if (src === this.inBuf) copyFrame(out.buf, p.out32, frameOff, src, this.in32, off, len);
    else copyBytes(out.buf, frameOff, src, off, len);
    const ov = out.vnet;
    if (ov !== null) {
      const vo = s * VNET_HDR_BYTES;
      if (offload) for (let k = 0; k < VNET_HDR_BYTES; k++) ov[vo + k] = (vnet as Uint8Array)[vOff + k];
      else for (let k = 0; k < VNET_HDR_BYTES; k++) ov[vo + k] = 0;
    }
    if (hdr === null) {
      out.off[s] = frameOff;
      out.len[s] = len;
    } else {
      out.off[s] = encapFill(out.buf, frameOff, len, hdr, flowHash, p.out32);
      out.len[s] = len + hdrLen;
    }
  }

  /**
   * Sends port `p`'s pending frames, then the offload frame src[off, off+len) on its own from
   * where it is (a view batch over `src`), and counts it like sendPort does.
   */
  private sendDirect(p: DpPort, src: Uint8Array, off: number, len: number, vnet: Uint8Array, vOff: number): void {
    this.sendPort(p);
    let view = this.directViews.get(src);
    if (view === undefined) {
      view = new PacketBatch(1, src.length, true, src);
      this.directViews.set(src, view);
    }
    view.off[0] = off;
    view.len[0] = len;
    const vv = view.vnet as Uint8Array;
    for (let k = 0; k < VNET_HDR_BYTES; k++) vv[k] = vnet[vOff + k];
    const sent = p.netdev.send(view, 1);
    this.nDirectSends++;
    if (sent === 1) { p.txPackets++; p.txBytes += len; } else p.txDropped++;
  }

  /**
   * A TCP super-frame to tunnel port `p`: segmented and encapsulated natively (tunnel-gso.ts),
   * as UDP GSO frames held in tunnelOut for the rest of the pass (sent before the port's other
   * frames: sendPort), or as one outer frame per segment appended to the port's batch. False:
   * not a TCP super-frame. The next super-frame to the same port in the pass goes on in the
   * last held frame when nothing else for the port came in between (so no frame overtakes
   * another): a stream's 64 KB super-frames (46 segments; 44 datagrams fit an IPv4 packet) take
   * 1.34 outer frames each in the lab instead of 2, sent in one call per pass
   * (native-notes/tunnel-gso.md, p13a).
   */
  private emitTunnel(p: DpPort, src: Uint8Array, off: number, len: number, hdr: TunnelHeader,
                     flowHash: number, vnet: Uint8Array, vOff: number): boolean {
    const seg = this.tunnelSeg;
    const tmpl = seg.template(hdr, flowHash);
    const mtu = TunnelSegmenter.mtu(p.netdev);
    if (p.stamp !== this.batchNo) { // flushed at the end of the pass, held UDP GSO frames or its batch
      p.stamp = this.batchNo;
      this.touched[this.nTouched++] = p.index;
    }
    if (hdr.isVxlan && TunnelSegmenter.udpGso(p.netdev)) {
      if (this.tunnelOut === null) this.tunnelOut = new PacketBatch(TUNNEL_OUT_SLOTS, GSO_SLOT_BYTES, true);
      const to = this.tunnelOut;
      let extend = this.tunnelOutPort === p && p.out.count === 0 && p.nGather === 0;
      // A free slot for the first write (with none, tunnelEmit takes nothing: OffloadResult.NoRoom).
      if (extend && to.count >= to.capacity) {
        this.flushTunnelOut();
        extend = false;
      } else if (!extend) {
        if (this.tunnelOutPort !== null) this.flushTunnelOut();
        this.sendPort(p); // the port's pending frames go first
      }
      seg.state[0] = 0;
      for (;;) {
        const n = seg.write(tmpl, true, extend, mtu, src, off, len, vnet, vOff, to, to.count);
        if (n < 0) return n !== TUNNEL_NOT_TCP_GSO ? this.badOffload(p) : false;
        // Not packed (datagrams over the MTU, one segment): one outer frame per segment below.
        if (seg.state[1] === 0) break;
        this.tunnelOutPort = p;
        to.count += n;
        if (seg.state[0] === 0) {
          seg.nUdpGso++;
          return true;
        }
        this.flushTunnelOut(); // slots ran out: send them, go on from state[0]
        extend = false;
      }
    }
    const out = p.out;
    seg.state[0] = 0;
    for (;;) {
      if (out.count >= out.capacity) this.sendPort(p);
      const n = seg.write(tmpl, false, false, mtu, src, off, len, vnet, vOff, out, out.count);
      if (n < 0) return n !== TUNNEL_NOT_TCP_GSO ? this.badOffload(p) : false;
      out.count += n;
      if (seg.state[0] === 0) break;
    }
    seg.nPerSegment++;
    return true;
  }

  private badOffload(p: DpPort): true {
    this.nOffloadBad++;
    p.txDropped++;
    return true;
  }

  /** Finishes an offload frame (gso.ts) and emits its pieces as complete frames. */
  private emitFinished(idx: number, src: Uint8Array, off: number, len: number, hdr: TunnelHeader | null,
                       flowHash: number, vnet: Uint8Array, vOff: number): void {
    if (hdr !== null && this.emitTunnel(this.list[idx], src, off, len, hdr, flowHash, vnet, vOff)) {
      this.nOffloadFinished++;
      return;
    }
    if (this.pieces === null) this.pieces = new PacketBatch(GSO_MAX_SEGMENTS);
    const pieces = this.pieces;
    const n = finishOffload(src, off, len, vnet, vOff, pieces);
    if (n <= 0) {
      this.nOffloadBad++;
      this.list[idx].txDropped++;
      return;
    }
    this.nOffloadFinished++;
    for (let k = 0; k < n; k++) this.emit(idx, pieces.buf, pieces.off[k], pieces.len[k], hdr, flowHash);
  }

  /** Sends the UDP GSO frames held in tunnelOut (one netdev call) and counts them on their port. */
  private flushTunnelOut(): void {
    const p = this.tunnelOutPort as DpPort, to = this.tunnelOut as PacketBatch;
    this.tunnelOutPort = null;
    const n = to.count;
    to.count = 0;
    if (n > 0) sendCounted(p, to, n);
  }

  /** Sends port `p`'s pending frames (held UDP GSO frames first, then its batch) and counts them. */
  sendPort(p: DpPort): void {
    if (this.tunnelOutPort === p) this.flushTunnelOut();
    if (p.nGather > 0 && !this.sendGathered(p)) this.ungather(p);
    const out = p.out;
    if (out.count === 0) return;
    sendCounted(p, out, out.count);
    out.count = 0;
  }

  /**
   * Sends the input batch itself to `p` when its gathered slots are 0 .. nGather-1 (counted as
   * sendPort counts). False (nothing sent) when they are not.
   */
  private sendGathered(p: DpPort): boolean {
    const n = p.nGather, b = this.inBatch as PacketBatch;
    if (p.tunnel !== null) { // outer frames in place: the view names them in order
      p.nGather = 0;
      sendCounted(p, p.encView as PacketBatch, n);
      this.nInputSends++;
      return true;
    }
    if (p.gatherOutOfOrder !== 0) return false;
    p.nGather = 0;
    sendCounted(p, b, n);
    this.nInputSends++;
    return true;
  }

  /** Sends every port that got frames in this batch. */
  flushTouched(): void {
    for (let k = 0; k < this.nTouched; k++) this.sendPort(this.list[this.touched[k]]);
    this.nTouched = 0;
  }
}

/** Sends frames [0, n) of `b` on `p`'s netdev (one call) and counts them on `p`. */
function sendCounted(p: DpPort, b: PacketBatch, n: number): void {
  const sent = p.netdev.send(b, n);
  let bytes = 0;
  for (let k = 0; k < sent; k++) bytes += b.len[k];
  p.txPackets += sent;
  p.txBytes += bytes;
  if (sent < n) p.txDropped += n - sent;
}
