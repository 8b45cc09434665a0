/**
 * Checksums against values computed outside flowd (by hand / an independent RFC 1071
 * script) for headers written here as hex literals from the RFC layouts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checksum, csumAddFolded, csumFinish, csumTerm16, csumTerm32, csumPatch16, csumPatch32, csumUpdate16, csumUpdate32, fold16, ipv4ChecksumOk,
  ipv4HeaderChecksum, ipv4SetChecksum, l4ChecksumOk4, l4ChecksumOk6, l4SetChecksum4,
  l4SetChecksum6, sum16, udpCsumPatch16, udpCsumPatch32,
} from '../../src/packet/checksum';

function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

// RFC 791 header: ver/IHL 45, tos 00, total 0x0073, id 0, DF, ttl 64, UDP, csum b861,
// 192.168.0.1 -> 192.168.0.199.
const IP_WIKI = '4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7';
// IPv4 20 bytes 10.0.0.1 -> 10.0.0.2, proto 17, + UDP 1234 -> 5678 len 11 csum 476c "hi!"
const UDP4 = '4500 001f 0000 0000 4011 0000 0a00 0001 0a00 0002' +
  '04d2 162e 000b 476c 686921';
// IPv4 + TCP SYN 40000 -> 80 seq 1 doff 5 win 65535, csum ff4e
const TCP4 = '4500 0028 0000 0000 4006 0000 0a00 0001 0a00 0002' +
  '9c40 0050 0000 0001 0000 0000 5002 ffff ff4e 0000';
// ICMP echo request id 1 seq 1 "abcd", csum 3337
const ICMP = '0800 3337 0001 0001 61626364';
// IPv6 2001:db8::1 -> 2001:db8::2 next 17, + UDP 1234 -> 5678 len 11 csum fff9 "hi!"
const UDP6 = '6000 0000 000b 1140 20010db8000000000000000000000001 20010db8000000000000000000000002' +
  '04d2 162e 000b fff9 686921';
// IPv6 + ICMPv6 echo request id 1 seq 1 "abcd", csum 5f7b
const ICMP6 = '6000 0000 000c 3a40 20010db8000000000000000000000001 20010db8000000000000000000000002' +
  '8000 5f7b 0001 0001 61626364';

test('sum16 pads an odd tail byte with zero (RFC 1071 s4.1)', () => {
  assert.equal(sum16(hex('0102 03'), 0, 3, 0), 0x0102 + 0x0300);
  assert.equal(fold16(0x1fffe), 0xffff);
  assert.equal(fold16(0x2345f), 0x3461);
});

test('fold16 equals repeated end-around carry for sums of every width up to 2^53', () => {
  // Reference: the sum's 16-bit digits added, carried around again until 16 bits remain.
  const ref = (x: number): number => {
    let s = x;
    while (s > 0xffff) { let t = 0; for (let y = s; y > 0; y = Math.floor(y / 0x10000)) t += y % 0x10000; s = t; }
    return s;
  };
  let x = 0x9e3779b9;
  for (let bits = 1; bits <= 53; bits++) {
    for (let k = 0; k < 50; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const v = Math.floor((x / 0x100000000) * 2 ** bits) + (k === 0 ? 2 ** bits - 1 - Math.floor((x / 0x100000000) * 2 ** bits) : 0);
      assert.equal(fold16(v), ref(v), `fold16(${v})`);
    }
  }
  assert.equal(fold16(0xffffffff), 0xffff);
  assert.equal(fold16(0x100000000), 1);
});

test('ipv4 header checksum of the textbook header is 0xb861', () => {
  const b = hex(IP_WIKI);
  assert.equal(ipv4HeaderChecksum(b, 0), 0xb861);
  assert.equal(ipv4ChecksumOk(b, 0), true);
  b[10] = 0; b[11] = 0;
  ipv4SetChecksum(b, 0);
  assert.deepEqual(b, hex(IP_WIKI));
  b[8] = 63;
  assert.equal(ipv4ChecksumOk(b, 0), false);
});

test('ipv4 header checksum covers options (IHL 6) at a nonzero offset', () => {
  // 2 bytes of junk, then IHL=6 header with a 4-byte NOP,NOP,NOP,EOL option.
  const b = hex('ffff 4600 0018 0000 4000 4001 0000 0a00 0001 0a00 0002 0101 0100');
  ipv4SetChecksum(b, 2);
  // By hand: 4600+0018+4000+4001+0a00+0001+0a00+0002+0101+0100 = 0xdc1d, ~0xdc1d = 0x23e2.
  assert.deepEqual(b.subarray(12, 14), hex('23e2'));
  assert.equal(ipv4ChecksumOk(b, 2), true);
});

test('udp over ipv4 checksum includes the pseudo-header', () => {
  const b = hex(UDP4);
  assert.equal(l4ChecksumOk4(b, 0, 20, 11, 17), true);
  b[26] = 0xaa; b[27] = 0xbb;
  l4SetChecksum4(b, 0, 20, 11, 17);
  assert.deepEqual(b, hex(UDP4));
});

test('udp checksum 0 means none and verifies; a computed 0 is sent as 0xffff (RFC 768)', () => {
  const b = hex(UDP4);
  b[26] = 0; b[27] = 0;
  assert.equal(l4ChecksumOk4(b, 0, 20, 11, 17), true);
  // payload 0xd0d7 makes the ones'-complement sum 0xffff, so the checksum would be 0.
  const z = hex('4500 001e 0000 0000 4011 0000 0a00 0001 0a00 0002 04d2 162e 000a 0000 d0d7');
  l4SetChecksum4(z, 0, 20, 10, 17);
  assert.deepEqual(z.subarray(26, 28), hex('ffff'));
  assert.equal(l4ChecksumOk4(z, 0, 20, 10, 17), true);
});

test('tcp over ipv4 checksum', () => {
  const b = hex(TCP4);
  assert.equal(l4ChecksumOk4(b, 0, 20, 20, 6), true);
  b[36] = 0; b[37] = 0;
  l4SetChecksum4(b, 0, 20, 20, 6);
  assert.deepEqual(b, hex(TCP4));
});

test('icmpv4 checksum has no pseudo-header', () => {
  const b = hex(ICMP);
  assert.equal(checksum(b, 0, 12), 0); // sums to 0xffff including its field
  const ip = hex('4500 0020 0000 0000 4001 0000 0a00 0001 0a00 0002' + ICMP);
  assert.equal(l4ChecksumOk4(ip, 0, 20, 12, 1), true);
  ip[22] = 0; ip[23] = 0;
  l4SetChecksum4(ip, 0, 20, 12, 1);
  assert.deepEqual(ip.subarray(22, 24), hex('3337'));
});

test('udp and icmpv6 over ipv6 use the RFC 8200 s8.1 pseudo-header', () => {
  const u = hex(UDP6);
  assert.equal(l4ChecksumOk6(u, 0, 40, 11, 17), true);
  u[46] = 0; u[47] = 0;
  assert.equal(l4ChecksumOk6(u, 0, 40, 11, 17), false); // 0 is not "none" over IPv6
  l4SetChecksum6(u, 0, 40, 11, 17);
  assert.deepEqual(u, hex(UDP6));
  const i = hex(ICMP6);
  assert.equal(l4ChecksumOk6(i, 0, 40, 12, 58), true);
  i[42] = 0; i[43] = 0;
  l4SetChecksum6(i, 0, 40, 12, 58);
  assert.deepEqual(i, hex(ICMP6));
});

test('RFC 1624 s4 example: HC 0xdd2f, m 0x5555 -> 0x3285 gives 0x0000 (eqn 3)', () => {
  assert.equal(csumUpdate16(0xdd2f, 0x5555, 0x3285), 0x0000);
});

test('incremental TTL decrement 64 -> 63 matches the full checksum 0xb961', () => {
  const b = hex(IP_WIKI);
  const old = (b[8] << 8) | b[9];
  b[8] = 63;
  csumPatch16(b, 10, old, (b[8] << 8) | b[9]);
  assert.deepEqual(b.subarray(10, 12), hex('b961'));
});

test('incremental address rewrite patches ipv4 and udp checksums', () => {
  const b = hex(UDP4);
  ipv4SetChecksum(b, 0);
  const oldSrc = 0x0a000001, newSrc = 0xc0a84d09; // 10.0.0.1 -> 192.168.77.9
  b.set(hex('c0a84d09'), 12);
  csumPatch32(b, 10, oldSrc, newSrc);
  udpCsumPatch32(b, 26, oldSrc, newSrc);
  assert.equal(ipv4ChecksumOk(b, 0), true);
  assert.deepEqual(b.subarray(26, 28), hex('43bb'));
  const w = hex(IP_WIKI);
  w.set(hex('0a010203'), 12);
  assert.equal(csumUpdate32(0xb861, 0xc0a80001, 0x0a010203), 0x6d07);
});

test('incremental port rewrite: udp source 1234 -> 40001, tcp destination 80 -> 8080', () => {
  const u = hex(UDP4);
  u[20] = 40001 >>> 8; u[21] = 40001 & 0xff;
  udpCsumPatch16(u, 26, 1234, 40001);
  assert.deepEqual(u.subarray(26, 28), hex('affc'));
  const t = hex(TCP4);
  t[22] = 8080 >>> 8; t[23] = 8080 & 0xff;
  csumPatch16(t, 36, 80, 8080);
  assert.deepEqual(t.subarray(36, 38), hex('e00e'));
});

test('udp incremental update keeps 0 ("none") and turns a computed 0 into 0xffff', () => {
  const b = hex('0000 dd2f');
  udpCsumPatch16(b, 0, 0x1111, 0x2222);
  assert.deepEqual(b.subarray(0, 2), hex('0000'));
  udpCsumPatch16(b, 2, 0x5555, 0x3285);
  assert.deepEqual(b.subarray(2, 4), hex('ffff'));
});

test('csumAddFolded: one carry gives csumFinish for every checksum and folded sum (edges, RFC 1624 s4, a dense sample)', () => {
  const edges = [0, 1, 0x7fff, 0x8000, 0xfffe, 0xffff];
  for (const hc of edges) for (const f of edges) assert.equal(csumAddFolded(hc, f), csumFinish((~hc & 0xffff) + f), `${hc} ${f}`);
  // RFC 1624 s4: HC 0xdd2f, m 0x5555 -> 0x3285 gives 0x0000.
  assert.equal(csumAddFolded(0xdd2f, fold16(csumTerm16(0x5555, 0x3285))), 0x0000);
  // An address change and a port change summed, then folded (as ct-nat.ts NatPlan does).
  for (let k = 0; k < 20000; k++) {
    const hc = (k * 40503) & 0xffff;
    const f = fold16(csumTerm32(k * 2654435761, k * 40503 + 7) + csumTerm16(k & 0xffff, (k * 7) & 0xffff));
    assert.equal(csumAddFolded(hc, f), csumFinish((~hc & 0xffff) + f));
  }
});
