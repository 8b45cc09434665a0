/**
 * Conntrack states, timeouts (fake clock), limits and the flood behaviour: TCP through
 * SYN_SENT..TIME_WAIT and RST, loose vs strict pickup, UDP/ICMP +new/+est/+rpl, per-class
 * timeouts, zone and global limits (established connections keep working, drops counted),
 * ct_mark on commit, and what cannot be tracked (+inv).
 * Frames here are built by a tiny local builder: conntrack reads no checksum.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Conntrack, CS_ESTABLISHED, CS_INVALID, CS_NEW, CS_REPLY_DIR, CS_TRACKED, CT_DROP,
} from '../../src/dpif/conntrack';

const TRK = CS_TRACKED, NEW = CS_NEW, EST = CS_ESTABLISHED, RPL = CS_REPLY_DIR, INV = CS_INVALID;
const FIN = 1, SYN = 2, RST = 4, ACK = 0x10;

function ipv4Frame(proto: number, src: number, dst: number, l4: number[]): Uint8Array {
  const b = new Uint8Array(34 + l4.length);
  b[12] = 0x08; b[13] = 0x00;
  b[14] = 0x45; b[16] = (20 + l4.length) >> 8; b[17] = (20 + l4.length) & 0xff;
  b[22] = 64; b[23] = proto;
  const dv = new DataView(b.buffer);
  dv.setUint32(26, src); dv.setUint32(30, dst);
  b.set(l4, 34);
  return b;
}
function tcp(src: number, dst: number, sp: number, dp: number, flags: number): Uint8Array {
  return ipv4Frame(6, src, dst, [sp >> 8, sp & 0xff, dp >> 8, dp & 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
}
function udp(src: number, dst: number, sp: number, dp: number): Uint8Array {
  return ipv4Frame(17, src, dst, [sp >> 8, sp & 0xff, dp >> 8, dp & 0xff, 0, 8, 0, 0]);
}
function icmp(src: number, dst: number, type: number, id: number): Uint8Array {
  return ipv4Frame(1, src, dst, [type, 0, 0, 0, id >> 8, id & 0xff, 0, 1]);
}
const A = 0x0a000001, B = 0x0a000002;

function ex(ct: Conntrack, f: Uint8Array, commit: boolean, now: number, zone = 1): number {
  return ct.execute(f, 0, f.length, zone, commit, null, 0, 0, now);
}

test('TCP handshake, data, FIN both ways, last ACK: SYN_SENT -> ... -> TIME_WAIT, ct_state per segment', () => {
  const ct = new Conntrack({ capacity: 16 });
  assert.equal(ex(ct, tcp(A, B, 1000, 80, SYN), false, 0), TRK | NEW); // not committed: nothing stored
  assert.equal(ct.nLive, 0);
  assert.equal(ex(ct, tcp(A, B, 1000, 80, SYN), true, 0), TRK | NEW);
  const e = ct.lastConn;
  assert.equal(ct.tcpStateName(e), 'SYN_SENT');
  assert.equal(ex(ct, tcp(A, B, 1000, 80, SYN), false, 1), TRK | NEW); // retransmission
  assert.equal(ex(ct, tcp(B, A, 80, 1000, SYN | ACK), false, 2), TRK | EST | RPL);
  assert.equal(ct.tcpStateName(e), 'SYN_RECV');
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), false, 3), TRK | EST);
  assert.equal(ct.tcpStateName(e), 'ESTABLISHED');
  assert.equal(ex(ct, tcp(A, B, 1000, 80, FIN | ACK), false, 4), TRK | EST);
  assert.equal(ct.tcpStateName(e), 'FIN_WAIT');
  assert.equal(ex(ct, tcp(B, A, 80, 1000, FIN | ACK), false, 5), TRK | EST | RPL);
  assert.equal(ct.tcpStateName(e), 'CLOSING');
  assert.equal(ex(ct, tcp(A, B, 1000, 80, ACK), false, 6), TRK | EST);
  assert.equal(ct.tcpStateName(e), 'TIME_WAIT');
  // A new SYN reuses the port: the connection reopens and is +new again.
  assert.equal(ex(ct, tcp(A, B, 1000, 80, SYN), false, 7), TRK | NEW);
  assert.equal(ct.tcpStateName(e), 'SYN_SENT');
  assert.equal(ct.nLive, 1);
});

test('TCP RST closes; the CLOSED timeout (10 s) then expires the connection', () => {
  const ct = new Conntrack({ capacity: 16 });
  ex(ct, tcp(A, B, 1000, 80, SYN), true, 0);
  ex(ct, tcp(B, A, 80, 1000, SYN | ACK), false, 0);
  ex(ct, tcp(A, B, 1000, 80, ACK), false, 0);
  ex(ct, tcp(B, A, 80, 1000, RST), false, 1000);
  assert.equal(ct.tcpStateName(ct.lastConn), 'CLOSED');
  assert.equal(ct.sweep(10999, 100), 0);
  assert.equal(ct.sweep(11000, 100), 1);
  assert.equal(ct.nLive, 0);
});

test('a sweep that found nothing due still expires on time a connection a later packet moved to a shorter timeout', () => {
  const ct = new Conntrack({ capacity: 16 });
  ex(ct, tcp(A, B, 1000, 80, SYN), true, 0);
  ex(ct, tcp(B, A, 80, 1000, SYN | ACK), false, 0);
  ex(ct, tcp(A, B, 1000, 80, ACK), false, 0); // ESTABLISHED: expires in 5 days
  assert.equal(ct.sweep(500, 100), 0);
  ex(ct, tcp(B, A, 80, 1000, RST), false, 1000); // CLOSED: 10 s
  assert.equal(ct.sweep(10999, 100), 0);
  assert.equal(ct.sweep(11000, 100), 1);
  assert.equal(ct.nLive, 0);
  assert.equal(ct.stats().expired, 1);
});

test('a sweep that runs out of budget leaves the rest for the next sweep at the same time', () => {
  const ct = new Conntrack({ capacity: 16 });
  for (let p = 1; p <= 3; p++) ex(ct, udp(A, B, p, 53), true, 0);
  ex(ct, icmp(A, B, 8, 7), true, 0);
  assert.equal(ct.sweep(29999, 2), 0);
  assert.equal(ct.sweep(30000, 2), 2);
  assert.equal(ct.sweep(30000, 2), 2);
  assert.equal(ct.sweep(30000, 2), 0);
  assert.equal(ct.nLive, 0);
});

test('TCP: impossible flags are +inv; SYN+ACK or RST never create; strict mode needs a SYN', () => {
  const loose = new Conntrack({ capacity: 16 });
  assert.equal(ex(loose, tcp(A, B, 1, 2, SYN | FIN), true, 0), TRK | INV);
  assert.equal(ex(loose, tcp(A, B, 1, 2, 0), true, 0), TRK | INV);
  assert.equal(ex(loose, tcp(A, B, 1, 2, SYN | ACK), true, 0), TRK | INV);
  assert.equal(ex(loose, tcp(A, B, 1, 2, RST), true, 0), TRK | INV);
  assert.equal(ex(loose, tcp(A, B, 1, 2, ACK), true, 0), TRK | NEW); // mid-stream pickup
  assert.equal(loose.tcpStateName(loose.lastConn), 'ESTABLISHED');
  assert.equal(loose.stats().invalid_tcp_flags, 4);
  const strict = new Conntrack({ capacity: 16, tcpLoose: false });
  assert.equal(ex(strict, tcp(A, B, 1, 2, ACK), true, 0), TRK | INV);
  assert.equal(strict.nLive, 0);
  assert.equal(ex(strict, tcp(A, B, 1, 2, SYN), true, 0), TRK | NEW);
});

test('UDP: +new until a reply, then +est (+rpl for replies); 30 s unreplied, 120 s replied', () => {
  const ct = new Conntrack({ capacity: 16 });
  assert.equal(ex(ct, udp(A, B, 5000, 53), true, 0), TRK | NEW);
  assert.equal(ex(ct, udp(A, B, 5000, 53), false, 1000), TRK | NEW);
  assert.equal(ct.sweep(30999, 10), 0);
  assert.equal(ex(ct, udp(A, B, 5000, 53), false, 30999), TRK | NEW); // refreshed to 60999
  assert.equal(ex(ct, udp(B, A, 53, 5000), false, 31000), TRK | EST | RPL);
  assert.equal(ex(ct, udp(A, B, 5000, 53), false, 31001), TRK | EST);
  assert.equal(ct.sweep(151000, 10), 0);
  assert.equal(ct.sweep(151001, 10), 1);
  // Zone is part of the key: the same tuple in zone 2 is another connection.
  assert.equal(ex(ct, udp(A, B, 5000, 53), true, 0, 1), TRK | NEW);
  assert.equal(ex(ct, udp(A, B, 5000, 53), true, 0, 2), TRK | NEW);
  assert.equal(ct.nLive, 2);
});

test('a connection found expired by a lookup is gone even before the sweep reaches it', () => {
  const ct = new Conntrack({ capacity: 16 });
  ex(ct, udp(A, B, 5000, 53), true, 0);
  assert.equal(ex(ct, udp(B, A, 53, 5000), false, 30000), TRK | NEW); // a new, uncommitted flow
  assert.equal(ct.nLive, 0);
  assert.equal(ct.stats().expired, 1);
});

test('ICMP echo: request +new, reply +est+rpl, a reply alone is +inv; 30 s timeout', () => {
  const ct = new Conntrack({ capacity: 16 });
  assert.equal(ex(ct, icmp(B, A, 0, 9), true, 0), TRK | INV);
  assert.equal(ex(ct, icmp(A, B, 8, 9), true, 0), TRK | NEW);
  assert.equal(ex(ct, icmp(B, A, 0, 9), false, 10), TRK | EST | RPL);
  assert.equal(ex(ct, icmp(A, B, 8, 10), false, 10), TRK | NEW); // another id: another connection
  assert.equal(ct.sweep(30009, 10), 0);
  assert.equal(ct.sweep(30010, 10), 1);
});

test('timeouts can be configured per class', () => {
  const ct = new Conntrack({ capacity: 16, timeoutsS: { udp_first: 5 } });
  ex(ct, udp(A, B, 1, 2), true, 0);
  assert.equal(ct.sweep(4999, 10), 0);
  assert.equal(ct.sweep(5000, 10), 1);
});

test('ct_mark is set on commit under its mask and reported for both directions', () => {
  const ct = new Conntrack({ capacity: 16 });
  const f = udp(A, B, 1, 2);
  ct.execute(f, 0, f.length, 1, true, null, 0x12, 0xff, 0);
  assert.equal(ct.mark, 0x12);
  ct.execute(f, 0, f.length, 1, true, null, 0x300, 0xf00, 0);
  assert.equal(ct.mark, 0x312);
  const r = udp(B, A, 2, 1);
  ct.execute(r, 0, r.length, 1, false, null, 0xffff, 0xffff, 0); // no commit: mark unchanged
  assert.equal(ct.mark, 0x312);
});

test('non-IPv4 and fragments are +trk+inv and counted by reason', () => {
  const ct = new Conntrack({ capacity: 16 });
  const arp = new Uint8Array(42); arp[12] = 0x08; arp[13] = 0x06;
  assert.equal(ex(ct, arp, true, 0), TRK | INV);
  const frag = udp(A, B, 1, 2); frag[20] = 0x20; // MF
  assert.equal(ex(ct, frag, true, 0), TRK | INV);
  const s = ct.stats();
  assert.equal(s.invalid_not_ipv4, 1);
  assert.equal(s.invalid_fragment, 1);
});

test('zone limit: new connections beyond it are dropped and counted; existing ones keep working', () => {
  const ct = new Conntrack({ capacity: 1000 });
  ct.setZoneLimit(1, 10);
  for (let i = 0; i < 10; i++) assert.equal(ex(ct, udp(A, B, 1000 + i, 53), true, 0), TRK | NEW);
  for (let i = 10; i < 500; i++) assert.equal(ex(ct, udp(A, B, 1000 + i, 53), true, 0), CT_DROP);
  assert.equal(ct.stats().drop_zone_limit, 490);
  for (let i = 0; i < 10; i++) assert.equal(ex(ct, udp(B, A, 53, 1000 + i), false, 1), TRK | EST | RPL);
  // Another zone is not limited by zone 1's limit.
  assert.equal(ex(ct, udp(A, B, 1, 53), true, 0, 2), TRK | NEW);
  assert.deepEqual(ct.limits(), ['global limit=1000,count=11', 'default limit=0', 'zone=1,limit=10,count=10', 'zone=2,limit=0,count=1']);
});

test('global limit under a flood of 100x more new flows: established keep working, drops counted', () => {
  const cap = 1000;
  const ct = new Conntrack({ capacity: cap });
  for (let i = 0; i < 100; i++) {
    ex(ct, tcp(A, B, 10000 + i, 80, SYN), true, 0);
    ex(ct, tcp(B, A, 80, 10000 + i, SYN | ACK), false, 0);
    ex(ct, tcp(A, B, 10000 + i, 80, ACK), false, 0);
  }
  let drops = 0;
  for (let i = 0; i < 100 * cap; i++) {
    const f = udp(0x0b000000 + i, B, 1, 53);
    if (ex(ct, f, true, 1) === CT_DROP) drops++;
  }
  assert.equal(ct.nLive, cap);
  assert.equal(drops, 100 * cap - (cap - 100));
  assert.equal(ct.stats().drop_table_full, drops);
  for (let i = 0; i < 100; i++) {
    assert.equal(ex(ct, tcp(B, A, 80, 10000 + i, ACK), false, 2), TRK | EST | RPL);
  }
  // Once the flood's UDP entries expire (30 s), new connections are accepted again.
  assert.notEqual(ex(ct, udp(A, B, 7, 53), true, 31002), CT_DROP);
});

test('flush by zone and all', () => {
  const ct = new Conntrack({ capacity: 16 });
  ex(ct, udp(A, B, 1, 2), true, 0, 1);
  ex(ct, udp(A, B, 1, 2), true, 0, 2);
  ex(ct, udp(A, B, 3, 2), true, 0, 2);
  assert.equal(ct.flush(2), 2);
  assert.equal(ct.nLive, 1);
  assert.equal(ct.flush(), 1);
  assert.equal(ct.nLive, 0);
  assert.equal(ex(ct, udp(B, A, 2, 1), false, 0, 1), TRK | NEW);
});
