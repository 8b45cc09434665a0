/*
 * ring-latency.c -- measures how long a frame waits in an AF_PACKET RX ring at low rate,
 * TPACKET_V2 (per-frame wakeup) against TPACKET_V3 (wakeup when a block is retired).
 * A forked child sends one frame every 5 ms on IF_TX carrying its CLOCK_MONOTONIC send
 * time; the parent poll()s a ring on IF_RX and records now - sent per frame.
 *
 * Build: gcc -O2 -o /tmp/ring-latency src/native/bench/ring-latency.c
 * Run (root): /tmp/ring-latency IF_TX IF_RX 2|3 [V3 block timeout ms] [samples]
 * Prints median, p90 and max in microseconds. Used for native-notes/rings.md.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: %s IF_TX IF_RX 2|3 [tov_ms] [samples]\n", argv[0]); return 2; }
  int ver = atoi(argv[3]), tov = argc > 4 ? atoi(argv[4]) : 1, samples = argc > 5 ? atoi(argv[5]) : 200;
  int rx = socket(AF_PACKET, SOCK_RAW, 0);
  int v = ver == 3 ? TPACKET_V3 : TPACKET_V2;
  if (setsockopt(rx, SOL_PACKET, PACKET_VERSION, &v, sizeof v)) { perror("PACKET_VERSION"); return 1; }
  size_t ringBytes;
  if (ver == 3) {
    struct tpacket_req3 r = {0};
    r.tp_block_size = 1 << 16; r.tp_block_nr = 64; r.tp_frame_size = 2048;
    r.tp_frame_nr = r.tp_block_size / r.tp_frame_size * r.tp_block_nr; r.tp_retire_blk_tov = (unsigned)tov;
    if (setsockopt(rx, SOL_PACKET, PACKET_RX_RING, &r, sizeof r)) { perror("RX_RING v3"); return 1; }
    ringBytes = (size_t)r.tp_block_size * r.tp_block_nr;
  } else {
    struct tpacket_req r = {1 << 16, 64, 2048, 32 * 64};
    if (setsockopt(rx, SOL_PACKET, PACKET_RX_RING, &r, sizeof r)) { perror("RX_RING v2"); return 1; }
    ringBytes = (size_t)r.tp_block_size * r.tp_block_nr;
  }
  uint8_t *ring = mmap(NULL, ringBytes, PROT_READ | PROT_WRITE, MAP_SHARED, rx, 0);
  struct sockaddr_ll sll = {0};
  sll.sll_family = AF_PACKET; sll.sll_protocol = htons(0x88b5); sll.sll_ifindex = (int)if_nametoindex(argv[2]);
  if (bind(rx, (struct sockaddr *)&sll, sizeof sll)) { perror("bind rx"); return 1; }

  pid_t child = fork();
  if (child == 0) {
    int tx = socket(AF_PACKET, SOCK_RAW, 0);
    struct sockaddr_ll to = {0};
    to.sll_family = AF_PACKET; to.sll_ifindex = (int)if_nametoindex(argv[1]); to.sll_halen = 6;
    uint8_t f[60] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5};
    usleep(100000);
    for (int i = 0; i < samples + 5; i++) {
      uint64_t t = now_ns();
      memcpy(f + 14, &t, 8);
      sendto(tx, f, sizeof f, 0, (struct sockaddr *)&to, sizeof to);
      usleep(5000);
    }
    _exit(0);
  }
  double *lat = calloc((size_t)samples, sizeof *lat);
  int n = 0;
  uint32_t idx = 0;
  struct pollfd pfd = {rx, POLLIN, 0};
  while (n < samples) {
    if (poll(&pfd, 1, 2000) <= 0) break;
    if (ver == 2) {
      for (;;) {
        struct tpacket2_hdr *h = (struct tpacket2_hdr *)(ring + (size_t)idx * 2048);
        if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) break;
        uint64_t sent; memcpy(&sent, (uint8_t *)h + h->tp_mac + 14, 8);
        if (n < samples) lat[n++] = (double)(now_ns() - sent) / 1000.0;
        __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        idx = (idx + 1) % (32 * 64);
      }
    } else {
      for (;;) {
        struct tpacket_block_desc *b = (struct tpacket_block_desc *)(ring + (size_t)idx * (1 << 16));
        if (!(__atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) break;
        struct tpacket3_hdr *h = (struct tpacket3_hdr *)((uint8_t *)b + b->hdr.bh1.offset_to_first_pkt);
        uint64_t t = now_ns();
        for (uint32_t k = 0; k < b->hdr.bh1.num_pkts; k++) {
          uint64_t sent; memcpy(&sent, (uint8_t *)h + h->tp_mac + 14, 8);
          if (n < samples) lat[n++] = (double)(t - sent) / 1000.0;
          h = (struct tpacket3_hdr *)((uint8_t *)h + h->tp_next_offset);
        }
        __atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        idx = (idx + 1) % 64;
      }
    }
  }
  kill(child, SIGTERM);
  waitpid(child, NULL, 0);
  qsort(lat, (size_t)n, sizeof *lat, cmp);
  if (n == 0) { printf("no samples\n"); return 1; }
  printf("TPACKET_V%d%s%s: %d frames, wait in ring median %.1f us, p90 %.1f us, max %.1f us\n", ver,
         ver == 3 ? " tov_ms=" : "", ver == 3 ? argv[4 < argc ? 4 : 3] : "", n, lat[n / 2], lat[n * 9 / 10], lat[n - 1]);
  return 0;
}
