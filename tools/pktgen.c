/*
 * pktgen: a small UDP frame generator for scripts/bench-io.sh.
 *
 * Sends one fixed Ethernet/IPv4/UDP frame (60 bytes by default: 64 on the wire with the FCS)
 * as fast as it can on one interface, through an AF_PACKET socket with batched sendmmsg()
 * (BATCH frames per system call) and PACKET_QDISC_BYPASS (no qdisc on the way to the driver).
 * The UDP source port cycles through FLOWS values (default 1), so the switch under test sees
 * FLOWS distinct 5-tuples. Runs for SECONDS (or until SIGINT/SIGTERM) and prints
 *   pktgen: sent N frames in S s = R pps (E send errors)
 * Pin it to a core with taskset; it does not pace itself.
 *
 * Usage: pktgen IFNAME DST_MAC SRC_MAC SRC_IP DST_IP SECONDS [FRAME_LEN] [FLOWS] [COUNT]
 * COUNT > 0 stops after that many frames (e.g. 1 to teach a learning switch a source MAC).
 * Needs CAP_NET_RAW. libc only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256
#define MAX_FRAME 1514

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static int parse_mac(const char *s, uint8_t *mac) {
    unsigned v[6];
    if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return -1;
    for (int i = 0; i < 6; i++) {
        if (v[i] > 255) return -1;
        mac[i] = (uint8_t)v[i];
    }
    return 0;
}

/* RFC 1071 one's-complement sum over the IPv4 header. */
static uint16_t ip_checksum(const uint8_t *p, size_t len) {
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2) s += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes the frame: Ethernet, IPv4 (DF, TTL 64), UDP to port 9 (discard), zero payload. */
static void build_frame(uint8_t *f, size_t len, const uint8_t *dst, const uint8_t *src,
                        struct in_addr sip, struct in_addr dip, uint16_t sport) {
    memset(f, 0, len);
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    f[12] = 0x08; f[13] = 0x00;
    uint8_t *ip = f + 14;
    uint16_t ip_len = (uint16_t)(len - 14);
    ip[0] = 0x45;
    ip[2] = (uint8_t)(ip_len >> 8); ip[3] = (uint8_t)ip_len;
    ip[6] = 0x40;                           /* DF */
    ip[8] = 64;
    ip[9] = 17;
    memcpy(ip + 12, &sip, 4);
    memcpy(ip + 16, &dip, 4);
    uint16_t c = ip_checksum(ip, 20);
    ip[10] = (uint8_t)(c >> 8); ip[11] = (uint8_t)c;
    uint8_t *udp = ip + 20;
    uint16_t udp_len = (uint16_t)(ip_len - 20);
    udp[0] = (uint8_t)(sport >> 8); udp[1] = (uint8_t)sport;
    udp[2] = 0; udp[3] = 9;
    udp[4] = (uint8_t)(udp_len >> 8); udp[5] = (uint8_t)udp_len;
    /* checksum 0: none (RFC 768) */
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s IFNAME DST_MAC SRC_MAC SRC_IP DST_IP SECONDS [FRAME_LEN] [FLOWS] [COUNT]\n", argv[0]);
        return 2;
    }
    uint8_t dst[6], src[6];
    struct in_addr sip, dip;
    if (parse_mac(argv[2], dst) || parse_mac(argv[3], src) ||
        inet_pton(AF_INET, argv[4], &sip) != 1 || inet_pton(AF_INET, argv[5], &dip) != 1) {
        fprintf(stderr, "pktgen: bad MAC or IPv4 address\n");
        return 2;
    }
    double seconds = atof(argv[6]);
    size_t frame_len = argc > 7 ? (size_t)atoi(argv[7]) : 60;
    unsigned flows = argc > 8 ? (unsigned)atoi(argv[8]) : 1;
    uint64_t count = argc > 9 ? (uint64_t)strtoull(argv[9], NULL, 10) : 0;
    if (frame_len < 42 || frame_len > MAX_FRAME || flows < 1 || flows > BATCH) {
        fprintf(stderr, "pktgen: FRAME_LEN must be 42..%d and FLOWS 1..%d\n", MAX_FRAME, BATCH);
        return 2;
    }
    unsigned ifindex = if_nametoindex(argv[1]);
    if (ifindex == 0) {
        fprintf(stderr, "pktgen: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: send only, nothing is received */
    if (fd < 0) {
        fprintf(stderr, "pktgen: socket(AF_PACKET): %s\n", strerror(errno));
        return 1;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = (int)ifindex;
    sll.sll_halen = 6;
    memcpy(sll.sll_addr, dst, 6);

    /* One frame per distinct flow; message i of a batch points at frame i % flows. */
    static uint8_t frames[BATCH][MAX_FRAME];
    static struct iovec iov[BATCH];
    static struct mmsghdr msgs[BATCH];
    for (unsigned i = 0; i < flows; i++) build_frame(frames[i], frame_len, dst, src, sip, dip, (uint16_t)(1024 + i));
    for (unsigned i = 0; i < BATCH; i++) {
        iov[i].iov_base = frames[i % flows];
        iov[i].iov_len = frame_len;
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &sll;
        msgs[i].msg_hdr.msg_namelen = sizeof sll;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    uint64_t n_sent = 0, n_err = 0;
    double t0 = now_s(), deadline = t0 + seconds, t = t0;
    unsigned spins = 0;
    while (!stop_flag && (count == 0 || n_sent < count)) {
        unsigned want = count == 0 || count - n_sent >= BATCH ? BATCH : (unsigned)(count - n_sent);
        int r = sendmmsg(fd, msgs, want, 0);
        if (r > 0) {
            n_sent += (uint64_t)r;
        } else if (r < 0) {
            n_err++;
            if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
                fprintf(stderr, "pktgen: sendmmsg: %s\n", strerror(errno));
                break;
            }
        }
        if (++spins >= 16) { /* read the clock every 16 batches */
            spins = 0;
            t = now_s();
            if (seconds > 0 && t >= deadline) break;
        }
    }
    t = now_s();
    close(fd);
    printf("pktgen: sent %llu frames in %.2f s = %.0f pps (%llu send errors)\n",
           (unsigned long long)n_sent, t - t0, (double)n_sent / (t - t0), (unsigned long long)n_err);
    return 0;
}
