/**
 * An RFC 1071 ones'-complement sum written out byte by byte, independent of src/packet's
 * checksum code, for tests that verify the checksums flowd and the native addon write.
 * Used by test/dpif/tunnel-gso-share, test/native/offload, test/native/tunnel-offload,
 * test/native/netns (ipv4ChecksumsOk) and test/integration/tunnel-gso.
 */

/** The folded 16-bit sum of buf[off, off + len) (an odd last byte padded with zero), plus `init`. */
export function sum16(b: Uint8Array, off: number, len: number, init = 0): number {
  let s = init;
  for (let i = 0; i + 1 < len; i += 2) s += (b[off + i] << 8) | b[off + i + 1];
  if (len & 1) s += b[off + len - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}
