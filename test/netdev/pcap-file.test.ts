import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parsePcapBytes, PcapWriter, readPcap } from '../../src/netdev/pcap-file';
import { PcapError } from '../../src/errors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-pcap-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

// A 60-byte frame: broadcast ARP request, written by hand.
const ARP = Buffer.from(
  'ffffffffffff' + '020000000001' + '0806' +
  '0001' + '0800' + '06' + '04' + '0001' + '020000000001' + '0a000001' + '000000000000' + '0a000002' +
  '00'.repeat(18), 'hex');

/** Global header (LE) + one record, built by hand. */
function handPcap(magicLe: string, frac: number, data: Buffer, cut = 0): Buffer {
  const g = Buffer.from(magicLe + '0200' + '0400' + '00000000' + '00000000' + 'ffff0000' + '01000000', 'hex');
  const r = Buffer.alloc(16);
  r.writeUInt32LE(1700000000, 0);
  r.writeUInt32LE(frac, 4);
  r.writeUInt32LE(data.length, 8);
  r.writeUInt32LE(data.length, 12);
  const all = Buffer.concat([g, r, data]);
  return all.subarray(0, all.length - cut);
}

test('reads a classic microsecond pcap written by hand', async () => {
  const c = await parsePcapBytes('a.pcap', handPcap('d4c3b2a1', 123456, ARP));
  assert.equal(c.nanosecond, false);
  assert.equal(c.records.length, 1);
  assert.equal(c.records[0].tsSec, 1700000000);
  assert.equal(c.records[0].tsNsec, 123456000);
  assert.deepEqual(Buffer.from(c.records[0].data), ARP);
});

test('reads the nanosecond magic and keeps nanoseconds', async () => {
  const c = await parsePcapBytes('ns.pcap', handPcap('4d3cb2a1', 123456789, ARP));
  assert.equal(c.nanosecond, true);
  assert.equal(c.records[0].tsNsec, 123456789);
  assert.deepEqual(Buffer.from(c.records[0].data), ARP);
});

test('a pcapng file is rejected with a message naming the file', async () => {
  const ng = Buffer.from('0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c000000', 'hex');
  await assert.rejects(parsePcapBytes('cap.pcapng', ng),
    (e: unknown) => e instanceof PcapError && /cap\.pcapng: is a pcapng file/.test(e.message));
});

test('a truncated record is rejected with where it was cut', async () => {
  await assert.rejects(parsePcapBytes('cut.pcap', handPcap('d4c3b2a1', 0, ARP, 10)),
    (e: unknown) => e instanceof PcapError && /cut\.pcap: truncated: record 1 at byte 24/.test(e.message));
});

test('an unknown magic and a short file are rejected', async () => {
  await assert.rejects(parsePcapBytes('x.bin', Buffer.alloc(30, 0x41)), /x\.bin: not a pcap file \(magic number 0x41414141\)/);
  await assert.rejects(parsePcapBytes('short.pcap', Buffer.alloc(10)), /short\.pcap: too short/);
});

test('PcapWriter output is what a hand-built file holds, and reads back', async () => {
  const f = path.join(tmp, 'w.pcap');
  const w = new PcapWriter(f, 65535);
  w.write(ARP, 1700000000, 123456000);
  w.close();
  const bytes = fs.readFileSync(f);
  assert.deepEqual(bytes, handPcap('d4c3b2a1', 123456, ARP));
  const c = await readPcap(f);
  assert.equal(c.records.length, 1);
});

test('tshark and tcpdump open a written file without complaint', { skip: !fs.existsSync('/usr/bin/tshark') && 'tshark not installed' }, async () => {
  const { execFileSync } = await import('node:child_process');
  const f = path.join(tmp, 't.pcap');
  const w = new PcapWriter(f);
  w.write(ARP, 1700000000, 0);
  w.write(ARP, 1700000001, 5000);
  w.close();
  const out = execFileSync('tshark', ['-r', f, '-T', 'fields', '-e', 'arp.src.proto_ipv4', '-e', 'arp.dst.proto_ipv4'], { encoding: 'utf8' });
  assert.equal(out, '10.0.0.1\t10.0.0.2\n10.0.0.1\t10.0.0.2\n');
  if (fs.existsSync('/usr/bin/tcpdump')) {
    const td = execFileSync('tcpdump', ['-nr', f], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(td, /ARP, Request who-has 10\.0\.0\.2 tell 10\.0\.0\.1/);
  }
});
