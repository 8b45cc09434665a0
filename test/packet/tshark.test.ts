/**
 * Frames built by packet/ decoded by Wireshark's tshark with checksum validation on: every
 * field tshark reports (VXLAN VNI, GRE key, TTLs, checksum status) must match what we built,
 * and nothing may be Malformed or an error. The pcap file (classic, microseconds, linktype 1
 * = Ethernet) is written here by hand so the test does not depend on the pcap netdev.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildVxlanFrame } from '../../src/packet/vxlan';
import { buildGreFrame } from '../../src/packet/gre';
import { buildTcp4Frame } from '../../src/packet/tcp';
import { buildUdp4Frame, buildUdp6Frame } from '../../src/packet/udp';
import { buildIcmp4EchoFrame, buildIcmp4ErrorFrame, buildIcmp6EchoFrame } from '../../src/packet/icmp';
import { buildArpFrame } from '../../src/packet/arp';
import { writeIpv6Frag } from '../../src/packet/ipv6';

const TSHARK = '/usr/bin/tshark';
const SKIP = existsSync(TSHARK) ? false : `${TSHARK} is not installed (apt-get install tshark)`;

function pcapFile(frames: Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);  // magic, microsecond timestamps
  gh.writeUInt16LE(2, 4);           // version 2.4
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(0, 8);           // thiszone
  gh.writeUInt32LE(0, 12);          // sigfigs
  gh.writeUInt32LE(65535, 16);      // snaplen
  gh.writeUInt32LE(1, 20);          // LINKTYPE_ETHERNET
  parts.push(gh);
  frames.forEach((f, i) => {
    const rh = Buffer.alloc(16);
    rh.writeUInt32LE(1_700_000_000 + i, 0);
    rh.writeUInt32LE(0, 4);
    rh.writeUInt32LE(f.length, 8);  // incl_len
    rh.writeUInt32LE(f.length, 12); // orig_len
    parts.push(rh, Buffer.from(f));
  });
  return Buffer.concat(parts);
}

const CHECKS = ['-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE'];

test('tshark decodes library-built frames with good checksums and no malformed packets', { skip: SKIP }, () => {
  const inner = buildTcp4Frame({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 61, sport: 1000, dport: 80,
    seq: 7, ack: 9, flags: 0x18, payload: Buffer.from('GET / HTTP/1.0\r\n\r\n') });
  const ext = new Uint8Array(8);
  writeIpv6Frag(ext, 0, 58, 0, false, 77);
  const frames: Uint8Array[] = [
    buildVxlanFrame({ src: '192.168.0.1', dst: '192.168.0.2', ttl: 33, df: true, vni: 0x123456, inner, udpChecksum: true }),
    buildVxlanFrame({ src: '192.168.0.1', dst: '192.168.0.2', ttl: 32, vni: 5001, inner }),
    buildGreFrame({ src: '192.168.0.1', dst: '192.168.0.2', ttl: 34, key: 0xabcdef01, inner }),
    buildGreFrame({ src: '192.168.0.1', dst: '192.168.0.2', ttl: 35, csum: true, key: 42, seq: 3, inner }),
    buildUdp4Frame({ vlanTci: 100, src: '10.0.0.1', dst: '10.0.0.2', ttl: 7, sport: 5353, dport: 5353, payload: new Uint8Array(13) }),
    buildIcmp4EchoFrame({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 64, echoId: 1, echoSeq: 2, payload: Buffer.from('abcdefgh') }),
    buildIcmp4ErrorFrame({ src: '10.0.0.254', dst: '10.0.0.1', ttl: 255, icmpType: 3, icmpCode: 4, mtu: 1450, orig: inner.subarray(14) }),
    buildIcmp4ErrorFrame({ src: '10.0.0.254', dst: '10.0.0.1', ttl: 254, icmpType: 11, icmpCode: 0, orig: inner.subarray(14) }),
    buildUdp6Frame({ src: '2001:db8::1', dst: '2001:db8::2', hopLimit: 9, sport: 1, dport: 2, payload: Buffer.from('x') }),
    buildIcmp6EchoFrame({ src: '2001:db8::1', dst: '2001:db8::2', ext, extProto: 44, echoId: 5, echoSeq: 6 }),
    buildArpFrame({ op: 1, sha: '02:00:00:00:00:01', spa: 0x0a000001, tpa: 0x0a000002, pad: true }),
  ];
  const dir = mkdtempSync(join(tmpdir(), 'flowd-tshark-'));
  try {
    const file = join(dir, 'packets.pcap');
    writeFileSync(file, pcapFile(frames));
    const fields = ['frame.number', 'ip.ttl', 'ip.checksum.status', 'udp.checksum.status',
      'tcp.checksum.status', 'icmp.checksum.status', 'icmpv6.checksum.status', 'vxlan.vni',
      'gre.key', 'gre.checksum.status', 'icmp.mtu', 'ipv6.hlim', 'vlan.id', 'arp.dst.proto_ipv4',
      '_ws.malformed', 'frame.protocols'];
    const out = execFileSync(TSHARK, ['-n', '-r', file, ...CHECKS, '-T', 'fields', '-E', 'occurrence=a',
      '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const rows = out.trim().split('\n').map((l) => {
      const v = l.split('|');
      const r: Record<string, string> = {};
      fields.forEach((f, i) => { r[f] = v[i] ?? ''; });
      return r;
    });
    assert.equal(rows.length, frames.length);
    // Checksum status 1 = "Good" (0 would be "Bad"); VXLAN's UDP checksum 0 = "not present".
    const want: Record<string, string>[] = [
      { 'ip.ttl': '33,61', 'ip.checksum.status': '1,1', 'udp.checksum.status': '1', 'tcp.checksum.status': '1', 'vxlan.vni': String(0x123456) },
      { 'ip.ttl': '32,61', 'ip.checksum.status': '1,1', 'tcp.checksum.status': '1', 'vxlan.vni': '5001' },
      { 'ip.ttl': '34,61', 'ip.checksum.status': '1,1', 'tcp.checksum.status': '1', 'gre.key': '0xabcdef01' },
      { 'ip.ttl': '35,61', 'ip.checksum.status': '1,1', 'tcp.checksum.status': '1', 'gre.key': '0x0000002a' },
      { 'ip.ttl': '7', 'ip.checksum.status': '1', 'udp.checksum.status': '1', 'vlan.id': '100' },
      { 'ip.ttl': '64', 'ip.checksum.status': '1', 'icmp.checksum.status': '1' },
      { 'ip.ttl': '255,61', 'ip.checksum.status': '1,1', 'icmp.checksum.status': '1', 'icmp.mtu': '1450' },
      { 'ip.ttl': '254,61', 'ip.checksum.status': '1,1', 'icmp.checksum.status': '1' },
      { 'ipv6.hlim': '9', 'udp.checksum.status': '1' },
      { 'ipv6.hlim': '64', 'icmpv6.checksum.status': '1' },
      { 'arp.dst.proto_ipv4': '10.0.0.2' },
    ];
    rows.forEach((r, i) => {
      for (const [k, v] of Object.entries(want[i])) assert.equal(r[k], v, `frame ${i + 1} ${k} (${r['frame.protocols']})`);
      assert.equal(r['_ws.malformed'], '', `frame ${i + 1} malformed`);
    });
    assert.match(rows[1]['udp.checksum.status'], /^(3|2)$/); // zero checksum: not present
    assert.match(rows[0]['frame.protocols'], /vxlan:eth:ethertype:ip:tcp/);
    assert.match(rows[2]['frame.protocols'], /gre:eth:ethertype:ip:tcp/);
    // The verbose decode must contain no malformed packet, bad checksum or error expert info.
    const verbose = execFileSync(TSHARK, ['-n', '-r', file, ...CHECKS, '-V'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 16 << 20 });
    assert.doesNotMatch(verbose, /Malformed/);
    assert.doesNotMatch(verbose, /\[incorrect|Bad checksum|Status: Bad/);
    assert.doesNotMatch(verbose, /Expert Info \(Error/);
    assert.doesNotMatch(verbose, /Expert Info \(Warning/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
