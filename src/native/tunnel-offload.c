/*
 * tunnel-offload.c -- see tunnel-offload.h. Plain byte arithmetic on caller memory.
 * References: RFC 7348 (VXLAN), RFC 2784/2890 (GRE with key), RFC 1071/1624 (checksums),
 * Linux's __udp_gso_segment (what the UDP checksum field of a UDP_L4 GSO frame must hold:
 * the pseudo-header sum over the whole length, not complemented).
 */
#include "tunnel-offload.h"
#include "frame-bytes.h"
#include <string.h>

/* A parsed TCP super-frame: where its headers are and how it is cut. */
typedef struct {
  uint32_t l3, l4, hdrLen, mss, payload, segs;
  int ipv;
  uint16_t ipId0;
  uint32_t seq0;
} tcp_gso;

/* Pseudo-header sum (not folded) for an L4 length at IPv4/IPv6 header "ip". */
static uint32_t pseudo_sum(const uint8_t *ip, int ipv, uint8_t proto, uint32_t l4Len) {
  uint32_t sum = ipv == 4 ? fio_csum_add(0, ip + 12, 8) : fio_csum_add(0, ip + 8, 32);
  return sum + proto + (l4Len & 0xffff) + (l4Len >> 16);
}

static int parse_tcp_gso(const uint8_t *f, uint32_t len, const struct fio_vnet_hdr *vh, tcp_gso *g) {
  uint8_t gso = vh->gso_type & 0x7f;
  if ((gso != FIO_GSO_TCPV4 && gso != FIO_GSO_TCPV6) || vh->gso_size == 0) return 0;
  uint16_t et = 0;
  g->l3 = l3_offset(f, len, &et);
  g->l4 = vh->csum_start;
  if (g->l3 == 0 || g->l4 < g->l3 + 20 || g->l4 + 20 > len) return 0;
  g->ipv = f[g->l3] >> 4;
  if (gso == FIO_GSO_TCPV4 && (g->ipv != 4 || et != 0x0800 || g->l3 + (uint32_t)(f[g->l3] & 15) * 4 > g->l4)) return 0;
  if (gso == FIO_GSO_TCPV6 && (g->ipv != 6 || et != 0x86dd || g->l3 + 40 > g->l4)) return 0;
  uint32_t th = (uint32_t)(f[g->l4 + 12] >> 4) * 4;
  if (th < 20 || g->l4 + th > len) return 0;
  g->hdrLen = g->l4 + th;
  g->mss = vh->gso_size;
  g->payload = len - g->hdrLen;
  if (g->payload == 0) return 0;
  g->segs = (g->payload + g->mss - 1) / g->mss;
  g->ipId0 = g->ipv == 4 ? rd16(f + g->l3 + 4) : 0;
  g->seq0 = rd32(f + g->l4 + 4);
  return 1;
}

/* The parts of a super-frame's header sums that every segment shares (2026-12-05): the IPv4
 * header without its total length, ID and checksum words; the TCP pseudo-header without its
 * length, plus the TCP header without sequence, offset/flags word and checksum. write_seg adds
 * a segment's own words to these (RFC 1071: a sum may be split anywhere on 16-bit bounds). */
typedef struct {
  uint32_t ip, tcp;
} hdr_sums;

static void hdr_sums_init(hdr_sums *h, const uint8_t *f, const tcp_gso *g) {
  const uint8_t *ip = f + g->l3, *th = f + g->l4;
  h->ip = 0;
  if (g->ipv == 4) {
    uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
    h->ip = fio_csum_add(fio_csum_add(rd16(ip), ip + 6, 4), ip + 12, ihl - 12);
  }
  uint32_t ps = g->ipv == 4 ? fio_csum_add(0, ip + 12, 8) : fio_csum_add(0, ip + 8, 32);
  h->tcp = fio_csum_add(fio_csum_add(ps + 6, th, 4), th + 8, 4) + rd16(th + 14);
  if (g->hdrLen - g->l4 > 20) h->tcp = fio_csum_add(h->tcp, th + 18, g->hdrLen - g->l4 - 18);
  else h->tcp += rd16(th + 18);
}

/* Folds a 64-bit accumulator of 16-bit words to 16 bits (not complemented). */
static inline uint16_t fold64(uint64_t acc) {
  acc = (acc & 0xffffffffu) + (acc >> 32);
  return fio_csum_fold((uint32_t)((acc & 0xffffffffu) + (acc >> 32)));
}

/* Writes inner segment k of "g" at d (complete: lengths, IPv4 ID + k and header checksum,
 * sequence, FIN/PSH only last, CWR only first, full TCP checksum). Returns its length.
 * The header checksums are the shared sums "h" plus this segment's own words. */
static uint32_t write_seg(uint8_t *d, const uint8_t *f, const tcp_gso *g, const hdr_sums *h, uint32_t k) {
  uint32_t pOff = k * g->mss;
  uint32_t chunk = g->payload - pOff < g->mss ? g->payload - pOff : g->mss;
  memcpy(d, f, g->hdrLen);
  /* Payload copied and summed in one pass. */
  uint32_t paySum = fio_csum_copy(d + g->hdrLen, f + g->hdrLen + pOff, chunk, 0);
  uint32_t outLen = g->hdrLen + chunk, l3 = g->l3, l4 = g->l4;
  if (g->ipv == 4) {
    uint16_t id = (uint16_t)(g->ipId0 + k);
    wr16(d + l3 + 2, (uint16_t)(outLen - l3));
    wr16(d + l3 + 4, id);
    wr16(d + l3 + 10, (uint16_t)~fold64((uint64_t)h->ip + (outLen - l3) + id));
  } else {
    wr16(d + l3 + 4, (uint16_t)(outLen - l3 - 40));
  }
  uint32_t seq = g->seq0 + pOff;
  wr32(d + l4 + 4, seq);
  uint8_t fl = d[l4 + 13];
  if (k + 1 < g->segs) fl &= (uint8_t)~0x09;
  if (k > 0) fl &= (uint8_t)~0x80;
  d[l4 + 13] = fl;
  uint32_t l4Len = outLen - l4;
  uint64_t acc = (uint64_t)h->tcp + paySum + (l4Len & 0xffff) + (l4Len >> 16) + (seq >> 16) + (seq & 0xffff) +
                 ((uint32_t)d[l4 + 12] << 8 | fl);
  wr16(d + l4 + 16, (uint16_t)~fold64(acc));
  return outLen;
}

/* Fills the outer header at o (template already copied): IPv4 total length and header
 * checksum; for VXLAN the UDP length and checksum field (0, or the pseudo-header sum for a
 * UDP GSO frame, which the kernel completes per datagram). */
static void outer_fill(uint8_t *o, int kind, uint32_t ipTotal, int gso) {
  uint8_t *ip = o + 14;
  wr16(ip + 2, (uint16_t)ipTotal);
  wr16(ip + 10, 0);
  wr16(ip + 10, (uint16_t)~fio_csum_fold(fio_csum_add(0, ip, 20)));
  if (kind == FIO_TUN_VXLAN) {
    uint8_t *u = ip + 20;
    wr16(u + 4, (uint16_t)(ipTotal - 20));
    wr16(u + 6, gso ? fio_csum_fold(pseudo_sum(ip, 4, 17, ipTotal - 20)) : 0);
  }
}

static void put_vnet(uint8_t *vnetOut, uint32_t k, const struct fio_vnet_hdr *v) {
  if (vnetOut) memcpy(vnetOut + (size_t)k * sizeof *v, v, sizeof *v);
}

/* Appends a datagram for each inner segment [k, k + c) of "g" at d + p (the template's VXLAN
 * header, then the segment) and returns the frame's new length. */
static uint32_t pack_segs(uint8_t *d, uint32_t p, const uint8_t *tmpl, const uint8_t *f, const tcp_gso *g,
                          const hdr_sums *h, uint32_t k, uint32_t c) {
  for (uint32_t j = 0; j < c; j++) {
    memcpy(d + p, tmpl + 42, 8);
    p += 8;
    p += write_seg(d + p, f, g, h, k + j);
  }
  return p;
}

/* Finishes the packed outer frame of slot i (d, p bytes, "dgrams" datagrams of "unit" bytes
 * but the last): outer lengths and checksums, its vnet header, its length. */
static void packed_done(fio_slots *s, uint32_t i, uint8_t *d, uint32_t p, uint32_t dgrams, uint32_t unit,
                        uint8_t *vnetOut) {
  static const struct fio_vnet_hdr none;
  outer_fill(d, FIO_TUN_VXLAN, p - 14, dgrams > 1);
  if (dgrams > 1) {
    struct fio_vnet_hdr v = {FIO_VNET_F_NEEDS_CSUM, FIO_GSO_UDP_L4, 42, (uint16_t)unit, 34, 6};
    put_vnet(vnetOut, i, &v);
  } else {
    put_vnet(vnetOut, i, &none);
  }
  s->len[i] = p;
}

/* Datagrams in slot i's outer frame when the next super-frame may go on in it
 * (FIO_EMIT_EXTEND, 2026-12-05): it was packed by this function into its own slot, every
 * datagram is "unit" bytes (a shorter one may only end a UDP GSO frame), its vnet header says
 * so, and its outer headers are the template's but for lengths and checksums (same port, VNI
 * and flow source port). 0: start a new frame. */
static uint32_t open_dgrams(const fio_slots *s, uint32_t i, const uint8_t *vnetOut, const uint8_t *tmpl,
                            uint32_t unit) {
  const uint8_t *d = slot_at((fio_slots *)s, i);
  uint32_t len = s->len[i];
  if (s->off[i] != (uint32_t)(d - s->buf) || len < 42 + unit || (len - 42) % unit != 0) return 0;
  uint32_t n = (len - 42) / unit;
  struct fio_vnet_hdr v;
  memcpy(&v, vnetOut + (size_t)i * sizeof v, sizeof v);
  if (n > 1 ? v.gso_type != FIO_GSO_UDP_L4 || v.gso_size != unit : v.gso_type != 0 || v.flags != 0) return 0;
  if (memcmp(d, tmpl, 16) || memcmp(d + 18, tmpl + 18, 6) || memcmp(d + 26, tmpl + 26, 12) ||
      memcmp(d + 42, tmpl + 42, 8))
    return 0;
  return n;
}

int fio_tunnel_emit(fio_slots *s, const uint8_t *f, uint32_t len, const struct fio_vnet_hdr *vh,
                    const uint8_t *tmpl, uint32_t tmplLen, int kind, int udpGso, uint32_t mtu,
                    uint8_t *vnetOut, uint32_t *nextSeg, uint32_t *packed) {
  tcp_gso g;
  if (packed) *packed = 0;
  if (!(vh->flags & FIO_VNET_F_NEEDS_CSUM) || !parse_tcp_gso(f, len, vh, &g)) return FIO_EMIT_NOT_TCP_GSO;
  if (tmplLen != (kind == FIO_TUN_VXLAN ? FIO_VXLAN_HDR : FIO_GRE_HDR) || tmpl[14] != 0x45) return FIO_EMIT_BAD_GSO;
  uint32_t room = s->slotBytes - s->headroom;
  uint32_t segMax = g.hdrLen + g.mss;            /* largest inner segment */
  static const struct fio_vnet_hdr none;
  /* UDP GSO: datagram = VXLAN header + inner segment, all of one size but the last. */
  uint32_t unit = 8 + segMax;
  uint32_t perFrame = 0;
  if (kind == FIO_TUN_VXLAN && (udpGso & FIO_EMIT_UDP_GSO) && vnetOut && g.segs >= 2 && 28 + unit <= mtu) {
    perFrame = (FIO_GSO_FRAME_MAX - 42) / unit;  /* outer Ethernet/IPv4/UDP + datagram payloads */
    if ((room - 42) / unit < perFrame) perFrame = (room - 42) / unit;
    if (perFrame < 2) perFrame = 0;
  }
  hdr_sums h;
  hdr_sums_init(&h, f, &g);
  if (perFrame) {
    if (packed) *packed = 1;
    uint32_t k = *nextSeg, start = k;
    /* The previous super-frame's last outer frame, continued while it has room. */
    uint32_t open = (udpGso & FIO_EMIT_EXTEND) && k == 0 && s->n > 0 ? open_dgrams(s, s->n - 1, vnetOut, tmpl, unit) : 0;
    if (open > 0 && open < perFrame) {
      uint32_t c = g.segs < perFrame - open ? g.segs : perFrame - open;
      uint8_t *d = slot_at(s, s->n - 1);
      packed_done(s, s->n - 1, d, pack_segs(d, s->len[s->n - 1], tmpl, f, &g, &h, 0, c), open + c, unit, vnetOut);
      k = c;
    }
    while (k < g.segs) {
      if (s->n >= s->maxFrames) {
        if (k == start) return FIO_EMIT_NO_ROOM;
        *nextSeg = k;
        return FIO_EMIT_MORE;
      }
      uint32_t c = g.segs - k < perFrame ? g.segs - k : perFrame;
      uint8_t *d = slot_at(s, s->n);
      memcpy(d, tmpl, 42);
      s->off[s->n] = (uint32_t)(d - s->buf);
      packed_done(s, s->n, d, pack_segs(d, 42, tmpl, f, &g, &h, k, c), c, unit, vnetOut);
      s->n++;
      k += c;
    }
    *nextSeg = 0;
    return FIO_EMIT_OK;
  }
  if (tmplLen + segMax > room) return FIO_EMIT_TOO_BIG;
  const uint32_t start = *nextSeg;
  for (uint32_t k = start; k < g.segs; k++) {
    if (s->n >= s->maxFrames) {
      if (k == start) return FIO_EMIT_NO_ROOM;
      *nextSeg = k;
      return FIO_EMIT_MORE;
    }
    uint8_t *d = slot_at(s, s->n);
    memcpy(d, tmpl, tmplLen);
    uint32_t p = tmplLen + write_seg(d + tmplLen, f, &g, &h, k);
    outer_fill(d, kind, p - 14, 0);
    put_vnet(vnetOut, s->n, &none);
    s->off[s->n] = (uint32_t)(d - s->buf);
    s->len[s->n] = p;
    s->n++;
  }
  *nextSeg = 0;
  return FIO_EMIT_OK;
}

/* ------------------------------------------------------------------ coalescing */

/* A TCP segment that may join a run: offsets of its headers and payload. */
typedef struct {
  uint32_t l3, l4, hdrLen, payload;
  int ipv;
  uint8_t flags;
} tcp_seg;

/* Parses a plain TCP segment: untagged Ethernet, IPv4 without options and not a fragment, or
 * IPv6 with TCP as the first next header; ACK set, nothing but ACK/PSH; some payload. */
static int parse_seg(const uint8_t *f, uint32_t len, tcp_seg *t) {
  if (len < 14 + 40) return 0;
  uint16_t et = rd16(f + 12);
  t->l3 = 14;
  if (et == 0x0800) {
    const uint8_t *ip = f + 14;
    if (ip[0] != 0x45 || ip[9] != 6 || (rd16(ip + 6) & 0x3fff) != 0) return 0;
    if (rd16(ip + 2) != len - 14) return 0;            /* no Ethernet padding, no truncation */
    t->ipv = 4;
    t->l4 = 34;
  } else if (et == 0x86dd) {
    const uint8_t *ip = f + 14;
    if ((ip[0] >> 4) != 6 || ip[6] != 6 || rd16(ip + 4) != len - 54) return 0;
    t->ipv = 6;
    t->l4 = 54;
  } else {
    return 0;
  }
  if (t->l4 + 20 > len) return 0;
  uint32_t th = (uint32_t)(f[t->l4 + 12] >> 4) * 4;
  t->flags = f[t->l4 + 13];
  if (th < 20 || t->l4 + th >= len || (t->flags & ~0x18) != 0 || !(t->flags & 0x10)) return 0;
  t->hdrLen = t->l4 + th;
  t->payload = len - t->hdrLen;
  return 1;
}

/* True when segment b (at fb) continues the run whose first segment a is at fa and whose
 * next expected sequence number is nextSeq: every header byte equal except IP length, ID,
 * header checksum, TCP sequence, PSH and checksum. */
static int same_flow(const uint8_t *fa, const tcp_seg *a, const uint8_t *fb, const tcp_seg *b, uint32_t nextSeq) {
  if (a->ipv != b->ipv || a->hdrLen != b->hdrLen) return 0;
  if (memcmp(fa, fb, 14)) return 0;
  const uint8_t *ia = fa + 14, *ib = fb + 14;
  if (a->ipv == 4) {
    if (ia[1] != ib[1] || rd16(ia + 6) != rd16(ib + 6) || ia[8] != ib[8] || memcmp(ia + 12, ib + 12, 8)) return 0;
  } else {
    if (memcmp(ia, ib, 4) || ia[7] != ib[7] || memcmp(ia + 8, ib + 8, 32)) return 0;
  }
  const uint8_t *ta = fa + a->l4, *tb = fb + b->l4;
  if (memcmp(ta, tb, 4) || rd32(tb + 4) != nextSeq || memcmp(ta + 8, tb + 8, 5) || memcmp(ta + 14, tb + 14, 2)) return 0;
  if (memcmp(ta + 18, tb + 18, a->hdrLen - a->l4 - 18)) return 0; /* urgent pointer, options */
  return 1;
}

/* Verifies the TCP checksum of segment t at f (a receiver would drop a bad one; merging it
 * would hide that behind the super-frame's partial checksum). */
static int csum_ok(const uint8_t *f, uint32_t len, const tcp_seg *t) {
  uint32_t sum = fio_csum_add(pseudo_sum(f + t->l3, t->ipv, 6, len - t->l4), f + t->l4, len - t->l4);
  return fio_csum_fold(sum) == 0xffff;
}

/* csum_ok for a segment whose payload was summed into "paySum" as it was copied
 * (fio_csum_copy): only the pseudo-header and the TCP header are summed here. */
static int seg_sum_ok(const uint8_t *f, uint32_t len, const tcp_seg *t, uint32_t paySum) {
  uint64_t acc = (uint64_t)pseudo_sum(f + t->l3, t->ipv, 6, len - t->l4) + paySum;
  uint32_t sum = fio_csum_add((uint32_t)((acc & 0xffffffffu) + (acc >> 32)), f + t->l4, t->hdrLen - t->l4);
  return fio_csum_fold(sum) == 0xffff;
}

/* The inputs of fio_coalesce and a cursor over their sub-frames: input i is one frame, or,
 * with stride[i] = G > 8, the inner frames of a decapsulated VXLAN UDP GSO frame kept whole
 * (sub-frame k at in + inOff[i] + k * G, G - 8 bytes but the last, each but the first after
 * its own 8-byte VXLAN header, which must equal the first one's at inOff[i] - 8). */
typedef struct {
  const uint8_t *in;
  const uint32_t *off, *len, *stride;
} cz_in;

static inline uint32_t cz_count(const cz_in *c, uint32_t i) {
  uint32_t g = c->stride ? c->stride[i] : 0;
  return g <= 8 ? 1 : (c->len[i] + 8 + g - 1) / g;
}

/* Sub-frame k of input i: its bytes and length; NULL when its VXLAN header differs from the
 * first one's (another VNI packed into the same frame: not ours to merge or guess). */
static inline const uint8_t *cz_at(const cz_in *c, uint32_t i, uint32_t k, uint32_t *len) {
  const uint8_t *base = c->in + c->off[i];
  uint32_t g = c->stride ? c->stride[i] : 0;
  if (g <= 8) { *len = c->len[i]; return base; }
  uint32_t st = k * g, e = st + g - 8;
  if (e > c->len[i]) e = c->len[i];
  *len = e > st ? e - st : 0;
  if (k > 0 && memcmp(base + st - 8, base - 8, 8)) return NULL;
  return base + st;
}

uint32_t fio_coalesce(fio_slots *s, const uint8_t *in, const uint32_t *inOff, const uint32_t *inLen,
                      uint32_t n, const uint32_t *grp, uint32_t grpWords, const uint8_t *trusted,
                      uint8_t *vnetOut, uint32_t *srcIdx, uint32_t *merged,
                      const uint32_t *stride, uint32_t *sub, uint32_t *dropped) {
  static const struct fio_vnet_hdr none;
  const cz_in c = {in, inOff, inLen, stride};
  uint32_t room = s->slotBytes - s->headroom;
  uint32_t i = 0, k = sub ? *sub : 0;
  while (i < n) {
    uint32_t cnt = cz_count(&c, i);
    if (k >= cnt) { i++; k = 0; continue; }
    if (s->n >= s->maxFrames) break;
    uint32_t la;
    const uint8_t *fa = cz_at(&c, i, k, &la);
    if (fa == NULL || la < 14 || la > room) {          /* mixed VNI, empty, or cannot fit */
      uint32_t lost = fa == NULL ? cnt - k : 1;
      if (dropped) *dropped += lost;
      k += lost;
      continue;
    }
    uint8_t *d = slot_at(s, s->n);
    memcpy(d, fa, la);
    s->off[s->n] = (uint32_t)(d - s->buf);
    s->len[s->n] = la;
    srcIdx[s->n] = i;
    put_vnet(vnetOut, s->n, &none);
    /* The cursor after this sub-frame. */
    uint32_t ni = i, nk = k + 1;
    if (nk >= cnt) { ni++; nk = 0; }
    tcp_seg a;
    if (vnetOut && ni < n && parse_seg(fa, la, &a) && !(a.flags & 0x08)) {
      uint32_t mss = a.payload, total = la, nextSeq = rd32(fa + a.l4 + 4) + a.payload;
      int verified = 0, last = 0;
      while (ni < n && !last) {
        uint32_t lb;
        const uint8_t *fb = cz_at(&c, ni, nk, &lb);
        tcp_seg b;
        if (fb == NULL) break;
        if (ni != i && memcmp(grp + (size_t)i * grpWords, grp + (size_t)ni * grpWords, grpWords * 4)) break;
        if (!parse_seg(fb, lb, &b) || b.payload > mss || !same_flow(fa, &a, fb, &b, nextSeq)) break;
        if (total + b.payload > room || total + b.payload > FIO_GSO_FRAME_MAX) break;
        if (!verified) {
          if (!(trusted && trusted[i]) && !csum_ok(fa, la, &a)) break;
          verified = 1;
        }
        if (trusted && trusted[ni]) {
          memcpy(d + total, fb + b.hdrLen, b.payload);
        } else if (!seg_sum_ok(fb, lb, &b, fio_csum_copy(d + total, fb + b.hdrLen, b.payload, 0))) {
          break;                                       /* copied past total: not kept */
        }
        total += b.payload;
        nextSeq += b.payload;
        d[a.l4 + 13] |= b.flags & 0x08;                /* PSH of the last segment */
        if (b.payload < mss || (b.flags & 0x08)) last = 1;
        if (merged) (*merged)++;
        if (++nk >= cz_count(&c, ni)) { ni++; nk = 0; }
      }
      if (total > la) {
        if (a.ipv == 4) {
          wr16(d + 16, (uint16_t)(total - 14));
          wr16(d + 24, 0);
          wr16(d + 24, (uint16_t)~fio_csum_fold(fio_csum_add(0, d + 14, 20)));
        } else {
          wr16(d + 18, (uint16_t)(total - 54));
        }
        wr16(d + a.l4 + 16, fio_csum_fold(pseudo_sum(d + 14, a.ipv, 6, total - a.l4)));
        struct fio_vnet_hdr v = {FIO_VNET_F_NEEDS_CSUM, a.ipv == 4 ? FIO_GSO_TCPV4 : FIO_GSO_TCPV6,
                                 (uint16_t)a.hdrLen, (uint16_t)mss, (uint16_t)a.l4, 16};
        put_vnet(vnetOut, s->n, &v);
        s->len[s->n] = total;
      }
    }
    s->n++;
    i = ni;
    k = nk;
  }
  if (sub) *sub = i < n ? k : 0;
  return i;
}
