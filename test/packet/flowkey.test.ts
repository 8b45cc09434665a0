/**
 * extractKey on hand-written frames: every key word and offset, and one case (at least) for
 * every Stop reason, with the key holding exactly the layers before the bad one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as F from './frames';
import { hex } from './frames';
import { extractKey, OFFS_WORDS, OFF_L3, OFF_L4, OFF_L4_PAYLOAD, OFF_VLAN } from '../../src/packet/flowkey';
import {
  KEY_WORDS, W_ARP_SHA_HI, W_ARP_SHA_LO, W_ARP_THA_HI, W_ARP_THA_LO, W_DL_DST_HI, W_DL_DST_LO,
  W_DL_SRC_HI, W_DL_SRC_LO, W_IN_PORT, W_IPV6_DST, W_IPV6_SRC, W_IPV6_LABEL, W_NW_DST, W_NW_MISC, W_NW_SRC,
  W_TCP_FLAGS, W_TP, W_VLAN_DLTYPE,
} from '../../src/packet/flowkey-layout';
import { isDrop, N_STOP, Stop, STOP_NAMES, FIRST_DROP } from '../../src/packet/stop';

type Words = Record<number, number>;

const L2 = { [W_DL_DST_HI]: 0x0200, [W_DL_DST_LO]: 2, [W_DL_SRC_HI]: 0x0200, [W_DL_SRC_LO]: 1 };
const OUTER_L2 = { [W_DL_DST_HI]: 0x0200, [W_DL_DST_LO]: 0x0b, [W_DL_SRC_HI]: 0x0200, [W_DL_SRC_LO]: 0x0a };
const V6 = {
  [W_IPV6_SRC]: 0x20010db8, [W_IPV6_SRC + 3]: 1, [W_IPV6_DST]: 0x20010db8, [W_IPV6_DST + 3]: 2,
};

/** Runs extractKey with the frame in the middle of a larger buffer and a key at base 49. */
function run(frame: Uint8Array, inPort = 5): { stop: Stop; key: number[]; offs: number[] } {
  const buf = new Uint8Array(frame.length + 40).fill(0xee);
  buf.set(frame, 20);
  const keys = new Uint32Array(KEY_WORDS * 3).fill(0xdeadbeef);
  const offs = new Uint16Array(OFFS_WORDS * 3).fill(0xffff);
  const stop = extractKey(buf, 20, frame.length, inPort, keys, KEY_WORDS, offs, OFFS_WORDS);
  assert.equal(keys[KEY_WORDS - 1], 0xdeadbeef, 'wrote before its key');
  assert.equal(keys[2 * KEY_WORDS], 0xdeadbeef, 'wrote after its key');
  assert.equal(offs[OFFS_WORDS - 1], 0xffff);
  assert.equal(offs[2 * OFFS_WORDS], 0xffff);
  return {
    stop,
    key: Array.from(keys.subarray(KEY_WORDS, 2 * KEY_WORDS)),
    offs: Array.from(offs.subarray(OFFS_WORDS, 2 * OFFS_WORDS)),
  };
}

function expected(words: Words, inPort = 5): number[] {
  const k = new Array<number>(KEY_WORDS).fill(0);
  k[W_IN_PORT] = inPort;
  for (const [i, v] of Object.entries(words)) k[Number(i)] = v >>> 0;
  return k;
}

function check(frame: Uint8Array, stop: Stop, words: Words, offs: number[]): void {
  const r = run(frame);
  assert.equal(STOP_NAMES[r.stop], STOP_NAMES[stop]);
  assert.deepEqual(r.key.map((x) => x.toString(16)), expected(words).map((x) => x.toString(16)));
  assert.deepEqual(r.offs, offs);
}

test('udp over ipv4: every field of the key and the offsets', () => {
  check(F.UDP4, Stop.Ok, {
    ...L2, [W_VLAN_DLTYPE]: 0x0800, [W_NW_SRC]: 0x0a000001, [W_NW_DST]: 0x0a000002,
    [W_NW_MISC]: 0x11004000, [W_TP]: 0x04d2162e,
  }, [14, 34, 42, 0]);
});

test('ethernet padding after the IP total length is not L4 data', () => {
  const padded = new Uint8Array(60);
  padded.set(F.UDP4);
  assert.deepEqual(run(padded), run(F.UDP4));
});

test('tcp in 802.1Q: vlan_tci has CFI set, nw_tos keeps DSCP only, tcp_flags', () => {
  check(F.TCP4_VLAN, Stop.Ok, {
    ...L2, [W_VLAN_DLTYPE]: 0x70640800, [W_NW_SRC]: 0x0a000001, [W_NW_DST]: 0x0a000002,
    [W_NW_MISC]: 0x06b83f00, [W_TP]: 0x9c400050, [W_TCP_FLAGS]: 0x002,
  }, [18, 38, 58, 12]);
});

test('VLAN 0 priority 0 is 0x1000, not untagged', () => {
  const f = F.TCP4_VLAN.slice(); f[14] = 0; f[15] = 0;
  assert.equal(run(f).key[W_VLAN_DLTYPE], 0x10000800);
});

test('tcp_flags keeps NS and the reserved bits (12 bits, as OVS)', () => {
  const f = F.TCP4_VLAN.slice(); f[50] = 0x5f; f[51] = 0xff;
  assert.equal(run(f).key[W_TCP_FLAGS], 0xfff);
});

test('icmp echo: type in tp_src, code in tp_dst', () => {
  check(F.ICMP4_ECHO, Stop.Ok, {
    ...L2, [W_VLAN_DLTYPE]: 0x0800, [W_NW_SRC]: 0x0a000001, [W_NW_DST]: 0x0a000002,
    [W_NW_MISC]: 0x01004000, [W_TP]: 0x00080000,
  }, [14, 34, 42, 0]);
});

test('icmp fragmentation needed (type 3 code 4) and time exceeded (11/0)', () => {
  const rev = { [W_DL_DST_HI]: 0x0200, [W_DL_DST_LO]: 1, [W_DL_SRC_HI]: 0x0200, [W_DL_SRC_LO]: 2 };
  check(F.ICMP4_FRAG_NEEDED, Stop.Ok, {
    ...rev, [W_VLAN_DLTYPE]: 0x0800, [W_NW_SRC]: 0x0a000002, [W_NW_DST]: 0x0a000001,
    [W_NW_MISC]: 0x01004000, [W_TP]: 0x00030004,
  }, [14, 34, 42, 0]);
  check(F.ICMP4_TIME_EXCEEDED, Stop.Ok, {
    ...rev, [W_VLAN_DLTYPE]: 0x0800, [W_NW_SRC]: 0x0a000002, [W_NW_DST]: 0x0a000001,
    [W_NW_MISC]: 0x0100ff00, [W_TP]: 0x000b0000,
  }, [14, 34, 42, 0]);
});

test('arp: op in nw_proto, spa/tpa in nw_src/nw_dst, sha and tha', () => {
  check(F.ARP_REQ, Stop.Ok, {
    [W_DL_DST_HI]: 0xffff, [W_DL_DST_LO]: 0xffffffff, [W_DL_SRC_HI]: 0x0200, [W_DL_SRC_LO]: 1,
    [W_VLAN_DLTYPE]: 0x0806, [W_NW_MISC]: 0x01000000, [W_NW_SRC]: 0x0a000001,
    [W_NW_DST]: 0x0a000002, [W_ARP_SHA_HI]: 0x0200, [W_ARP_SHA_LO]: 1, [W_ARP_THA_HI]: 0,
    [W_ARP_THA_LO]: 0,
  }, [14, 0, 0, 0]);
  const big = F.ARP_REQ.slice(); big[20] = 0x01; big[21] = 0x00; // op 256 does not fit nw_proto
  assert.equal(run(big).key[W_NW_MISC], 0);
  const rarp = F.ARP_REQ.slice(); rarp[12] = 0x80; rarp[13] = 0x35;
  assert.equal(run(rarp).key[W_NW_SRC], 0x0a000001);
});

test('vxlan: outer key only (tunnel words left for the caller), payload offset at the VXLAN header', () => {
  check(F.VXLAN, Stop.Ok, {
    ...OUTER_L2, [W_VLAN_DLTYPE]: 0x0800, [W_NW_SRC]: 0xc0a80001, [W_NW_DST]: 0xc0a80002,
    [W_NW_MISC]: 0x11004000, [W_TP]: 0xc00012b5,
  }, [14, 34, 42, 0]);
});

test('gre: nw_proto 47, payload offset after the 8- or 16-byte GRE header', () => {
  const words = {
    ...OUTER_L2, [W_VLAN_DLTYPE]: 0x0800, [W_NW_SRC]: 0xc0a80001, [W_NW_DST]: 0xc0a80002,
    [W_NW_MISC]: 0x2f004000,
  };
  check(F.GRE_KEY, Stop.Ok, words, [14, 34, 42, 0]);
  check(F.GRE_CKS, Stop.Ok, words, [14, 34, 50, 0]);
});

test('udp over ipv6: ipv6 src/dst words, flow label, traffic class DSCP, hop limit', () => {
  check(F.UDP6, Stop.Ok, {
    ...L2, ...V6, [W_VLAN_DLTYPE]: 0x86dd, [W_NW_MISC]: 0x11b84000, [W_TP]: 0x04d2162e, [W_IPV6_LABEL]: 0x12345,
  }, [14, 54, 62, 0]);
});

test('icmpv6 behind hop-by-hop and a first fragment: nw_proto 58, nw_frag ANY', () => {
  check(F.ICMP6_HBH_FRAG, Stop.Ok, {
    ...L2, ...V6, [W_VLAN_DLTYPE]: 0x86dd, [W_NW_MISC]: 0x3a004001, [W_TP]: 0x00800000,
  }, [14, 70, 78, 0]);
});

test('later fragments (ipv4, ipv6): nw_frag ANY|LATER, no L4 fields, forwarded', () => {
  check(F.IPV4_LATER_FRAG, Stop.LaterFragment, {
    ...L2, [W_VLAN_DLTYPE]: 0x0800, [W_NW_SRC]: 0x0a000001, [W_NW_DST]: 0x0a000002,
    [W_NW_MISC]: 0x11004003,
  }, [14, 0, 0, 0]);
  check(F.IPV6_LATER_FRAG, Stop.LaterFragment, {
    ...L2, ...V6, [W_VLAN_DLTYPE]: 0x86dd, [W_NW_MISC]: 0x11004003,
  }, [14, 0, 0, 0]);
  assert.equal(isDrop(Stop.LaterFragment), false);
});

test('first ipv4 fragment: nw_frag ANY, ports present though UDP length covers later fragments', () => {
  check(F.IPV4_FIRST_FRAG, Stop.Ok, {
    ...L2, [W_VLAN_DLTYPE]: 0x0800, [W_NW_SRC]: 0x0a000001, [W_NW_DST]: 0x0a000002,
    [W_NW_MISC]: 0x11004001, [W_TP]: 0x04d2162e,
  }, [14, 34, 42, 0]);
});

test('ipv4 options move L4 by IHL*4', () => {
  assert.deepEqual(run(F.UDP4_OPTS).offs, [14, 38, 46, 0]);
  assert.equal(run(F.UDP4_OPTS).key[W_TP], 0x04d2162e);
});

test('802.3: LLC without SNAP is dl_type 0x05ff; SNAP carries an ethertype and is parsed', () => {
  check(F.LLC_STP, Stop.UnknownEthertype, {
    [W_DL_DST_HI]: 0x0180, [W_DL_DST_LO]: 0xc2000000, [W_DL_SRC_HI]: 0x0200, [W_DL_SRC_LO]: 1,
    [W_VLAN_DLTYPE]: 0x05ff,
  }, [14, 0, 0, 0]);
  check(F.SNAP_IPV4, Stop.Ok, {
    ...L2, [W_VLAN_DLTYPE]: 0x0800, [W_NW_SRC]: 0x0a000001, [W_NW_DST]: 0x0a000002,
    [W_NW_MISC]: 0x11004000, [W_TP]: 0x04d2162e,
  }, [22, 42, 50, 0]);
});

test('in_port is written; offsets are relative to off; keys are zeroed first', () => {
  const r = run(F.UDP4, 0xfffe);
  assert.equal(r.key[W_IN_PORT], 0xfffe);
  assert.equal(r.offs[OFF_L3], 14);
  assert.equal(r.offs[OFF_L4], 34);
  assert.equal(r.offs[OFF_L4_PAYLOAD], 42);
  assert.equal(r.offs[OFF_VLAN], 0);
});

// ---- one case per Stop reason -------------------------------------------------------------

/** Ethernet header (02..02 <- 02..01) + type, as hex. */
const ETH = (type: string): string => `020000000002 020000000001 ${type}`;
/** IPv4 header with explicit fields (checksum left 0: extraction does not verify it). */
function IP4(o: { ver?: number; ihl?: number; total: number; frag?: number; proto: number }): string {
  const b0 = (((o.ver ?? 4) << 4) | (o.ihl ?? 5)).toString(16).padStart(2, '0');
  const t = o.total.toString(16).padStart(4, '0');
  const fr = (o.frag ?? 0).toString(16).padStart(4, '0');
  const p = o.proto.toString(16).padStart(2, '0');
  return `${b0}00 ${t} 0000 ${fr} 40${p} 0000 0a000001 0a000002`;
}
const IP6 = (plen: number, nh: number): string =>
  `6000 0000 ${plen.toString(16).padStart(4, '0')} ${nh.toString(16).padStart(2, '0')} 40 ` +
  '20010db8000000000000000000000001 20010db8000000000000000000000002';
const Z = (n: number): string => '00'.repeat(n);

const L3V4 = { ...L2, [W_VLAN_DLTYPE]: 0x0800, [W_NW_SRC]: 0x0a000001, [W_NW_DST]: 0x0a000002 };
const L3V6 = { ...L2, ...V6, [W_VLAN_DLTYPE]: 0x86dd };

interface Case { name: string; frame: Uint8Array; stop: Stop; words: Words; offs?: number[] }

const CASES: Case[] = [
  { name: 'unknown ethertype (LLDP) keeps L2', frame: hex(ETH('88cc') + Z(10)), stop: Stop.UnknownEthertype,
    words: { ...L2, [W_VLAN_DLTYPE]: 0x88cc }, offs: [14, 0, 0, 0] },
  { name: 'QinQ: outer 802.1ad tag parsed, inner tag is payload',
    frame: hex(ETH('88a8 0064 8100 00c8 0800') + Z(20)), stop: Stop.QinqInner,
    words: { ...L2, [W_VLAN_DLTYPE]: 0x10648100 }, offs: [18, 0, 0, 12] },
  { name: 'ARP for another hardware type', frame: hex(ETH('0806') + '0006 0800 06 04 0001' + Z(20)),
    stop: Stop.ArpNotEthIpv4, words: { ...L2, [W_VLAN_DLTYPE]: 0x0806 } },
  { name: 'zero-length frame', frame: new Uint8Array(0), stop: Stop.ZeroLength, words: {}, offs: [0, 0, 0, 0] },
  { name: '13-byte frame', frame: F.UDP4.slice(0, 13), stop: Stop.TruncatedEth, words: {}, offs: [0, 0, 0, 0] },
  { name: '802.1Q TPID without the rest of the tag', frame: F.TCP4_VLAN.slice(0, 17), stop: Stop.TruncatedVlan,
    words: L2, offs: [0, 0, 0, 0] },
  { name: '802.3 frame shorter than its length field (SNAP header cut)', frame: F.SNAP_IPV4.slice(0, 20),
    stop: Stop.TruncatedLlc, words: L2, offs: [0, 0, 0, 0] },
  { name: 'tagged 802.3 frame shorter than its length field', frame: hex(ETH('8100 0005 0010') + Z(15)),
    stop: Stop.TruncatedLlc, words: { ...L2, [W_VLAN_DLTYPE]: 0x10050000 }, offs: [0, 0, 0, 12] },
  { name: '802.3 frame with padding beyond its length field is fine', frame: hex(ETH('0003') + '424203' + Z(43)),
    stop: Stop.UnknownEthertype, words: { ...L2, [W_VLAN_DLTYPE]: 0x05ff }, offs: [14, 0, 0, 0] },
  { name: 'ARP cut at 27 bytes', frame: F.ARP_REQ.slice(0, 14 + 27), stop: Stop.TruncatedArp,
    words: { [W_DL_DST_HI]: 0xffff, [W_DL_DST_LO]: 0xffffffff, [W_DL_SRC_HI]: 0x0200, [W_DL_SRC_LO]: 1, [W_VLAN_DLTYPE]: 0x0806 } },
  { name: 'ARP cut at 7 bytes', frame: F.ARP_REQ.slice(0, 14 + 7), stop: Stop.TruncatedArp,
    words: { [W_DL_DST_HI]: 0xffff, [W_DL_DST_LO]: 0xffffffff, [W_DL_SRC_HI]: 0x0200, [W_DL_SRC_LO]: 1, [W_VLAN_DLTYPE]: 0x0806 } },
  { name: 'IPv4 header cut at 19 bytes', frame: F.UDP4.slice(0, 33), stop: Stop.TruncatedIpv4,
    words: { ...L2, [W_VLAN_DLTYPE]: 0x0800 }, offs: [14, 0, 0, 0] },
  { name: 'IPv4 IHL 15 but 20 bytes', frame: hex(ETH('0800') + IP4({ ihl: 15, total: 20, proto: 17 })),
    stop: Stop.TruncatedIpv4, words: { ...L2, [W_VLAN_DLTYPE]: 0x0800 } },
  { name: 'IPv4 version 5', frame: hex(ETH('0800') + IP4({ ver: 5, total: 20, proto: 17 })),
    stop: Stop.BadIpv4Version, words: { ...L2, [W_VLAN_DLTYPE]: 0x0800 } },
  { name: 'IPv4 IHL 4', frame: hex(ETH('0800') + IP4({ ihl: 4, total: 20, proto: 17 })),
    stop: Stop.BadIhl, words: { ...L2, [W_VLAN_DLTYPE]: 0x0800 } },
  { name: 'IPv4 total length beyond the frame', frame: hex(ETH('0800') + IP4({ total: 29, proto: 17 }) + Z(8)),
    stop: Stop.BadIpv4TotalLength, words: { ...L2, [W_VLAN_DLTYPE]: 0x0800 } },
  { name: 'IPv4 total length below the header', frame: hex(ETH('0800') + IP4({ total: 19, proto: 17 }) + Z(8)),
    stop: Stop.BadIpv4TotalLength, words: { ...L2, [W_VLAN_DLTYPE]: 0x0800 } },
  { name: 'IPv4 fragment offset 65528 + 8 bytes > 65535',
    frame: hex(ETH('0800') + IP4({ total: 28, frag: 0x1fff, proto: 17 }) + Z(8)),
    stop: Stop.BadFragment, words: { ...L2, [W_VLAN_DLTYPE]: 0x0800 } },
  { name: 'IPv4 fragment offset 65520 + 15 bytes = 65535 is fine',
    frame: hex(ETH('0800') + IP4({ total: 35, frag: 0x1ffe, proto: 17 }) + Z(15)),
    stop: Stop.LaterFragment, words: { ...L3V4, [W_NW_MISC]: 0x11004003 } },
  { name: 'IPv6 header cut at 39 bytes', frame: F.UDP6.slice(0, 14 + 39), stop: Stop.TruncatedIpv6,
    words: { ...L2, [W_VLAN_DLTYPE]: 0x86dd } },
  { name: 'IPv6 hop-by-hop header cut', frame: hex(ETH('86dd') + IP6(8, 0) + '11 01 0000 00000000'),
    stop: Stop.TruncatedIpv6, words: { ...L2, [W_VLAN_DLTYPE]: 0x86dd } },
  { name: 'IPv6 fragment header cut', frame: hex(ETH('86dd') + IP6(6, 44) + '11 00 0000 0000'),
    stop: Stop.TruncatedIpv6, words: { ...L2, [W_VLAN_DLTYPE]: 0x86dd } },
  { name: 'IPv6 version 4 in an IPv6 ethertype', frame: hex(ETH('86dd') + '4' + IP6(0, 59).slice(1)),
    stop: Stop.BadIpv6Version, words: { ...L2, [W_VLAN_DLTYPE]: 0x86dd } },
  { name: 'IPv6 payload length beyond the frame', frame: hex(ETH('86dd') + IP6(9, 17) + Z(8)),
    stop: Stop.BadIpv6PayloadLength, words: { ...L2, [W_VLAN_DLTYPE]: 0x86dd } },
  { name: 'IPv6 hop-by-hop after a destination-options header',
    frame: hex(ETH('86dd') + IP6(16, 60) + '00 00 0104 00000000' + '3b 00 0104 00000000'),
    stop: Stop.BadIpv6ExtHeader, words: { ...L2, [W_VLAN_DLTYPE]: 0x86dd } },
  { name: 'IPv6 fragment offset beyond 65535',
    frame: hex(ETH('86dd') + IP6(24, 44) + '11 00 fff8 00000001' + Z(16)),
    stop: Stop.BadFragment, words: { ...L2, [W_VLAN_DLTYPE]: 0x86dd } },
  { name: 'IPv6 no next header (59) is fine', frame: hex(ETH('86dd') + IP6(0, 59)),
    stop: Stop.Ok, words: { ...L3V6, [W_NW_MISC]: 0x3b004000 }, offs: [14, 54, 0, 0] },
  { name: 'TCP with 19 bytes', frame: hex(ETH('0800') + IP4({ total: 39, proto: 6 }) + Z(19)),
    stop: Stop.TruncatedTcp, words: { ...L3V4, [W_NW_MISC]: 0x06004000 }, offs: [14, 34, 0, 0] },
  { name: 'TCP data offset 6 with 20 bytes',
    frame: hex(ETH('0800') + IP4({ total: 40, proto: 6 }) + Z(12) + '6000' + Z(6)),
    stop: Stop.TruncatedTcp, words: { ...L3V4, [W_NW_MISC]: 0x06004000 } },
  { name: 'TCP data offset 4', frame: hex(ETH('0800') + IP4({ total: 40, proto: 6 }) + Z(12) + '4002' + Z(6)),
    stop: Stop.BadTcpOffset, words: { ...L3V4, [W_NW_MISC]: 0x06004000 } },
  { name: 'UDP with 7 bytes', frame: hex(ETH('0800') + IP4({ total: 27, proto: 17 }) + Z(7)),
    stop: Stop.TruncatedUdp, words: { ...L3V4, [W_NW_MISC]: 0x11004000 } },
  { name: 'UDP length 7', frame: hex(ETH('0800') + IP4({ total: 28, proto: 17 }) + '0001 0002 0007 0000'),
    stop: Stop.BadUdpLength, words: { ...L3V4, [W_NW_MISC]: 0x11004000 } },
  { name: 'UDP length 0 ("zero-length")', frame: hex(ETH('0800') + IP4({ total: 28, proto: 17 }) + '0001 0002 0000 0000'),
    stop: Stop.BadUdpLength, words: { ...L3V4, [W_NW_MISC]: 0x11004000 } },
  { name: 'UDP length beyond the IP payload', frame: hex(ETH('0800') + IP4({ total: 28, proto: 17 }) + '0001 0002 0009 0000'),
    stop: Stop.BadUdpLength, words: { ...L3V4, [W_NW_MISC]: 0x11004000 } },
  { name: 'ICMP with 7 bytes', frame: hex(ETH('0800') + IP4({ total: 27, proto: 1 }) + '0800' + Z(5)),
    stop: Stop.TruncatedIcmp, words: { ...L3V4, [W_NW_MISC]: 0x01004000 } },
  { name: 'ICMPv6 with 7 bytes', frame: hex(ETH('86dd') + IP6(7, 58) + '8000' + Z(5)),
    stop: Stop.TruncatedIcmpv6, words: { ...L3V6, [W_NW_MISC]: 0x3a004000 } },
  { name: 'SCTP with 11 bytes', frame: hex(ETH('0800') + IP4({ total: 31, proto: 132 }) + Z(11)),
    stop: Stop.TruncatedSctp, words: { ...L3V4, [W_NW_MISC]: 0x84004000 } },
  { name: 'SCTP ports', frame: hex(ETH('0800') + IP4({ total: 32, proto: 132 }) + '0b59 0b5a' + Z(8)),
    stop: Stop.Ok, words: { ...L3V4, [W_NW_MISC]: 0x84004000, [W_TP]: 0x0b590b5a }, offs: [14, 34, 46, 0] },
  { name: 'unknown IP protocol (ESP) stops at L3, Ok', frame: hex(ETH('0800') + IP4({ total: 28, proto: 50 }) + Z(8)),
    stop: Stop.Ok, words: { ...L3V4, [W_NW_MISC]: 0x32004000 }, offs: [14, 34, 0, 0] },
  { name: 'VXLAN with 7 bytes', frame: hex(ETH('0800') + IP4({ total: 35, proto: 17 }) + 'c000 12b5 000f 0000' + '08' + Z(6)),
    stop: Stop.TruncatedVxlan, words: { ...L3V4, [W_NW_MISC]: 0x11004000, [W_TP]: 0xc00012b5 }, offs: [14, 34, 42, 0] },
  { name: 'VXLAN without the I flag', frame: hex(ETH('0800') + IP4({ total: 36, proto: 17 }) + 'c000 12b5 0010 0000' + '00' + Z(7)),
    stop: Stop.BadVxlanFlags, words: { ...L3V4, [W_NW_MISC]: 0x11004000, [W_TP]: 0xc00012b5 }, offs: [14, 34, 42, 0] },
  { name: 'UDP to 4789 from 4789 is only checked by destination', frame: hex(ETH('0800') + IP4({ total: 36, proto: 17 }) + '12b5 c000 0010 0000' + Z(8)),
    stop: Stop.Ok, words: { ...L3V4, [W_NW_MISC]: 0x11004000, [W_TP]: 0x12b5c000 } },
  { name: 'GRE with 3 bytes', frame: hex(ETH('0800') + IP4({ total: 23, proto: 47 }) + '0000 65'),
    stop: Stop.TruncatedGre, words: { ...L3V4, [W_NW_MISC]: 0x2f004000 }, offs: [14, 34, 0, 0] },
  { name: 'GRE with K set but no key', frame: hex(ETH('0800') + IP4({ total: 26, proto: 47 }) + '2000 6558 0000'),
    stop: Stop.TruncatedGre, words: { ...L3V4, [W_NW_MISC]: 0x2f004000 } },
  { name: 'GRE with the routing bit', frame: hex(ETH('0800') + IP4({ total: 28, proto: 47 }) + '4000 6558 00000000'),
    stop: Stop.BadGreFlags, words: { ...L3V4, [W_NW_MISC]: 0x2f004000 } },
  { name: 'GRE version 1 (PPTP)', frame: hex(ETH('0800') + IP4({ total: 28, proto: 47 }) + '2001 880b 00000000'),
    stop: Stop.BadGreVersion, words: { ...L3V4, [W_NW_MISC]: 0x2f004000 } },
];

for (const c of CASES) {
  test(`stop reason ${STOP_NAMES[c.stop]}: ${c.name}`, () => {
    const r = run(c.frame);
    assert.equal(STOP_NAMES[r.stop], STOP_NAMES[c.stop]);
    assert.deepEqual(r.key.map((x) => x.toString(16)), expected(c.words).map((x) => x.toString(16)));
    if (c.offs !== undefined) assert.deepEqual(r.offs, c.offs);
  });
}

test('every Stop reason has a case above or a frame test, and names are unique snake_case', () => {
  const seen = new Set<Stop>(CASES.map((c) => c.stop));
  seen.add(Stop.Ok).add(Stop.LaterFragment);
  for (let s = 0; s < N_STOP; s++) assert.ok(seen.has(s), `no test for ${STOP_NAMES[s]}`);
  assert.equal(STOP_NAMES.length, N_STOP);
  assert.equal(new Set(STOP_NAMES).size, N_STOP);
  for (const n of STOP_NAMES) assert.match(n, /^[a-z0-9]+(_[a-z0-9]+)*$/);
  assert.equal(STOP_NAMES[Stop.TruncatedIpv4], 'truncated_ipv4');
});

test('isDrop: forward-stops below FIRST_DROP, malformed at and above it', () => {
  assert.equal(isDrop(Stop.Ok), false);
  assert.equal(isDrop(Stop.UnknownEthertype), false);
  assert.equal(isDrop(Stop.QinqInner), false);
  assert.equal(isDrop(Stop.ArpNotEthIpv4), false);
  assert.equal(isDrop(Stop.ZeroLength), true);
  assert.equal(FIRST_DROP, Stop.ZeroLength);
  for (let s = FIRST_DROP; s < N_STOP; s++) assert.equal(isDrop(s), true, STOP_NAMES[s]);
});
