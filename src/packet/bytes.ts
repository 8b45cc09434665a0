/**
 * Big-endian stores into byte arrays: the one wr16/wr32/wrMac every header writer uses.
 *
 * Called by: packet/ (ipv4, ethernet, arp, gre builders), dpif/compile.ts (programs),
 * dpif/dp-actions.ts, dpif/frame-headers.ts, dpif/ct-nat.ts, dpif/tunnel-header.ts. Hot path safe: no allocation;
 * values may be uint32 or the same bits as int32.
 */

export function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff; b[o + 1] = v & 0xff;
}

export function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24; b[o + 1] = (v >>> 16) & 0xff; b[o + 2] = (v >>> 8) & 0xff; b[o + 3] = v & 0xff;
}

/** A MAC given as its top 16 bits `hi` and low 32 bits `lo` (the flow key's split). */
export function wrMac(b: Uint8Array, o: number, hi: number, lo: number): void {
  b[o] = (hi >>> 8) & 0xff; b[o + 1] = hi & 0xff;
  b[o + 2] = lo >>> 24; b[o + 3] = (lo >>> 16) & 0xff; b[o + 4] = (lo >>> 8) & 0xff; b[o + 5] = lo & 0xff;
}

/** A MAC given as one 48-bit number. */
export function wrMac48(b: Uint8Array, o: number, mac: number): void {
  wrMac(b, o, Math.floor(mac / 0x100000000), mac >>> 0);
}
