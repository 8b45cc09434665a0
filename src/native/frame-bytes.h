/*
 * frame-bytes.h -- the byte helpers offload.c and tunnel-offload.c share: big-endian field
 * reads and writes, the L3 offset past Ethernet and in-band VLAN tags, and a slot's address.
 *
 * Who includes it: offload.c and tunnel-offload.c only (static inline: each gets its own copy,
 * inlined; not part of the addon's interface).
 * Invariants: l3_offset reads nothing past f + len; slot_at does no bounds check (the callers
 * check k against their slot count).
 */
#ifndef FLOWD_FRAME_BYTES_H
#define FLOWD_FRAME_BYTES_H
#include <stdint.h>
#include <stddef.h>
#include "offload.h"

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Offset of the L3 header in "f" after Ethernet and any in-band 802.1Q/802.1ad tags; 0 if the
 * frame is too short. "ethType" gets the inner EtherType. */
static inline uint32_t l3_offset(const uint8_t *f, uint32_t len, uint16_t *ethType) {
  if (len < 14) return 0;
  uint32_t off = 14;
  uint16_t et = rd16(f + 12);
  while ((et == 0x8100 || et == 0x88a8) && off + 4 <= len) {
    et = rd16(f + off + 2);
    off += 4;
  }
  *ethType = et;
  return off;
}

/* Where frame "k" of the slot array starts (its slot's start plus the headroom). */
static inline uint8_t *slot_at(fio_slots *s, uint32_t k) {
  return s->buf + (size_t)k * s->slotBytes + s->headroom;
}

#endif
