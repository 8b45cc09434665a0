/**
 * The builders and writers of packet/ produce exactly the hand-written frames of frames.ts,
 * and the readers/validators read them back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from './frames';
import { buildUdp4Frame, buildUdp6Frame, udpSetDstPort, udpSetSrcPort, udpCheck, UDP_HLEN } from '../../src/packet/udp';
import { buildTcp4Frame, tcpCheck, tcpFlags, tcpHeaderLen, tcpSetDstPort, TCP_SYN, tcpSeq, tcpSrcPort, tcpDstPort } from '../../src/packet/tcp';
import {
  buildIcmp4EchoFrame, buildIcmp4ErrorFrame, buildIcmp6EchoFrame, icmpCheck, icmp6Check, icmpCode,
  icmpEchoId, icmpEchoSeq, icmpNextHopMtu, icmpQuoteLen, icmpType, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED,
  ICMP_TIME_EXCEEDED, writeIcmpError,
} from '../../src/packet/icmp';
import { buildArpFrame, arpCheck, arpOp, arpSpa, arpTpa, ARP_OP_REQUEST } from '../../src/packet/arp';
import { buildVxlanFrame, checkVxlan, vxlanVni, writeVxlan, VXLAN_OVERHEAD } from '../../src/packet/vxlan';
import { buildGreFrame, checkGre, greChecksumOk, greHeaderLen, greKey, greProto, greSeq, GRE_KEY_OVERHEAD } from '../../src/packet/gre';
import {
  ipv4Check, ipv4Df, ipv4FragOffsetBytes, ipv4FromString, ipv4HeaderLen, ipv4Id, ipv4Mf, ipv4Proto,
  ipv4SetAddr, ipv4SetTos, ipv4SetTtl, ipv4Src, ipv4ToString, ipv4TotalLen, ipv4Ttl, IPV4_OFF_DST, IPV4_OFF_SRC,
} from '../../src/packet/ipv4';
import { ipv6FlowLabel, ipv6FromString, ipv6ToString, ipv6TrafficClass, ipv6Walk, writeIpv6Frag, WALK_WORDS } from '../../src/packet/ipv6';
import { buildEthFrame, ethCheck, ethType, macFromString, macHi, macLo, macToString } from '../../src/packet/ethernet';
import { ipv4ChecksumOk, l4ChecksumOk4 } from '../../src/packet/checksum';
import { Stop } from '../../src/packet/stop';

const A = '10.0.0.1', B = '10.0.0.2';
const OUTER = { ethSrc: '02:00:00:00:00:0a', ethDst: '02:00:00:00:00:0b', src: '192.168.0.1', dst: '192.168.0.2' };
const ascii = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'ascii'));

test('buildUdp4Frame writes RFC 768/791 bytes with both checksums', () => {
  const f = buildUdp4Frame({ src: A, dst: B, id: 0x1234, df: true, sport: 1234, dport: 5678, payload: ascii('hi!') });
  assert.deepEqual(f, F.UDP4);
  assert.equal(udpCheck(f, 34, 11), Stop.Ok);
  assert.equal(udpCheck(f, 34, 7), Stop.TruncatedUdp);
});

test('buildUdp4Frame with IPv4 options sets IHL 6', () => {
  const f = buildUdp4Frame({ src: A, dst: B, options: F.hex('01010100'), sport: 1234, dport: 5678, payload: ascii('hi!') });
  assert.deepEqual(f, F.UDP4_OPTS);
  assert.equal(ipv4HeaderLen(f, 14), 24);
});

test('buildTcp4Frame with an 802.1Q tag (PCP 3, VID 100)', () => {
  const f = buildTcp4Frame({ vlanTci: (3 << 13) | 100, src: A, dst: B, ttl: 63, tos: 0xb9, sport: 40000, dport: 80, seq: 1, flags: TCP_SYN });
  assert.deepEqual(f, F.TCP4_VLAN);
  assert.equal(tcpFlags(f, 38), TCP_SYN);
  assert.equal(tcpHeaderLen(f, 38), 20);
  assert.equal(tcpSeq(f, 38), 1);
  assert.equal(tcpSrcPort(f, 38), 40000);
  assert.equal(tcpDstPort(f, 38), 80);
  assert.equal(tcpCheck(f, 38, 20), Stop.Ok);
  assert.equal(tcpCheck(f, 38, 19), Stop.TruncatedTcp);
});

test('buildIcmp4EchoFrame: echo request id 0x42 seq 7', () => {
  const f = buildIcmp4EchoFrame({ src: A, dst: B, echoId: 0x42, echoSeq: 7, payload: ascii('ping') });
  assert.deepEqual(f, F.ICMP4_ECHO);
  assert.equal(icmpType(f, 34), 8);
  assert.equal(icmpEchoId(f, 34), 0x42);
  assert.equal(icmpEchoSeq(f, 34), 7);
  assert.equal(icmpCheck(f, 34, 8), Stop.Ok);
  assert.equal(icmpCheck(f, 34, 7), Stop.TruncatedIcmp);
  assert.equal(icmp6Check(f, 34, 7), Stop.TruncatedIcmpv6);
});

test('ICMP fragmentation-needed quotes the IP header + 8 bytes and carries the next-hop MTU (RFC 792, 1191)', () => {
  const orig = F.UDP4.subarray(14);
  assert.equal(icmpQuoteLen(orig, 0, orig.length), 28);
  const f = buildIcmp4ErrorFrame({ ethSrc: '02:00:00:00:00:02', ethDst: '02:00:00:00:00:01', src: B, dst: A,
    icmpType: ICMP_DEST_UNREACH, icmpCode: ICMP_FRAG_NEEDED, mtu: 1450, orig });
  assert.deepEqual(f, F.ICMP4_FRAG_NEEDED);
  assert.equal(icmpCode(f, 34), 4);
  assert.equal(icmpNextHopMtu(f, 34), 1450);
});

test('ICMP time exceeded (ttl 255 on the error)', () => {
  const f = buildIcmp4ErrorFrame({ ethSrc: '02:00:00:00:00:02', ethDst: '02:00:00:00:00:01', src: B, dst: A, ttl: 255,
    icmpType: ICMP_TIME_EXCEEDED, icmpCode: 0, orig: F.UDP4.subarray(14) });
  assert.deepEqual(f, F.ICMP4_TIME_EXCEEDED);
});

test('writeIcmpError quotes from the same buffer and from a short datagram', () => {
  const b = new Uint8Array(100);
  b.set(F.UDP4.subarray(14), 50);
  const n = writeIcmpError(b, 0, 11, 0, 0, b, 50, 31);
  assert.equal(n, 36);
  assert.deepEqual(b.subarray(0, 36), F.ICMP4_TIME_EXCEEDED.subarray(34, 70));
  const short = new Uint8Array(40);
  assert.equal(writeIcmpError(short, 0, 11, 0, 0, F.UDP4, 14, 24), 32); // only 24 bytes exist
});

test('buildArpFrame: broadcast who-has request', () => {
  const f = buildArpFrame({ op: ARP_OP_REQUEST, sha: '02:00:00:00:00:01', spa: ipv4FromString(A), tpa: ipv4FromString(B) });
  assert.deepEqual(f, F.ARP_REQ);
  assert.equal(arpOp(f, 14), 1);
  assert.equal(arpSpa(f, 14), 0x0a000001);
  assert.equal(arpTpa(f, 14), 0x0a000002);
  assert.equal(arpCheck(f, 14, 28), Stop.Ok);
  assert.equal(arpCheck(f, 14, 27), Stop.TruncatedArp);
  assert.equal(arpCheck(f, 14, 7), Stop.TruncatedArp);
  const g = f.slice(); g[15] = 6; // htype 6 (IEEE 802)
  assert.equal(arpCheck(g, 14, 28), Stop.ArpNotEthIpv4);
});

test('buildVxlanFrame: I flag, VNI 0x1234 at bytes 4-6, UDP checksum 0, overhead 50', () => {
  const f = buildVxlanFrame({ ...OUTER, df: true, sport: 49152, vni: 0x1234, inner: F.UDP4 });
  assert.deepEqual(f, F.VXLAN);
  assert.equal(f.length - F.UDP4.length, VXLAN_OVERHEAD);
  assert.equal(VXLAN_OVERHEAD, 50);
  assert.deepEqual(f.subarray(42, 50), Uint8Array.of(8, 0, 0, 0, 0x00, 0x12, 0x34, 0));
  assert.equal(vxlanVni(f, 42), 0x1234);
  assert.equal(checkVxlan(f, 42, 8), Stop.Ok);
  assert.equal(checkVxlan(f, 42, 7), Stop.TruncatedVxlan);
  const g = f.slice(); g[42] = 0x00;
  assert.equal(checkVxlan(g, 42, 8), Stop.BadVxlanFlags);
  g[42] = 0xf7; // every bit but I
  assert.equal(checkVxlan(g, 42, 8), Stop.BadVxlanFlags);
  g[42] = 0xff; // reserved bits are ignored on receipt (RFC 7348 s5)
  assert.equal(checkVxlan(g, 42, 8), Stop.Ok);
  const h = new Uint8Array(8);
  assert.equal(writeVxlan(h, 0, 0xffffff), 8);
  assert.deepEqual(h, F.hex('08000000 ffffff00'));
});

test('buildGreFrame: K bit, protocol 0x6558, key 0x1234, overhead 42', () => {
  const f = buildGreFrame({ ...OUTER, key: 0x1234, inner: F.UDP4 });
  assert.deepEqual(f, F.GRE_KEY);
  assert.equal(f.length - F.UDP4.length, GRE_KEY_OVERHEAD);
  assert.equal(greKey(f, 34), 0x1234);
  assert.equal(greProto(f, 34), 0x6558);
  assert.equal(greHeaderLen(f, 34), 8);
  assert.equal(checkGre(f, 34, 8), Stop.Ok);
  assert.equal(checkGre(f, 34, 7), Stop.TruncatedGre);
  assert.equal(checkGre(f, 34, 3), Stop.TruncatedGre);
});

test('buildGreFrame: C, K and S with checksum over header and payload (RFC 2784 s2.2, RFC 2890)', () => {
  const f = buildGreFrame({ ...OUTER, csum: true, key: 0xabcd, seq: 5, inner: F.UDP4 });
  assert.deepEqual(f, F.GRE_CKS);
  assert.equal(greHeaderLen(f, 34), 16);
  assert.equal(greKey(f, 34), 0xabcd);
  assert.equal(greSeq(f, 34), 5);
  assert.equal(greChecksumOk(f, 34, f.length - 34), true);
  const g = f.slice(); g[g.length - 1] ^= 1;
  assert.equal(greChecksumOk(g, 34, g.length - 34), false);
});

test('checkGre rejects routing/strict-route/recursion bits and versions other than 0', () => {
  for (const [b0, b1, want] of [
    [0x40, 0x00, Stop.BadGreFlags], [0x08, 0x00, Stop.BadGreFlags], [0x04, 0x00, Stop.BadGreFlags],
    [0x00, 0x01, Stop.BadGreVersion], [0x30, 0x07, Stop.BadGreVersion],
    [0x03, 0xf8, Stop.Ok], // reserved0 bits 6-12 are ignored (RFC 2784 s2.5)
  ] as const) {
    const g = F.hex('0000 6558');
    g[0] = b0; g[1] = b1;
    assert.equal(checkGre(g, 0, 4), want, `flags ${b0.toString(16)} ${b1.toString(16)}`);
  }
});

test('buildUdp6Frame: traffic class 0xb8, flow label 0x12345, RFC 8200 pseudo-header checksum', () => {
  const f = buildUdp6Frame({ src: '2001:db8::1', dst: '2001:db8::2', trafficClass: 0xb8, flowLabel: 0x12345,
    sport: 1234, dport: 5678, payload: ascii('hi!') });
  assert.deepEqual(f, F.UDP6);
  assert.equal(ipv6TrafficClass(f, 14), 0xb8);
  assert.equal(ipv6FlowLabel(f, 14), 0x12345);
});

test('buildIcmp6EchoFrame behind hop-by-hop and fragment headers; ipv6Walk finds ICMPv6', () => {
  const ext = new Uint8Array(16);
  ext.set(F.hex('2c 00 01 04 00000000'), 0);
  writeIpv6Frag(ext, 8, 58, 0, true, 0xdeadbeef);
  const f = buildIcmp6EchoFrame({ src: '2001:db8::1', dst: '2001:db8::2', ext, extProto: 0,
    echoId: 0x42, echoSeq: 7, payload: ascii('ping') });
  assert.deepEqual(f, F.ICMP6_HBH_FRAG);
  const w = new Int32Array(WALK_WORDS);
  assert.equal(ipv6Walk(f, 14, f.length - 14, w), Stop.Ok);
  assert.deepEqual(Array.from(w), [58, 70, 1, f.length]);
  assert.equal(ipv6Walk(F.IPV6_LATER_FRAG, 14, F.IPV6_LATER_FRAG.length - 14, w), Stop.LaterFragment);
  assert.deepEqual(Array.from(w.subarray(0, 3)), [17, 62, 3]);
});

test('ipv4 readers and ipv4Check', () => {
  const f = F.UDP4;
  assert.equal(ipv4TotalLen(f, 14), 31);
  assert.equal(ipv4Id(f, 14), 0x1234);
  assert.equal(ipv4Df(f, 14), true);
  assert.equal(ipv4Mf(f, 14), false);
  assert.equal(ipv4Ttl(f, 14), 64);
  assert.equal(ipv4Proto(f, 14), 17);
  assert.equal(ipv4Src(f, 14), 0x0a000001);
  assert.equal(ipv4ToString(ipv4Src(f, 14)), A);
  assert.equal(ipv4Check(f, 14, 31), Stop.Ok);
  assert.equal(ipv4Check(f, 14, 30), Stop.BadIpv4TotalLength);
  assert.equal(ipv4Check(f, 14, 19), Stop.TruncatedIpv4);
  assert.equal(ipv4FragOffsetBytes(F.IPV4_LATER_FRAG, 14), 1480);
  assert.equal(ipv4Mf(F.IPV4_FIRST_FRAG, 14), true);
  assert.throws(() => ipv4FromString('10.0.0.256'), /bad IPv4 address "10.0.0.256"/);
  assert.throws(() => ipv4FromString('1.2.3'), /bad IPv4 address/);
  assert.equal(ipv4FromString('255.255.255.255'), 0xffffffff);
  assert.equal(ipv4ToString(ipv4FromString('192.168.0.1')), '192.168.0.1');
});

test('TTL, TOS, address and port rewrites keep every checksum valid (RFC 1624)', () => {
  const f = F.UDP4.slice();
  ipv4SetTtl(f, 14, 63);
  assert.deepEqual(f.subarray(22, 26), F.hex('3f11 1598')); // by hand: 0x1498 + 0x0100
  ipv4SetTos(f, 14, 0xb8);
  assert.equal(ipv4ChecksumOk(f, 14), true);
  assert.equal(ipv4SetAddr(f, 14, IPV4_OFF_SRC, 0xc0a84d09, 34), 0x0a000001);
  assert.deepEqual(f.subarray(40, 42), F.hex('43bb')); // independent full UDP checksum
  ipv4SetAddr(f, 14, IPV4_OFF_DST, 0x08080808, 34);
  udpSetSrcPort(f, 34, 40001);
  udpSetDstPort(f, 34, 53);
  assert.equal(ipv4ChecksumOk(f, 14), true);
  assert.equal(l4ChecksumOk4(f, 14, 34, 11, 17), true);
  const t = F.TCP4_VLAN.slice();
  tcpSetDstPort(t, 38, 8080);
  assert.deepEqual(t.subarray(54, 56), F.hex('e00e'));
  ipv4SetAddr(t, 18, IPV4_OFF_DST, 0x0a0a0a0a, 38);
  assert.equal(l4ChecksumOk4(t, 18, 38, 20, 6), true);
  const z = buildUdp4Frame({ src: A, dst: B, sport: 1, dport: 2, noChecksum: true });
  ipv4SetAddr(z, 14, IPV4_OFF_SRC, 0x01020304, 34);
  assert.deepEqual(z.subarray(40, 42), F.hex('0000')); // "no checksum" stays 0
  assert.equal(UDP_HLEN, 8);
});

test('ethernet: MAC helpers, ethCheck, tagged and padded frames', () => {
  const m = macFromString('02:00:00:00:00:0a');
  assert.equal(macToString(m), '02:00:00:00:00:0a');
  assert.equal(macHi(F.UDP4, 0), 0x0200);
  assert.equal(macLo(F.UDP4, 0), 2);
  assert.equal(ethType(F.UDP4, 0), 0x0800);
  assert.throws(() => macFromString('02:00:00:00:00'));
  assert.equal(ethCheck(F.UDP4, 0, 0), Stop.ZeroLength);
  assert.equal(ethCheck(F.UDP4, 0, 13), Stop.TruncatedEth);
  assert.equal(ethCheck(F.TCP4_VLAN, 0, 17), Stop.TruncatedVlan);
  assert.equal(ethCheck(F.TCP4_VLAN, 0, 18), Stop.Ok);
  const p = buildEthFrame({ dst: 'ff:ff:ff:ff:ff:ff', src: m, etherType: 0x88cc, payload: F.hex('0102'), pad: true });
  assert.equal(p.length, 60);
  assert.deepEqual(p.subarray(0, 16), F.hex('ffffffffffff 02000000000a 88cc 0102'));
  const q = buildEthFrame({ dst: m, src: m, etherType: 0x0800, vlanTci: 0x0005, vlanTpid: 0x88a8, payload: new Uint8Array(0) });
  assert.deepEqual(q.subarray(12), F.hex('88a8 0005 0800'));
});

test('ipv6 address helpers', () => {
  assert.deepEqual(ipv6FromString('2001:db8::1'), F.hex('20010db8000000000000000000000001'));
  assert.equal(ipv6ToString(F.UDP6, 22), '2001:db8::1');
});
