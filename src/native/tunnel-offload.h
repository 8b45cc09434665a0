/*
 * tunnel-offload.h -- TCP super-frames across VXLAN/GRE tunnels without a per-segment trip
 * through JS: encapsulation of a kept-whole super-frame, and coalescing of decapsulated
 * segments back into one.
 *
 * What:
 *   - fio_tunnel_emit(): cuts a TCP GSO super-frame (virtio_net_hdr TCPV4/TCPV6) into
 *     MSS-sized inner segments (full IP/TCP checksums, as offload.c does) and puts the
 *     caller's outer header template in front, in one loop. VXLAN with `udpGso`: consecutive
 *     segments are packed as VXLAN payloads of ONE outer UDP frame with a virtio_net_hdr of
 *     gso_type UDP_L4 (gso_size = one VXLAN header + one inner segment), so the kernel (or
 *     the receiving flowd) cuts the datagrams; every datagram is a complete VXLAN frame.
 *     Otherwise (GRE: virtio_net_hdr has no GRE type; or a segment too big for the underlay
 *     MTU) every segment gets its own outer frame.
 *   - fio_coalesce(): the receive side's GRO: copies decapsulated inner frames into the
 *     caller's slots and merges runs of consecutive in-order TCP segments of one flow (same
 *     headers but length/ID/checksum/sequence, ACK with PSH only on the last, verified
 *     checksums, equal-size payloads) into one super-frame with a TCPV4/TCPV6 virtio_net_hdr
 *     (NEEDS_CSUM, the checksum field holding the pseudo-header sum).
 *
 * Who calls: flowd_io.c's N-API entries tunnelEmit / coalesce, used by dpif/tunnel-gso.ts
 * (send side, from dpif/ports.ts) and netdev/underlay.ts (receive side).
 *
 * Invariants: reads only [frame, frame + len) and the template; writes only slots
 * [s->n, s->maxFrames) from their headroom on, and the matching vnet entries (fio_tunnel_emit
 * with FIO_EMIT_EXTEND also appends to slot s->n - 1's frame). Owns nothing.
 */
#ifndef FLOWD_TUNNEL_OFFLOAD_H
#define FLOWD_TUNNEL_OFFLOAD_H
#include "offload.h"

#define FIO_TUN_VXLAN 1
#define FIO_TUN_GRE 2

/* Outer header template sizes: Ethernet + IPv4 (no options) + UDP + VXLAN / GRE with key. */
#define FIO_VXLAN_HDR 50
#define FIO_GRE_HDR 42

/* Extra result of fio_tunnel_emit: not a TCP super-frame; the caller finishes it otherwise. */
#define FIO_EMIT_NOT_TCP_GSO (-4)
/* Extra result of fio_tunnel_emit: no slot free to write into (nothing written, the frame not
 * taken); the caller sends its slots and calls again, or counts the frame dropped. */
#define FIO_EMIT_NO_ROOM (-5)

/* fio_tunnel_emit's "udpGso" bits. UDP_GSO: pack VXLAN datagrams into UDP GSO frames where the
 * MTU allows. EXTEND: slot s->n - 1 holds the previous packed outer frame to the same port with
 * nothing sent after it, so this super-frame's first datagrams may go on in it (checked there:
 * full datagrams of this size, this template; otherwise a new frame is started). */
#define FIO_EMIT_UDP_GSO 1
#define FIO_EMIT_EXTEND 2

/* Writes super-frame "f" (header "vh") encapsulated with template "tmpl" (tmplLen bytes: the
 * Ethernet/IPv4/UDP/VXLAN or Ethernet/IPv4/GRE header with addresses, ports, VNI/key set;
 * lengths and checksums are filled here) into slots from s->n, starting at inner segment
 * *nextSeg. "mtu" is the underlay MTU: UDP GSO is used only when every datagram fits it.
 * vnetOut (may be NULL, then no UDP GSO) gets each written slot's virtio_net_hdr.
 * *packed (may be NULL) = 1 when the super-frame goes into UDP GSO frames, 0 when into one outer
 * frame per segment. With FIO_EMIT_EXTEND slot s->n - 1 may grow (its len and vnet entry).
 * With no slot free for its first write (and nothing it could extend) it writes nothing and
 * returns FIO_EMIT_NO_ROOM: FIO_EMIT_MORE always means that something was written.
 * Returns FIO_EMIT_OK, FIO_EMIT_MORE (slots ran out: *nextSeg says where to resume), or a
 * negative FIO_EMIT_* when nothing was written. */
int fio_tunnel_emit(fio_slots *s, const uint8_t *f, uint32_t len, const struct fio_vnet_hdr *vh,
                    const uint8_t *tmpl, uint32_t tmplLen, int kind, int udpGso, uint32_t mtu,
                    uint8_t *vnetOut, uint32_t *nextSeg, uint32_t *packed);

/* Copies input frames [0, n) (in[inOff[i], +inLen[i])) into slots from s->n, merging runs as
 * described above when vnetOut is not NULL (else every frame is copied alone). Frames merge
 * only when grp[i] (the caller's per-frame identity: in_port, tunnel id, ...; "grpWords"
 * words each) is equal. trusted[i] != 0 (trusted may be NULL): frame i's TCP checksum need not
 * be verified before merging (the outer checksum covering it was verified, or the frame was
 * made on this host). srcIdx[k] gets the input index of the first frame of output k.
 * stride (may be NULL): stride[i] > 8 says input i is a decapsulated VXLAN UDP GSO frame kept
 * whole (the underlay's receive): its inner frames, stride[i] bytes apart with their own VXLAN
 * header in between, are taken one by one as if they were separate inputs (no cut first);
 * one whose VXLAN header differs from the first's ends the input and counts in *dropped with
 * the rest of it, as do empty or oversize ones. *sub (may be NULL) is the sub-frame of input
 * 0 to start at and gets the one of the returned input to resume at (0 at a boundary).
 * Returns the number of input frames consumed whole (< n when the slots ran out). *merged
 * counts (sub-)frames that were merged into an earlier one. */
uint32_t fio_coalesce(fio_slots *s, const uint8_t *in, const uint32_t *inOff, const uint32_t *inLen,
                      uint32_t n, const uint32_t *grp, uint32_t grpWords, const uint8_t *trusted,
                      uint8_t *vnetOut, uint32_t *srcIdx, uint32_t *merged,
                      const uint32_t *stride, uint32_t *sub, uint32_t *dropped);

#endif
