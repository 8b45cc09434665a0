/**
 * GRE header (RFC 2784, with the key and sequence number extensions of RFC 2890), no copying.
 *
 * Who calls: netdev/ gre port (checkGre + greKey on decap, writeGre into the encap template
 * built once per (tunnel, key)), packet/flowkey.ts (checkGre for IP protocol 47), tests and
 * tools (buildGreFrame).
 *
 * Layout (RFC 2890 s2):
 *   0 C(1) R(1) K(1) S(1) reserved0(9) version(3)   2 protocol type
 *   [4 checksum(16) reserved1(16)]  if C     (RFC 2784 s2.5, s2.6)
 *   [  key(32)]                     if K     (RFC 2890 s2.1)
 *   [  sequence number(32)]         if S     (RFC 2890 s2.2)
 * Validity (RFC 2784 s2.5): bits 1-5 of reserved0 as RFC 1701 used them must be zero, except
 * that RFC 2890 gives bit 2 to K and bit 3 to S; so R (0x40), s (0x08) and recur (0x04) must
 * be zero, bits 6-12 are ignored, and the version (low 3 bits of byte 1) must be 0 (s2.5.1).
 * Transparent Ethernet bridging uses protocol type 0x6558. Outer overhead on Ethernet/IPv4 with
 * a key: 14 + 20 + 8 = 42 bytes, as Neutron counts it.
 */
import { Stop } from './stop';
import { checksum } from './checksum';
import { ETH_HLEN, ETH_TYPE_TEB } from './ethernet';
import { IP_PROTO_GRE } from './ipv4';
import { Ip4FrameSpec, buildIpv4Frame } from './build';
import { wr32 } from './bytes';

export const GRE_MIN_HLEN = 4;
export const GRE_FLAG_C = 0x80;
export const GRE_FLAG_R = 0x40;
export const GRE_FLAG_K = 0x20;
export const GRE_FLAG_S = 0x10;
/** Bits of byte 0 that RFC 2784 s2.5 requires to be zero once K and S are understood. */
export const GRE_FLAGS_MUST_BE_ZERO = 0x40 | 0x08 | 0x04;
export const GRE_VERSION_MASK = 0x07;
export const GRE_PROTO_TEB = ETH_TYPE_TEB;
/** Outer Ethernet + IPv4 + GRE with a key. */
export const GRE_KEY_OVERHEAD = ETH_HLEN + 20 + 8;

/** GRE header length in bytes implied by the C, K and S bits of the header at `off`. */
export function greHeaderLen(b: Uint8Array, off: number): number {
  const f = b[off];
  return 4 + ((f & GRE_FLAG_C) !== 0 ? 4 : 0) + ((f & GRE_FLAG_K) !== 0 ? 4 : 0) +
    ((f & GRE_FLAG_S) !== 0 ? 4 : 0);
}

/**
 * Checks the GRE header in b[off, off+len): flags, version, and that the optional fields the
 * flags announce fit. Never reads outside the range.
 */
export function checkGre(b: Uint8Array, off: number, len: number): Stop {
  if (len < GRE_MIN_HLEN) return Stop.TruncatedGre;                  // RFC 2784 s2
  if ((b[off] & GRE_FLAGS_MUST_BE_ZERO) !== 0) return Stop.BadGreFlags; // RFC 2784 s2.5
  if ((b[off + 1] & GRE_VERSION_MASK) !== 0) return Stop.BadGreVersion; // RFC 2784 s2.5.1
  if (len < greHeaderLen(b, off)) return Stop.TruncatedGre;         // RFC 2890 s2
  return Stop.Ok;
}

export function greProto(b: Uint8Array, off: number): number { return (b[off + 2] << 8) | b[off + 3]; }
export function greHasKey(b: Uint8Array, off: number): boolean { return (b[off] & GRE_FLAG_K) !== 0; }
export function greHasSeq(b: Uint8Array, off: number): boolean { return (b[off] & GRE_FLAG_S) !== 0; }
export function greHasCsum(b: Uint8Array, off: number): boolean { return (b[off] & GRE_FLAG_C) !== 0; }

function get32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}


/** The key of the header at `off` (0 when K is clear). */
export function greKey(b: Uint8Array, off: number): number {
  if ((b[off] & GRE_FLAG_K) === 0) return 0;
  return get32(b, off + ((b[off] & GRE_FLAG_C) !== 0 ? 8 : 4));
}

/** The sequence number of the header at `off` (0 when S is clear). */
export function greSeq(b: Uint8Array, off: number): number {
  if ((b[off] & GRE_FLAG_S) === 0) return 0;
  return get32(b, off + 4 + ((b[off] & GRE_FLAG_C) !== 0 ? 4 : 0) +
    ((b[off] & GRE_FLAG_K) !== 0 ? 4 : 0));
}

/** True when the checksum of b[off, off+len) (GRE header + payload, RFC 2784 s2.2) verifies. */
export function greChecksumOk(b: Uint8Array, off: number, len: number): boolean {
  return (b[off] & GRE_FLAG_C) === 0 || checksum(b, off, len) === 0;
}

/** Fills the checksum field of a GRE header with C set over b[off, off+len). */
export function greSetChecksum(b: Uint8Array, off: number, len: number): void {
  b[off + 4] = 0; b[off + 5] = 0;
  const c = checksum(b, off, len);
  b[off + 4] = c >>> 8; b[off + 5] = c & 0xff;
}

export interface GreHeaderSpec {
  /** Protocol type of the payload, default 0x6558 (Ethernet). */
  greProto?: number;
  /** Sets K and the key field. */
  key?: number;
  /** Sets S and the sequence number field. */
  seq?: number;
  /** Sets C; the checksum is filled by greSetChecksum once the payload is in place. */
  csum?: boolean;
}

/** Writes a GRE header at `off`; returns its length (4, 8, 12 or 16). */
export function writeGre(b: Uint8Array, off: number, h: GreHeaderSpec): number {
  const proto = h.greProto ?? GRE_PROTO_TEB;
  let f = 0;
  if (h.csum === true) f |= GRE_FLAG_C;
  if (h.key !== undefined) f |= GRE_FLAG_K;
  if (h.seq !== undefined) f |= GRE_FLAG_S;
  b[off] = f; b[off + 1] = 0;
  b[off + 2] = proto >>> 8; b[off + 3] = proto & 0xff;
  let p = off + 4;
  if (h.csum === true) { b[p] = 0; b[p + 1] = 0; b[p + 2] = 0; b[p + 3] = 0; p += 4; }
  if (h.key !== undefined) { wr32(b, p, h.key); p += 4; }
  if (h.seq !== undefined) { wr32(b, p, h.seq); p += 4; }
  return p - off;
}

export interface GreSpec extends GreHeaderSpec {
  /** The payload (an Ethernet frame for TEB). */
  inner: Uint8Array;
}

/** Allocates outer Ethernet + IPv4 + GRE + `inner`. Not for the hot path. */
export function buildGreFrame(spec: Ip4FrameSpec & GreSpec): Uint8Array {
  const hl = 4 + (spec.csum === true ? 4 : 0) + (spec.key !== undefined ? 4 : 0) +
    (spec.seq !== undefined ? 4 : 0);
  const seg = new Uint8Array(hl + spec.inner.length);
  writeGre(seg, 0, spec);
  seg.set(spec.inner, hl);
  if (spec.csum === true) greSetChecksum(seg, 0, seg.length);
  return buildIpv4Frame(spec, IP_PROTO_GRE, seg);
}
