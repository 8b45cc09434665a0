/**
 * Where the headers of the frame being rewritten are, and the in-place rewrites that keep its
 * checksums right (RFC 1624 incremental updates). Shared by both executors of datapath
 * actions: dp-actions.ts (the slow path, per action list) and compile.ts (compiled programs).
 *
 * locate() fills `hdr` for one frame by walking its headers; headersFromKey() fills it from what
 * extractKey already recorded (the frame's key and header offsets: one parse per frame), and
 * is what compiled programs use until a VLAN push/pop moves the headers. The rewrite functions
 * read `hdr`. Offsets are relative to the frame start, -1 when absent. One frame at a time:
 * callers locate, rewrite, move on.
 *
 * VLAN push/pop (pushVlanTag, popVlanTag) move the 12 MAC bytes by 4 (moveMacs: three 32-bit
 * loads, then three stores) and the frame's offset with them; the rest of the frame stays. A pop
 * then a push on a tagged frame (retagVlan) rewrites the tag in place.
 *
 * Keeping the key in step (keyPopVlan, keyPushVlan, keySetEth, keySetIpv4): after a rewrite
 * the compiled program runs, these bring the frame's key and offsets (what extractKey recorded)
 * to what extractKey would record for the rewritten frame, so later steps (headersFromKey, a ct
 * step, the next pass after recirculation in place) read them instead of walking or parsing the
 * frame again. Each returns false when it cannot tell (a second VLAN tag): the caller then
 * treats the key as stale. test/dpif/fastpath-equivalence.test.ts checks them against a parse.
 *
 * Checksum-partial frames (NEEDS_CSUM in the frame's vnet header, netdev/batch.ts): the L4
 * checksum field then holds only the pseudo-header sum, not complemented, and the kernel (or
 * dpif/gso.ts) adds the L4 bytes later. The caller sets hdr.l4Partial after locate(); then an
 * address rewrite patches that sum in its own (uncomplemented) form, and a port rewrite
 * leaves the field alone (ports are not in the pseudo-header; they are summed later).
 */
import { csumPatch16, csumPatch32, csumUpdate32, udpCsumPatch16, udpCsumPatch32 } from '../packet/checksum';
import { NW_FRAG_ANY, NW_FRAG_LATER, VLAN_CFI, W } from '../packet/flowkey-layout';
import { Off } from '../packet/flowkey';
import { wr32 } from '../packet/bytes';
import type { PacketBatch } from '../netdev/batch';

export class FrameHeaders {
  /** Start of the IPv4 or ARP header. */
  l3 = -1;
  /** Innermost ethertype. */
  ethType = 0;
  /** Start of the TCP/UDP/ICMP header (first fragment only). */
  l4 = -1;
  /** IPv4 protocol. */
  proto = 0;
  /** The L4 checksum covers the whole segment (not a first fragment). */
  l4Csum = false;
  /** The L4 checksum field holds the pseudo-header sum only (set by the caller; locate clears). */
  l4Partial = false;
}

export const hdr = new FrameHeaders();

/**
 * Fills `hdr` as locate() would, from the key at keys[base...] and the offsets at
 * offs[offBase...] that extractKey wrote for the frame at b[off, off+len) (unmoved since). A
 * frame whose L3 header does not follow its Ethernet (and one VLAN) header directly, such as
 * LLC/SNAP or a second VLAN tag (QinQ), is located by walking it instead, as the slow path does.
 */
export function headersFromKey(keys: Uint32Array, base: number, offs: Uint16Array, offBase: number,
                               b: Uint8Array, off: number, len: number): void {
  const vd = keys[base + W.VLAN_DLTYPE];
  const l3 = offs[offBase + Off.L3];
  const et = vd & 0xffff;
  if (l3 !== ((vd >>> 16) !== 0 ? 18 : 14) || isTpid(et)) { locate(b, off, len); return; }
  hdr.l3 = -1; hdr.l4 = -1; hdr.proto = 0; hdr.l4Csum = false; hdr.l4Partial = false;
  hdr.ethType = et;
  if (et === 0x0806) { if (len - l3 >= 28) hdr.l3 = l3; return; }
  if (et !== 0x0800) return;
  hdr.l3 = l3; // extractKey checked version, IHL and total length
  const misc = keys[base + W.NW_MISC];
  const proto = misc >>> 24;
  hdr.proto = proto;
  if ((misc & NW_FRAG_LATER) !== 0) return;
  hdr.l4Csum = (misc & NW_FRAG_ANY) === 0;
  const l4 = offs[offBase + Off.L4];
  if ((proto === 6 && len - l4 >= 20) || (proto === 17 && len - l4 >= 8) || (proto === 1 && len - l4 >= 4)) hdr.l4 = l4;
}

/** ipv4FromKey's answer when the key cannot tell where the IPv4 header is: locate() the frame. */
export const IPV4_LOCATE = -2;

/**
 * The IPv4 header offset (from the frame start) headersFromKey would put in hdr.l3 for an
 * IPv4 frame, from the key and offsets alone; -1 for a frame that is not IPv4; IPV4_LOCATE for
 * one whose L3 header does not follow its Ethernet (and one VLAN) header directly (the caller
 * locates it, as headersFromKey does). For rewrites that need nothing else (TOS, TTL).
 */
export function ipv4FromKey(keys: Uint32Array, base: number, offs: Uint16Array, offBase: number): number {
  const vd = keys[base + W.VLAN_DLTYPE];
  const l3 = offs[offBase + Off.L3];
  const et = vd & 0xffff;
  if (l3 !== ((vd >>> 16) !== 0 ? 18 : 14) || isTpid(et)) return IPV4_LOCATE;
  return et === 0x0800 ? l3 : -1;
}

/**
 * A second VLAN tag behind the first (QinQ): extractKey stops there, but locate() walks every
 * tag as the slow path does, so the key cannot tell where the L3 header is.
 */
function isTpid(et: number): boolean {
  return et === 0x8100 || et === 0x88a8;
}

/**
 * Moves the 12 MAC bytes at `from` to `to` (4 bytes apart: a VLAN pop or push) through `dv`, a
 * DataView over the frame's buffer: all three words are loaded before any is stored, so the
 * overlap is safe either way. About a third of a copyWithin call for 12 bytes.
 */
function moveMacs(dv: DataView, from: number, to: number): void {
  const w0 = dv.getUint32(from, true), w1 = dv.getUint32(from + 4, true), w2 = dv.getUint32(from + 8, true);
  dv.setUint32(to, w0, true);
  dv.setUint32(to + 4, w1, true);
  dv.setUint32(to + 8, w2, true);
}

/**
 * Pushes an 802.1Q tag carrying `tci` onto the frame in `slot` of `batch`: the MACs move 4 bytes
 * towards the slot's start, and the frame's offset, length and partial-checksum start with them.
 * The caller has checked that the frame has its 14-byte Ethernet header and 4 bytes of headroom.
 * The one push of every executor (dp-actions.ts, compile.ts runProgram and runStraight).
 */
export function pushVlanTag(batch: PacketBatch, slot: number, tci: number): void {
  const off = batch.off[slot], dv = batch.view;
  moveMacs(dv, off, off - 4);
  dv.setUint32(off + 8, (0x81000000 | tci & 0xefff) >>> 0);
  batch.off[slot] = off - 4;
  batch.len[slot] += 4;
  batch.shiftCsumStart(slot, 4);
}

/**
 * Pops the outer 802.1Q or 802.1ad tag of the frame in `slot` of `batch` (the MACs move 4 bytes
 * in, the frame's offset, length and partial-checksum start with them). False, the frame left
 * alone, when it is shorter than 18 bytes or carries no tag. The one pop of every executor.
 */
export function popVlanTag(batch: PacketBatch, slot: number): boolean {
  const off = batch.off[slot], dv = batch.view;
  if (batch.len[slot] < 18 || !isTpid(dv.getUint16(off + 12))) return false;
  moveMacs(dv, off, off + 4);
  batch.off[slot] = off + 4;
  batch.len[slot] -= 4;
  batch.shiftCsumStart(slot, -4);
  return true;
}

/**
 * pop_vlan then push_vlan(`tci`) on a frame that carries a tag (compile.ts OP_RETAG_VLAN): the
 * pop moves the MACs 4 bytes in and the push moves them back, so what changes is the tag alone,
 * now 0x8100 with `tci`: one 32-bit store, offset, length and csum_start unchanged. False, the
 * frame left alone, when popVlanTag would not pop (shorter than 18 bytes, or no tag): the
 * caller then pushes.
 */
export function retagVlan(batch: PacketBatch, slot: number, tci: number): boolean {
  const off = batch.off[slot], dv = batch.view;
  if (batch.len[slot] < 18 || !isTpid(dv.getUint16(off + 12))) return false;
  dv.setUint32(off + 12, (0x81000000 | tci & 0xefff) >>> 0);
  return true;
}

/**
 * The key after retagVlan: the outer tag's TCI is `tci`, and what extractKey recorded behind
 * the tag stays, offsets included (no byte moved), for a frame with a second tag (QinQ) too,
 * whose key stops at the inner tag before and after. (keyPopVlan then keyPushVlan give the same
 * key for one tag, and give up on QinQ: the popped frame parses further than its key.) False
 * (key left alone) when the key shows no tag.
 */
export function keyRetagVlan(keys: Uint32Array, base: number, tci: number): boolean {
  const vd = keys[base + W.VLAN_DLTYPE];
  if ((vd >>> 16) === 0) return false;
  keys[base + W.VLAN_DLTYPE] = ((((tci | VLAN_CFI) & 0xffff) << 16) | (vd & 0xffff)) >>> 0;
  return true;
}

/** Moves the recorded header offsets at offs[offBase...] by `delta` (0 stays 0: "none"). */
function shiftOffsets(offs: Uint16Array, offBase: number, delta: number): void {
  offs[offBase + Off.L3] += delta;
  if (offs[offBase + Off.L4] !== 0) offs[offBase + Off.L4] += delta;
  if (offs[offBase + Off.L4_PAYLOAD] !== 0) offs[offBase + Off.L4_PAYLOAD] += delta;
}

/**
 * The key and offsets of a frame whose one VLAN tag was popped. False (key left alone) when
 * the key shows no tag or a second tag behind it (extractKey stopped there: the popped frame
 * parses further).
 */
export function keyPopVlan(keys: Uint32Array, base: number, offs: Uint16Array, offBase: number): boolean {
  const vd = keys[base + W.VLAN_DLTYPE];
  const et = vd & 0xffff;
  if ((vd >>> 16) === 0 || et === 0x8100 || et === 0x88a8) return false;
  keys[base + W.VLAN_DLTYPE] = et;
  shiftOffsets(offs, offBase, -4);
  offs[offBase + Off.VLAN] = 0;
  return true;
}

/**
 * The key and offsets of an untagged frame that got a VLAN tag with TCI `tci` (as written to
 * the frame). False (key left alone) for a frame already tagged (QinQ: extractKey would stop
 * at the inner tag).
 */
export function keyPushVlan(keys: Uint32Array, base: number, offs: Uint16Array, offBase: number, tci: number): boolean {
  const vd = keys[base + W.VLAN_DLTYPE];
  if ((vd >>> 16) !== 0) return false;
  keys[base + W.VLAN_DLTYPE] = ((((tci | VLAN_CFI) & 0xffff) << 16) | vd) >>> 0;
  shiftOffsets(offs, offBase, 4);
  offs[offBase + Off.VLAN] = 12;
  return true;
}

/** The key's MAC words after set_eth wrote the 6-byte addresses at b[off] (dst) and b[off + 6] (src). */
export function keySetEth(keys: Uint32Array, base: number, dv: DataView, off: number): void {
  keys[base + W.DL_DST_HI] = dv.getUint16(off);
  keys[base + W.DL_DST_LO] = dv.getUint32(off + 2);
  keys[base + W.DL_SRC_HI] = dv.getUint16(off + 6);
  keys[base + W.DL_SRC_LO] = dv.getUint32(off + 8);
}

/**
 * The key's IPv4 words after set_ipv4 rewrote the header at b[ip]: addresses, and TOS (DSCP
 * bits, as extractKey keeps them) and TTL in the misc word (protocol and fragment bits stay).
 * A key that is not IPv4's (a QinQ frame, whose IPv4 header only locate() finds) stays as it is.
 */
export function keySetIpv4(keys: Uint32Array, base: number, dv: DataView, ip: number): void {
  if ((keys[base + W.VLAN_DLTYPE] & 0xffff) !== 0x0800) return; // QinQ: the key stops at the inner tag
  keys[base + W.NW_SRC] = dv.getUint32(ip + 12);
  keys[base + W.NW_DST] = dv.getUint32(ip + 16);
  const misc = keys[base + W.NW_MISC];
  keys[base + W.NW_MISC] = ((misc & 0xff0000ff) | ((dv.getUint8(ip + 1) & 0xfc) << 16) | (dv.getUint8(ip + 8) << 8)) >>> 0;
}

/** Finds the L3/L4 headers of the frame at b[off, off+len) into `hdr`. */
export function locate(b: Uint8Array, off: number, len: number): void {
  hdr.l3 = -1; hdr.l4 = -1; hdr.proto = 0; hdr.ethType = 0; hdr.l4Csum = false; hdr.l4Partial = false;
  if (len < 14) return;
  let o = 12;
  let et = (b[off + o] << 8) | b[off + o + 1];
  while ((et === 0x8100 || et === 0x88a8) && o + 6 <= len) { // IEEE 802.1Q / 802.1ad tags
    o += 4;
    et = (b[off + o] << 8) | b[off + o + 1];
  }
  o += 2;
  hdr.ethType = et;
  if (et === 0x0806) { if (len - o >= 28) hdr.l3 = o; return; } // RFC 826, Ethernet/IPv4: 28 bytes
  if (et !== 0x0800 || len - o < 20) return;
  const v = b[off + o];
  const ihl = (v & 0x0f) << 2;
  if ((v >>> 4) !== 4 || ihl < 20 || len - o < ihl) return; // RFC 791 s3.1
  hdr.l3 = o;
  const proto = b[off + o + 9];
  hdr.proto = proto;
  const frag = (b[off + o + 6] << 8) | b[off + o + 7];
  if ((frag & 0x1fff) !== 0) return; // a later fragment has no L4 header
  hdr.l4Csum = (frag & 0x2000) === 0; // a first fragment's checksum covers bytes we cannot see
  const l4 = o + ihl;
  if ((proto === 6 && len - l4 >= 20) || (proto === 17 && len - l4 >= 8) || (proto === 1 && len - l4 >= 4)) hdr.l4 = l4;
}


/**
 * Patches a partial (pseudo-header-only, uncomplemented) L4 checksum field P for a 32-bit
 * change: complemented, P is an ordinary checksum of the same data, so RFC 1624 applies to ~P
 * and the result is complemented back. No UDP zero rule: a partial field is never "no sum".
 */
export function partialPatch32(b: Uint8Array, csumOff: number, old32: number, new32: number): void {
  const p = (b[csumOff] << 8) | b[csumOff + 1];
  const c = ~csumUpdate32(~p & 0xffff, old32, new32) & 0xffff;
  b[csumOff] = c >>> 8; b[csumOff + 1] = c & 0xff;
}

/** Rewrites the IPv4 address at b[at] and patches the IP and the TCP/UDP checksums. */
export function setAddr(b: Uint8Array, at: number, addr: number, off: number): void {
  const old = ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
  const nu = addr >>> 0;
  if (old === nu) return;
  wr32(b, at, nu);
  csumPatch32(b, off + hdr.l3 + 10, old, nu);
  if (hdr.l4 < 0 || !hdr.l4Csum) return;
  // RFC 793 s3.1 / RFC 768: the L4 checksum covers the addresses through the pseudo-header.
  if (hdr.l4Partial) {
    if (hdr.proto === 6) partialPatch32(b, off + hdr.l4 + 16, old, nu);
    else if (hdr.proto === 17) partialPatch32(b, off + hdr.l4 + 6, old, nu);
    return;
  }
  if (hdr.proto === 6) csumPatch32(b, off + hdr.l4 + 16, old, nu);
  else if (hdr.proto === 17) udpCsumPatch32(b, off + hdr.l4 + 6, old, nu);
}

/** Rewrites a TCP/UDP port at b[at] and patches the L4 checksum. */
export function setPort(b: Uint8Array, at: number, port: number, off: number): void {
  const old = (b[at] << 8) | b[at + 1];
  const nu = port & 0xffff;
  if (old === nu) return;
  b[at] = nu >>> 8; b[at + 1] = nu & 0xff;
  if (!hdr.l4Csum || hdr.l4Partial) return;
  if (hdr.proto === 6) csumPatch16(b, off + hdr.l4 + 16, old, nu);
  else udpCsumPatch16(b, off + hdr.l4 + 6, old, nu);
}

/**
 * Rewrites the ICMP type and/or code (-1: keep) of the ICMP header at b[l4] and patches its
 * checksum (ICMPv4's checksum has no pseudo-header).
 */
export function setIcmpTypeCode(b: Uint8Array, l4: number, type: number, code: number): void {
  const old = (b[l4] << 8) | b[l4 + 1];
  const nu = ((type >= 0 ? type : b[l4]) << 8) | (code >= 0 ? code : b[l4 + 1]);
  if (old === nu) return;
  b[l4] = nu >>> 8; b[l4 + 1] = nu & 0xff;
  csumPatch16(b, l4 + 2, old, nu);
}
