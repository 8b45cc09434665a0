/**
 * Tunnel headers for output to VXLAN (RFC 7348) and GRE (RFC 2784/2890 with key) ports,
 * precomputed once per (tunnel port, VNI/key) when a megaflow is compiled (dpif/compile.ts),
 * and the decap used on the receive side when a frame still carries its outer headers.
 *
 * Called by: dpif/datapath.ts (buildTunnelHeader, memoised per tunnel port and key, for
 * compile.ts and the slow path), dpif/ports.ts (encapFill per frame sent to a tunnel port,
 * encapRun for a run of frames of one flow encapsulated in place),
 * dpif/tunnel-gso.ts (the header bytes as the native segmenter's template), bench/ and tests
 * (decapVxlan); netdev/ fills TunnelDesc from its config and the neighbour table (next-hop MAC).
 *
 * Per packet only four things change: IPv4 total length, the IPv4 header checksum (incremental,
 * RFC 1624, from a base computed with total length 0), and for VXLAN the UDP length and UDP
 * source port (a hash of the inner flow scaled into 32768..61000, dpif/flow-hash.ts
 * tunnelSrcPort). The first three depend on the inner length alone: the word templates of a
 * TunnelHeader keep them for the last length seen, so frames of one length get a word copy and
 * the source port. The UDP checksum is 0 (allowed over IPv4, RFC 7348 s5; OVS's default too).
 * IPv4 id is 0 with DF set, as OVS sends by default.
 * A TunnelHeader is owned by the datapath's memo and shared by every program using it: its
 * `bytes` never change after build, its templates' length fields are a cache any encapFill may
 * rewrite (one thread). Frames are never referenced after return.
 */
import { csumUpdate16, ipv4HeaderChecksum } from '../packet/checksum';
import { Stop } from '../packet/stop';
import { PacketBatch, VNET_HDR_BYTES, VNET_OFF_GSO_TYPE } from '../netdev/batch';
import { tunnelSrcPort } from './flow-hash';
import { wr32, wrMac48 } from '../packet/bytes';

/** What the netdev layer tells the datapath about a tunnel port. */
export interface TunnelDesc {
  readonly kind: 'vxlan' | 'gre';
  /** Outer IPv4 source and destination, host order. */
  readonly localIp: number;
  readonly remoteIp: number;
  /** Outer Ethernet source (this node's underlay MAC) and destination (next hop), 48-bit numbers. */
  readonly srcMac: number;
  readonly nextHopMac: number;
  /** UDP destination port for VXLAN (4789); ignored for GRE. */
  readonly dstPort: number;
  /** Outer TTL (64 by default in OVS) and TOS. */
  readonly ttl: number;
  readonly tos: number;
}

export const VXLAN_HEADER_BYTES = 50; // 14 + 20 + 8 + 8
export const GRE_HEADER_BYTES = 42;   // 14 + 20 + 4 + 4 (key)
export const VXLAN_PORT = 4789;

/**
 * A header ready to be copied in front of a frame, with per-alignment templates: for a = 0..3,
 * the header laid at byte a of a small word-sized buffer (`shifted`, 32-bit view `shifted32`),
 * so that whatever the alignment of the output offset the copy goes 4 bytes at a time (the
 * first and last words it stores are shared with the headroom before and the frame after: they
 * are merged through `headMask`/`tailMask`, see encapWords). A template also carries the
 * length fields (IPv4 total length, its header checksum, UDP length) for the inner length it
 * was last used with (`filledLen[a]`, -1 for none): frames of one length, the common case, copy
 * them with the words and encapFill writes only the UDP source port (VXLAN) per frame. Never in
 * a template: the source port (per flow), so a header shared by many flows (memoised per port
 * and key) cannot carry one flow's port into another's frame.
 */
export class TunnelHeader {
  readonly shifted: Uint8Array[] = [];
  readonly shifted32: Uint32Array[] = [];
  /** Inner length whose length fields template a holds, -1 when none yet. */
  readonly filledLen = new Int32Array(4).fill(-1);
  /**
   * Per alignment a: the bits of the template's first and last word that are header bytes (the
   * others belong to the headroom before and the frame after), and its word count. Made by
   * laying bytes through a byte view, so they hold whatever the machine's byte order.
   */
  readonly headMask = new Uint32Array(4);
  readonly tailMask = new Uint32Array(4);
  readonly nWords = new Uint8Array(4);
  constructor(
    /** The header with total length, checksum and UDP length and source port 0 (tunnel-gso.ts copies it). */
    readonly bytes: Uint8Array,
    /** IPv4 checksum of the header with total length 0. */
    readonly baseCsum: number,
    readonly isVxlan: boolean,
  ) {
    const n = bytes.length;
    const probe = new Uint32Array(1), probe8 = new Uint8Array(probe.buffer);
    for (let a = 0; a < 4; a++) {
      const buf = new Uint8Array((n + 8) & ~3);
      buf.set(bytes, a);
      this.shifted.push(buf);
      this.shifted32.push(new Uint32Array(buf.buffer));
      const e = a + n; // the end of the header in the template
      this.nWords[a] = (e + 3) >>> 2;
      for (let k = 0; k < 4; k++) probe8[k] = k >= a ? 0xff : 0;
      this.headMask[a] = probe[0];
      for (let k = 0; k < 4; k++) probe8[k] = (e & 3) === 0 || k < (e & 3) ? 0xff : 0;
      this.tailMask[a] = probe[0];
    }
  }

  /** Writes the length fields for an `innerLen`-byte frame into template `a`. */
  fillLengths(a: number, innerLen: number): void {
    writeLengths(this.shifted[a], a, this, innerLen);
    this.filledLen[a] = innerLen;
  }
}

/**
 * Writes the fields of `hdr` that depend on the inner frame's length into the header copy at
 * b[o]: the IPv4 total length and its checksum, and for VXLAN the UDP length.
 */
function writeLengths(b: Uint8Array, o: number, hdr: TunnelHeader, innerLen: number): void {
  const totLen = hdr.bytes.length - 14 + innerLen;
  b[o + 16] = totLen >>> 8; b[o + 17] = totLen & 0xff;
  const c = csumUpdate16(hdr.baseCsum, 0, totLen);
  b[o + 24] = c >>> 8; b[o + 25] = c & 0xff;
  if (hdr.isVxlan) {
    const ulen = innerLen + 16;
    b[o + 38] = ulen >>> 8; b[o + 39] = ulen & 0xff;
  }
}

/** Builds the header for `desc` with VNI (VXLAN, 24 bits) or key (GRE, 32 bits) `key`. */
export function buildTunnelHeader(desc: TunnelDesc, key: number): TunnelHeader {
  const vx = desc.kind === 'vxlan';
  const n = vx ? VXLAN_HEADER_BYTES : GRE_HEADER_BYTES;
  const b = new Uint8Array(n);
  wrMac48(b, 0, desc.nextHopMac);
  wrMac48(b, 6, desc.srcMac);
  b[12] = 0x08; b[13] = 0x00;
  const ip = 14;
  b[ip] = 0x45;
  b[ip + 1] = desc.tos & 0xff;
  // total length (ip+2) filled per packet; id 0
  b[ip + 6] = 0x40; // DF
  b[ip + 8] = desc.ttl & 0xff;
  b[ip + 9] = vx ? 17 : 47;
  wr32(b, ip + 12, desc.localIp >>> 0);
  wr32(b, ip + 16, desc.remoteIp >>> 0);
  const base = ipv4HeaderChecksum(b, ip);
  if (vx) {
    const u = 34;
    b[u + 2] = desc.dstPort >>> 8; b[u + 3] = desc.dstPort & 0xff;
    b[42] = 0x08; // RFC 7348 s5: I flag
    const vni = key & 0xffffff;
    b[46] = vni >>> 16; b[47] = (vni >>> 8) & 0xff; b[48] = vni & 0xff;
  } else {
    b[34] = 0x20; // RFC 2890 s2: K bit
    b[36] = 0x65; b[37] = 0x58; // transparent Ethernet bridging
    wr32(b, 38, key >>> 0);
  }
  return new TunnelHeader(b, base, vx);
}

/**
 * Writes `hdr` in front of the `innerLen`-byte frame at `b[frameOff]` (the caller made room:
 * frameOff - hdr.bytes.length is inside the slot) and fills the per-packet fields; with `b32`
 * (a 32-bit view of `b` from offset 0) through encapWords. Returns the offset of the outer frame.
 */
export function encapFill(b: Uint8Array, frameOff: number, innerLen: number,
                          hdr: TunnelHeader, flowHash: number, b32: Uint32Array | null = null): number {
  if (b32 !== null) return encapWords(b, b32, frameOff, innerLen, hdr, flowHash);
  const h = hdr.bytes;
  const n = h.length;
  const o = frameOff - n;
  for (let k = 0; k < n; k++) b[o + k] = h[k];
  writeLengths(b, o, hdr, innerLen);
  if (hdr.isVxlan) {
    const sp = tunnelSrcPort(flowHash);
    b[o + 34] = sp >>> 8; b[o + 35] = sp & 0xff;
  }
  return o;
}

/**
 * encapFill through `b32`, a 32-bit view of `b` from offset 0: the template of the outer
 * header's alignment (lengths filled into it first when it holds another inner length) goes
 * out as whole words, from the word holding the header's first byte to the word holding its
 * last. The first and last of those words are merged with what they hold of the headroom
 * before and the frame after (TunnelHeader.headMask/tailMask: word loads and stores only, the
 * template itself is not written per frame); then the source port. The headers of both kinds
 * are at least 11 words at any alignment: the middle stores are unrolled.
 */
export function encapWords(b: Uint8Array, b32: Uint32Array, frameOff: number, innerLen: number,
                           hdr: TunnelHeader, flowHash: number): number {
  const o = frameOff - hdr.bytes.length;
  const a = o & 3;
  if (hdr.filledLen[a] !== innerLen) hdr.fillLengths(a, innerLen);
  const t = hdr.shifted32[a];
  const dw = (o - a) >>> 2, last = hdr.nWords[a] - 1;
  const hm = hdr.headMask[a], tm = hdr.tailMask[a];
  b32[dw] = (t[0] & hm) | (b32[dw] & ~hm);
  b32[dw + 1] = t[1]; b32[dw + 2] = t[2]; b32[dw + 3] = t[3]; b32[dw + 4] = t[4]; b32[dw + 5] = t[5];
  b32[dw + 6] = t[6]; b32[dw + 7] = t[7]; b32[dw + 8] = t[8]; b32[dw + 9] = t[9];
  for (let w = 10; w < last; w++) b32[dw + w] = t[w];
  b32[dw + last] = (t[last] & tm) | (b32[dw + last] & ~tm);
  if (hdr.isVxlan) {
    const sp = tunnelSrcPort(flowHash);
    b[o + 34] = sp >>> 8; b[o + 35] = sp & 0xff;
  }
  return o;
}

/**
 * The last word index encapRun writes from locals: a VXLAN header ends at word 12 or 13 of its
 * template, GRE's at 10 or 11 (by alignment); longer headers are none of flowd's.
 */
const RUN_LAST_WORD_MAX = 13;

/**
 * encapWords for the frames in slots live[from, to) of `batch` (b32: its buffer's word view), all
 * with header `hdr` (a run of frames of one flow, dpif/ports.ts emitLastTunnelRun), each written
 * into the headroom in front of it: outer offsets and lengths go to out.off/len from entry `n`
 * on, in order. The template's words are loaded into locals once for a stretch of frames of one
 * alignment and inner length (the usual run: every frame's), so each frame costs the stores
 * alone: written per frame, the loads came again after every frame's stores (the compiler
 * cannot tell the template and the frame apart) and cost as much as the stores. Every word is
 * a local, to word 13 (RUN_LAST_WORD_MAX): a loop over the template's words past the tenth
 * cost about 2.5 ns per frame of (b)'s 31 in execute + flush (bench/tunnel-stages.ts
 * STAGES_HOT). Stops at the first frame without room for the header before it in its slot, or
 * that is an offload frame (its vnet header has flags or a GSO type: dpif/ports.ts finishes
 * those), or whose header goes past word RUN_LAST_WORD_MAX (encapWords takes it); returns the
 * index in `live` where it stopped (`to` when every frame went).
 */
export function encapRun(batch: PacketBatch, b32: Uint32Array, live: Uint16Array, from: number, to: number,
                         hdr: TunnelHeader, hashes: Uint32Array, out: PacketBatch, n: number): number {
  const b = batch.buf, offA = batch.off, lenA = batch.len, slotBytes = batch.slotBytes, outOff = out.off, outLen = out.len;
  const vnet = batch.vnet;
  const hdrLen = hdr.bytes.length, vx = hdr.isVxlan;
  let a = -1, innerLen = -1, last = 0, hm = 0, tm = 0, t = hdr.shifted32[0];
  let w0 = 0, w1 = 0, w2 = 0, w3 = 0, w4 = 0, w5 = 0, w6 = 0, w7 = 0, w8 = 0, w9 = 0, w10 = 0, w11 = 0, w12 = 0, wl = 0;
  let q = from;
  for (; q < to; q++) {
    const s = live[q];
    const off = offA[s], len = lenA[s];
    const o = off - hdrLen;
    if (o < s * slotBytes) break;
    if (vnet !== null && (vnet[s * VNET_HDR_BYTES] !== 0 || vnet[s * VNET_HDR_BYTES + VNET_OFF_GSO_TYPE] !== 0)) break;
    if ((o & 3) !== a || len !== innerLen) { // another template or other lengths: load them
      a = o & 3;
      innerLen = len;
      if (hdr.filledLen[a] !== len) hdr.fillLengths(a, len);
      t = hdr.shifted32[a];
      last = hdr.nWords[a] - 1;
      if (last > RUN_LAST_WORD_MAX) break; // a longer header than VXLAN's or GRE's: encapWords takes it
      hm = hdr.headMask[a]; tm = hdr.tailMask[a];
      w0 = t[0] & hm; w1 = t[1]; w2 = t[2]; w3 = t[3]; w4 = t[4]; w5 = t[5]; w6 = t[6]; w7 = t[7]; w8 = t[8]; w9 = t[9];
      w10 = last > 10 ? t[10] : 0; w11 = last > 11 ? t[11] : 0; w12 = last > 12 ? t[12] : 0;
      wl = t[last] & tm;
    }
    const dw = (o - a) >>> 2;
    b32[dw] = w0 | (b32[dw] & ~hm);
    b32[dw + 1] = w1; b32[dw + 2] = w2; b32[dw + 3] = w3; b32[dw + 4] = w4; b32[dw + 5] = w5;
    b32[dw + 6] = w6; b32[dw + 7] = w7; b32[dw + 8] = w8; b32[dw + 9] = w9;
    // Middle words 10 to 12, for a header that goes on past word 10 (VXLAN ends at word 12 or 13).
    if (last > 10) { b32[dw + 10] = w10; if (last > 11) { b32[dw + 11] = w11; if (last > 12) b32[dw + 12] = w12; } }
    b32[dw + last] = wl | (b32[dw + last] & ~tm);
    if (vx) {
      const sp = tunnelSrcPort(hashes[s] | 0);
      b[o + 34] = sp >>> 8; b[o + 35] = sp & 0xff;
    }
    outOff[n] = o;
    outLen[n] = len + hdrLen;
    n++;
  }
  return q;
}

/**
 * Strips outer Ethernet/IPv4/UDP/VXLAN from frame `i` of `batch` in place (moves off/len) and
 * records the tunnel metadata (tun_id = VNI, tun_src, tun_dst). For a netdev that receives whole
 * outer frames (and for the in-memory bench); a UDP-socket VXLAN port gets the payload instead.
 * Returns Stop.Ok, or why the frame is not a VXLAN frame this port can take.
 */
export function decapVxlan(batch: PacketBatch, i: number): Stop {
  const b = batch.buf, dv = batch.view; // big-endian loads of whole fields
  const off = batch.off[i];
  const len = batch.len[i];
  if (len < 14) return Stop.TruncatedEth;
  if (dv.getUint16(off + 12) !== 0x0800) return Stop.UnknownEthertype;
  const ip = off + 14;
  if (len < 34) return Stop.TruncatedIpv4;
  const vi = b[ip];
  if ((vi >>> 4) !== 4) return Stop.BadIpv4Version;
  const ihl = (vi & 0x0f) << 2;
  if (ihl < 20) return Stop.BadIhl;
  if (b[ip + 9] !== 17) return Stop.UnknownEthertype;
  const u = ip + ihl;
  if (u + 16 > off + len) return Stop.TruncatedVxlan; // RFC 7348 s5: 8 bytes UDP + 8 bytes VXLAN
  if ((b[u + 8] & 0x08) === 0) return Stop.BadVxlanFlags; // I flag must be set
  batch.tunIdHi[i] = 0;
  batch.tunIdLo[i] = dv.getUint32(u + 12) >>> 8; // VNI, then a reserved byte
  batch.tunSrc[i] = dv.getUint32(ip + 12);
  batch.tunDst[i] = dv.getUint32(ip + 16);
  const strip = u + 16 - off;
  batch.off[i] = off + strip;
  batch.len[i] = len - strip;
  return Stop.Ok;
}
