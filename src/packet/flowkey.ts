/**
 * Flow-key extraction: one frame in, one key (flowkey-layout.ts) and four offsets out.
 *
 * Who calls: dpif/stages.ts extract once per pass, through extractCommon for the whole batch
 * (the common Ethernet/IPv4/TCP-UDP frames in one loop; extractCommonRuns, the same loop that
 * also forms runs of one key, for input passes that find runs) and extractKeyOver for each frame it
 * leaves (keys for the whole batch live in one Uint32Array, key i at i * KEY_WORDS, offsets at
 * i * OFFS_WORDS, reused pass after pass); dpif/stages.ts reparse through extractKeyOver;
 * ofproto/trace.ts, control/commands.ts and tests through extractKey.
 *
 * What it writes (the fields of OVS's struct flow that the layout holds):
 * - in_port; dl_dst, dl_src; vlan_tci (CFI bit set on every tagged frame, 0 when untagged)
 *   and dl_type, which for an 802.3 length frame is the SNAP ethertype or 0x05ff as in OVS.
 * - IPv4: nw_src, nw_dst, nw_proto, nw_tos (= TOS & 0xfc, the DSCP bits; ECN is kept nowhere),
 *   nw_ttl, nw_frag (NW_FRAG_ANY on every fragment, plus NW_FRAG_LATER when offset != 0).
 * - IPv6: ipv6_src, ipv6_dst, ipv6_label, nw_proto = the upper protocol after the extension
 *   headers, nw_tos (= traffic class & 0xfc), nw_ttl (= hop limit), nw_frag as for IPv4.
 *   Neighbour solicitation/advertisement (ICMPv6 135/136, code 0): nd_target and the source
 *   (NS) or target (NA) link-layer address option in nd_sll/nd_tll; malformed options leave
 *   all three zero, as OVS's parse_icmpv6.
 * - L4 (not for later fragments): TCP/UDP/SCTP ports in tp_src/tp_dst, tcp_flags (12 bits),
 *   ICMP and ICMPv6 type in tp_src and code in tp_dst.
 * - ARP/RARP (Ethernet/IPv4 only): op in nw_proto (when op <= 255, as OVS), spa in nw_src,
 *   tpa in nw_dst, sha, tha.
 * Tunnel metadata (tun_id, tun_src, tun_dst) and recirc_id are NOT written by extractKey and
 * extractKeyOver: they are zeroed with the rest of the key, and the caller writes them after
 * extraction (netdev/ knows the tunnel a frame came out of; packet/ does not); extractCommon
 * copies them from the columns its caller passes. Pipeline words (ct_*, metadata, registers)
 * stay zero.
 *
 * Offsets, relative to `off`, at offs[offBase + OFF_*]: OFF_L3 first byte after the L2
 * header(s) (also for non-IP frames), OFF_L4 the upper-layer header (0 if none: non-IP, later
 * fragment, or a bad L3), OFF_L4_PAYLOAD the bytes after the TCP/UDP/SCTP/ICMP/GRE header
 * (0 if none), OFF_VLAN the 802.1Q tag's TPID (0 if untagged; never 0 when tagged, as the tag
 * sits at 12).
 *
 * Malformed frames: extraction never throws and never reads outside buf[off, off+len). It
 * stops at the last good layer: fields of the layers before the bad one are in the key, the
 * bad layer's fields are not, and the returned Stop says why (see stop.ts; isDrop() tells a
 * drop from a stop-but-forward such as a later fragment or an unparsed ethertype).
 *
 * Tunnel headers (a choice; OVS differs): OVS's flow extraction never looks into VXLAN or
 * GRE, decap is the tunnel port's job. flowd's netdev/ tunnel ports do the same with
 * checkVxlan/checkGre before a frame reaches here. In addition, issue 3 counts a bad GRE
 * flag/version and VXLAN without the I flag as malformed frames, so for UDP destination port
 * 4789 and IP protocol 47 (first fragment or unfragmented) extractKey runs the same
 * validators and returns their drop reason. The key is complete (all L4 fields written)
 * when it does, so a caller that wants OVS's behaviour for tenant traffic that merely looks
 * like a tunnel can forward on those codes. Consequence to know: a tenant's PPTP (GRE
 * version 1) or a VXLAN-port UDP flow with other content is dropped under isDrop().
 *
 * No allocation per call: no object literals, closures or subarrays; one module-level
 * Int32Array is reused for the IPv6 walk (the datapath is single-threaded).
 *
 * Speed (issue 12): extractCommon is the datapath's largest per-frame stage in scenarios (f)
 * and (g) and a large one in (b)-(d). Its cost was spread over the whole loop (taking out any
 * one part saved about 1 ns), so what changed is the loop's shape: the run compare reads the
 * previous key back from its slot with an early exit instead of carrying ten words across the
 * loop (register spills every frame, a full compare for every distinct flow); a batch out of
 * one tunnel takes its ingress words as constants as a plain batch does; the frame offset is
 * masked so V8 drops an overflow check per read. selectAll + extract went from 29-36 to 26-30
 * CPU ns/frame, 0.84-0.91 of before in an in-process A/B (figures at extractCommon).
 */
import {
  W, KEY_WORDS, NW_FRAG_ANY, NW_FRAG_LATER, VLAN_CFI, W_RECIRC_ID, W_TUN_DST, W_TUN_ID_HI, W_TUN_ID_LO,
  W_TUN_SRC, W_ARP_SHA_HI, W_ARP_SHA_LO, W_ARP_THA_HI,
  W_ARP_THA_LO, W_DL_DST_HI, W_DL_DST_LO, W_DL_SRC_HI, W_DL_SRC_LO, W_IN_PORT, W_IPV6_DST,
  W_IPV6_SRC, W_NW_DST, W_NW_MISC, W_NW_SRC, W_TCP_FLAGS, W_TP, W_VLAN_DLTYPE, W_ND_TARGET,
  W_IPV6_LABEL,
} from './flowkey-layout';
import { Stop } from './stop';
import { checkVxlan, VXLAN_PORT } from './vxlan';
import { checkGre, greHeaderLen } from './gre';
import { ingressMix } from './ingress-hash';
import { ipv6Walk, WALK_END, WALK_FRAG, WALK_L4_OFF, WALK_PROTO, WALK_WORDS } from './ipv6';

/** The offsets as a const enum (literals where used, as flowkey-layout.ts's W); OFF_* name the same. */
export const enum Off { L3 = 0, L4 = 1, L4_PAYLOAD = 2, VLAN = 3, WORDS = 4 }
export const OFFS_WORDS = Off.WORDS;
export const OFF_L3 = Off.L3;
export const OFF_L4 = Off.L4;
export const OFF_L4_PAYLOAD = Off.L4_PAYLOAD;
export const OFF_VLAN = Off.VLAN;

/** Scratch for ipv6Walk; reused by every call. */
const walk = new Int32Array(WALK_WORDS);

/**
 * Fills keys[base, base + KEY_WORDS) and offs[offBase, offBase + OFFS_WORDS) for the frame
 * buf[off, off + len) that arrived on OpenFlow port `inPort`. Returns Stop.Ok or why it
 * stopped. The caller owns all arrays; nothing is kept.
 */
export function extractKey(buf: Uint8Array, off: number, len: number, inPort: number,
                           keys: Uint32Array, base: number, offs: Uint16Array,
                           offBase: number): Stop {
  keys.fill(0, base, base + KEY_WORDS);
  return extractKeyOver(buf, off, len, inPort, keys, base, offs, offBase);
}

/** A DataView over exactly `buf` (indexes as buf does), for callers that have none. */
export function frameView(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * extractKey over a key slot that is reused frame after frame (the datapath's batch keys),
 * without clearing the whole key first (a TypedArray.fill call costs more than the parse of a
 * small frame): words [0, W_ARP_SHA_HI) are all written, zero where the frame has no such
 * field; words [W_ARP_SHA_HI, PACKET_WORDS) (ARP hardware addresses, IPv6) are written only
 * when the frame carries them, so they must be zero on entry (keyTailUsed tells when the key
 * left in the slot may hold some); the pipeline words from PACKET_WORDS on are not touched.
 * `dv`: a DataView over exactly `buf` (PacketBatch.view; made per call when absent): the
 * Ethernet, IPv4 and L4 fields are read as big-endian 16/32-bit loads through it, measured
 * about 2.5x faster in this Node than assembling them from bytes.
 * Otherwise the same as extractKey.
 */
export function extractKeyOver(buf: Uint8Array, off: number, len: number, inPort: number,
                               keys: Uint32Array, base: number, offs: Uint16Array,
                               offBase: number, dv: DataView = frameView(buf)): Stop {
  offs[offBase] = 0;
  offs[offBase + 1] = 0;
  offs[offBase + 2] = 0;
  offs[offBase + 3] = 0;
  keys[base + W_IN_PORT] = inPort >>> 0;
  keys[base + W_RECIRC_ID] = 0;
  keys[base + W_TUN_ID_HI] = 0;
  keys[base + W_TUN_ID_LO] = 0;
  keys[base + W_TUN_SRC] = 0;
  keys[base + W_TUN_DST] = 0;
  keys[base + W_VLAN_DLTYPE] = 0;
  keys[base + W_NW_SRC] = 0;
  keys[base + W_NW_DST] = 0;
  keys[base + W_NW_MISC] = 0;
  keys[base + W_TP] = 0;
  keys[base + W_TCP_FLAGS] = 0;
  if (len < 14) {
    keys[base + W_DL_DST_HI] = 0;
    keys[base + W_DL_DST_LO] = 0;
    keys[base + W_DL_SRC_HI] = 0;
    keys[base + W_DL_SRC_LO] = 0;
    return len <= 0 ? Stop.ZeroLength : Stop.TruncatedEth; // IEEE 802.3 s3.1.1: dst, src, type
  }
  const end = off + len;

  keys[base + W_DL_DST_HI] = dv.getUint16(off);
  keys[base + W_DL_DST_LO] = dv.getUint32(off + 2);
  keys[base + W_DL_SRC_HI] = dv.getUint16(off + 6);
  keys[base + W_DL_SRC_LO] = dv.getUint32(off + 8);

  let p = off + 12;
  let type = dv.getUint16(p);
  let tci = 0;
  if (type === 0x8100 || type === 0x88a8) {
    if (end - p < 6) return Stop.TruncatedVlan;           // 802.1Q s9.3: TPID, TCI, then type
    tci = ((buf[p + 2] << 8) | buf[p + 3]) | VLAN_CFI;
    offs[offBase + OFF_VLAN] = 12;
    p += 4;
    type = (buf[p] << 8) | buf[p + 1];
  }
  p += 2;
  if (type < 0x0600) {
    // 802.3 Length field (IEEE 802.3 s3.2.6): the LLC data that follows, padding excluded.
    // OVS does not check it; flowd drops a frame cut short of it, so that a cut SNAP header
    // is a drop like every other cut header.
    if (type > end - p) {
      keys[base + W_VLAN_DLTYPE] = (tci << 16) >>> 0;
      return Stop.TruncatedLlc;
    }
    // OVS's parse_ethertype: an LLC/SNAP header with OUI 0 carries an ethertype; anything
    // else is FLOW_DL_TYPE_NONE.
    if (end - p >= 8 && buf[p] === 0xaa && buf[p + 1] === 0xaa && buf[p + 2] === 0x03 &&
        buf[p + 3] === 0 && buf[p + 4] === 0 && buf[p + 5] === 0 &&
        ((buf[p + 6] << 8) | buf[p + 7]) >= 0x0600) {
      type = (buf[p + 6] << 8) | buf[p + 7];
      p += 8;
    } else {
      type = 0x05ff;
    }
  }
  keys[base + W_VLAN_DLTYPE] = ((tci << 16) | type) >>> 0;
  offs[offBase + OFF_L3] = p - off;

  if (type === 0x0800) return extractIpv4(buf, dv, off, p, end, keys, base, offs, offBase);
  if (type === 0x86dd) return extractIpv6(buf, dv, off, p, end, keys, base, offs, offBase);
  if (type === 0x0806 || type === 0x8035) return extractArp(buf, p, end, keys, base);
  if (type === 0x8100 || type === 0x88a8) return Stop.QinqInner;
  return Stop.UnknownEthertype;
}

/**
 * The per-frame columns extractCommon copies into a key next to the parsed words: the port the
 * frame came in on and the tunnel metadata of the tunnel it came out of (netdev/batch.ts
 * PacketBatch has these columns; packet/ only copies them).
 */
export interface IngressColumns {
  readonly inPort: Uint32Array;
  readonly tunIdHi: Uint32Array;
  readonly tunIdLo: Uint32Array;
  readonly tunSrc: Uint32Array;
  readonly tunDst: Uint32Array;
}

/**
 * The common frame in one straight line, for each frame of a batch: Ethernet (untagged or one
 * 802.1Q tag), IPv4 without options and not fragmented, then TCP or UDP (not to the VXLAN
 * port). Frame i (each i in slots[0, count)) is buf[off[i], off[i] + len[i]) seen through `dv`
 * (a DataView over exactly buf), its key keys[i * KEY_WORDS...] and its offsets
 * offs[i * OFFS_WORDS...]. For a common frame with every length check of extractKeyOver
 * passed, writes the words extractKeyOver writes from the frame, [W_DL_DST_HI, W_ARP_SHA_HI),
 * and the four offsets, exactly as it would, and the ingress words [W_IN_PORT, W_DL_DST_HI):
 * in_port and the tunnel words from `ingress` (ingress.inPort[i], ...), recirc_id 0, and the ct
 * words [W_CT_STATE, W_CT_MARK] 0: the key of a frame as it comes in from a port. Every other
 * frame's slot goes to `others` (in order; the caller runs extractKeyOver on it and writes its
 * tunnel words), with nothing written that the caller keeps.
 * Either way the key's [W_ARP_SHA_HI, PACKET_WORDS) is zero on return (cleared when
 * keyTailUsed says the key left in the slot may hold some), as extractKeyOver needs it. Words
 * it does not write: the pipeline words from PACKET_WORDS on but the ct words. Never reads
 * outside a frame.
 * Returns the count in `others`.
 * `same` (a column by slot, BatchState.sameKey): same[i] = the slot before i in `slots` when
 * this loop parsed both and every word it wrote, [W_IN_PORT, W_ARP_SHA_HI), is equal in both
 * keys, else -1 (so the two keys are equal up to PACKET_WORDS: the words after are zero in
 * both). Later stages (dpif/stages.ts emcLookup) take a marked frame's answer without
 * comparing keys.
 * `hashes` (a column by slot, BatchState.hashes): for every frame it parses, hashes[i] =
 * ingressHash of the key it wrote (dpif/flow-hash.ts; both through ingress-hash.ts ingressMix,
 * so the two agree), computed for the frames it does not mark (a marked frame's is the frame's
 * before it), so a run of one flow is hashed once; `cacheHashes` (BatchState.cacheHash, the
 * EMC's hash: for a frame from a port, with recirc id and depth 0, the ingress hash itself)
 * gets the same. Written here for every frame, the datapath needs no second loop over the
 * batch for them (dpif/stages.ts extract; it had one, ingressWords, which also zeroed the ct
 * words).
 * The hash: computed here from the ten values the parse holds in locals, rather than by the
 * ingress stage from the finished keys (ten words loaded back per frame). Measured, extract's
 * loop and the ingress stage's hash work together over 64 batches of 32 frames in a loop (CPU
 * time, best of 8, four alternating runs, load 8-12): 32 distinct UDP flows per batch ((b)'s
 * shape) 26.5 -> 22.9 ns/frame, one flow ((a)'s) 21.0 -> 21.4 (within the runs' spread).
 * Writing hashes[i] for marked frames too (a hash carried across the loop) cost one flow
 * 21.0 -> 22.4 (then the caller still copied it in a loop of its own; 2026-12-06, with that
 * loop gone, the ct words and cache hash written here instead: in-process A/B of whole
 * batches, bench/scenario-ab.js, (a) 0.931, (f) 0.973, (g) 0.972). In bench/inmem.ts (CPU time, medians of 6 alternating runs, load 9-15):
 * (b) 9.72x -> 9.25x, (c) 9.87x -> 9.53x, (d) 8.24x -> 7.99x, (a) 3.10x -> 3.19x with two
 * outliers (3.02x over the first four); bench/stage-harness.ts (a), 7 alternating runs: extract
 * 27.2 -> 27.6 ns/frame, processBatch 1.94x -> 1.96x the yardstick (unchanged within the noise).
 * `plainPort` >= 0: the caller found every frame in `slots` came in on port plainPort without
 * tunnel metadata (a batch from a plain port, the common case; dpif/stages.ts selectAll, which
 * reads the columns once for its own count), so the loop takes those words as constants
 * instead of reading the columns per frame; -1: it reads them. Measured with the extract stage
 * trained on both kinds of batch (a process running every bench scenario), selectAll included:
 * plain batches 28.4 -> 26.0 ns/frame, tunnel batches 32.6 -> 35.8 (they pay the check).
 * With -1 it first looks whether all frames share one port and one tunnel (a batch out of
 * one tunnel port: (c)'s), a tight loop over the five columns, and if so takes them as
 * constants the same way; only a batch that mixes them reads the columns per frame.
 * The run compare: whether frame i's key equals the previous frame's is read back from the
 * previous frame's key slot, word by word with an early exit, the words that most often tell
 * flows apart first (ports, addresses), and frame i is hashed only when it differs. Before,
 * the ten parsed words were kept in locals carried across the loop and all ten compared
 * without a branch: that held ten more values live across iterations than the registers
 * have, and a batch of distinct flows paid the whole compare per frame.
 * The offset mask: off[i] & 0x3fffffff tells V8 a frame's offset is below 2^30 (a batch
 * buffer is far smaller), so o + 12 ... o + 54 cannot overflow and each DataView read loses
 * its overflow check; it changes no offset that can occur.
 * Measured, the three together, against main at 8abe735 (machine load 9-13 on 2 cores):
 * selectAll + extract, bench/extract-ab.ts (in-process A/B, medians of 400 interleaved slices,
 * both orders; an A/A run gives 0.96-1.02): (a) 0.90-0.91, (b) 0.87, (c) 0.84-0.88,
 * (d) 0.88, (f) 0.89-0.90, (g) 0.89-0.99 of before; bench/extract-stage.ts (CPU ns/frame,
 * min of 15, alternating runs; selectAll is about 4.5 of each): (a) 29.1 -> 25.6, (b) 30.9 ->
 * 26.1, (c) 35.8 -> 29.7, (d) 30.8 -> 26.2, (f) 29.0 -> 26.0, (g) 29.4 -> 26.3. Whole batches:
 * bench/inmem.ts (CPU time, medians of 8 alternating runs, x yardstick) (a) 3.00 -> 2.78,
 * (b) 8.66 -> 8.68, (c) 9.20 -> 8.93, (d) 7.91 -> 7.62, (f) 7.99 -> 7.79, (g) 8.60 -> 8.32,
 * each run moving by +-0.5; processBatch in-process A/B (as bench/scenario-ab.ts, 3 pairs) (a) 1.007,
 * (b) 0.996, (c) 0.972, (d) 0.989, (f) 0.996-1.000, (g) 0.993 with A/A 0.986-1.024: 3-5 ns of a
 * frame's 140-160 is below what whole-batch runs on this machine resolve.
 * Each alone (extractCommon alone, in the order made; CPU ns/frame as above): the mask about
 * -1.5 everywhere; then the one-tunnel check (c) 32.9 -> 30.6, the others -1 to -2; then the
 * run compare (b) 27.4 -> 24.8, (c) 30.6 -> 27.9, (d) 26.6 -> 24.6, (a), (f), (g) about -0.5.
 * Tried and slower: a run compare read back from the slot without the early exit, after
 * hashing every frame (the hash as the first test): (a), (f), (g) 24.9-25.4 -> 27.7-29.6,
 * (b), (d) as now. Touching each typed array once before the loop (so V8 checks their maps
 * there, not per frame): no change.
 * Why a loop over the batch: one call per batch instead of one per frame (V8 would not inline
 * the per-frame parse: too much bytecode), each word written once instead of zeroed first, no
 * dispatch on the ethertype and protocol beyond two compares; the ingress words in the same
 * loop save the datapath a second loop over the batch's keys.
 * Called by: dpif/stages.ts extract; bench/extract-stage.ts; test/packet/flowkey-common.test.ts
 * and flowkey-common-property.test.ts (fast-check, random batches) pin it to extractKey.
 */
export function extractCommon(dv: DataView, off: Uint32Array, len: Uint32Array, slots: Uint16Array, count: number,
                              keys: Uint32Array, offs: Uint16Array, others: Uint16Array, same: Int16Array,
                              hashes: Uint32Array, ingress: IngressColumns, plainPort = -1,
                              cacheHashes: Uint32Array = hashes): number {
  const cfi = VLAN_CFI, vxlanPort = VXLAN_PORT; // imported constants, loaded once
  const inPort = ingress.inPort, tunIdHi = ingress.tunIdHi, tunIdLo = ingress.tunIdLo, tunSrc = ingress.tunSrc, tunDst = ingress.tunDst;
  // One port and one tunnel (or none) for every frame: the ingress words are loop constants, read
  // once here when the caller does not know (a batch out of one tunnel, as (c)'s).
  let uPort = plainPort, uIdHi = 0, uIdLo = 0, uSrc = 0, uDst = 0;
  let uniform = plainPort >= 0;
  if (!uniform && count > 0) {
    const i0 = slots[0];
    uPort = inPort[i0]; uIdHi = tunIdHi[i0]; uIdLo = tunIdLo[i0]; uSrc = tunSrc[i0]; uDst = tunDst[i0];
    let d = 0;
    for (let k = 1; k < count && d === 0; k++) { // a mixed batch stops at its first difference
      const i = slots[k];
      d = (inPort[i] ^ uPort) | (tunIdHi[i] ^ uIdHi) | (tunIdLo[i] ^ uIdLo) | (tunSrc[i] ^ uSrc) | (tunDst[i] ^ uDst);
    }
    uniform = d === 0;
  }
  let nOther = 0;
  let prev = -1, pBase = 0; // the frame before this one when this loop parsed it, and its key's base
  let h = 0; // its hash
  for (let k = 0; k < count; k++) {
    const i = slots[k];
    const base = i * W.KEY_WORDS;
    const et = keys[base + W.VLAN_DLTYPE] & 0xffff;       // keyTailUsed, inlined
    if (et === 0x86dd || et === 0x0806 || et === 0x8035) keys.fill(0, base + W.ARP_SHA_HI, base + W.PACKET_WORDS);
    const o = off[i] & 0x3fffffff, n = len[i]; // o: see "The offset mask" above
    // The checks first; `break` out of this block leaves the frame to extractKeyOver.
    parse: {
      if (n < 42) break parse;                            // Ethernet + IPv4 + UDP: the reads before the length checks fit
      let l3 = 14, tci = 0;
      let type = dv.getUint32(o + 12);                    // ethertype, or TPID and TCI
      if (type >>> 16 === 0x8100) {
        tci = type & 0xffff | cfi;
        l3 = 18;
        type = dv.getUint32(o + 16);
      }
      const p = o + l3;
      const w0 = dv.getUint32(p);                         // version 4, IHL 5, TOS, total length
      const total = w0 & 0xffff;
      if (type >>> 16 !== 0x0800 || w0 >>> 24 !== 0x45 || total < 28 || total > n - l3 ||
          (dv.getUint32(p + 4) & 0x3fff) !== 0) break parse; // not IPv4, options, MF or an offset, no room for UDP
      const w3 = dv.getUint32(p + 8);                     // TTL, protocol, checksum
      const proto = w3 >>> 16 & 0xff;
      const room = total - 20;
      const tp = dv.getUint32(p + 20);                    // source and destination port
      let l4w = 0, hl = 8;
      if (proto === 6) {
        if (room < 20) break parse;
        l4w = dv.getUint16(p + 32);                       // TCP data offset and flags
        hl = l4w >>> 12 << 2;
        if (hl < 20 || hl > room) break parse;
        l4w &= 0x0fff;
      } else {
        const ulen = dv.getUint16(p + 24);                // UDP length
        if (proto !== 17 || ulen < 8 || ulen > room || (tp & 0xffff) === vxlanPort) break parse;
      }
      // The addresses as three 32-bit loads (dst hi:lo-top, lo-bottom:src hi, src lo), split here.
      const m0 = dv.getUint32(o), m1 = dv.getUint32(o + 4), srcLo = dv.getUint32(o + 8);
      const dstHi = m0 >>> 16, dstLo = (m0 << 16 | m1 >>> 16) >>> 0, srcHi = m1 & 0xffff;
      const vt = (tci << 16 | 0x0800) >>> 0, src = dv.getUint32(p + 12), dst = dv.getUint32(p + 16);
      const misc = (proto << 24 | w0 & 0x00fc0000 | w3 >>> 16 & 0xff00) >>> 0;
      keys[base + W.DL_DST_HI] = dstHi;
      keys[base + W.DL_DST_LO] = dstLo;
      keys[base + W.DL_SRC_HI] = srcHi;
      keys[base + W.DL_SRC_LO] = srcLo;
      keys[base + W.VLAN_DLTYPE] = vt;
      keys[base + W.NW_SRC] = src;
      keys[base + W.NW_DST] = dst;
      keys[base + W.NW_MISC] = misc;
      keys[base + W.TP] = tp;
      keys[base + W.TCP_FLAGS] = l4w;
      // The ingress words' difference from the previous frame's: none when uniform (they are
      // constants); else read back from the columns at `prev`.
      let port = uPort, idHi = uIdHi, idLo = uIdLo, tSrc = uSrc, tDst = uDst, dIn = 0;
      if (!uniform) {
        port = inPort[i]; idHi = tunIdHi[i]; idLo = tunIdLo[i]; tSrc = tunSrc[i]; tDst = tunDst[i];
        if (prev >= 0) {
          dIn = (port ^ inPort[prev]) | (idHi ^ tunIdHi[prev]) | (idLo ^ tunIdLo[prev]) | (tSrc ^ tunSrc[prev]) |
            (tDst ^ tunDst[prev]);
        }
      }
      keys[base + W.IN_PORT] = port;
      keys[base + W.RECIRC_ID] = 0;
      keys[base + W.CT_STATE] = 0;
      keys[base + W.CT_ZONE] = 0;
      keys[base + W.CT_MARK] = 0;
      keys[base + W.TUN_ID_HI] = idHi;
      keys[base + W.TUN_ID_LO] = idLo;
      keys[base + W.TUN_SRC] = tSrc;
      keys[base + W.TUN_DST] = tDst;
      // Equal to the previous frame's key? Its words are read back from its slot, the words that
      // tell flows apart most often first, so a frame of another flow stops after a load or two
      // (see "The run compare" above).
      const pb = pBase;
      let sm = -1;
      if (prev >= 0 && tp === keys[pb + W.TP] && src === keys[pb + W.NW_SRC] && dst === keys[pb + W.NW_DST] &&
          misc === keys[pb + W.NW_MISC] && l4w === keys[pb + W.TCP_FLAGS] && srcLo === keys[pb + W.DL_SRC_LO] &&
          dstLo === keys[pb + W.DL_DST_LO] && srcHi === keys[pb + W.DL_SRC_HI] && dstHi === keys[pb + W.DL_DST_HI] &&
          vt === keys[pb + W.VLAN_DLTYPE] && dIn === 0) {
        sm = prev;
      } else {
        h = ingressMix(port, idLo, dstLo, srcLo, vt, src, dst, tp, l4w, misc, 0);
      }
      hashes[i] = h;
      cacheHashes[i] = h;
      same[i] = sm;
      prev = i;
      pBase = base;
      const ob = i * Off.WORDS;
      offs[ob + Off.L3] = l3;
      offs[ob + Off.L4] = l3 + 20;
      offs[ob + Off.L4_PAYLOAD] = l3 + 20 + hl;
      offs[ob + Off.VLAN] = tci === 0 ? 0 : 12;
      continue;
    }
    same[i] = -1;
    others[nOther++] = i;
    prev = -1;
  }
  return nOther;
}

/**
 * extractCommon that also forms runs of one key (dpif/batch-state.ts BatchState.runLen): a frame
 * whose parse equals the frame's before it in every word extractCommon compares (its `same`
 * mark) and in its TCP header length, so that its four offsets are equal too (extractCommon
 * masks the data offset out of the flags word), is a member of the run of the first frame of
 * that stretch, its head: runs.runLen[head] counts the members, runs.runBytes[head] their
 * bytes, runs.nRuns the runs. A member's offsets and `same` (the frame before it) are written,
 * nothing else: its key words and hashes are its head's (the datapath writes them from the
 * head's where a stage must see the member on its own: dpif/stages.ts expandRun). runLen is
 * written for every frame that is not a member (0 unless it heads a run), runBytes for heads
 * only. The ARP/IPv6 tail of every slot is cleared as extractCommon clears it, members' too,
 * so a member's key written later from its head's is whole.
 * Offsets, still written per member: a measurement of not writing them (2026-12-06, in-process
 * A/B, 5 pairs, against this loop writing them) gave (a) 0.953, (f) 0.990, (g) 1.002; kept,
 * because a member's offsets of its own keep the conntrack stage's runs exact (their members'
 * IPv4 and TCP header lengths are not compared; expandRun copies no offsets) and (g) does not
 * gain (measured with runStraight's VLAN step still writing them; that too would go).
 * native-notes/ct-recirc-stages.md, h16a.
 * A loop of its own rather than a flag in extractCommon's: with the runs in extractCommon's
 * loop, batches of distinct flows paid for them ((b), (d): selectAll + extract 1.04-1.06 of
 * before, bench/extract-ab.js).
 */
export function extractCommonRuns(dv: DataView, off: Uint32Array, len: Uint32Array, slots: Uint16Array, count: number,
                              keys: Uint32Array, offs: Uint16Array, others: Uint16Array, same: Int16Array,
                              hashes: Uint32Array, ingress: IngressColumns, plainPort = -1,
                              cacheHashes: Uint32Array, runs: RunColumns): number {
  const cfi = VLAN_CFI, vxlanPort = VXLAN_PORT; // imported constants, loaded once
  const inPort = ingress.inPort, tunIdHi = ingress.tunIdHi, tunIdLo = ingress.tunIdLo, tunSrc = ingress.tunSrc, tunDst = ingress.tunDst;
  // One port and one tunnel (or none) for every frame: the ingress words are loop constants, read
  // once here when the caller does not know (a batch out of one tunnel, as (c)'s).
  let uPort = plainPort, uIdHi = 0, uIdLo = 0, uSrc = 0, uDst = 0;
  let uniform = plainPort >= 0;
  if (!uniform && count > 0) {
    const i0 = slots[0];
    uPort = inPort[i0]; uIdHi = tunIdHi[i0]; uIdLo = tunIdLo[i0]; uSrc = tunSrc[i0]; uDst = tunDst[i0];
    let d = 0;
    for (let k = 1; k < count && d === 0; k++) { // a mixed batch stops at its first difference
      const i = slots[k];
      d = (inPort[i] ^ uPort) | (tunIdHi[i] ^ uIdHi) | (tunIdLo[i] ^ uIdLo) | (tunSrc[i] ^ uSrc) | (tunDst[i] ^ uDst);
    }
    uniform = d === 0;
  }
  let nOther = 0;
  let prev = -1; // the frame before this one when this loop parsed it
  let head = -1; // the slot whose key holds prev's words: prev, or the head of the run prev is a member of
  let h = 0; // its hash
  const runLen = runs.runLen, runBytes = runs.runBytes;
  runs.nRuns = 0;
  for (let k = 0; k < count; k++) {
    const i = slots[k];
    const base = i * W.KEY_WORDS;
    const et = keys[base + W.VLAN_DLTYPE] & 0xffff;       // keyTailUsed, inlined
    if (et === 0x86dd || et === 0x0806 || et === 0x8035) keys.fill(0, base + W.ARP_SHA_HI, base + W.PACKET_WORDS);
    const o = off[i] & 0x3fffffff, n = len[i]; // o: see "The offset mask" above
    // The checks first; `break` out of this block leaves the frame to extractKeyOver.
    parse: {
      if (n < 42) break parse;                            // Ethernet + IPv4 + UDP: the reads before the length checks fit
      let l3 = 14, tci = 0;
      let type = dv.getUint32(o + 12);                    // ethertype, or TPID and TCI
      if (type >>> 16 === 0x8100) {
        tci = type & 0xffff | cfi;
        l3 = 18;
        type = dv.getUint32(o + 16);
      }
      const p = o + l3;
      const w0 = dv.getUint32(p);                         // version 4, IHL 5, TOS, total length
      const total = w0 & 0xffff;
      if (type >>> 16 !== 0x0800 || w0 >>> 24 !== 0x45 || total < 28 || total > n - l3 ||
          (dv.getUint32(p + 4) & 0x3fff) !== 0) break parse; // not IPv4, options, MF or an offset, no room for UDP
      const w3 = dv.getUint32(p + 8);                     // TTL, protocol, checksum
      const proto = w3 >>> 16 & 0xff;
      const room = total - 20;
      const tp = dv.getUint32(p + 20);                    // source and destination port
      let l4w = 0, hl = 8;
      if (proto === 6) {
        if (room < 20) break parse;
        l4w = dv.getUint16(p + 32);                       // TCP data offset and flags
        hl = l4w >>> 12 << 2;
        if (hl < 20 || hl > room) break parse;
        l4w &= 0x0fff;
      } else {
        const ulen = dv.getUint16(p + 24);                // UDP length
        if (proto !== 17 || ulen < 8 || ulen > room || (tp & 0xffff) === vxlanPort) break parse;
      }
      // The addresses as three 32-bit loads (dst hi:lo-top, lo-bottom:src hi, src lo), split here.
      const m0 = dv.getUint32(o), m1 = dv.getUint32(o + 4), srcLo = dv.getUint32(o + 8);
      const dstHi = m0 >>> 16, dstLo = (m0 << 16 | m1 >>> 16) >>> 0, srcHi = m1 & 0xffff;
      const vt = (tci << 16 | 0x0800) >>> 0, src = dv.getUint32(p + 12), dst = dv.getUint32(p + 16);
      const misc = (proto << 24 | w0 & 0x00fc0000 | w3 >>> 16 & 0xff00) >>> 0;
      // The offsets, written for every frame (a run's members too: see above).
      const ob = i * Off.WORDS;
      offs[ob + Off.L3] = l3;
      offs[ob + Off.L4] = l3 + 20;
      offs[ob + Off.L4_PAYLOAD] = l3 + 20 + hl;
      offs[ob + Off.VLAN] = tci === 0 ? 0 : 12;
      // The ingress words' difference from the previous frame's: none when uniform (they are
      // constants); else read back from the columns at `prev`.
      let port = uPort, idHi = uIdHi, idLo = uIdLo, tSrc = uSrc, tDst = uDst, dIn = 0;
      if (!uniform) {
        port = inPort[i]; idHi = tunIdHi[i]; idLo = tunIdLo[i]; tSrc = tunSrc[i]; tDst = tunDst[i];
        if (prev >= 0) {
          dIn = (port ^ inPort[prev]) | (idHi ^ tunIdHi[prev]) | (idLo ^ tunIdLo[prev]) | (tSrc ^ tunSrc[prev]) |
            (tDst ^ tunDst[prev]);
        }
      }
      // Equal to the previous frame's key? Its words are read back from its slot (its run's
      // head's, which holds them), the words that tell flows apart most often first, so a frame
      // of another flow stops after a load or two (see "The run compare" above).
      const pb = head * W.KEY_WORDS;
      const eq = prev >= 0 && tp === keys[pb + W.TP] && src === keys[pb + W.NW_SRC] && dst === keys[pb + W.NW_DST] &&
          misc === keys[pb + W.NW_MISC] && l4w === keys[pb + W.TCP_FLAGS] && srcLo === keys[pb + W.DL_SRC_LO] &&
          dstLo === keys[pb + W.DL_DST_LO] && srcHi === keys[pb + W.DL_SRC_HI] && dstHi === keys[pb + W.DL_DST_HI] &&
          vt === keys[pb + W.VLAN_DLTYPE] && dIn === 0;
      if (eq && offs[prev * Off.WORDS + Off.L4_PAYLOAD] === l3 + 20 + hl) {
        // A member of head's run: nothing of its key or hashes written.
        if (runLen[head]++ === 0) { runBytes[head] = n; runs.nRuns++; }
        else runBytes[head] += n;
        same[i] = prev;
        prev = i;
        continue;
      }
      keys[base + W.DL_DST_HI] = dstHi;
      keys[base + W.DL_DST_LO] = dstLo;
      keys[base + W.DL_SRC_HI] = srcHi;
      keys[base + W.DL_SRC_LO] = srcLo;
      keys[base + W.VLAN_DLTYPE] = vt;
      keys[base + W.NW_SRC] = src;
      keys[base + W.NW_DST] = dst;
      keys[base + W.NW_MISC] = misc;
      keys[base + W.TP] = tp;
      keys[base + W.TCP_FLAGS] = l4w;
      keys[base + W.IN_PORT] = port;
      keys[base + W.RECIRC_ID] = 0;
      keys[base + W.CT_STATE] = 0;
      keys[base + W.CT_ZONE] = 0;
      keys[base + W.CT_MARK] = 0;
      keys[base + W.TUN_ID_HI] = idHi;
      keys[base + W.TUN_ID_LO] = idLo;
      keys[base + W.TUN_SRC] = tSrc;
      keys[base + W.TUN_DST] = tDst;
      if (!eq) h = ingressMix(port, idLo, dstLo, srcLo, vt, src, dst, tp, l4w, misc, 0);
      hashes[i] = h;
      cacheHashes[i] = h;
      same[i] = eq ? prev : -1;
      prev = i;
      head = i;
      runLen[i] = 0;
      continue;
    }
    runLen[i] = 0;
    same[i] = -1;
    others[nOther++] = i;
    prev = -1;
  }
  return nOther;
}

/**
 * The run columns extractCommon writes when given them (dpif/batch-state.ts BatchState: runLen,
 * runBytes, nRuns; see extractCommonRuns).
 */
export interface RunColumns {
  readonly runLen: Uint16Array;
  readonly runBytes: Uint32Array;
  nRuns: number;
}

/**
 * True when the key at keys[base...] may hold non-zero words in [W_ARP_SHA_HI, PACKET_WORDS):
 * only ARP/RARP and IPv6 frames write them (extractArp, extractIpv6, extractNd), and every
 * extraction writes the ethertype word first.
 */
export function keyTailUsed(keys: Uint32Array, base: number): boolean {
  const et = keys[base + W_VLAN_DLTYPE] & 0xffff;
  return et === 0x86dd || et === 0x0806 || et === 0x8035;
}

/** IPv4 at `p` (RFC 791 s3.1); `end` is the absolute end of the frame. */
function extractIpv4(buf: Uint8Array, dv: DataView, off: number, p: number, end: number, keys: Uint32Array,
                     base: number, offs: Uint16Array, offBase: number): Stop {
  const room = end - p;
  if (room < 20) return Stop.TruncatedIpv4;               // s3.1: 20-byte minimum header
  const w0 = dv.getUint32(p);                             // version, IHL, TOS, total length
  if ((w0 >>> 28) !== 4) return Stop.BadIpv4Version;     // s3.1 "Version"
  const hl = (w0 >>> 22) & 0x3c;
  if (hl < 20) return Stop.BadIhl;                        // s3.1 "IHL": minimum value is 5
  if (hl > room) return Stop.TruncatedIpv4;
  const total = w0 & 0xffff;
  if (total < hl || total > room) return Stop.BadIpv4TotalLength; // s3.1 "Total Length"
  const w2 = dv.getUint32(p + 4);                         // identification, flags, fragment offset
  const fragBytes = (w2 & 0x1fff) << 3;
  if (fragBytes + total - hl > 65535) return Stop.BadFragment;   // s3.2: fits 65535 octets
  let frag = 0;
  if ((w2 & 0x3fff) !== 0) frag = fragBytes !== 0 ? NW_FRAG_ANY | NW_FRAG_LATER : NW_FRAG_ANY;
  const w3 = dv.getUint32(p + 8);                         // TTL, protocol, checksum
  const proto = (w3 >>> 16) & 0xff;
  keys[base + W_NW_SRC] = dv.getUint32(p + 12);
  keys[base + W_NW_DST] = dv.getUint32(p + 16);
  keys[base + W_NW_MISC] = ((proto << 24) | (w0 & 0x00fc0000) | ((w3 >>> 16) & 0xff00) | frag) >>> 0;
  if (fragBytes !== 0) return Stop.LaterFragment;         // no L4 header here, as OVS
  return extractL4(buf, dv, off, proto, p + hl, p + total, frag, keys, base, offs, offBase);
}

/** IPv6 at `p` (RFC 8200 s3, s4); `end` is the absolute end of the frame. */
function extractIpv6(buf: Uint8Array, dv: DataView, off: number, p: number, end: number, keys: Uint32Array,
                     base: number, offs: Uint16Array, offBase: number): Stop {
  const st = ipv6Walk(buf, p, end - p, walk);
  if (st !== Stop.Ok && st !== Stop.LaterFragment) return st;
  for (let i = 0; i < 4; i++) {
    const s = p + 8 + 4 * i;
    const d = p + 24 + 4 * i;
    keys[base + W_IPV6_SRC + i] =
      ((buf[s] << 24) | (buf[s + 1] << 16) | (buf[s + 2] << 8) | buf[s + 3]) >>> 0;
    keys[base + W_IPV6_DST + i] =
      ((buf[d] << 24) | (buf[d + 1] << 16) | (buf[d + 2] << 8) | buf[d + 3]) >>> 0;
  }
  const tc = ((buf[p] & 0x0f) << 4) | (buf[p + 1] >>> 4);
  keys[base + W_IPV6_LABEL] = (((buf[p + 1] & 0x0f) << 16) | (buf[p + 2] << 8) | buf[p + 3]) >>> 0;
  const proto = walk[WALK_PROTO];
  const frag = walk[WALK_FRAG];
  keys[base + W_NW_MISC] = ((proto << 24) | ((tc & 0xfc) << 16) | (buf[p + 7] << 8) | frag) >>> 0;
  if (st === Stop.LaterFragment) return st;
  return extractL4(buf, dv, off, proto, walk[WALK_L4_OFF], walk[WALK_END], frag, keys, base, offs,
    offBase);
}

/**
 * The upper-layer header at `l4` of protocol `proto`, bounded by `ipEnd` (end of the IP
 * payload, which may be shorter than the frame: Ethernet padding is not L4 data).
 * `frag` != 0 means a first fragment: the rest of the datagram is elsewhere, so the UDP
 * length may exceed what is here.
 */
function extractL4(buf: Uint8Array, dv: DataView, off: number, proto: number, l4: number, ipEnd: number,
                   frag: number, keys: Uint32Array, base: number, offs: Uint16Array,
                   offBase: number): Stop {
  const room = ipEnd - l4;
  offs[offBase + OFF_L4] = l4 - off;
  if (proto === 6) {
    if (room < 20) return Stop.TruncatedTcp;              // RFC 793 s3.1: 20-byte header
    const offFlags = dv.getUint16(l4 + 12);               // data offset, reserved, flags
    const hl = (offFlags >>> 12) << 2;
    if (hl < 20) return Stop.BadTcpOffset;                // s3.1 "Data Offset"
    if (hl > room) return Stop.TruncatedTcp;
    keys[base + W_TP] = dv.getUint32(l4);
    keys[base + W_TCP_FLAGS] = offFlags & 0x0fff;
    offs[offBase + OFF_L4_PAYLOAD] = l4 + hl - off;
    return Stop.Ok;
  }
  if (proto === 17) {
    if (room < 8) return Stop.TruncatedUdp;               // RFC 768: 8-byte header
    const ulen = dv.getUint16(l4 + 4);
    if (ulen < 8 || (ulen > room && frag === 0)) return Stop.BadUdpLength; // RFC 768 "Length"
    const ports = dv.getUint32(l4);
    keys[base + W_TP] = ports;
    offs[offBase + OFF_L4_PAYLOAD] = l4 + 8 - off;
    if ((ports & 0xffff) === VXLAN_PORT) {
      const here = ulen < room ? ulen : room;
      return checkVxlan(buf, l4 + 8, here - 8);
    }
    return Stop.Ok;
  }
  if (proto === 1 || proto === 58) {
    // RFC 792 / RFC 4443 s2.1: type, code, checksum and 4 more bytes of header.
    if (room < 8) return proto === 1 ? Stop.TruncatedIcmp : Stop.TruncatedIcmpv6;
    keys[base + W_TP] = ((buf[l4] << 16) | buf[l4 + 1]) >>> 0;
    offs[offBase + OFF_L4_PAYLOAD] = l4 + 8 - off;
    if (proto === 58 && (buf[l4] === 135 || buf[l4] === 136) && buf[l4 + 1] === 0) {
      extractNd(buf, l4, room, buf[l4] === 135, keys, base);
    }
    return Stop.Ok;
  }
  if (proto === 132) {
    if (room < 12) return Stop.TruncatedSctp;             // RFC 9260 s3.1: 12-byte common header
    keys[base + W_TP] = dv.getUint32(l4);
    offs[offBase + OFF_L4_PAYLOAD] = l4 + 12 - off;
    return Stop.Ok;
  }
  if (proto === 47) {
    const st = checkGre(buf, l4, room);
    if (st === Stop.Ok) offs[offBase + OFF_L4_PAYLOAD] = l4 + greHeaderLen(buf, l4) - off;
    return st;
  }
  return Stop.Ok;
}

/**
 * Neighbour solicitation (`ns`) or advertisement at `l4` with `room` bytes (RFC 4861 s4.3,
 * s4.4: 8-byte ICMPv6 header with reserved bits, 16-byte target, then options). The key
 * keeps whatever a malformed message gives nothing of, as OVS: a cut target or an option
 * of length 0, past the end or repeated clears nd_target, nd_sll and nd_tll.
 */
function extractNd(buf: Uint8Array, l4: number, room: number, ns: boolean, keys: Uint32Array,
                   base: number): void {
  if (room < 24) return;
  for (let i = 0; i < 4; i++) {
    const t = l4 + 8 + 4 * i;
    keys[base + W_ND_TARGET + i] = ((buf[t] << 24) | (buf[t + 1] << 16) | (buf[t + 2] << 8) | buf[t + 3]) >>> 0;
  }
  let o = l4 + 24;
  const end = l4 + room;
  let seen = false;
  while (end - o >= 8) {
    const len = buf[o + 1] * 8;                            // RFC 4861 s4.6: units of 8 bytes
    if (len === 0 || len > end - o) { clearNd(keys, base); return; }
    const type = buf[o];
    // s4.6.1: source link-layer address in a solicitation, target in an advertisement.
    if (len === 8 && ((ns && type === 1) || (!ns && type === 2))) {
      if (seen) { clearNd(keys, base); return; }
      seen = true;
      const w = ns ? W_ARP_SHA_HI : W_ARP_THA_HI;
      keys[base + w] = (buf[o + 2] << 8) | buf[o + 3];
      keys[base + w + 1] = ((buf[o + 4] << 24) | (buf[o + 5] << 16) | (buf[o + 6] << 8) | buf[o + 7]) >>> 0;
    }
    o += len;
  }
}

function clearNd(keys: Uint32Array, base: number): void {
  for (let i = 0; i < 4; i++) keys[base + W_ND_TARGET + i] = 0;
  keys[base + W_ARP_SHA_HI] = 0; keys[base + W_ARP_SHA_LO] = 0;
  keys[base + W_ARP_THA_HI] = 0; keys[base + W_ARP_THA_LO] = 0;
}

/** ARP/RARP at `p` (RFC 826), Ethernet/IPv4 only, as OVS. */
function extractArp(buf: Uint8Array, p: number, end: number, keys: Uint32Array,
                    base: number): Stop {
  const room = end - p;
  if (room < 8) return Stop.TruncatedArp;                 // RFC 826: hrd, pro, hln, pln, op
  if (buf[p] !== 0 || buf[p + 1] !== 1 || buf[p + 2] !== 0x08 || buf[p + 3] !== 0 ||
      buf[p + 4] !== 6 || buf[p + 5] !== 4) return Stop.ArpNotEthIpv4;
  if (room < 28) return Stop.TruncatedArp;                // RFC 826: 6+4+6+4 address bytes
  const op = (buf[p + 6] << 8) | buf[p + 7];
  if (op <= 0xff) keys[base + W_NW_MISC] = (op << 24) >>> 0;
  keys[base + W_ARP_SHA_HI] = (buf[p + 8] << 8) | buf[p + 9];
  keys[base + W_ARP_SHA_LO] =
    ((buf[p + 10] << 24) | (buf[p + 11] << 16) | (buf[p + 12] << 8) | buf[p + 13]) >>> 0;
  keys[base + W_NW_SRC] =
    ((buf[p + 14] << 24) | (buf[p + 15] << 16) | (buf[p + 16] << 8) | buf[p + 17]) >>> 0;
  keys[base + W_ARP_THA_HI] = (buf[p + 18] << 8) | buf[p + 19];
  keys[base + W_ARP_THA_LO] =
    ((buf[p + 20] << 24) | (buf[p + 21] << 16) | (buf[p + 22] << 8) | buf[p + 23]) >>> 0;
  keys[base + W_NW_DST] =
    ((buf[p + 24] << 24) | (buf[p + 25] << 16) | (buf[p + 26] << 8) | buf[p + 27]) >>> 0;
  return Stop.Ok;
}
