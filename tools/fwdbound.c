/*
 * fwdbound: the cheapest AF_PACKET forwarder we can write, as a ceiling for scripts/bench-io.sh.
 *
 * Moves every frame that arrives on IF_IN out of IF_OUT and does nothing else: no parsing, no
 * table, no JS. Same kernel interfaces as flowd's addon (TPACKET_V2 receive ring woken through
 * poll(), a separate send socket), so what it forwards on one core is what any switch built on
 * AF_PACKET could forward there; the distance between it and flowd is flowd's own cost.
 *
 * Usage: fwdbound IF_IN IF_OUT SECONDS [sendmmsg|txring|spin]
 *   sendmmsg (default): one sendmmsg() per received batch (what flowd's addon does)
 *   txring: a PACKET_TX_RING on the send socket, frames copied into it, one send() per batch
 *   spin: sendmmsg, but never sleeps in poll(): spins on the ring like an OVS PMD thread and
 *         sends when it has BATCH frames or the ring has been empty for a while
 * Prints "fwdbound: forwarded N frames in S s = R pps (W wakeups, D tx drops)". libc only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING_FRAMES 4096
#define FRAME_BYTES 2048
#define BLOCK_BYTES (1 << 16)
#define BATCH 256
#define SPIN_IDLE_POLLS 2000 /* spin mode: empty ring checks before a partial batch goes out */

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stderr, "fwdbound: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Sets up an RX or TX ring (RING_FRAMES slots of FRAME_BYTES) on fd and maps it. */
static uint8_t *map_ring(int fd, int which) {
    struct tpacket_req req = {BLOCK_BYTES, RING_FRAMES / (BLOCK_BYTES / FRAME_BYTES), FRAME_BYTES, RING_FRAMES};
    if (setsockopt(fd, SOL_PACKET, which, &req, sizeof req)) die("setsockopt(ring)");
    void *p = mmap(NULL, (size_t)BLOCK_BYTES * req.tp_block_nr, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) die("mmap(ring)");
    return p;
}

static void bind_to(int fd, unsigned ifindex, int proto) {
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = (uint16_t)proto;
    sll.sll_ifindex = (int)ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll)) die("bind");
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s IF_IN IF_OUT SECONDS [sendmmsg|txring]\n", argv[0]);
        return 2;
    }
    unsigned in = if_nametoindex(argv[1]), out = if_nametoindex(argv[2]);
    if (!in || !out) die("if_nametoindex");
    double seconds = atof(argv[3]);
    int txring = argc > 4 && strcmp(argv[4], "txring") == 0;
    int spin = argc > 4 && strcmp(argv[4], "spin") == 0;
    int v2 = TPACKET_V2, one = 1;

    int rx = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, 0);
    if (rx < 0) die("socket(rx)");
    if (setsockopt(rx, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2)) die("PACKET_VERSION");
    (void)setsockopt(rx, SOL_PACKET, 23 /* PACKET_IGNORE_OUTGOING */, &one, sizeof one);
    uint8_t *rring = map_ring(rx, PACKET_RX_RING);
    bind_to(rx, in, htons(ETH_P_ALL));
    struct packet_mreq mr = {(int)in, PACKET_MR_PROMISC, 0, {0}};
    if (setsockopt(rx, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr)) die("promisc");

    int tx = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, 0);
    if (tx < 0) die("socket(tx)");
    uint8_t *tring = NULL;
    if (txring) {
        if (setsockopt(tx, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2)) die("PACKET_VERSION(tx)");
        tring = map_ring(tx, PACKET_TX_RING);
    }
    bind_to(tx, out, 0);

    static struct mmsghdr msgs[BATCH];
    static struct iovec iov[BATCH];
    static uint8_t copies[BATCH][FRAME_BYTES];
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    uint64_t fwd = 0, wakes = 0, txDrops = 0;
    uint32_t ri = 0, ti = 0;
    const uint32_t txOff = TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
    double t0 = now_s(), deadline = t0 + seconds;
    while (!stop_flag && now_s() < deadline) {
        if (!spin) {
            struct pollfd p = {rx, POLLIN, 0};
            if (poll(&p, 1, 100) <= 0) continue;
        }
        wakes++;
        for (;;) {
            unsigned n = 0, idle = 0;
            while (n < BATCH) {
                struct tpacket2_hdr *h = (struct tpacket2_hdr *)(rring + (size_t)ri * FRAME_BYTES);
                if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
                    /* spin: wait a little for a fuller batch (PMD-style) before sending */
                    if (!spin || n == 0 || ++idle >= SPIN_IDLE_POLLS) break;
                    continue;
                }
                idle = 0;
                uint8_t *f = (uint8_t *)h + h->tp_mac;
                uint32_t len = h->tp_snaplen;
                if (txring) {
                    struct tpacket2_hdr *t = (struct tpacket2_hdr *)(tring + (size_t)ti * FRAME_BYTES);
                    if (__atomic_load_n(&t->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE || len > FRAME_BYTES - txOff) {
                        txDrops++;
                    } else {
                        memcpy((uint8_t *)t + txOff, f, len);
                        t->tp_len = len;
                        __atomic_store_n(&t->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
                        ti = ti + 1 == RING_FRAMES ? 0 : ti + 1;
                    }
                } else {
                    memcpy(copies[n], f, len); /* flowd copies into its batch too */
                    iov[n].iov_base = copies[n];
                    iov[n].iov_len = len;
                    memset(&msgs[n], 0, sizeof msgs[n]);
                    msgs[n].msg_hdr.msg_iov = &iov[n];
                    msgs[n].msg_hdr.msg_iovlen = 1;
                }
                __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
                ri = ri + 1 == RING_FRAMES ? 0 : ri + 1;
                n++;
            }
            if (n == 0) break;
            if (txring) {
                if (send(tx, NULL, 0, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ENOBUFS) die("send(txring)");
            } else {
                unsigned i = 0;
                while (i < n) {
                    int r = sendmmsg(tx, msgs + i, n - i, MSG_DONTWAIT);
                    if (r <= 0) { txDrops += n - i; break; }
                    i += (unsigned)r;
                }
            }
            fwd += n;
        }
    }
    double t = now_s() - t0;
    printf("fwdbound: forwarded %llu frames in %.2f s = %.0f pps (%llu wakeups, %llu tx drops)\n",
           (unsigned long long)fwd, t, (double)fwd / t, (unsigned long long)wakes, (unsigned long long)txDrops);
    return 0;
}
