/**
 * TCP connection states for conntrack, and the transition on one segment.
 *
 * Who calls: dpif/conntrack.ts, for every TCP segment of a committed connection (tcpNext) and
 * for the first segment of a new one (tcpValidNew). Pure functions on numbers; no allocation.
 *
 * States (a subset of Linux's nf_conntrack_proto_tcp, named as there):
 *   SYN_SENT     the originator's SYN was seen
 *   SYN_RECV     the responder's SYN+ACK was seen
 *   ESTABLISHED  the handshake completed, or the connection was picked up mid-stream (loose)
 *   FIN_WAIT     one side sent FIN
 *   CLOSING      both sides sent FIN (Linux's CLOSE_WAIT/LAST_ACK, merged)
 *   TIME_WAIT    the last FIN was acknowledged
 *   CLOSED       a RST was seen (short timeout, as Linux's CLOSE)
 * A SYN from the originator in TIME_WAIT or CLOSED reopens the connection (port reuse), as
 * Linux does for TIME_WAIT; conntrack then reports the segment +new again.
 *
 * Window checks (a choice, documented): flowd does not track sequence windows at all, as if
 * Linux's nf_conntrack_tcp_be_liberal=1. Invalid is only a segment with an impossible flag
 * combination (SYN+FIN, SYN+RST, no flags at all). Whether a connection may be picked up
 * mid-stream is the `loose` switch: true is Linux's default nf_conntrack_tcp_loose=1 and OVS
 * userspace's behaviour (any segment but SYN+ACK or RST may start a connection); false is what
 * Neutron sets in its SNAT namespace (nf_conntrack_tcp_loose=0): only a SYN without ACK may.
 */

export const TCP_NONE = 0;
export const TCP_SYN_SENT = 1;
export const TCP_SYN_RECV = 2;
export const TCP_ESTABLISHED = 3;
export const TCP_FIN_WAIT = 4;
export const TCP_CLOSING = 5;
export const TCP_TIME_WAIT = 6;
export const TCP_CLOSED = 7;

export const TCP_STATE_NAMES: readonly string[] = [
  'NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSING', 'TIME_WAIT', 'CLOSED',
];

/** The states in which a connection is over (counting down to expiry): what `conntrack list` shows. */
export const TCP_CLOSED_STATE_NAMES: readonly string[] = [TCP_STATE_NAMES[TCP_TIME_WAIT], TCP_STATE_NAMES[TCP_CLOSED]];

// TCP header flag bits (RFC 793 s3.1).
export const TH_FIN = 0x01;
export const TH_SYN = 0x02;
export const TH_RST = 0x04;
export const TH_ACK = 0x10;

/** Per-connection TCP bits kept beside the state (in conntrack's flags byte, shifted). */
export const TCPF_FIN_ORIG = 1;
export const TCPF_FIN_REPLY = 2;
/** The most recent FIN came from the reply direction. */
export const TCPF_LAST_FIN_REPLY = 4;
export const TCPF_MASK = 7;

/** Result flag of tcpNext: the connection was reopened by a new SYN. */
export const TCP_REOPEN = 0x10000;
/** tcpNext's answer for an invalid segment. */
export const TCP_INVALID = -1;

/** True when the flag combination can never be valid (RFC 793 s3.4 / Linux's tcp_valid_flags). */
export function tcpFlagsInvalid(flags: number): boolean {
  if ((flags & (TH_SYN | TH_FIN | TH_RST | TH_ACK)) === 0) return true; // null scan
  if ((flags & TH_SYN) !== 0 && (flags & (TH_FIN | TH_RST)) !== 0) return true;
  return false;
}

/** True when a segment with `flags` may create a connection (see `loose` above). */
export function tcpValidNew(flags: number, loose: boolean): boolean {
  if (tcpFlagsInvalid(flags)) return false;
  if ((flags & TH_RST) !== 0) return false;
  const syn = (flags & TH_SYN) !== 0, ack = (flags & TH_ACK) !== 0;
  if (syn) return !ack;
  return loose;
}

/** The state a connection starts in for its first segment `flags`. */
export function tcpInitialState(flags: number): number {
  return (flags & TH_SYN) !== 0 ? TCP_SYN_SENT : TCP_ESTABLISHED;
}

/**
 * The next state and TCP bits after a segment with `flags` in direction `dir` (0 original,
 * 1 reply), packed as state | bits << 8 (| TCP_REOPEN), or TCP_INVALID.
 */
export function tcpNext(state: number, bits: number, dir: number, flags: number): number {
  if (tcpFlagsInvalid(flags)) return TCP_INVALID;
  if ((flags & TH_RST) !== 0) return TCP_CLOSED | (bits << 8);
  const syn = (flags & TH_SYN) !== 0, ack = (flags & TH_ACK) !== 0, fin = (flags & TH_FIN) !== 0;
  if (syn) {
    if (!ack && dir === 0 && (state === TCP_TIME_WAIT || state === TCP_CLOSED)) {
      return TCP_SYN_SENT | TCP_REOPEN;
    }
    if (ack && dir === 1 && state === TCP_SYN_SENT) return TCP_SYN_RECV | (bits << 8);
    return state | (bits << 8); // retransmission or simultaneous open: no change
  }
  let st = state;
  let b = bits;
  if (fin) {
    b |= dir === 0 ? TCPF_FIN_ORIG : TCPF_FIN_REPLY;
    b = dir === 0 ? b & ~TCPF_LAST_FIN_REPLY : b | TCPF_LAST_FIN_REPLY;
    if ((b & (TCPF_FIN_ORIG | TCPF_FIN_REPLY)) === (TCPF_FIN_ORIG | TCPF_FIN_REPLY)) st = TCP_CLOSING;
    else if (st < TCP_FIN_WAIT) st = TCP_FIN_WAIT;
    return st | (b << 8);
  }
  if (ack) {
    if (st === TCP_SYN_RECV && dir === 0) st = TCP_ESTABLISHED;
    else if (st === TCP_CLOSING) {
      const lastFinDir = (b & TCPF_LAST_FIN_REPLY) !== 0 ? 1 : 0;
      if (dir !== lastFinDir) st = TCP_TIME_WAIT; // the last FIN is acknowledged
    }
  }
  return st | (b << 8);
}
