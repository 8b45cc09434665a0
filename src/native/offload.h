/*
 * offload.h -- turns one received frame plus its virtio_net_hdr into ordinary frames.
 *
 * What: frames from veth/TAP may carry "offloads" the sender's kernel never finished:
 *   - CHECKSUM_PARTIAL (VIRTIO_NET_HDR_F_NEEDS_CSUM): the L4 checksum field holds only the
 *     pseudo-header sum; the real sum over [csum_start, end) must be folded in and stored at
 *     csum_start + csum_offset.
 *   - GSO super-frames (gso_type TCPV4, TCPV6, UDP_L4): one frame of up to 64 KB that must be
 *     cut into segments of gso_size payload bytes, each with its own IP length/ID/checksum
 *     and TCP sequence number/flags/checksum (or UDP length/checksum).
 * fio_offload_emit() does both and writes the results into the caller's slot array, so JS
 * sees complete frames no bigger than the sender's MTU (unless the caller asked for frames
 * whole: flowd_io.c's keep-whole mode, which bypasses this for frames that fit).
 *
 * Who calls: flowd_io.c for AF_PACKET (ring and copy path) and TAP reads; N-API
 * offloadFrame(), used by tests with literal bytes and by dpif/gso.ts to finish a kept-whole
 * frame before a tunnel or a port without offload.
 *
 * Invariants: never reads outside [frame, frame + len); never writes outside
 * [slot start + headroom, slot end) of slots [s->n, s->maxFrames). Owns no memory.
 * A VLAN tag the kernel kept out of band (tp_vlan_tci) is put back in the frame after the
 * MAC addresses ("vlanTag" = tpid << 16 | tci; 0 = none), shifting every offset by 4.
 */
#ifndef FLOWD_OFFLOAD_H
#define FLOWD_OFFLOAD_H
#include <stdint.h>
#include <stddef.h>

/* The 10-byte header Linux puts in front of frames with PACKET_VNET_HDR / IFF_VNET_HDR
 * (little-endian fields on x86, which is the only host this is built for). */
struct fio_vnet_hdr {
  uint8_t flags;        /* 1 = NEEDS_CSUM, 2 = DATA_VALID */
  uint8_t gso_type;     /* 0 none, 1 TCPV4, 3 UDP (UFO), 4 TCPV6, 5 UDP_L4; 0x80 = ECN */
  uint16_t hdr_len;     /* not trusted: AF_PACKET puts skb_headlen() here */
  uint16_t gso_size;    /* payload bytes per segment */
  uint16_t csum_start;  /* offset of the L4 header from the frame start */
  uint16_t csum_offset; /* offset of the checksum field from csum_start */
} __attribute__((packed));

#define FIO_VNET_F_NEEDS_CSUM 1
#define FIO_VNET_F_DATA_VALID 2
#define FIO_GSO_NONE 0
#define FIO_GSO_TCPV4 1
#define FIO_GSO_UDP 3
#define FIO_GSO_TCPV6 4
#define FIO_GSO_UDP_L4 5
#define FIO_GSO_ECN 0x80

/* The largest GSO frame flowd builds, Ethernet header included. The kernel segments in software
 * any GSO skb of gso_max_size (65536 on veth and every device the lab makes) bytes or more as it
 * is sent (validate_xmit_skb -> gso_features_check: skb->len >= netif_get_gso_max_size), so a
 * frame of 65536..65549 bytes (an IPv4 length up to 65535 plus 14) would leave as ~45 skbs
 * (measured on this kernel, 6.18: a UDP_L4 frame of 65535 bytes reached the veth peer whole,
 * one of 65536 as 47 datagrams). */
#define FIO_GSO_FRAME_MAX 65535

/* Output slots: frame k goes to buf[k * slotBytes + headroom ...]. n = slots used so far. */
typedef struct fio_slots {
  uint8_t *buf;
  uint32_t slotBytes;
  uint32_t headroom;
  uint32_t maxFrames;
  uint32_t n;
  uint32_t *off;
  uint32_t *len;
  /* 1: UDP_L4 segments get UDP checksum 0 instead of a computed one (the caller trusts them
   * and strips the UDP header: the underlay opened with markValid). 0 in every other use. */
  uint32_t noUdpCsum;
} fio_slots;

/* Results of fio_offload_emit. Negative = the frame was dropped (nothing written). */
enum {
  FIO_EMIT_OK = 0,          /* all of the frame (or its remaining segments) written */
  FIO_EMIT_MORE = 1,        /* slots ran out; resume later with *nextSeg */
  FIO_EMIT_TOO_BIG = -1,    /* a frame or segment does not fit a slot */
  FIO_EMIT_BAD_GSO = -2,    /* unsupported gso_type (UFO) or inconsistent headers */
  FIO_EMIT_BAD_CSUM = -3    /* csum_start/csum_offset point outside the frame */
};

/* Writes "frame" ("len" bytes) as one or more complete frames into "s" from slot s->n on,
 * starting with segment "*nextSeg" (0 for a new frame); on FIO_EMIT_MORE, *nextSeg says
 * where to resume. "vh" may be NULL (no offload). "nSegs" (may be NULL) gets the segment
 * count of a GSO frame, 1 otherwise. */
int fio_offload_emit(fio_slots *s, const uint8_t *frame, uint32_t len,
                     const struct fio_vnet_hdr *vh, uint32_t vlanTag, uint32_t *nextSeg,
                     uint32_t *nSegs);

/* Internet checksum helpers (RFC 1071), exposed for tests of the C side. */
uint32_t fio_csum_add(uint32_t sum, const uint8_t *p, size_t n);
uint16_t fio_csum_fold(uint32_t sum);
/* memcpy(dst, src, n) returning fio_csum_add(sum, dst, n): copy and sum in one pass. */
uint32_t fio_csum_copy(uint8_t *dst, const uint8_t *src, size_t n, uint32_t sum);

#endif
