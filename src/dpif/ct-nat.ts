/**
 * NAT applied to a frame: rewrite the tuple of a parsed packet (ct-parse.ts) to the tuple its
 * connection says it should carry in this direction, patching checksums as it goes.
 *
 * Who calls: dpif/conntrack.ts, after it found (or created) the connection and decided the
 * target tuple. Never allocates, never throws; the caller parsed the frame, so every offset
 * used here lies inside the frame.
 *
 * Checksums:
 * - Plain packets: incremental (RFC 1624), as dp-actions.ts does for set_ipv4/set_l4: the
 *   IPv4 header checksum for an address, the TCP/UDP checksum for an address (pseudo-header,
 *   RFC 793 s3.1 / RFC 768) and for a port, the ICMP checksum for an echo id (ICMP has no
 *   pseudo-header, RFC 792). A UDP checksum of 0 ("none") stays 0.
 * - Checksum-partial frames (a TCP super-frame or a frame whose L4 sum the sender's kernel left
 *   to offload, `partial`): the L4 field holds the pseudo-header sum only, not complemented, and
 *   is completed later (segmentation, the receiving kernel). An address change patches it in its
 *   own form (frame-headers.ts partialPatch32); a port change leaves it alone (ports are not in
 *   the pseudo-header). So a super-frame is rewritten once and every segment cut from it later
 *   carries the right sums.
 * - ICMP errors: the outer IPv4 header checksum incrementally; inside the quote, the inner
 *   IPv4 header checksum and the inner TCP/UDP/ICMP checksum incrementally when the quote
 *   holds them (a TCP checksum sits at byte 16, often beyond the 8 quoted bytes: then it is
 *   left alone, as Linux does). The outer ICMP checksum covers the whole rewritten quote and
 *   is recomputed in full (as Linux's nf_nat_icmp_reply_translation does): errors are rare
 *   and at most 576 bytes (RFC 1812 4.3.2.3).
 * - A run of packets of one connection and direction (conntrack.ts again, againRun; the memo
 *   hits of track): NatPlan sums the patches natPacket would make (RFC 1624 terms, one sum per
 *   checksum field) once, and natApplyPlan adds that sum to each packet's fields. Ones' complement sums are associative
 *   and fold(fold(x) + y) = fold(x + y) for non-negative terms (both zero only when x = y = 0),
 *   so one patch by the sum writes the bytes the patches one by one write. Not for a UDP
 *   checksum that is not partial: its "0 stays 0, a computed 0 is 0xffff" rule between two
 *   patches does not add up; natApplyPlan declines it and the caller runs natPacket.
 */
import { checksum, csumAddFolded, csumPatch16, csumPatch32, csumTerm16, csumTerm32, fold16, udpCsumPatch16, udpCsumPatch32 } from '../packet/checksum';
import { CtPacket, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from './ct-parse';
import { wr16, wr32 } from '../packet/bytes';
import { partialPatch32 } from './frame-headers';

function rd16(b: Uint8Array, o: number): number { return (b[o] << 8) | b[o + 1]; }

/** Offset of the L4 checksum field that covers the pseudo-header and ports, or -1. */
function l4CsumAt(proto: number, l4: number): number {
  if (proto === PROTO_TCP) return l4 + 16;
  if (proto === PROTO_UDP) return l4 + 6;
  return -1;
}

/** Address at b[at] (inside the IPv4 header at `l3`) becomes `nu`; patches IP and L4 sums. */
function rewriteAddr(b: Uint8Array, at: number, l3: number, proto: number, l4CsumOff: number,
                     old: number, nu: number, partial = false): void {
  if (old === nu) return;
  wr32(b, at, nu);
  csumPatch32(b, l3 + 10, old, nu);
  if (l4CsumOff < 0) return;
  if (partial) partialPatch32(b, l4CsumOff, old, nu);
  else if (proto === PROTO_UDP) udpCsumPatch32(b, l4CsumOff, old, nu);
  else csumPatch32(b, l4CsumOff, old, nu);
}

/** 16-bit port or ICMP id at b[at] becomes `nu`; patches the L4 checksum at `csumOff`. */
function rewritePort(b: Uint8Array, at: number, proto: number, csumOff: number, nu: number): void {
  const old = rd16(b, at);
  if (old === nu) return;
  wr16(b, at, nu);
  if (csumOff < 0) return;
  if (proto === PROTO_UDP) udpCsumPatch16(b, csumOff, old, nu);
  else csumPatch16(b, csumOff, old, nu);
}

/**
 * Rewrites the plain (non-error) packet `p` in `b` to carry (src, dst, sport, dport).
 * For ICMP echo the id is sport of a request and dport of a reply (ct-parse.ts). `partial`:
 * the TCP/UDP checksum field is a partial (pseudo-header) sum, see the header.
 */
export function natPacket(b: Uint8Array, p: CtPacket, src: number, dst: number,
                          sport: number, dport: number, partial = false): void {
  const proto = p.proto;
  const csumOff = l4CsumAt(proto, p.l4);
  const l4Partial = partial && csumOff >= 0;
  rewriteAddr(b, p.l3 + 12, p.l3, proto, csumOff, p.src, src | 0, l4Partial);
  rewriteAddr(b, p.l3 + 16, p.l3, proto, csumOff, p.dst, dst | 0, l4Partial);
  p.src = src | 0;
  p.dst = dst | 0;
  if (proto === PROTO_TCP || proto === PROTO_UDP) {
    const portCsum = l4Partial ? -1 : csumOff;               // a partial sum holds no ports
    if (sport !== p.sport) rewritePort(b, p.l4, proto, portCsum, sport);
    if (dport !== p.dport) rewritePort(b, p.l4 + 2, proto, portCsum, dport);
  } else if (proto === PROTO_ICMP) {
    const id = p.icmpType === 8 ? sport : dport;
    rewritePort(b, p.l4 + 4, proto, p.l4 + 2, id);
  }
  p.sport = sport;
  p.dport = dport;
}

/**
 * Rewrites the ICMP error `p`: the outer source/destination to `outSrc`/`outDst` and the
 * quoted packet to (inSrc, inDst, inSport, inDport); then recomputes the ICMP checksum.
 */
export function natIcmpError(b: Uint8Array, p: CtPacket, outSrc: number, outDst: number,
                             inSrc: number, inDst: number, inSport: number, inDport: number): void {
  // Outer header: ICMP has no pseudo-header, so only the IPv4 checksum moves.
  rewriteAddr(b, p.l3 + 12, p.l3, PROTO_ICMP, -1, p.src, outSrc | 0);
  rewriteAddr(b, p.l3 + 16, p.l3, PROTO_ICMP, -1, p.dst, outDst | 0);
  p.src = outSrc | 0;
  p.dst = outDst | 0;
  // Quoted packet.
  const ip = p.iproto;
  const il3 = p.il3, il4 = p.il4, avail = p.il4Avail;
  let csumOff = -1;
  if (ip === PROTO_UDP) csumOff = il4 + 6;                      // inside the 8 quoted bytes
  else if (ip === PROTO_TCP && avail >= 18) csumOff = il4 + 16;  // only when quoted
  rewriteAddr(b, il3 + 12, il3, ip, csumOff, p.isrc, inSrc | 0);
  rewriteAddr(b, il3 + 16, il3, ip, csumOff, p.idst, inDst | 0);
  p.isrc = inSrc | 0;
  p.idst = inDst | 0;
  if (ip === PROTO_TCP || ip === PROTO_UDP) {
    if (inSport !== p.isport) rewritePort(b, il4, ip, csumOff, inSport);
    if (inDport !== p.idport) rewritePort(b, il4 + 2, ip, csumOff, inDport);
  } else if (ip === PROTO_ICMP) {
    rewritePort(b, il4 + 4, PROTO_ICMP, il4 + 2, p.iIcmpType === 8 ? inSport : inDport);
  }
  p.isport = inSport;
  p.idport = inDport;
  // RFC 792: the ICMP checksum covers the whole message, the quote included.
  wr16(b, p.l4 + 2, 0);
  wr16(b, p.l4 + 2, checksum(b, p.l4, p.l4Len));
}

/**
 * natPacket's rewrite of a TCP or UDP packet from one tuple to another, worked out once for a
 * run of packets that carry the same tuple (see the header): which fields change and the sum
 * of the checksum patches per field. Filled by natPlan; one per Conntrack, reused.
 */
export class NatPlan {
  src = 0;
  dst = 0;
  sport = 0;
  dport = 0;
  /** Which fields change: NP_SRC | NP_DST | NP_SPORT | NP_DPORT. */
  changed = 0;
  /** Sum of the IPv4 header checksum patches (addresses). */
  ipSum = 0;
  /** Sum of the TCP checksum patches (addresses via the pseudo-header, and ports). */
  tcpSum = 0;
}

export const NP_SRC = 1;
export const NP_DST = 2;
export const NP_SPORT = 4;
export const NP_DPORT = 8;
const NP_ADDRS = NP_SRC | NP_DST;

/** Works out `plan` for packets carrying (oSrc, oDst, oSport, oDport) to carry (src, dst, sport, dport). */
export function natPlan(plan: NatPlan, oSrc: number, oDst: number, oSport: number, oDport: number,
                        src: number, dst: number, sport: number, dport: number): void {
  src |= 0; dst |= 0; oSrc |= 0; oDst |= 0;
  let changed = 0, ipSum = 0, portSum = 0;
  if (oSrc !== src) { changed |= NP_SRC; ipSum += csumTerm32(oSrc, src); }
  if (oDst !== dst) { changed |= NP_DST; ipSum += csumTerm32(oDst, dst); }
  if (oSport !== sport) { changed |= NP_SPORT; portSum += csumTerm16(oSport, sport); }
  if (oDport !== dport) { changed |= NP_DPORT; portSum += csumTerm16(oDport, dport); }
  plan.src = src; plan.dst = dst; plan.sport = sport; plan.dport = dport;
  plan.changed = changed;
  plan.ipSum = fold16(ipSum);
  plan.tcpSum = fold16(ipSum + portSum);
}

/**
 * Applies `plan` to the TCP (`proto` 6) or UDP packet whose IPv4 header is at byte l3 and L4
 * header at byte l4 of the buffer `dv` views (a batch's view: its indexes are the buffer's):
 * the bytes natPacket writes for the same tuples. `partial`: the L4 checksum field holds a
 * partial sum (see the header). Returns false, writing nothing, for a UDP packet whose
 * checksum is not partial (the caller runs natPacket). Called once per frame of a run
 * (conntrack.ts againRun) and for a packet that hits the memo slot the plan belongs to
 * (conntrack.ts track): 32- and 16-bit loads and stores, and one carry per checksum
 * (csumAddFolded: the plan's sums are folded).
 */
export function natApplyPlan(dv: DataView, plan: NatPlan, l3: number, l4: number, proto: number,
                             partial: boolean): boolean {
  const ch = plan.changed;
  if (proto !== PROTO_TCP && !partial) return false;
  if ((ch & NP_SRC) !== 0) dv.setInt32(l3 + 12, plan.src);
  if ((ch & NP_DST) !== 0) dv.setInt32(l3 + 16, plan.dst);
  if ((ch & NP_ADDRS) !== 0) dv.setUint16(l3 + 10, csumAddFolded(dv.getUint16(l3 + 10), plan.ipSum));
  if ((ch & NP_SPORT) !== 0) dv.setUint16(l4, plan.sport);
  if ((ch & NP_DPORT) !== 0) dv.setUint16(l4 + 2, plan.dport);
  const co = proto === PROTO_TCP ? l4 + 16 : l4 + 6;
  if (partial) {
    // The pseudo-header sum, not complemented: addresses only (frame-headers.ts partialPatch32).
    if ((ch & NP_ADDRS) !== 0) dv.setUint16(co, fold16(dv.getUint16(co) + plan.ipSum));
  } else if (ch !== 0) {
    dv.setUint16(co, csumAddFolded(dv.getUint16(co), plan.tcpSum));
  }
  return true;
}
