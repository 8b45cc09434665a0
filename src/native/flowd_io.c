/*
 * flowd_io.c -- the native I/O addon: batched packet I/O for flowd's netdevs, wired into
 * libuv. libc only (no libpcap).
 *
 * What it gives JS (see src/native/io.ts for the typed wrapper):
 *   packetOpen(ifname, ringFrames, promisc[, markValid])  AF_PACKET, TPACKET_V2 RX ring, PACKET_VNET_HDR
 *   tapOpen(name, create, offload)           /dev/net/tun, IFF_TAP|IFF_NO_PI|IFF_VNET_HDR
 *   udpOpen(localIpHost, port)               UDP socket for VXLAN (recvmmsg/sendmmsg)
 *   greOpen(localIpHost)                     raw IPv4 protocol 47 socket (recvmmsg/sendmmsg)
 *   recv(h, buf, slotBytes, headroom, maxFrames, offOut, lenOut[, srcIpOut[, srcPortOut[, vnetOut]]])
 *   send(h, buf, offs, lens, count[, dstIps[, dstPorts[, vnet]]])
 *   startPoll(h, cb) / stopPoll(h) / stats(h) / info(h) / close(h)
 *   offloadFrame(vnetHdr, frame, buf, slotBytes, headroom, maxFrames, offOut, lenOut)
 *   tunnelEmit(...) / coalesce(...)          tunnel-offload.c: super-frames into and out of tunnels
 *
 * Ownership: a handle is an N-API external owning one fd (plus, for AF_PACKET, a send-only
 * socket (txFd), the mmap'ed ring and a malloc'ed scratch buffer for frames bigger than a ring
 * slot). close() releases them; the finalizer does so if JS forgets. No JS buffer is kept by C beyond a call: recv
 * copies frames into the caller's buffer, send reads the caller's buffer during the call.
 * Threads: a handle is used on the thread (uv loop) that opened it; there is no global
 * mutable state (mmsghdr arrays are per handle), so instances in worker threads are safe.
 *
 * Errors: opening throws a JS Error whose `code` is the errno name (ENODEV, EPERM, ...) and
 * whose message names the interface and the failing call. recv/send never throw for I/O
 * failures; they return counts and bump counters (rxErrors, txErrors, drops by reason).
 * They throw TypeError only for wrong arguments (a programming error, not a runtime event).
 *
 * Choices (see native-notes/rings.md and veth-offloads.md):
 *   - TPACKET_V2, not V3: V2 wakes poll per frame, V3 only when a block is retired (at the
 *     earliest after a 1 ms timeout at low rate), which breaks the 50 us latency target.
 *   - Frames bigger than a ring slot (GSO super-frames up to 64 KB) come through
 *     PACKET_COPY_THRESH: the kernel also queues the whole skb on the socket, the ring slot
 *     is flagged TP_STATUS_COPY and we recvmsg() it into the scratch buffer.
 *   - By default checksum completion and GSO segmentation happen here in C (offload.c), so
 *     JS only sees complete frames no bigger than the sender's MTU.
 *   - Keep-whole mode (afpacket/tap recv with vnetOut): TCP GSO super-frames and
 *     checksum-partial frames that fit the caller's slot are delivered as they are, with their
 *     virtio_net_hdr in vnetOut (10 bytes per slot; zeros for complete frames), and send with
 *     a vnet array hands each frame's header back to the kernel (hdr_len recomputed), which
 *     segments/checksums on the way out or lets the receiving stack take the big skb. Frames
 *     that do not fit a slot, UFO, and UDP GSO (except on a markValid socket: the underlay
 *     decapsulates and coalesces from its datagrams) fall back to the default path.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "offload.h"
#include "tunnel-offload.h"

/* <net/if.h> clashes with <linux/if.h>; this is the one function needed from it. */
extern unsigned int if_nametoindex(const char *ifname);

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#ifndef TP_STATUS_VLAN_TPID_VALID
#define TP_STATUS_VLAN_TPID_VALID (1 << 6)
#endif

#define FIO_MAGIC 0x666c6f77u
#define FIO_MAX_BATCH 1024u
#define FIO_RING_FRAME_BYTES 2048u      /* tpacket2_hdr + vnet hdr + a 1518-byte frame */
#define FIO_RING_BLOCK_BYTES (1u << 16) /* 32 frames per block */
#define FIO_SCRATCH_BYTES (1u << 17)    /* > 64 KB GSO frame + headers */
#define FIO_RCVBUF_BYTES (8 << 20)

enum fio_kind { K_PACKET = 1, K_TAP = 2, K_UDP = 3, K_GRE = 4 };
static const char *kind_name(int k) {
  switch (k) {
    case K_PACKET: return "afpacket";
    case K_TAP: return "tap";
    case K_UDP: return "udp";
    case K_GRE: return "gre";
  }
  return "?";
}

typedef struct fio_handle {
  uint32_t magic;
  int kind;
  int fd; /* -1 once closed */
  /* AF_PACKET: a second socket only for sending, never in epoll (-1 for other kinds). Each
   * sent skb, when freed, calls sk_write_space on its socket; on the polled receive socket
   * that woke the epoll entry (a spinlock and a callback per frame, ~8 % of a switch core at
   * 300 kpps); on a socket nobody waits on it is a no-op. It is bound with protocol 0, so
   * nothing is ever queued to it, and the receive socket ignores its frames
   * (PACKET_IGNORE_OUTGOING). */
  int txFd;
  int ifindex;
  char name[64];
  /* AF_PACKET RX ring */
  uint8_t *ring;
  size_t ringBytes;
  uint32_t frameNr, frameBytes, ringIdx;
  /* Scratch for frames that do not fit a slot (copy path, TAP reads), and the super-frame
   * being segmented when the caller's slots ran out ("pend*"). */
  uint8_t *scratch;
  /* sendmmsg/recvmmsg descriptors, per handle so that addon instances in worker threads
   * never share them (allocated at open, FIO_MAX_BATCH entries; iov has two per frame). */
  struct mmsghdr *mm;
  struct iovec *iov;
  struct sockaddr_in *sin;
  uint32_t pendLen, pendSeg, pendTag;
  struct fio_vnet_hdr pendVh;
  /* Set for the duration of one recv call when the caller passed vnetOut: frames with
   * offloads that fit a caller slot are delivered whole, their vnet header in vnetOut. */
  uint8_t *vnetOut;
  /* packetOpen(..., markValid): frames this addon finished from a checksum-partial frame
   * (segments of a GSO frame, completed checksums) get vnet flags DATA_VALID instead of an
   * all-zero header, so the caller may skip verifying them (netdev/underlay.ts); in
   * keep-whole mode UDP GSO frames are delivered whole too (the underlay walks their
   * datagrams itself). */
  int markValid;
  /* counters */
  uint64_t rxPackets, rxBytes, rxDropped, rxErrors, txPackets, txBytes, txErrors;
  uint64_t rxTruncated, rxTooBig, rxBadOffload, rxSuperFrames, rxCsumCompleted, rxCopyPath;
  uint64_t rxGsoWhole, rxCsumWhole, txGso, txCsumPartial;
  uint64_t rxCopyCalls; /* recvmsg/recvmmsg calls of the copy path (rxCopyPath frames) */
  /* poll */
  napi_env env;
  uv_poll_t poll;
  int pollInit, polling, pollClosing;
  napi_ref cb;
  napi_async_context actx;
  int finalized;
  int hookAdded; /* env cleanup hook registered (removed when it runs or at finalize) */
  int envGone;   /* the env is being torn down */
  int leaked;    /* closed at teardown: libuv may still reference h->poll; never free */
} fio_handle;

/* ------------------------------------------------------------------ errors */

static const char *errno_name(int e) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *n = strerrorname_np(e);
  if (n) return n;
#endif
  return "EUNKNOWN";
}

/* Throws Error("<kind> <name>: <call> failed: <ENAME> (<text>)") with code/errno/syscall. */
static void throw_errno(napi_env env, int e, const char *kind, const char *name, const char *call) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s %s: %s failed: %s (%s)", kind, name, call, errno_name(e), strerror(e));
  napi_value m, err, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_value code;
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, m, &err);
  napi_create_int32(env, e, &v);
  napi_set_named_property(env, err, "errno", v);
  napi_create_string_utf8(env, call, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "syscall", v);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "ifname", v);
  napi_throw(env, err);
}

#define NAPI_OK(call)                                                   \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      bool pending_ = false;                                            \
      napi_is_exception_pending(env, &pending_);                        \
      if (!pending_) napi_throw_error(env, "EINTERNAL", #call " failed"); \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

static napi_value type_error(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG", msg);
  return NULL;
}

/* ------------------------------------------------------------------ handle lifetime */

static void on_poll_closed(uv_handle_t *uh) {
  fio_handle *h = (fio_handle *)uh->data;
  h->pollInit = 0;
  h->pollClosing = 0;
  if (h->finalized) free(h);
}

/* Stops polling, closes the fd, unmaps the ring. Safe to call twice. */
static void handle_release_os(fio_handle *h) {
  if (h->polling) {
    uv_poll_stop(&h->poll);
    h->polling = 0;
  }
  if (h->cb) {
    napi_delete_reference(h->env, h->cb);
    h->cb = NULL;
  }
  if (h->actx) {
    napi_async_destroy(h->env, h->actx);
    h->actx = NULL;
  }
  if (h->fd >= 0) {
    close(h->fd);
    h->fd = -1;
  }
  if (h->txFd >= 0) {
    close(h->txFd);
    h->txFd = -1;
  }
  if (h->ring) {
    munmap(h->ring, h->ringBytes);
    h->ring = NULL;
  }
  free(h->scratch);
  free(h->mm);
  free(h->iov);
  free(h->sin);
  h->mm = NULL;
  h->iov = NULL;
  h->sin = NULL;
  h->scratch = NULL;
  h->pendLen = 0;
  if (h->pollInit && !h->pollClosing) {
    h->pollClosing = 1;
    if (h->envGone) {
      /* At env teardown the addon may be unloaded before libuv runs close callbacks, so
       * pass none and never free this struct (libuv still points at h->poll). */
      h->leaked = 1;
      uv_close((uv_handle_t *)&h->poll, NULL);
    } else {
      uv_close((uv_handle_t *)&h->poll, on_poll_closed);
    }
  }
}

/* Runs when the env (main thread at exit, or a worker) is torn down, while its uv loop can
 * still close handles; GC finalizers may run later, when the loop is gone. */
static void env_cleanup(void *arg) {
  fio_handle *h = (fio_handle *)arg;
  h->hookAdded = 0;
  h->envGone = 1;
  handle_release_os(h);
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  fio_handle *h = (fio_handle *)data;
  if (h->hookAdded) {
    napi_remove_env_cleanup_hook(env, env_cleanup, h);
    h->hookAdded = 0;
  }
  handle_release_os(h);
  h->finalized = 1;
  h->magic = 0;
  if (!h->pollClosing && !h->leaked) free(h);
}

static fio_handle *handle_new(int kind, const char *name) {
  fio_handle *h = (fio_handle *)calloc(1, sizeof *h);
  if (!h) return NULL;
  h->magic = FIO_MAGIC;
  h->kind = kind;
  h->fd = -1;
  h->txFd = -1;
  snprintf(h->name, sizeof h->name, "%s", name);
  h->mm = (struct mmsghdr *)calloc(FIO_MAX_BATCH, sizeof *h->mm);
  h->iov = (struct iovec *)calloc(FIO_MAX_BATCH * 2, sizeof *h->iov);
  h->sin = (struct sockaddr_in *)calloc(FIO_MAX_BATCH, sizeof *h->sin);
  if (!h->mm || !h->iov || !h->sin) {
    free(h->mm);
    free(h->iov);
    free(h->sin);
    free(h);
    return NULL;
  }
  return h;
}

/* Wraps "h" in an external; on failure releases it. */
static napi_value handle_wrap(napi_env env, fio_handle *h) {
  napi_value ext;
  h->env = env;
  if (napi_create_external(env, h, handle_finalize, NULL, &ext) != napi_ok) {
    handle_release_os(h);
    free(h);
    napi_throw_error(env, "EINTERNAL", "napi_create_external failed");
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, env_cleanup, h) == napi_ok) h->hookAdded = 1;
  return ext;
}

static fio_handle *get_handle(napi_env env, napi_value v, int needOpen) {
  napi_valuetype t;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_get_value_external(env, v, &p) != napi_ok || p == NULL ||
      ((fio_handle *)p)->magic != FIO_MAGIC) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "not a flowd_io handle");
    return NULL;
  }
  fio_handle *h = (fio_handle *)p;
  if (needOpen && h->fd < 0) {
    napi_throw_error(env, "ERR_CLOSED", "flowd_io handle is closed");
    return NULL;
  }
  return h;
}

/* ------------------------------------------------------------------ argument helpers */

static int get_u32(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t n) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, n, &len) != napi_ok) return 0;
  return len > 0 && len < n - 1;
}

/* Typed array of the given type; returns data pointer and element count. */
static void *get_typed(napi_env env, napi_value v, napi_typedarray_type want, size_t *count) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return NULL;
  napi_typedarray_type t;
  size_t len, boff;
  void *data;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &t, &len, &data, &ab, &boff) != napi_ok) return NULL;
  if (t != want && !(want == napi_uint8_array && t == napi_uint8_clamped_array)) return NULL;
  *count = len;
  return data ? data : (void *)"";
}

static int is_undef(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) != napi_ok || t == napi_undefined || t == napi_null;
}

/* Optional typed-array argument argv[i]: *out NULL (and *n 0) when absent or undefined. Returns
 * 0 when it is present but not a typed array of type "want" (the caller throws). */
static int opt_typed(napi_env env, size_t argc, napi_value *argv, size_t i, napi_typedarray_type want,
                     void **out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (argc <= i || is_undef(env, argv[i])) return 1;
  *out = get_typed(env, argv[i], want, n);
  return *out != NULL;
}

/* ------------------------------------------------------------------ AF_PACKET */

static napi_value packet_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char ifname[IFNAMSIZ + 1];
  if (argc < 1 || !get_string(env, argv[0], ifname, sizeof ifname) || strlen(ifname) >= IFNAMSIZ)
    return type_error(env, "packetOpen: ifname must be a string of 1..15 characters");
  uint32_t ringFrames = 4096, promisc = 1;
  if (argc >= 2 && !is_undef(env, argv[1]) && !get_u32(env, argv[1], &ringFrames))
    return type_error(env, "packetOpen: ringFrames must be a number");
  if (argc >= 3 && !is_undef(env, argv[2])) {
    bool b;
    if (napi_get_value_bool(env, argv[2], &b) != napi_ok) return type_error(env, "packetOpen: promisc must be a boolean");
    promisc = b;
  }
  bool markValid = false;
  if (argc >= 4 && !is_undef(env, argv[3]) && napi_get_value_bool(env, argv[3], &markValid) != napi_ok)
    return type_error(env, "packetOpen: markValid must be a boolean");
  uint32_t perBlock = FIO_RING_BLOCK_BYTES / FIO_RING_FRAME_BYTES;
  if (ringFrames < perBlock) ringFrames = perBlock;
  if (ringFrames > (1u << 20)) ringFrames = 1u << 20;
  ringFrames = (ringFrames + perBlock - 1) / perBlock * perBlock;

  fio_handle *h = handle_new(K_PACKET, ifname);
  if (!h) return type_error(env, "out of memory");
  h->markValid = markValid;
  const char *call = "";
  int one = 1;
  h->ifindex = (int)if_nametoindex(ifname);
  if (h->ifindex == 0) { call = "if_nametoindex"; goto fail; }
  /* Protocol 0 until bind: no frames are queued before the ring exists. */
  h->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (h->fd < 0) { call = "socket(AF_PACKET)"; goto fail; }
  int ver = TPACKET_V2;
  if (setsockopt(h->fd, SOL_PACKET, PACKET_VERSION, &ver, sizeof ver)) { call = "setsockopt(PACKET_VERSION)"; goto fail; }
  if (setsockopt(h->fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one)) { call = "setsockopt(PACKET_VNET_HDR)"; goto fail; }
  if (setsockopt(h->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one)) { call = "setsockopt(PACKET_IGNORE_OUTGOING)"; goto fail; }
  if (setsockopt(h->fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one)) { call = "setsockopt(PACKET_AUXDATA)"; goto fail; }
  if (setsockopt(h->fd, SOL_PACKET, PACKET_COPY_THRESH, &one, sizeof one)) { call = "setsockopt(PACKET_COPY_THRESH)"; goto fail; }
  int rcv = FIO_RCVBUF_BYTES;
  if (setsockopt(h->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv))
    (void)setsockopt(h->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv); /* capped by rmem_max */
  int snd = 4 << 20;
  if (setsockopt(h->fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd))
    (void)setsockopt(h->fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  struct tpacket_req req;
  memset(&req, 0, sizeof req);
  req.tp_block_size = FIO_RING_BLOCK_BYTES;
  req.tp_frame_size = FIO_RING_FRAME_BYTES;
  req.tp_block_nr = ringFrames / perBlock;
  req.tp_frame_nr = ringFrames;
  if (setsockopt(h->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req)) { call = "setsockopt(PACKET_RX_RING)"; goto fail; }
  h->ringBytes = (size_t)req.tp_block_size * req.tp_block_nr;
  h->frameNr = req.tp_frame_nr;
  h->frameBytes = req.tp_frame_size;
  void *ring = mmap(NULL, h->ringBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, h->fd, 0);
  if (ring == MAP_FAILED) { call = "mmap(rx ring)"; goto fail; }
  h->ring = (uint8_t *)ring;
  h->scratch = (uint8_t *)malloc(FIO_SCRATCH_BYTES);
  if (!h->scratch) { errno = ENOMEM; call = "malloc(scratch)"; goto fail; }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = h->ifindex;
  if (bind(h->fd, (struct sockaddr *)&sll, sizeof sll)) { call = "bind(AF_PACKET)"; goto fail; }
  /* The send socket: vnet header like the receive socket, bound to the interface with
   * protocol 0 (receives nothing). */
  h->txFd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (h->txFd < 0) { call = "socket(AF_PACKET, send)"; goto fail; }
  if (setsockopt(h->txFd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one)) { call = "setsockopt(PACKET_VNET_HDR, send)"; goto fail; }
  if (setsockopt(h->txFd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd))
    (void)setsockopt(h->txFd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  sll.sll_protocol = 0;
  if (bind(h->txFd, (struct sockaddr *)&sll, sizeof sll)) { call = "bind(AF_PACKET, send)"; goto fail; }
  if (promisc) {
    struct packet_mreq mr;
    memset(&mr, 0, sizeof mr);
    mr.mr_ifindex = h->ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(h->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr)) { call = "setsockopt(PACKET_ADD_MEMBERSHIP)"; goto fail; }
  }
  return handle_wrap(env, h);
fail: {
    int e = errno;
    handle_release_os(h);
    free(h);
    throw_errno(env, e, "afpacket", ifname, call);
    return NULL;
  }
}

/* The VLAN tag (TPID << 16 | TCI) the kernel moved out of band, from a received message's
 * PACKET_AUXDATA; 0 when the frame had none. */
static uint32_t aux_tag(struct msghdr *mh) {
  uint32_t tag = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
    if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
      struct tpacket_auxdata aux;
      memcpy(&aux, CMSG_DATA(c), sizeof aux);
      if (aux.tp_status & TP_STATUS_VLAN_VALID) {
        uint16_t tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux.tp_vlan_tpid : 0x8100;
        tag = (uint32_t)tpid << 16 | aux.tp_vlan_tci;
      }
    }
  }
  return tag;
}

/* Gets the next whole frame from the socket queue (copy path) into scratch. Returns the
 * frame length (after VLAN re-insertion is decided: *tag set), 0 if none, -1 on error. */
static int packet_recv_copy(fio_handle *h, struct fio_vnet_hdr *vh, uint32_t *tag, uint8_t *dst, uint32_t dstCap) {
  /* With "dst" (keep-whole mode): the first dstCap bytes go straight into the caller's slot,
   * any rest into scratch; total capacity stays FIO_SCRATCH_BYTES. */
  if (dstCap > FIO_SCRATCH_BYTES) dstCap = FIO_SCRATCH_BYTES;
  struct iovec iov[3] = {{vh, sizeof *vh}, {h->scratch, FIO_SCRATCH_BYTES}, {NULL, 0}};
  if (dst) {
    iov[1].iov_base = dst;
    iov[1].iov_len = dstCap;
    iov[2].iov_base = h->scratch;
    iov[2].iov_len = FIO_SCRATCH_BYTES - dstCap;
  }
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
  } cm;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = iov;
  mh.msg_iovlen = dst ? 3 : 2;
  mh.msg_control = cm.buf;
  mh.msg_controllen = sizeof cm.buf;
  ssize_t n = recvmsg(h->fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
  h->rxCopyCalls++;
  if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
  *tag = aux_tag(&mh);
  if ((size_t)n < sizeof *vh || (mh.msg_flags & MSG_TRUNC) || (size_t)n - sizeof *vh > FIO_SCRATCH_BYTES) {
    h->rxTruncated++;
    return -2;
  }
  return (int)(n - (ssize_t)sizeof *vh);
}

/* Emits one frame; if the slots ran out mid-frame, keeps the rest in scratch ("pend"). */
/* Keep-whole mode (h->vnetOut set): a TCP GSO super-frame or a checksum-partial frame that
 * fits a caller slot is delivered as it is (VLAN tag re-inserted) and its vnet header written
 * to vnetOut[slot * 10] with csum_start moved by the tag and hdr_len cleared (send recomputes
 * it). whole_ok says whether "len" bytes with header "vh" and a tag of "tagLen" bytes qualify. */
static int whole_ok(fio_handle *h, fio_slots *s, uint32_t len, const struct fio_vnet_hdr *vh, uint32_t tagLen) {
  if (!h->vnetOut || !vh || s->n >= s->maxFrames) return 0;
  uint8_t gso = vh->gso_type & 0x7f;
  /* UDP GSO frames stay whole only on the underlay (markValid): it decapsulates a VXLAN one
   * and coalesces straight from its datagrams (tunnel-offload.c), without a cut here first. */
  int udpWhole = gso == FIO_GSO_UDP_L4 && h->markValid;
  if (gso != FIO_GSO_NONE && gso != FIO_GSO_TCPV4 && gso != FIO_GSO_TCPV6 && !udpWhole) return 0;
  /* GSO without a partial checksum is not what Linux produces: let offload.c segment it. */
  if (!(vh->flags & FIO_VNET_F_NEEDS_CSUM)) return 0;
  if ((uint32_t)vh->csum_start + vh->csum_offset + 2 > len || vh->csum_start < 14) return 0;
  if (udpWhole && (vh->gso_size <= 8 || vh->csum_offset != 6 || (uint32_t)vh->csum_start + 8 > len)) return 0;
  if (gso != FIO_GSO_NONE && !udpWhole && (vh->gso_size == 0 || (uint32_t)vh->csum_start + 20 > len)) return 0;
  return len + tagLen <= s->slotBytes - s->headroom;
}

/* Commits slot s->n, whose frame (tag already in place) is "outLen" bytes, as a whole frame. */
static void whole_commit(fio_handle *h, fio_slots *s, uint32_t outLen, const struct fio_vnet_hdr *vh, uint32_t tagLen) {
  uint8_t *d = s->buf + (size_t)s->n * s->slotBytes + s->headroom;
  struct fio_vnet_hdr o = *vh;
  o.hdr_len = 0;
  o.csum_start = (uint16_t)(vh->csum_start + tagLen);
  memcpy(h->vnetOut + (size_t)s->n * sizeof o, &o, sizeof o);
  s->off[s->n] = (uint32_t)(d - s->buf);
  s->len[s->n] = outLen;
  s->n++;
  h->rxPackets++;
  h->rxBytes += outLen;
  if (vh->gso_type & 0x7f) h->rxGsoWhole++;
  else h->rxCsumWhole++;
}

static inline void put_tag(uint8_t *d, uint32_t tag) {
  d[12] = (uint8_t)(tag >> 24); d[13] = (uint8_t)(tag >> 16);
  d[14] = (uint8_t)(tag >> 8); d[15] = (uint8_t)tag;
}

/* Copies frame "f" into slot s->n whole if it qualifies; returns 1 if so. */
static int deliver_whole(fio_handle *h, fio_slots *s, const uint8_t *f, uint32_t len,
                         const struct fio_vnet_hdr *vh, uint32_t tag) {
  uint32_t tagLen = tag ? 4 : 0;
  if (!whole_ok(h, s, len, vh, tagLen)) return 0;
  uint8_t *d = s->buf + (size_t)s->n * s->slotBytes + s->headroom;
  if (tagLen) {
    memcpy(d, f, 12);
    put_tag(d, tag);
    memcpy(d + 16, f + 12, len - 12);
  } else {
    memcpy(d, f, len);
  }
  whole_commit(h, s, len + tagLen, vh, tagLen);
  return 1;
}

/* The frame is already at slot s->n (received straight into it); keeps it whole if it
 * qualifies (returns 1), else the caller moves it out and delivers it the default way. */
static int deliver_whole_in_place(fio_handle *h, fio_slots *s, uint32_t len,
                                  const struct fio_vnet_hdr *vh, uint32_t tag) {
  uint32_t tagLen = tag ? 4 : 0;
  if (len < 14 || !whole_ok(h, s, len, vh, tagLen)) return 0;
  uint8_t *d = s->buf + (size_t)s->n * s->slotBytes + s->headroom;
  if (tagLen) {
    memmove(d + 16, d + 12, len - 12);
    put_tag(d, tag);
  }
  whole_commit(h, s, len + tagLen, vh, tagLen);
  return 1;
}

/* Clears vnetOut for slots [from, s->n): frames written complete carry no offload. */
static void clear_vnet(fio_handle *h, fio_slots *s, uint32_t from, const struct fio_vnet_hdr *vh) {
  if (h->vnetOut && s->n > from) {
    memset(h->vnetOut + (size_t)from * sizeof(struct fio_vnet_hdr), 0, (size_t)(s->n - from) * sizeof(struct fio_vnet_hdr));
    if (h->markValid && vh && (vh->flags & FIO_VNET_F_NEEDS_CSUM))
      for (uint32_t k = from; k < s->n; k++) h->vnetOut[(size_t)k * sizeof(struct fio_vnet_hdr)] = FIO_VNET_F_DATA_VALID;
  }
}

static void deliver(fio_handle *h, fio_slots *s, const uint8_t *f, uint32_t len,
                    const struct fio_vnet_hdr *vh, uint32_t tag) {
  if (deliver_whole(h, s, f, len, vh, tag)) return;
  uint32_t seg = 0, nSegs = 1, before = s->n;
  int r = fio_offload_emit(s, f, len, vh, tag, &seg, &nSegs);
  if (vh && (vh->gso_type & 0x7f) && r >= 0) h->rxSuperFrames++;
  else if (vh && (vh->flags & FIO_VNET_F_NEEDS_CSUM) && r >= 0) h->rxCsumCompleted++;
  if (r == FIO_EMIT_MORE) {
    if (f != h->scratch) memcpy(h->scratch, f, len);
    h->pendLen = len;
    h->pendSeg = seg;
    h->pendTag = tag;
    h->pendVh = vh ? *vh : (struct fio_vnet_hdr){0};
  } else if (r == FIO_EMIT_TOO_BIG) {
    h->rxTooBig++;
  } else if (r < 0) {
    h->rxBadOffload++;
  }
  for (uint32_t i = before; i < s->n; i++) h->rxBytes += s->len[i];
  h->rxPackets += s->n - before;
  clear_vnet(h, s, before, vh);
}

/* Finishes a super-frame left over from the previous call. Returns 0 if slots ran out. */
static int drain_pending(fio_handle *h, fio_slots *s) {
  if (!h->pendLen) return 1;
  uint32_t before = s->n, nSegs;
  int r = fio_offload_emit(s, h->scratch, h->pendLen, &h->pendVh, h->pendTag, &h->pendSeg, &nSegs);
  for (uint32_t i = before; i < s->n; i++) h->rxBytes += s->len[i];
  h->rxPackets += s->n - before;
  clear_vnet(h, s, before, &h->pendVh);
  if (r == FIO_EMIT_MORE) return 0;
  h->pendLen = 0;
  return 1;
}

/* Copy-path frames read per recvmmsg call (keep-whole mode). */
#define FIO_COPY_BATCH 32u
typedef union {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
} fio_aux_cmsg;

/*
 * Keep-whole mode, copy path, several frames per system call. A ring slot flagged
 * TP_STATUS_COPY holds the frame truncated, but its length (tp_len), vnet header and VLAN
 * status are complete, and the socket queue holds the whole frames in ring order. So the run
 * of such slots from h->ringIdx on whose frames will be kept whole (whole_ok on the slot's
 * header) is released and read with one recvmmsg, each frame straight into its caller slot.
 * On this machine's guest kernel a system call costs ~1.6 us, about a tenth of a 64 KB
 * super-frame's copy (native-notes/veth-tcp.md). Returns the number of ring slots consumed;
 * 0 when fewer than two qualify (the caller reads the frame on its own).
 */
static uint32_t packet_recv_copy_batch(fio_handle *h, fio_slots *s) {
  uint32_t cap = s->slotBytes - s->headroom;
  if (!h->vnetOut || cap < 4096 || s->n >= s->maxFrames) return 0;
  if (cap > FIO_SCRATCH_BYTES) cap = FIO_SCRATCH_BYTES;
  uint32_t room = s->maxFrames - s->n, k = 0, idx = h->ringIdx;
  if (room > FIO_COPY_BATCH) room = FIO_COPY_BATCH;
  struct tpacket2_hdr *th[FIO_COPY_BATCH];
  fio_slots probe = *s;
  while (k < room) {
    struct tpacket2_hdr *t = (struct tpacket2_hdr *)(h->ring + (size_t)idx * h->frameBytes);
    uint32_t st = __atomic_load_n(&t->tp_status, __ATOMIC_ACQUIRE);
    if (!(st & TP_STATUS_USER) || !(st & TP_STATUS_COPY) || t->tp_mac < sizeof(struct fio_vnet_hdr)) break;
    struct fio_vnet_hdr rv;
    memcpy(&rv, (uint8_t *)t + t->tp_mac - sizeof rv, sizeof rv);
    probe.n = s->n + k;
    if (t->tp_len > cap || !whole_ok(h, &probe, t->tp_len, &rv, (st & TP_STATUS_VLAN_VALID) ? 4 : 0)) break;
    th[k++] = t;
    idx = idx + 1 == h->frameNr ? 0 : idx + 1;
  }
  if (k < 2) return 0;
  struct mmsghdr mm[FIO_COPY_BATCH];
  struct iovec iov[2 * FIO_COPY_BATCH];
  struct fio_vnet_hdr vh[FIO_COPY_BATCH];
  fio_aux_cmsg cm[FIO_COPY_BATCH];
  uint32_t base = s->n;
  for (uint32_t j = 0; j < k; j++) {
    iov[2 * j] = (struct iovec){&vh[j], sizeof vh[j]};
    iov[2 * j + 1] = (struct iovec){s->buf + (size_t)(base + j) * s->slotBytes + s->headroom, cap};
    memset(&mm[j], 0, sizeof mm[j]);
    mm[j].msg_hdr.msg_iov = &iov[2 * j];
    mm[j].msg_hdr.msg_iovlen = 2;
    mm[j].msg_hdr.msg_control = cm[j].buf;
    mm[j].msg_hdr.msg_controllen = sizeof cm[j].buf;
    __atomic_store_n(&th[j]->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
  }
  h->ringIdx = idx;
  h->rxCopyPath += k;
  h->rxCopyCalls++;
  int r;
  do r = recvmmsg(h->fd, mm, k, MSG_DONTWAIT | MSG_TRUNC, NULL); while (r < 0 && errno == EINTR);
  if (r < 0) r = 0;
  h->rxErrors += k - (uint32_t)r; /* a flagged slot without its queued frame, as on the one-frame path */
  for (uint32_t j = 0; j < (uint32_t)r; j++) {
    uint32_t n = mm[j].msg_len;
    if (n < sizeof vh[j] || (mm[j].msg_hdr.msg_flags & MSG_TRUNC) || n - sizeof vh[j] > cap) {
      h->rxTruncated++;
      continue;
    }
    uint32_t len = n - (uint32_t)sizeof vh[j];
    uint8_t *at = s->buf + (size_t)(base + j) * s->slotBytes + s->headroom;
    uint8_t *want = s->buf + (size_t)s->n * s->slotBytes + s->headroom;
    if (at != want) memmove(want, at, len); /* an earlier frame of this call was dropped */
    if (!deliver_whole_in_place(h, s, len, &vh[j], aux_tag(&mm[j].msg_hdr))) {
      /* The queued frame disagrees with its ring slot (never seen): segmenting it here
       * would overwrite the frames after it in this call, so it is counted and dropped. */
      h->rxBadOffload++;
    }
  }
  return k;
}

static void packet_recv(fio_handle *h, fio_slots *s) {
  if (!drain_pending(h, s)) return;
  while (s->n < s->maxFrames) {
    struct tpacket2_hdr *th = (struct tpacket2_hdr *)(h->ring + (size_t)h->ringIdx * h->frameBytes);
    uint32_t st = __atomic_load_n(&th->tp_status, __ATOMIC_ACQUIRE);
    if (!(st & TP_STATUS_USER)) break;
    if (st & TP_STATUS_COPY) {
      /* Too big for the slot: the kernel queued the whole skb on the socket as well. */
      if (packet_recv_copy_batch(h, s)) continue;
      __atomic_store_n(&th->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      h->ringIdx = h->ringIdx + 1 == h->frameNr ? 0 : h->ringIdx + 1;
      struct fio_vnet_hdr vh;
      uint32_t tag = 0;
      /* Keep-whole mode: read straight into the next slot (saves a 64 KB copy). */
      uint8_t *dst = NULL;
      uint32_t cap = 0;
      if (h->vnetOut && s->n < s->maxFrames && s->slotBytes - s->headroom >= 4096) {
        dst = s->buf + (size_t)s->n * s->slotBytes + s->headroom;
        cap = s->slotBytes - s->headroom;
        if (cap > FIO_SCRATCH_BYTES) cap = FIO_SCRATCH_BYTES;
      }
      int n = packet_recv_copy(h, &vh, &tag, dst, cap);
      h->rxCopyPath++;
      if (n > 0 && dst) {
        uint32_t len = (uint32_t)n;
        if (len <= cap && deliver_whole_in_place(h, s, len, &vh, tag)) {
          /* done */
        } else {
          /* Not kept whole: gather the frame into scratch and take the default path. */
          if (len > cap) {
            memmove(h->scratch + cap, h->scratch, len - cap);
            memcpy(h->scratch, dst, cap);
          } else {
            memcpy(h->scratch, dst, len);
          }
          deliver(h, s, h->scratch, len, &vh, tag);
        }
      } else if (n > 0) {
        deliver(h, s, h->scratch, (uint32_t)n, &vh, tag);
      } else if (n == 0 || n == -1) h->rxErrors++;
      if (h->pendLen) return;
      continue;
    }
    uint8_t *data = (uint8_t *)th + th->tp_mac;
    uint32_t len = th->tp_snaplen;
    if (th->tp_snaplen < th->tp_len || th->tp_mac < sizeof(struct fio_vnet_hdr) ||
        th->tp_mac + len > h->frameBytes) {
      /* Too big and the socket queue was full, so no copy was made: a drop. */
      h->rxTruncated++;
    } else {
      struct fio_vnet_hdr vh;
      memcpy(&vh, data - sizeof vh, sizeof vh);
      uint32_t tag = 0;
      if (st & TP_STATUS_VLAN_VALID) {
        uint16_t tpid = (st & TP_STATUS_VLAN_TPID_VALID) ? th->tp_vlan_tpid : 0x8100;
        tag = (uint32_t)tpid << 16 | th->tp_vlan_tci;
      }
      deliver(h, s, data, len, &vh, tag);
    }
    __atomic_store_n(&th->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    h->ringIdx = h->ringIdx + 1 == h->frameNr ? 0 : h->ringIdx + 1;
    if (h->pendLen) return;
  }
}

static const uint8_t zero_vnet[sizeof(struct fio_vnet_hdr)];

/* Checks the vnet header "hv" (in the caller's array) of a frame about to be sent and sets
 * its hdr_len to the real header length (the kernel allocates that much linear skb data and
 * requires hdr_len <= len). Returns 0: no offload (send the all-zero header), 1: send "hv",
 * -1: inconsistent (csum_start/offset outside the frame, unknown gso_type). Counts txGso and
 * txCsumPartial. */
static int tx_vnet_fix(fio_handle *h, uint8_t *hv, const uint8_t *f, uint32_t len) {
  struct fio_vnet_hdr v;
  memcpy(&v, hv, sizeof v);
  uint8_t gso = v.gso_type & 0x7f;
  if (!(v.flags & FIO_VNET_F_NEEDS_CSUM) && gso == FIO_GSO_NONE) return 0;
  if (!(v.flags & FIO_VNET_F_NEEDS_CSUM)) return -1;
  uint32_t end = (uint32_t)v.csum_start + v.csum_offset + 2;
  if (v.csum_start < 14 || end > len) return -1;
  uint32_t hl = end;
  if (gso == FIO_GSO_TCPV4 || gso == FIO_GSO_TCPV6) {
    if ((uint32_t)v.csum_start + 20 > len || v.gso_size == 0) return -1;
    hl = v.csum_start + (uint32_t)(f[v.csum_start + 12] >> 4) * 4;
    if (hl < (uint32_t)v.csum_start + 20 || hl > len) return -1;
    h->txGso++;
  } else if (gso == FIO_GSO_UDP_L4) {
    /* A UDP GSO frame (tunnel-offload.c's VXLAN packing): hdr_len covers the UDP header. */
    if (v.gso_size == 0 || v.csum_offset != 6 || (uint32_t)v.csum_start + 8 > len) return -1;
    hl = v.csum_start + 8u;
    h->txGso++;
  } else if (gso == FIO_GSO_NONE) {
    h->txCsumPartial++;
  } else {
    return -1;
  }
  v.hdr_len = (uint16_t)hl;
  memcpy(hv, &v, sizeof v);
  return 1;
}

/* sendmmsg in chunks; a failing message is counted and skipped, never retried. */
static uint32_t send_mmsg(fio_handle *h, struct mmsghdr *m, uint32_t n) {
  uint32_t i = 0, sent = 0;
  while (i < n) {
    int r = sendmmsg(h->txFd >= 0 ? h->txFd : h->fd, m + i, n - i, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      h->txErrors++;
      i++;
      continue;
    }
    /* msg_len includes the vnet header on AF_PACKET; count frame bytes only. */
    uint32_t hdr = h->kind == K_PACKET ? sizeof(struct fio_vnet_hdr) : 0;
    for (int k = 0; k < r; k++) h->txBytes += m[i + k].msg_len - hdr;
    i += (uint32_t)r;
    sent += (uint32_t)r;
  }
  return sent;
}

/* ------------------------------------------------------------------ TAP */

static int set_if_up(const char *name) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  int r = ioctl(s, SIOCGIFFLAGS, &ifr);
  if (r == 0) {
    ifr.ifr_flags |= IFF_UP;
    r = ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  int e = errno;
  close(s);
  errno = e;
  return r;
}

static napi_value tap_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[IFNAMSIZ + 1];
  if (argc < 1 || !get_string(env, argv[0], name, sizeof name) || strlen(name) >= IFNAMSIZ)
    return type_error(env, "tapOpen: name must be a string of 1..15 characters");
  bool create = false, offload = true;
  if (argc >= 2 && !is_undef(env, argv[1]) && napi_get_value_bool(env, argv[1], &create) != napi_ok)
    return type_error(env, "tapOpen: create must be a boolean");
  if (argc >= 3 && !is_undef(env, argv[2]) && napi_get_value_bool(env, argv[2], &offload) != napi_ok)
    return type_error(env, "tapOpen: offload must be a boolean");
  fio_handle *h = handle_new(K_TAP, name);
  if (!h) return type_error(env, "out of memory");
  const char *call = "";
  int exists = if_nametoindex(name) != 0;
  if (create && exists) { errno = EEXIST; call = "create (interface exists)"; goto fail; }
  if (!create && !exists) { errno = ENODEV; call = "attach (no such interface)"; goto fail; }
  h->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (h->fd < 0) { call = "open(/dev/net/tun)"; goto fail; }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(h->fd, TUNSETIFF, &ifr)) { call = "ioctl(TUNSETIFF)"; goto fail; }
  int hsz = sizeof(struct fio_vnet_hdr);
  if (ioctl(h->fd, TUNSETVNETHDRSZ, &hsz)) { call = "ioctl(TUNSETVNETHDRSZ)"; goto fail; }
  /* The offloads we accept from the kernel: partial checksums and TCP super-frames, which
   * offload.c completes and segments. 0 makes the kernel finish them before the read. */
  unsigned off = offload ? (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) : 0;
  if (ioctl(h->fd, TUNSETOFFLOAD, off)) { call = "ioctl(TUNSETOFFLOAD)"; goto fail; }
  h->ifindex = (int)if_nametoindex(name);
  if (create && set_if_up(name)) { call = "ioctl(SIOCSIFFLAGS up)"; goto fail; }
  h->scratch = (uint8_t *)malloc(FIO_SCRATCH_BYTES);
  if (!h->scratch) { errno = ENOMEM; call = "malloc(scratch)"; goto fail; }
  return handle_wrap(env, h);
fail: {
    int e = errno;
    handle_release_os(h);
    free(h);
    throw_errno(env, e, "tap", name, call);
    return NULL;
  }
}

static void tap_recv(fio_handle *h, fio_slots *s) {
  if (!drain_pending(h, s)) return;
  while (s->n < s->maxFrames) {
    struct fio_vnet_hdr vh;
    struct iovec iov[3] = {{&vh, sizeof vh}, {h->scratch, FIO_SCRATCH_BYTES}, {NULL, 0}};
    /* Keep-whole mode: read straight into the next slot, any rest into scratch. */
    uint8_t *dst = NULL;
    uint32_t cap = 0;
    if (h->vnetOut && s->slotBytes - s->headroom >= 4096) {
      dst = s->buf + (size_t)s->n * s->slotBytes + s->headroom;
      cap = s->slotBytes - s->headroom;
      if (cap > FIO_SCRATCH_BYTES) cap = FIO_SCRATCH_BYTES;
      iov[1].iov_base = dst;
      iov[1].iov_len = cap;
      iov[2].iov_base = h->scratch;
      iov[2].iov_len = FIO_SCRATCH_BYTES - cap;
    }
    ssize_t n = readv(h->fd, iov, dst ? 3 : 2);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) h->rxErrors++;
      return;
    }
    if ((size_t)n <= sizeof vh) {
      h->rxErrors++;
      continue;
    }
    uint32_t len = (uint32_t)(n - (ssize_t)sizeof vh);
    if (dst) {
      if (len <= cap && deliver_whole_in_place(h, s, len, &vh, 0)) continue;
      if (len > cap) {
        memmove(h->scratch + cap, h->scratch, len - cap);
        memcpy(h->scratch, dst, cap);
      } else {
        memcpy(h->scratch, dst, len);
      }
    }
    deliver(h, s, h->scratch, len, &vh, 0);
    if (h->pendLen) return;
  }
}

/* ------------------------------------------------------------------ UDP and raw GRE */

static napi_value inet_open(napi_env env, napi_callback_info info, int kind) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t ip = 0, port = 0;
  if (argc < 1 || !get_u32(env, argv[0], &ip)) return type_error(env, "open: localIp must be a uint32 (host order)");
  if (kind == K_UDP && (argc < 2 || !get_u32(env, argv[1], &port) || port > 65535))
    return type_error(env, "udpOpen: port must be 0..65535");
  char name[64];
  struct in_addr a = {htonl(ip)};
  char ipText[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, ipText, sizeof ipText);
  if (kind == K_UDP) snprintf(name, sizeof name, "%s:%u", ipText, port);
  else snprintf(name, sizeof name, "%s", ipText);
  fio_handle *h = handle_new(kind, name);
  if (!h) return type_error(env, "out of memory");
  const char *call = "";
  int one = 1;
  if (kind == K_UDP) h->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  else h->fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 47);
  if (h->fd < 0) { call = kind == K_UDP ? "socket(AF_INET, SOCK_DGRAM)" : "socket(AF_INET, SOCK_RAW, 47)"; goto fail; }
  if (setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) { call = "setsockopt(SO_REUSEADDR)"; goto fail; }
  int rcv = FIO_RCVBUF_BYTES;
  if (setsockopt(h->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv))
    (void)setsockopt(h->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  int snd = 4 << 20;
  if (setsockopt(h->fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd))
    (void)setsockopt(h->fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  /* Like the kernel's vxlan/gre devices by default: no DF on the outer header, so an
   * underlay with a smaller MTU fragments instead of failing with EMSGSIZE. */
  int pmtu = IP_PMTUDISC_DONT;
  if (setsockopt(h->fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu)) { call = "setsockopt(IP_MTU_DISCOVER)"; goto fail; }
  /* A UDP GSO datagram (a peer flowd's VXLAN packing) arriving for this socket would be cut
   * into datagrams just to be queued or dropped here: accept it whole (UDP_GRO). Best effort. */
  if (kind == K_UDP) (void)setsockopt(h->fd, IPPROTO_UDP, 104 /* UDP_GRO */, &one, sizeof one);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(ip);
  sa.sin_port = htons((uint16_t)port);
  if (bind(h->fd, (struct sockaddr *)&sa, sizeof sa)) { call = "bind"; goto fail; }
  return handle_wrap(env, h);
fail: {
    int e = errno;
    handle_release_os(h);
    free(h);
    throw_errno(env, e, kind_name(kind), name, call);
    return NULL;
  }
}

static napi_value udp_open(napi_env env, napi_callback_info info) { return inet_open(env, info, K_UDP); }
static napi_value gre_open(napi_env env, napi_callback_info info) { return inet_open(env, info, K_GRE); }

/* recvmmsg straight into the caller's slots; truncated datagrams are dropped and the
 * following ones moved down so frame i stays in slot i. */
static void inet_recv(fio_handle *h, fio_slots *s, uint32_t *srcIp, uint32_t *srcPort) {
  struct mmsghdr *m = h->mm;
  struct iovec *iov = h->iov;
  struct sockaddr_in *from = h->sin;
  uint32_t want = s->maxFrames - s->n;
  if (want == 0) return;
  for (uint32_t i = 0; i < want; i++) {
    iov[i].iov_base = s->buf + (size_t)(s->n + i) * s->slotBytes + s->headroom;
    iov[i].iov_len = s->slotBytes - s->headroom;
    memset(&m[i].msg_hdr, 0, sizeof m[i].msg_hdr);
    m[i].msg_hdr.msg_iov = &iov[i];
    m[i].msg_hdr.msg_iovlen = 1;
    m[i].msg_hdr.msg_name = &from[i];
    m[i].msg_hdr.msg_namelen = sizeof from[i];
  }
  int r = recvmmsg(h->fd, m, want, MSG_DONTWAIT, NULL);
  if (r < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) h->rxErrors++;
    return;
  }
  for (int i = 0; i < r; i++) {
    if (m[i].msg_hdr.msg_flags & MSG_TRUNC) {
      h->rxTooBig++;
      continue;
    }
    uint32_t k = s->n;
    uint8_t *dst = s->buf + (size_t)k * s->slotBytes + s->headroom;
    if ((uint8_t *)iov[i].iov_base != dst) memmove(dst, iov[i].iov_base, m[i].msg_len);
    s->off[k] = (uint32_t)(dst - s->buf);
    s->len[k] = m[i].msg_len;
    if (srcIp) srcIp[k] = ntohl(from[i].sin_addr.s_addr);
    if (srcPort) srcPort[k] = ntohs(from[i].sin_port);
    h->rxBytes += m[i].msg_len;
    h->rxPackets++;
    s->n++;
  }
}

/* ------------------------------------------------------------------ recv / send */

static napi_value js_recv(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) return type_error(env, "recv(handle, buf, slotBytes, headroom, maxFrames, offOut, lenOut[, srcIpOut[, srcPortOut[, vnetOut]]])");
  fio_handle *h = get_handle(env, argv[0], 1);
  if (!h) return NULL;
  size_t bufLen = 0, offN = 0, lenN = 0, ipN = 0, portN = 0;
  uint8_t *buf = (uint8_t *)get_typed(env, argv[1], napi_uint8_array, &bufLen);
  uint32_t slotBytes, headroom, maxFrames;
  uint32_t *offOut = (uint32_t *)get_typed(env, argv[5], napi_uint32_array, &offN);
  uint32_t *lenOut = (uint32_t *)get_typed(env, argv[6], napi_uint32_array, &lenN);
  if (!buf || !offOut || !lenOut || !get_u32(env, argv[2], &slotBytes) || !get_u32(env, argv[3], &headroom) ||
      !get_u32(env, argv[4], &maxFrames))
    return type_error(env, "recv: buf must be a Uint8Array, offOut/lenOut Uint32Arrays, sizes numbers");
  size_t vnN = 0;
  void *ipV, *portV, *vnV;
  if (!opt_typed(env, argc, argv, 7, napi_uint32_array, &ipV, &ipN)) return type_error(env, "recv: srcIpOut must be a Uint32Array");
  if (!opt_typed(env, argc, argv, 8, napi_uint32_array, &portV, &portN)) return type_error(env, "recv: srcPortOut must be a Uint32Array");
  if (!opt_typed(env, argc, argv, 9, napi_uint8_array, &vnV, &vnN)) return type_error(env, "recv: vnetOut must be a Uint8Array");
  uint32_t *srcIp = (uint32_t *)ipV, *srcPort = (uint32_t *)portV;
  uint8_t *vnetOut = (uint8_t *)vnV;
  if (headroom + 64 > slotBytes) return type_error(env, "recv: slotBytes must exceed headroom by at least 64");
  if (vnetOut && maxFrames > vnN / sizeof(struct fio_vnet_hdr)) maxFrames = (uint32_t)(vnN / sizeof(struct fio_vnet_hdr));
  if (maxFrames > FIO_MAX_BATCH) maxFrames = FIO_MAX_BATCH;
  if (maxFrames > offN) maxFrames = (uint32_t)offN;
  if (maxFrames > lenN) maxFrames = (uint32_t)lenN;
  if (srcIp && maxFrames > ipN) maxFrames = (uint32_t)ipN;
  if (srcPort && maxFrames > portN) maxFrames = (uint32_t)portN;
  if ((uint64_t)maxFrames * slotBytes > bufLen) maxFrames = (uint32_t)(bufLen / slotBytes);
  fio_slots s = {buf, slotBytes, headroom, maxFrames, 0, offOut, lenOut, 0};
  s.noUdpCsum = h->markValid ? 1 : 0;
  h->vnetOut = (h->kind == K_PACKET || h->kind == K_TAP) ? vnetOut : NULL;
  switch (h->kind) {
    case K_PACKET: packet_recv(h, &s); break;
    case K_TAP: tap_recv(h, &s); break;
    default: inet_recv(h, &s, srcIp, srcPort); break;
  }
  h->vnetOut = NULL;
  if (vnetOut && h->kind != K_PACKET && h->kind != K_TAP && s.n)
    memset(vnetOut, 0, (size_t)s.n * sizeof(struct fio_vnet_hdr));
  napi_value ret;
  napi_create_uint32(env, s.n, &ret);
  return ret;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return type_error(env, "send(handle, buf, offs, lens, count[, dstIps[, dstPorts[, vnet]]])");
  fio_handle *h = get_handle(env, argv[0], 1);
  if (!h) return NULL;
  size_t bufLen = 0, offN = 0, lenN = 0, ipN = 0, portN = 0;
  uint8_t *buf = (uint8_t *)get_typed(env, argv[1], napi_uint8_array, &bufLen);
  uint32_t *offs = (uint32_t *)get_typed(env, argv[2], napi_uint32_array, &offN);
  uint32_t *lens = (uint32_t *)get_typed(env, argv[3], napi_uint32_array, &lenN);
  uint32_t count;
  if (!buf || !offs || !lens || !get_u32(env, argv[4], &count))
    return type_error(env, "send: buf must be a Uint8Array, offs/lens Uint32Arrays, count a number");
  size_t vnN = 0;
  void *ipV, *portV, *vnV;
  if (!opt_typed(env, argc, argv, 5, napi_uint32_array, &ipV, &ipN)) return type_error(env, "send: dstIps must be a Uint32Array");
  if (!opt_typed(env, argc, argv, 6, napi_uint32_array, &portV, &portN)) return type_error(env, "send: dstPorts must be a Uint32Array");
  if (!opt_typed(env, argc, argv, 7, napi_uint8_array, &vnV, &vnN)) return type_error(env, "send: vnet must be a Uint8Array");
  uint32_t *dstIp = (uint32_t *)ipV, *dstPort = (uint32_t *)portV;
  uint8_t *vnet = (uint8_t *)vnV;
  if (vnet && count > vnN / sizeof(struct fio_vnet_hdr)) return type_error(env, "send: count exceeds vnet's frames");
  if (count > offN || count > lenN || (dstIp && count > ipN) || (dstPort && count > portN))
    return type_error(env, "send: count exceeds an array's length");
  if ((h->kind == K_UDP || h->kind == K_GRE) && !dstIp) return type_error(env, "send: dstIps required for udp/gre");
  if (h->kind == K_UDP && !dstPort) return type_error(env, "send: dstPorts required for udp");

  struct mmsghdr *m = h->mm;
  struct iovec *iov = h->iov;
  struct sockaddr_in *to = h->sin;
  uint32_t sent = 0;
  for (uint32_t base = 0; base < count; base += FIO_MAX_BATCH) {
    uint32_t n = count - base < FIO_MAX_BATCH ? count - base : FIO_MAX_BATCH, k = 0;
    for (uint32_t j = 0; j < n; j++) {
      uint32_t i = base + j, o = offs[i], l = lens[i];
      if (l == 0 || (uint64_t)o + l > bufLen) {
        h->txErrors++; /* bad descriptor: counted, never sent */
        continue;
      }
      const uint8_t *vh = zero_vnet;
      if (vnet && (h->kind == K_PACKET || h->kind == K_TAP)) {
        uint8_t *hv = vnet + (size_t)i * sizeof(struct fio_vnet_hdr);
        int r = tx_vnet_fix(h, hv, buf + o, l);
        if (r < 0) {
          h->txErrors++; /* offload metadata that does not fit the frame: never sent */
          continue;
        }
        if (r > 0) vh = hv;
      }
      if (h->kind == K_TAP) {
        struct iovec v[2] = {{(void *)vh, sizeof zero_vnet}, {buf + o, l}};
        ssize_t r = writev(h->fd, v, 2);
        if (r < 0) h->txErrors++;
        else { sent++; h->txBytes += l; }
        continue;
      }
      memset(&m[k].msg_hdr, 0, sizeof m[k].msg_hdr);
      if (h->kind == K_PACKET) {
        iov[2 * k].iov_base = (void *)vh;
        iov[2 * k].iov_len = sizeof zero_vnet;
        iov[2 * k + 1].iov_base = buf + o;
        iov[2 * k + 1].iov_len = l;
        m[k].msg_hdr.msg_iov = &iov[2 * k];
        m[k].msg_hdr.msg_iovlen = 2;
      } else {
        iov[2 * k].iov_base = buf + o;
        iov[2 * k].iov_len = l;
        m[k].msg_hdr.msg_iov = &iov[2 * k];
        m[k].msg_hdr.msg_iovlen = 1;
        memset(&to[k], 0, sizeof to[k]);
        to[k].sin_family = AF_INET;
        to[k].sin_addr.s_addr = htonl(dstIp[i]);
        to[k].sin_port = h->kind == K_UDP ? htons((uint16_t)dstPort[i]) : 0;
        m[k].msg_hdr.msg_name = &to[k];
        m[k].msg_hdr.msg_namelen = sizeof to[k];
      }
      k++;
    }
    if (k) sent += send_mmsg(h, m, k);
  }
  h->txPackets += sent;
  napi_value ret;
  napi_create_uint32(env, sent, &ret);
  return ret;
}

/* ------------------------------------------------------------------ polling */

static void on_poll(uv_poll_t *p, int status, int events) {
  fio_handle *h = (fio_handle *)p->data;
  if (!h->polling || !h->cb) return;
  if (status < 0) {
    /* libuv stops a poll handle on POLLERR. For an AF_PACKET socket that is a pending error
     * (sk_err): ENETDOWN when its interface went down, reported once; the socket goes on
     * receiving when the interface is up again. So when the interface still exists (same
     * ifindex), SO_ERROR is read (which clears it: POLLERR does not come back by itself, no
     * spin) and polling starts again. A deleted interface, or any other fd, stays stopped. */
    h->rxErrors++;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (h->kind == K_PACKET && h->ifindex > 0 && (int)if_nametoindex(h->name) == h->ifindex &&
        getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
        uv_poll_start(&h->poll, UV_READABLE, on_poll) == 0) {
      /* polling again; the callback below drains what is queued */
    } else {
      uv_poll_stop(&h->poll);
      h->polling = 0;
    }
  }
  napi_env env = h->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recvObj, res;
  if (napi_get_reference_value(env, h->cb, &cb) == napi_ok && cb) {
    napi_get_global(env, &recvObj);
    napi_status st = napi_make_callback(env, h->actx, recvObj, cb, 0, NULL, &res);
    if (st == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static napi_value js_start_poll(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return type_error(env, "startPoll(handle, cb)");
  fio_handle *h = get_handle(env, argv[0], 1);
  if (!h) return NULL;
  napi_valuetype t;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) return type_error(env, "startPoll: cb must be a function");
  if (!h->pollInit) {
    uv_loop_t *loop;
    NAPI_OK(napi_get_uv_event_loop(env, &loop));
    int r = uv_poll_init(loop, &h->poll, h->fd);
    if (r) {
      throw_errno(env, -r, kind_name(h->kind), h->name, "uv_poll_init");
      return NULL;
    }
    h->poll.data = h;
    h->pollInit = 1;
  }
  if (h->cb) napi_delete_reference(env, h->cb);
  h->cb = NULL;
  NAPI_OK(napi_create_reference(env, argv[1], 1, &h->cb));
  if (!h->actx) {
    napi_value name;
    napi_create_string_utf8(env, "flowd_io.poll", NAPI_AUTO_LENGTH, &name);
    NAPI_OK(napi_async_init(env, NULL, name, &h->actx));
  }
  int r = uv_poll_start(&h->poll, UV_READABLE, on_poll);
  if (r) {
    throw_errno(env, -r, kind_name(h->kind), h->name, "uv_poll_start");
    return NULL;
  }
  h->polling = 1;
  return NULL;
}

/*
 * The handle of a call whose only argument is one (stopPoll, stats, info, close); NULL with a
 * JS exception pending when the arguments are wrong. `usage` names the call in the message.
 */
static fio_handle *only_handle_arg(napi_env env, napi_callback_info info, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    type_error(env, usage);
    return NULL;
  }
  return get_handle(env, argv[0], 0);
}

/* PACKET_STATISTICS resets on read, so accumulate. tp_drops = ring (or queue) full. */
static void accumulate_ring_drops(fio_handle *h) {
  if (h->kind != K_PACKET || h->fd < 0) return;
  struct tpacket_stats st;
  socklen_t sl = sizeof st;
  if (getsockopt(h->fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0) h->rxDropped += st.tp_drops;
}

static napi_value js_stop_poll(napi_env env, napi_callback_info info) {
  fio_handle *h = only_handle_arg(env, info, "stopPoll(handle)");
  if (!h) return NULL;
  if (h->polling) {
    uv_poll_stop(&h->poll);
    h->polling = 0;
  }
  if (h->cb) {
    napi_delete_reference(env, h->cb);
    h->cb = NULL;
  }
  return NULL;
}

/* ------------------------------------------------------------------ stats, info, close */

static void set_num(napi_env env, napi_value o, const char *k, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, o, k, n);
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  fio_handle *h = only_handle_arg(env, info, "stats(handle)");
  if (!h) return NULL;
  accumulate_ring_drops(h);
  napi_value o;
  NAPI_OK(napi_create_object(env, &o));
  set_num(env, o, "rxPackets", (double)h->rxPackets);
  set_num(env, o, "rxBytes", (double)h->rxBytes);
  set_num(env, o, "rxDropped", (double)h->rxDropped);
  set_num(env, o, "rxErrors", (double)h->rxErrors);
  set_num(env, o, "rxTruncated", (double)h->rxTruncated);
  set_num(env, o, "rxTooBig", (double)h->rxTooBig);
  set_num(env, o, "rxBadOffload", (double)h->rxBadOffload);
  set_num(env, o, "rxSuperFrames", (double)h->rxSuperFrames);
  set_num(env, o, "rxCsumCompleted", (double)h->rxCsumCompleted);
  set_num(env, o, "rxCopyPath", (double)h->rxCopyPath);
  set_num(env, o, "rxCopyCalls", (double)h->rxCopyCalls);
  set_num(env, o, "rxGsoWhole", (double)h->rxGsoWhole);
  set_num(env, o, "rxCsumWhole", (double)h->rxCsumWhole);
  set_num(env, o, "txGso", (double)h->txGso);
  set_num(env, o, "txCsumPartial", (double)h->txCsumPartial);
  set_num(env, o, "txPackets", (double)h->txPackets);
  set_num(env, o, "txBytes", (double)h->txBytes);
  set_num(env, o, "txErrors", (double)h->txErrors);
  return o;
}

static napi_value js_info(napi_env env, napi_callback_info info) {
  fio_handle *h = only_handle_arg(env, info, "info(handle)");
  if (!h) return NULL;
  napi_value o, v;
  NAPI_OK(napi_create_object(env, &o));
  napi_create_string_utf8(env, kind_name(h->kind), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "kind", v);
  napi_create_string_utf8(env, h->name, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "name", v);
  set_num(env, o, "fd", h->fd);
  set_num(env, o, "ifindex", h->ifindex);
  set_num(env, o, "ringFrames", h->frameNr);
  set_num(env, o, "ringBytes", (double)h->ringBytes);
  double port = 0;
  if ((h->kind == K_UDP || h->kind == K_GRE) && h->fd >= 0) {
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (getsockname(h->fd, (struct sockaddr *)&sa, &sl) == 0) port = ntohs(sa.sin_port);
  }
  set_num(env, o, "localPort", port);
  napi_get_boolean(env, h->polling != 0, &v);
  napi_set_named_property(env, o, "polling", v);
  return o;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  fio_handle *h = only_handle_arg(env, info, "close(handle)");
  if (!h) return NULL;
  accumulate_ring_drops(h);
  handle_release_os(h);
  return NULL;
}

/* Test hook: runs offload.c on literal bytes. Returns frames written, or a negative
 * FIO_EMIT_* code when the frame is dropped. */
static napi_value js_offload_frame(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8) return type_error(env, "offloadFrame(vnetHdr, frame, buf, slotBytes, headroom, maxFrames, offOut, lenOut)");
  size_t vhN = 0, fN = 0, bufLen = 0, offN = 0, lenN = 0;
  uint8_t *vhb = (uint8_t *)get_typed(env, argv[0], napi_uint8_array, &vhN);
  uint8_t *frame = (uint8_t *)get_typed(env, argv[1], napi_uint8_array, &fN);
  uint8_t *buf = (uint8_t *)get_typed(env, argv[2], napi_uint8_array, &bufLen);
  uint32_t slotBytes, headroom, maxFrames;
  uint32_t *offOut = (uint32_t *)get_typed(env, argv[6], napi_uint32_array, &offN);
  uint32_t *lenOut = (uint32_t *)get_typed(env, argv[7], napi_uint32_array, &lenN);
  if (!vhb || vhN != sizeof(struct fio_vnet_hdr) || !frame || !buf || !offOut || !lenOut ||
      !get_u32(env, argv[3], &slotBytes) || !get_u32(env, argv[4], &headroom) || !get_u32(env, argv[5], &maxFrames) ||
      headroom >= slotBytes)
    return type_error(env, "offloadFrame: bad arguments");
  if (maxFrames > offN) maxFrames = (uint32_t)offN;
  if (maxFrames > lenN) maxFrames = (uint32_t)lenN;
  if ((uint64_t)maxFrames * slotBytes > bufLen) maxFrames = (uint32_t)(bufLen / slotBytes);
  struct fio_vnet_hdr vh;
  memcpy(&vh, vhb, sizeof vh);
  fio_slots s = {buf, slotBytes, headroom, maxFrames, 0, offOut, lenOut, 0};
  uint32_t seg = 0, nSegs = 0;
  int r = fio_offload_emit(&s, frame, (uint32_t)fN, &vh, 0, &seg, &nSegs);
  napi_value ret;
  napi_create_int32(env, r < 0 ? r : (int32_t)s.n, &ret);
  return ret;
}

/* tunnelEmit(vnetHdr, frame, tmpl, kind, udpGso, mtu, buf, slotBytes, headroom, first, maxFrames,
 *            offOut, lenOut, vnetOut|undefined, state[, vOff, fOff, fLen]): fio_tunnel_emit into
 * slots [first, maxFrames). With vOff/fOff/fLen the header is vnetHdr[vOff, +10) and the frame
 * frame[fOff, +fLen) (whole batch arrays, no views made per call); else all of each.
 * state[0] is the segment to start at (in) and to resume at (out, 0 when done); with a 2-word
 * state, state[1] = 1 when the super-frame went into UDP GSO frames. udpGso: FIO_EMIT_* bits
 * (with EXTEND, slot first - 1 may grow). Returns the number of slots written from first, or a
 * negative FIO_EMIT_* code (nothing written). */
static napi_value js_tunnel_emit(napi_env env, napi_callback_info info) {
  size_t argc = 18;
  napi_value argv[18];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const char *usage = "tunnelEmit(vnetHdr, frame, tmpl, kind, udpGso, mtu, buf, slotBytes, headroom, first, maxFrames, offOut, lenOut, vnetOut, state[, vOff, fOff, fLen])";
  if (argc < 15) return type_error(env, usage);
  size_t vhN = 0, fN = 0, tN = 0, bufLen = 0, offN = 0, lenN = 0, stN = 0, vnN = 0;
  uint8_t *vhb = (uint8_t *)get_typed(env, argv[0], napi_uint8_array, &vhN);
  uint8_t *frame = (uint8_t *)get_typed(env, argv[1], napi_uint8_array, &fN);
  uint8_t *tmpl = (uint8_t *)get_typed(env, argv[2], napi_uint8_array, &tN);
  uint32_t kind, udpGso, mtu, slotBytes, headroom, first, maxFrames;
  uint8_t *buf = (uint8_t *)get_typed(env, argv[6], napi_uint8_array, &bufLen);
  uint32_t *offOut = (uint32_t *)get_typed(env, argv[11], napi_uint32_array, &offN);
  uint32_t *lenOut = (uint32_t *)get_typed(env, argv[12], napi_uint32_array, &lenN);
  void *vnV;
  uint32_t *state = (uint32_t *)get_typed(env, argv[14], napi_uint32_array, &stN);
  if (!vhb || !frame || !tmpl || !buf || !offOut || !lenOut || !state || stN < 1 ||
      !get_u32(env, argv[3], &kind) || !get_u32(env, argv[4], &udpGso) || udpGso > 3 || !get_u32(env, argv[5], &mtu) ||
      !get_u32(env, argv[7], &slotBytes) || !get_u32(env, argv[8], &headroom) || !get_u32(env, argv[9], &first) ||
      !get_u32(env, argv[10], &maxFrames) || headroom >= slotBytes || (kind != FIO_TUN_VXLAN && kind != FIO_TUN_GRE) ||
      !opt_typed(env, argc, argv, 13, napi_uint8_array, &vnV, &vnN))
    return type_error(env, usage);
  if (argc >= 18) {
    uint32_t vOff, fOff, fLen;
    if (!get_u32(env, argv[15], &vOff) || !get_u32(env, argv[16], &fOff) || !get_u32(env, argv[17], &fLen) ||
        (uint64_t)vOff + sizeof(struct fio_vnet_hdr) > vhN || (uint64_t)fOff + fLen > fN)
      return type_error(env, usage);
    vhb += vOff;
    vhN = sizeof(struct fio_vnet_hdr);
    frame += fOff;
    fN = fLen;
  }
  if (vhN != sizeof(struct fio_vnet_hdr)) return type_error(env, usage);
  uint8_t *vnetOut = (uint8_t *)vnV;
  if (maxFrames > offN) maxFrames = (uint32_t)offN;
  if (maxFrames > lenN) maxFrames = (uint32_t)lenN;
  if ((uint64_t)maxFrames * slotBytes > bufLen) maxFrames = (uint32_t)(bufLen / slotBytes);
  if (vnetOut && maxFrames > vnN / sizeof(struct fio_vnet_hdr)) maxFrames = (uint32_t)(vnN / sizeof(struct fio_vnet_hdr));
  if (first > maxFrames) first = maxFrames;
  struct fio_vnet_hdr vh;
  memcpy(&vh, vhb, sizeof vh);
  fio_slots s = {buf, slotBytes, headroom, maxFrames, first, offOut, lenOut, 0};
  int r = fio_tunnel_emit(&s, frame, (uint32_t)fN, &vh, tmpl, (uint32_t)tN, (int)kind, (int)udpGso, mtu, vnetOut, &state[0],
                          stN >= 2 ? &state[1] : NULL);
  napi_value ret;
  napi_create_int32(env, r < 0 ? r : (int32_t)(s.n - first), &ret);
  return ret;
}

/* coalesce(inBuf, inOff, inLen, n, grp, grpWords, buf, slotBytes, headroom, maxFrames, offOut,
 *          lenOut, vnetOut|undefined, srcIdx, stats[, trusted[, stride]]): fio_coalesce into slots
 * [0, maxFrames). stats[0] = input frames consumed, stats[1] += frames merged; with 4 words,
 * stats[2] = sub-frame of input 0 to start at (in) / of input stats[0] to resume at (out),
 * stats[3] += sub-frames dropped. Returns the slots written. */
static napi_value js_coalesce(napi_env env, napi_callback_info info) {
  size_t argc = 17;
  napi_value argv[17];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const char *usage = "coalesce(inBuf, inOff, inLen, n, grp, grpWords, buf, slotBytes, headroom, maxFrames, offOut, lenOut, vnetOut, srcIdx, stats[, trusted[, stride]])";
  if (argc < 15) return type_error(env, usage);
  size_t inBufLen = 0, inOffN = 0, inLenN = 0, grpN = 0, bufLen = 0, offN = 0, lenN = 0, vnN = 0, srcN = 0, stN = 0;
  uint8_t *inBuf = (uint8_t *)get_typed(env, argv[0], napi_uint8_array, &inBufLen);
  uint32_t *inOff = (uint32_t *)get_typed(env, argv[1], napi_uint32_array, &inOffN);
  uint32_t *inLen = (uint32_t *)get_typed(env, argv[2], napi_uint32_array, &inLenN);
  uint32_t n, grpWords, slotBytes, headroom, maxFrames;
  uint32_t *grp = (uint32_t *)get_typed(env, argv[4], napi_uint32_array, &grpN);
  uint8_t *buf = (uint8_t *)get_typed(env, argv[6], napi_uint8_array, &bufLen);
  uint32_t *offOut = (uint32_t *)get_typed(env, argv[10], napi_uint32_array, &offN);
  uint32_t *lenOut = (uint32_t *)get_typed(env, argv[11], napi_uint32_array, &lenN);
  void *vnV;
  uint32_t *srcIdx = (uint32_t *)get_typed(env, argv[13], napi_uint32_array, &srcN);
  uint32_t *stats = (uint32_t *)get_typed(env, argv[14], napi_uint32_array, &stN);
  if (!inBuf || !inOff || !inLen || !grp || !buf || !offOut || !lenOut || !srcIdx || !stats || stN < 2 ||
      !get_u32(env, argv[3], &n) || !get_u32(env, argv[5], &grpWords) || !get_u32(env, argv[7], &slotBytes) ||
      !get_u32(env, argv[8], &headroom) || !get_u32(env, argv[9], &maxFrames) || headroom >= slotBytes ||
      !opt_typed(env, argc, argv, 12, napi_uint8_array, &vnV, &vnN))
    return type_error(env, usage);
  if (n > inOffN || n > inLenN || (uint64_t)n * grpWords > grpN) return type_error(env, "coalesce: n exceeds an input array");
  void *strV;
  size_t strN = 0;
  if (!opt_typed(env, argc, argv, 16, napi_uint32_array, &strV, &strN) || (strV && strN < n))
    return type_error(env, "coalesce: stride must be a Uint32Array with n entries");
  const uint32_t *stride = (const uint32_t *)strV;
  for (uint32_t i = 0; i < n; i++) {
    if ((uint64_t)inOff[i] + inLen[i] > inBufLen) return type_error(env, "coalesce: frame outside inBuf");
    /* A packed input reads its VXLAN headers from 8 bytes before inOff on. */
    if (stride && stride[i] > 8 && inOff[i] < 8) return type_error(env, "coalesce: packed frame without its VXLAN header");
  }
  void *trV;
  size_t trN = 0;
  if (!opt_typed(env, argc, argv, 15, napi_uint8_array, &trV, &trN) || (trV && trN < n))
    return type_error(env, "coalesce: trusted must be a Uint8Array with n entries");
  uint8_t *vnetOut = (uint8_t *)vnV;
  if (maxFrames > offN) maxFrames = (uint32_t)offN;
  if (maxFrames > lenN) maxFrames = (uint32_t)lenN;
  if (maxFrames > srcN) maxFrames = (uint32_t)srcN;
  if ((uint64_t)maxFrames * slotBytes > bufLen) maxFrames = (uint32_t)(bufLen / slotBytes);
  if (vnetOut && maxFrames > vnN / sizeof(struct fio_vnet_hdr)) maxFrames = (uint32_t)(vnN / sizeof(struct fio_vnet_hdr));
  fio_slots s = {buf, slotBytes, headroom, maxFrames, 0, offOut, lenOut, 0};
  uint32_t *sub = stN >= 4 ? &stats[2] : NULL;
  if (sub && *sub && (n == 0 || *sub >= (stride && stride[0] > 8 ? (inLen[0] + 8 + stride[0] - 1) / stride[0] : 1)))
    return type_error(env, "coalesce: stats[2] (sub-frame to resume at) is past input 0");
  stats[0] = fio_coalesce(&s, inBuf, inOff, inLen, n, grp, grpWords, (const uint8_t *)trV, vnetOut, srcIdx, &stats[1],
                          stride, sub, stN >= 4 ? &stats[3] : NULL);
  napi_value ret;
  napi_create_uint32(env, s.n, &ret);
  return ret;
}

/* ------------------------------------------------------------------ module */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
      {"packetOpen", NULL, packet_open, NULL, NULL, NULL, napi_default_jsproperty, NULL},
      {"tapOpen", NULL, tap_open, NULL, NULL, NULL, napi_default_jsproperty, NULL},
      {"udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_default_jsproperty, NULL},
      {"greOpen", NULL, gre_open, NULL, NULL, NULL, napi_default_jsproperty, NULL},
      {"recv", NULL, js_recv, NULL, NULL, NULL, napi_default_jsproperty, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default_jsproperty, NULL},
      {"startPoll", NULL, js_start_poll, NULL, NULL, NULL, napi_default_jsproperty, NULL},
      {"stopPoll", NULL, js_stop_poll, NULL, NULL, NULL, napi_default_jsproperty, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default_jsproperty, NULL},
      {"info", NULL, js_info, NULL, NULL, NULL, napi_default_jsproperty, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default_jsproperty, NULL},
      {"offloadFrame", NULL, js_offload_frame, NULL, NULL, NULL, napi_default_jsproperty, NULL},
      {"tunnelEmit", NULL, js_tunnel_emit, NULL, NULL, NULL, napi_default_jsproperty, NULL},
      {"coalesce", NULL, js_coalesce, NULL, NULL, NULL, napi_default_jsproperty, NULL},
  };
  if (napi_define_properties(env, exports, sizeof d / sizeof d[0], d) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
