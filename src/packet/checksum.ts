/**
 * Internet checksums: full computation (RFC 1071) and incremental update (RFC 1624).
 *
 * Who calls: packet/ builders (ipv4.ts, udp.ts, tcp.ts, icmp.ts), dpif/ compiled actions
 * (TTL decrement, NAT address and port rewrites), netdev/ tunnel encap, tests.
 *
 * Conventions:
 * - Every function takes the frame bytes `b` and absolute offsets into `b`; none allocates,
 *   none throws, none checks bounds. The caller parsed the frame first and passes ranges
 *   that lie inside `b`: a read past the end of a Uint8Array yields undefined, which the
 *   arithmetic here would silently turn into a wrong checksum.
 * - A "sum" is an unfolded 32-bit-or-wider accumulator of 16-bit big-endian words; it is
 *   folded with end-around carry (fold16) and complemented (csumFinish) only at the end,
 *   so partial sums (pseudo-header + data) can be added as plain numbers. Sums stay far
 *   below 2^53 for any frame we handle (65535 words of 0xffff is about 2^32).
 * - A checksum value is the 16-bit field as written on the wire (host-order number).
 * - UDP (RFC 768): a transmitted checksum of 0 means "no checksum"; a computed 0 is sent
 *   as 0xffff. The UDP helpers below keep both rules; TCP and ICMP have no such rule.
 *   Over IPv6 the UDP checksum is mandatory (RFC 8200 s8.1), but 0xffff still stands for 0.
 */

/** Adds the 16-bit big-endian words of b[off, off+len) to `acc` (odd tail padded with 0). */
export function sum16(b: Uint8Array, off: number, len: number, acc: number): number {
  const end = off + (len & ~1);
  let s = acc;
  for (let i = off; i < end; i += 2) s += (b[i] << 8) | b[i + 1];
  if ((len & 1) !== 0) s += b[off + len - 1] << 8; // RFC 1071 s4.1: pad the odd byte
  return s;
}

/** Folds a wide sum to 16 bits with end-around carry (RFC 1071 s2 (1)). */
export function fold16(acc: number): number {
  let s = acc;
  while (s > 0xffffffff) s = (s % 0x10000) + Math.floor(s / 0x10000); // rare: sums past 2^32
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); // integer ops once the sum fits 32 bits
  return s;
}

/** The checksum field value for a sum: ones' complement of the folded sum. */
export function csumFinish(acc: number): number {
  return ~fold16(acc) & 0xffff;
}

/** Ones' complement checksum of b[off, off+len), as written in ICMPv4 / IPv4 headers. */
export function checksum(b: Uint8Array, off: number, len: number): number {
  return csumFinish(sum16(b, off, len, 0));
}

// ---------------------------------------------------------------------------------------
// IPv4 header checksum (RFC 791 s3.1 "Header Checksum").

/** IPv4 header length in bytes from the IHL nibble at b[ipOff]. */
function ihlBytes(b: Uint8Array, ipOff: number): number {
  return (b[ipOff] & 0x0f) << 2;
}

/** Computes the IPv4 header checksum of the header at `ipOff` (field treated as zero). */
export function ipv4HeaderChecksum(b: Uint8Array, ipOff: number): number {
  const hl = ihlBytes(b, ipOff);
  // Sum the header minus the checksum word at +10 (instead of zeroing and restoring it).
  let s = sum16(b, ipOff, 10, 0);
  s = sum16(b, ipOff + 12, hl - 12, s);
  return csumFinish(s);
}

/** Writes the IPv4 header checksum of the header at `ipOff` into its field. */
export function ipv4SetChecksum(b: Uint8Array, ipOff: number): void {
  const c = ipv4HeaderChecksum(b, ipOff);
  b[ipOff + 10] = c >>> 8;
  b[ipOff + 11] = c & 0xff;
}

/** True when the IPv4 header at `ipOff` sums to 0xffff including its checksum field. */
export function ipv4ChecksumOk(b: Uint8Array, ipOff: number): boolean {
  return fold16(sum16(b, ipOff, ihlBytes(b, ipOff), 0)) === 0xffff;
}

// ---------------------------------------------------------------------------------------
// Pseudo-headers.

/**
 * Sum of the IPv4 pseudo-header (RFC 768, RFC 793 s3.1): source and destination from the
 * IPv4 header at `ipOff`, zero, protocol, and the upper-layer length `l4Len` in bytes.
 */
export function pseudoSum4(b: Uint8Array, ipOff: number, proto: number, l4Len: number): number {
  return sum16(b, ipOff + 12, 8, proto + l4Len);
}

/**
 * Sum of the IPv6 pseudo-header (RFC 8200 s8.1): source and destination from the IPv6
 * header at `ip6Off`, the 32-bit upper-layer length and the next header value `proto`
 * (the upper protocol, not the first extension header).
 */
export function pseudoSum6(b: Uint8Array, ip6Off: number, proto: number, l4Len: number): number {
  return sum16(b, ip6Off + 8, 32, proto + (l4Len >>> 16) + (l4Len & 0xffff));
}

/** Offset of the checksum field inside the L4 header, or -1 for a protocol without one. */
export function l4CsumFieldOffset(proto: number): number {
  switch (proto) {
    case 6: return 16;  // TCP, RFC 793 s3.1
    case 17: return 6;  // UDP, RFC 768
    case 1: return 2;   // ICMPv4, RFC 792
    case 58: return 2;  // ICMPv6, RFC 4443 s2.1
    default: return -1;
  }
}

function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

function get16(b: Uint8Array, off: number): number {
  return (b[off] << 8) | b[off + 1];
}

/**
 * Computes the checksum of an upper-layer segment b[l4Off, l4Off+l4Len) with its checksum
 * field (at l4Off + l4CsumFieldOffset(proto)) treated as zero, adding `pseudo` (a value from
 * pseudoSum4/pseudoSum6, or 0 for ICMPv4). Returns the field value; for UDP a computed 0 is
 * returned as 0xffff.
 */
export function l4Checksum(b: Uint8Array, l4Off: number, l4Len: number, proto: number,
                           pseudo: number): number {
  const fo = l4CsumFieldOffset(proto);
  let s = pseudo;
  if (fo < 0) {
    s = sum16(b, l4Off, l4Len, s);
  } else {
    s = sum16(b, l4Off, fo, s);
    s = sum16(b, l4Off + fo + 2, l4Len - fo - 2, s);
  }
  const c = csumFinish(s);
  return proto === 17 && c === 0 ? 0xffff : c;
}

/** Fills the UDP/TCP/ICMP checksum of a segment carried in IPv4 (header at `ipOff`). */
export function l4SetChecksum4(b: Uint8Array, ipOff: number, l4Off: number, l4Len: number,
                               proto: number): void {
  const pseudo = proto === 1 ? 0 : pseudoSum4(b, ipOff, proto, l4Len);
  put16(b, l4Off + l4CsumFieldOffset(proto), l4Checksum(b, l4Off, l4Len, proto, pseudo));
}

/** Fills the UDP/TCP/ICMPv6 checksum of a segment carried in IPv6 (header at `ip6Off`). */
export function l4SetChecksum6(b: Uint8Array, ip6Off: number, l4Off: number, l4Len: number,
                               proto: number): void {
  put16(b, l4Off + l4CsumFieldOffset(proto),
    l4Checksum(b, l4Off, l4Len, proto, pseudoSum6(b, ip6Off, proto, l4Len)));
}

/**
 * True when the segment's checksum verifies over IPv4. A UDP checksum of 0 ("none",
 * RFC 768) verifies.
 */
export function l4ChecksumOk4(b: Uint8Array, ipOff: number, l4Off: number, l4Len: number,
                              proto: number): boolean {
  const fo = l4CsumFieldOffset(proto);
  if (proto === 17 && get16(b, l4Off + fo) === 0) return true;
  const pseudo = proto === 1 ? 0 : pseudoSum4(b, ipOff, proto, l4Len);
  return fold16(sum16(b, l4Off, l4Len, pseudo)) === 0xffff;
}

/** True when the segment's checksum verifies over IPv6 (UDP checksum 0 is invalid there). */
export function l4ChecksumOk6(b: Uint8Array, ip6Off: number, l4Off: number, l4Len: number,
                              proto: number): boolean {
  return fold16(sum16(b, l4Off, l4Len, pseudoSum6(b, ip6Off, proto, l4Len))) === 0xffff;
}

// ---------------------------------------------------------------------------------------
// Incremental update, RFC 1624 s3 eqn 3: HC' = ~(~HC + ~m + m').

/** The ~m + m' term of a 16-bit change `old16` -> `new16` (terms of several changes add up). */
export function csumTerm16(old16: number, new16: number): number {
  return (~old16 & 0xffff) + (new16 & 0xffff);
}

/** The ~m + m' term of a 32-bit change (an IPv4 address): its two 16-bit words' terms. */
export function csumTerm32(old32: number, new32: number): number {
  return (~(old32 >>> 16) & 0xffff) + (~old32 & 0xffff) + (new32 >>> 16) + (new32 & 0xffff);
}

/**
 * New checksum for the field value `hc` after changes whose terms (csumTerm16/32) sum to
 * `folded`, already folded to 16 bits (fold16): csumFinish((~hc & 0xffff) + folded) with the
 * one end-around carry a sum of two 16-bit values can need (one fold of at most 0x1fffe is
 * at most 0xffff). For a checksum patched frame after frame by the same changes (ct-nat.ts
 * NatPlan), where fold16's loops cost more than the patch.
 */
export function csumAddFolded(hc: number, folded: number): number {
  const s = (~hc & 0xffff) + folded;
  return ~((s & 0xffff) + (s >>> 16)) & 0xffff;
}

/** New checksum after one 16-bit word of the covered data changes from `old16` to `new16`. */
export function csumUpdate16(hc: number, old16: number, new16: number): number {
  return csumFinish((~hc & 0xffff) + csumTerm16(old16, new16));
}

/** New checksum after a 32-bit value (an IPv4 address) changes from `old32` to `new32`. */
export function csumUpdate32(hc: number, old32: number, new32: number): number {
  return csumFinish((~hc & 0xffff) + csumTerm32(old32, new32));
}

/**
 * Patches the checksum field at b[csumOff] for a 16-bit change `old16` -> `new16` in the
 * covered data (IPv4 header: TTL/protocol word; TCP: a port). Not for UDP (see below).
 */
export function csumPatch16(b: Uint8Array, csumOff: number, old16: number, new16: number): void {
  put16(b, csumOff, csumUpdate16(get16(b, csumOff), old16, new16));
}

/** Patches the checksum field at b[csumOff] for a 32-bit change (address rewrite). */
export function csumPatch32(b: Uint8Array, csumOff: number, old32: number, new32: number): void {
  put16(b, csumOff, csumUpdate32(get16(b, csumOff), old32, new32));
}

/**
 * UDP flavour of csumPatch16: a field of 0 ("no checksum", RFC 768) stays 0, and a result
 * of 0 is written as 0xffff.
 */
export function udpCsumPatch16(b: Uint8Array, csumOff: number, old16: number, new16: number): void {
  const hc = get16(b, csumOff);
  if (hc === 0) return;
  const c = csumUpdate16(hc, old16, new16);
  put16(b, csumOff, c === 0 ? 0xffff : c);
}

/** UDP flavour of csumPatch32 (0 stays 0; a computed 0 becomes 0xffff). */
export function udpCsumPatch32(b: Uint8Array, csumOff: number, old32: number, new32: number): void {
  const hc = get16(b, csumOff);
  if (hc === 0) return;
  const c = csumUpdate32(hc, old32, new32);
  put16(b, csumOff, c === 0 ? 0xffff : c);
}
