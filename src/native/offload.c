/*
 * offload.c -- checksum completion and GSO segmentation of received frames.
 * See offload.h for the contract. Everything here is plain byte arithmetic on caller memory.
 */
#include "offload.h"
#include "frame-bytes.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__x86_64__)
/* The bulk of csum_run on AVX2: 64 bytes per step (two 32-byte loads, and stores when
 * copying), four 64-bit lanes per register each adding the low and the high 32-bit half of
 * its 8-byte word: the same halves csum_run's scalar loop adds, so their total, and with it
 * the folded sum, is identical (no lane can overflow: each adds at most n / 64 values below
 * 2^32). Adds the total to *le and returns the bytes done (a multiple of 64). */
static inline __attribute__((always_inline, target("avx2"))) size_t csum_bulk_avx2(
    uint8_t *dst, const uint8_t *src, size_t n, uint64_t *le) {
  const __m256i lo32 = _mm256_set1_epi64x(0xffffffffLL);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t done = 0;
  for (; done + 64 <= n; done += 64) {
    __m256i v0 = _mm256_loadu_si256((const __m256i *)(src + done));
    __m256i v1 = _mm256_loadu_si256((const __m256i *)(src + done + 32));
    if (dst) {
      _mm256_storeu_si256((__m256i *)(dst + done), v0);
      _mm256_storeu_si256((__m256i *)(dst + done + 32), v1);
    }
    a0 = _mm256_add_epi64(a0, _mm256_and_si256(v0, lo32));
    a1 = _mm256_add_epi64(a1, _mm256_srli_epi64(v0, 32));
    a2 = _mm256_add_epi64(a2, _mm256_and_si256(v1, lo32));
    a3 = _mm256_add_epi64(a3, _mm256_srli_epi64(v1, 32));
  }
  __m256i t = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  __m128i h = _mm_add_epi64(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
  *le += (uint64_t)_mm_cvtsi128_si64(h) + (uint64_t)_mm_extract_epi64(h, 1);
  return done;
}
static __attribute__((target("avx2"))) size_t csum_bulk_copy_avx2(uint8_t *dst, const uint8_t *src, size_t n,
                                                                     uint64_t *le) {
  return csum_bulk_avx2(dst, src, n, le);
}
static __attribute__((target("avx2"))) size_t csum_bulk_sum_avx2(const uint8_t *src, size_t n, uint64_t *le) {
  return csum_bulk_avx2(NULL, src, n, le);
}
/* Whether this CPU has AVX2 (read once when the addon loads). */
static int csumAvx2;
static __attribute__((constructor)) void csum_init(void) {
  __builtin_cpu_init();
  csumAvx2 = __builtin_cpu_supports("avx2");
}
#endif

/* Sums "n" bytes of src as big-endian 16-bit words into a 32-bit partial sum (RFC 1071), and
 * copies them to dst unless dst is NULL. Chained calls must split at even offsets. The bulk is
 * summed 8 bytes at a time in host order (two 32-bit halves into a 64-bit accumulator, so no
 * carry is lost), folded to 16 bits and byte-swapped: the one's complement sum is byte-order
 * independent (RFC 1071 s2(B)). From 128 bytes on, a CPU with AVX2 does the 8-byte words 64
 * bytes per step (csum_bulk_avx2, the same total). Always inlined with a constant dst, so each caller gets its
 * own loop without the copy test. */
static inline __attribute__((always_inline)) uint32_t csum_run(uint8_t *dst, const uint8_t *src, size_t n,
                                                                uint32_t sum) {
  uint64_t acc = sum;
  if (n >= 32) {
    uint64_t le = 0;
#if defined(__x86_64__)
    if (n >= 128 && csumAvx2) {
      size_t done = dst ? csum_bulk_copy_avx2(dst, src, n, &le) : csum_bulk_sum_avx2(src, n, &le);
      if (dst) dst += done;
      src += done;
      n -= done;
    }
#endif
    while (n >= 8) {
      uint64_t w;
      memcpy(&w, src, 8);
      if (dst) { memcpy(dst, &w, 8); dst += 8; }
      le += (w & 0xffffffffu) + (w >> 32);
      src += 8;
      n -= 8;
    }
    while (le >> 16) le = (le & 0xffff) + (le >> 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    le = ((le & 0xff) << 8) | (le >> 8);
#endif
    acc += le;
  }
  while (n >= 2) {
    if (dst) { dst[0] = src[0]; dst[1] = src[1]; dst += 2; }
    acc += (uint32_t)src[0] << 8 | src[1];
    src += 2;
    n -= 2;
  }
  if (n) {
    if (dst) dst[0] = src[0];
    acc += (uint32_t)src[0] << 8;
  }
  while (acc >> 32) acc = (acc & 0xffffffffu) + (acc >> 32);
  return (uint32_t)acc;
}

/* The partial sum of p[0, n) (see csum_run). */
uint32_t fio_csum_add(uint32_t sum, const uint8_t *p, size_t n) {
  return csum_run(NULL, p, n, sum);
}

/* memcpy(dst, src, n) and fio_csum_add(sum, dst, n) in one pass: each 8-byte word is summed
 * as it is copied (what Linux's csum_partial_copy does), so the bytes are read once. */
uint32_t fio_csum_copy(uint8_t *dst, const uint8_t *src, size_t n, uint32_t sum) {
  return csum_run(dst, src, n, sum);
}

/* Folds a partial sum to 16 bits (not complemented). */
uint16_t fio_csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

/* Copies src[0, n) to dst, inserting the 4-byte tag after the MAC addresses when tagLen=4. */
static void copy_tagged(uint8_t *dst, const uint8_t *src, uint32_t n, uint32_t tag, uint32_t tagLen) {
  if (tagLen == 0 || n < 12) {
    memcpy(dst, src, n);
    return;
  }
  memcpy(dst, src, 12);
  wr32(dst + 12, tag);
  memcpy(dst + 16, src + 12, n - 12);
}

/* L4 checksum over [l4, l4 + l4Len) of a frame with IPv4 or IPv6 header at "l3", with the
 * pseudo-header (RFC 793 s3.1 / RFC 768 / RFC 8200 s8.1); the field must already be 0. The
 * payload [hdrEnd, l4 + l4Len) was summed into "paySum" as it was copied (fio_csum_copy);
 * hdrEnd - l4 is even (a TCP or UDP header). */
static uint16_t l4_csum_hdr(const uint8_t *f, uint32_t l3, uint32_t l4, uint32_t hdrEnd, uint32_t l4Len,
                            uint8_t proto, uint32_t paySum) {
  uint32_t sum;
  if ((f[l3] >> 4) == 4) sum = fio_csum_add(0, f + l3 + 12, 8);
  else sum = fio_csum_add(0, f + l3 + 8, 32);
  uint64_t acc = (uint64_t)sum + proto + (l4Len & 0xffff) + (l4Len >> 16) + paySum;
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = fio_csum_add((uint32_t)((acc & 0xffffffffu) + (acc >> 32)), f + l4, hdrEnd - l4);
  return (uint16_t)~fio_csum_fold((uint32_t)acc);
}

/* One frame without GSO: copy (with tag), complete a partial checksum. */
static int emit_single(fio_slots *s, const uint8_t *f, uint32_t len,
                       const struct fio_vnet_hdr *vh, uint32_t tag, uint32_t tagLen) {
  uint32_t outLen = len + tagLen;
  if (outLen > s->slotBytes - s->headroom) return FIO_EMIT_TOO_BIG;
  if (vh && (vh->flags & FIO_VNET_F_NEEDS_CSUM)) {
    uint32_t cs = vh->csum_start, co = vh->csum_offset;
    if ((uint32_t)cs + co + 2 > len || cs < 12) return FIO_EMIT_BAD_CSUM;
  }
  if (s->n >= s->maxFrames) return FIO_EMIT_MORE;
  uint8_t *d = slot_at(s, s->n);
  copy_tagged(d, f, len, tag, tagLen);
  if (vh && (vh->flags & FIO_VNET_F_NEEDS_CSUM)) {
    uint32_t cs = (uint32_t)vh->csum_start + tagLen, field = cs + vh->csum_offset;
    /* The field holds the pseudo-header sum; summing it in is exactly what the sender's
     * hardware would have done (Linux skb_checksum_help). A UDP result of 0 is sent as 0xffff
     * (RFC 768: 0 means "no checksum"); TCP sends 0 as it is, as a full computation gives it
     * (0xffff is what RFC 1624 calls the wrong form, and tshark flags it). */
    uint16_t c = (uint16_t)~fio_csum_fold(fio_csum_add(0, d + cs, outLen - cs));
    wr16(d + field, c == 0 && vh->csum_offset == 6 ? 0xffff : c);
  }
  s->off[s->n] = (uint32_t)(d - s->buf);
  s->len[s->n] = outLen;
  s->n++;
  return FIO_EMIT_OK;
}

int fio_offload_emit(fio_slots *s, const uint8_t *f, uint32_t len,
                     const struct fio_vnet_hdr *vh, uint32_t vlanTag, uint32_t *nextSeg,
                     uint32_t *nSegs) {
  uint32_t tagLen = vlanTag ? 4 : 0;
  if (nSegs) *nSegs = 1;
  uint8_t gso = vh ? (uint8_t)(vh->gso_type & 0x7f) : FIO_GSO_NONE;
  if (gso == FIO_GSO_NONE) return emit_single(s, f, len, vh, vlanTag, tagLen);
  if (gso != FIO_GSO_TCPV4 && gso != FIO_GSO_TCPV6 && gso != FIO_GSO_UDP_L4) return FIO_EMIT_BAD_GSO;

  uint16_t et = 0;
  uint32_t l3 = l3_offset(f, len, &et);
  uint32_t l4 = vh->csum_start;
  if (l3 == 0 || l4 < l3 + 20 || l4 + 8 > len) return FIO_EMIT_BAD_GSO;
  uint8_t ipv = f[l3] >> 4;
  if (gso == FIO_GSO_TCPV4 && (ipv != 4 || et != 0x0800)) return FIO_EMIT_BAD_GSO;
  if (gso == FIO_GSO_TCPV6 && (ipv != 6 || et != 0x86dd)) return FIO_EMIT_BAD_GSO;
  if (gso == FIO_GSO_UDP_L4 && !((ipv == 4 && et == 0x0800) || (ipv == 6 && et == 0x86dd)))
    return FIO_EMIT_BAD_GSO;
  if (ipv == 4 && l3 + (uint32_t)(f[l3] & 15) * 4 > l4) return FIO_EMIT_BAD_GSO;
  if (ipv == 6 && l3 + 40 > l4) return FIO_EMIT_BAD_GSO;

  int isTcp = gso != FIO_GSO_UDP_L4;
  uint32_t l4HdrLen = isTcp ? (uint32_t)(f[l4 + 12] >> 4) * 4 : 8;
  if (isTcp && (l4HdrLen < 20 || l4 + 20 > len)) return FIO_EMIT_BAD_GSO;
  uint32_t hdrLen = l4 + l4HdrLen;
  if (hdrLen > len) return FIO_EMIT_BAD_GSO;
  uint32_t mss = vh->gso_size;
  uint32_t payload = len - hdrLen;
  if (mss == 0 || payload == 0) {
    /* Nothing to cut: behave like a plain partial-checksum frame. */
    struct fio_vnet_hdr one = *vh;
    one.gso_type = 0;
    return emit_single(s, f, len, &one, vlanTag, tagLen);
  }
  uint32_t segs = (payload + mss - 1) / mss;
  if (nSegs) *nSegs = segs;
  if (hdrLen + tagLen + (payload < mss ? payload : mss) > s->slotBytes - s->headroom)
    return FIO_EMIT_TOO_BIG;

  /* Output coordinates: everything after byte 12 moves by tagLen. */
  uint32_t ol3 = l3 + tagLen, ol4 = l4 + tagLen, oHdr = hdrLen + tagLen;
  uint16_t ipId0 = ipv == 4 ? rd16(f + l3 + 4) : 0;
  uint32_t seq0 = isTcp ? rd32(f + l4 + 4) : 0;
  uint8_t proto = isTcp ? 6 : 17;

  for (uint32_t k = *nextSeg; k < segs; k++) {
    if (s->n >= s->maxFrames) {
      *nextSeg = k;
      return FIO_EMIT_MORE;
    }
    uint32_t pOff = k * mss;
    uint32_t chunk = payload - pOff < mss ? payload - pOff : mss;
    uint8_t *d = slot_at(s, s->n);
    copy_tagged(d, f, hdrLen, vlanTag, tagLen);
    /* The payload's sum comes with its copy; the headers are summed once they are final. */
    uint32_t paySum = fio_csum_copy(d + oHdr, f + hdrLen + pOff, chunk, 0);
    uint32_t outLen = oHdr + chunk;

    if (ipv == 4) {
      uint32_t ihl = (uint32_t)(d[ol3] & 15) * 4;
      wr16(d + ol3 + 2, (uint16_t)(outLen - ol3));
      /* Linux increments the ID per segment unless the flow uses a fixed ID; the vnet
       * header cannot tell us which, so increment (what a TSO NIC does by default). */
      wr16(d + ol3 + 4, (uint16_t)(ipId0 + k));
      wr16(d + ol3 + 10, 0);
      wr16(d + ol3 + 10, (uint16_t)~fio_csum_fold(fio_csum_add(0, d + ol3, ihl)));
    } else {
      wr16(d + ol3 + 4, (uint16_t)(outLen - ol3 - 40));
    }
    if (isTcp) {
      wr32(d + ol4 + 4, seq0 + pOff);
      uint8_t fl = d[ol4 + 13];
      if (k + 1 < segs) fl &= (uint8_t)~0x09;  /* FIN and PSH only on the last segment */
      if (k > 0) fl &= (uint8_t)~0x80;         /* CWR only on the first */
      d[ol4 + 13] = fl;
      wr16(d + ol4 + 16, 0);
      wr16(d + ol4 + 16, l4_csum_hdr(d, ol3, ol4, oHdr, outLen - ol4, proto, paySum));
    } else {
      wr16(d + ol4 + 4, (uint16_t)(outLen - ol4));
      wr16(d + ol4 + 6, 0);
      if (!s->noUdpCsum) {
        uint16_t c = l4_csum_hdr(d, ol3, ol4, oHdr, outLen - ol4, proto, paySum);
        wr16(d + ol4 + 6, c ? c : 0xffff);
      }
    }
    s->off[s->n] = (uint32_t)(d - s->buf);
    s->len[s->n] = outLen;
    s->n++;
  }
  *nextSeg = 0;
  return FIO_EMIT_OK;
}
