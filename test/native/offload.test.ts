/**
 * offload.c on literal bytes, through the addon's test hook offloadFrame(): completing a
 * partial L4 checksum and cutting GSO super-frames (TCPv4, TCPv6, UDP_L4) into segments.
 * No privileges needed; skipped only when the addon is not built.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { loadNativeIo, nativeAvailable, nativeLoadError, OffloadResult } from '../../src/native/io';
import { sum16 } from '../helpers/sum16';

const skip = nativeAvailable() ? false : `native addon not built: ${nativeLoadError()}`;

function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

/** virtio_net_hdr, little-endian fields. */
function vnet(flags: number, gsoType: number, gsoSize: number, csumStart: number, csumOffset: number): Uint8Array {
  const b = Buffer.alloc(10);
  b[0] = flags;
  b[1] = gsoType;
  b.writeUInt16LE(0, 2);
  b.writeUInt16LE(gsoSize, 4);
  b.writeUInt16LE(csumStart, 6);
  b.writeUInt16LE(csumOffset, 8);
  return Uint8Array.from(b);
}

/** True when the L4 checksum of an IPv4/IPv6 frame (no VLAN) verifies. */
function l4ChecksumOk(f: Uint8Array): boolean {
  const v4 = f[12] === 0x08 && f[13] === 0x00;
  let pseudo: number;
  let l4: number;
  let proto: number;
  if (v4) {
    const ihl = (f[14] & 15) * 4;
    l4 = 14 + ihl;
    proto = f[23];
    pseudo = sum16(f, 26, 8) + proto + (f.length - l4);
  } else {
    l4 = 54;
    proto = f[20];
    pseudo = sum16(f, 22, 32) + proto + (f.length - l4);
  }
  return sum16(f, l4, f.length - l4, pseudo) === 0xffff;
}

const SLOT = 2048;
const HEAD = 128;

function run(vh: Uint8Array, frame: Uint8Array, maxFrames = 64, slot = SLOT) {
  const io = loadNativeIo();
  const buf = new Uint8Array(maxFrames * slot);
  const off = new Uint32Array(maxFrames);
  const len = new Uint32Array(maxFrames);
  const n = io.offloadFrame(vh, frame, buf, slot, HEAD, maxFrames, off, len);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < n; i++) frames.push(buf.slice(off[i], off[i] + len[i]));
  return { n, frames, off };
}

// Ethernet 02:00:00:00:00:02 <- 02:00:00:00:00:01, IPv4 10.0.0.1 -> 10.0.0.2, UDP 1000 -> 2000,
// payload "hello!" (6 bytes). The UDP checksum field holds the pseudo-header sum only, as a
// CHECKSUM_PARTIAL frame from a veth does: 0x1422 = 0a00+0001+0a00+0002+0011+000e, not complemented.
// The expected results (0x9c24 here, 0x1126 below) were computed independently with Python.
const ETH = '020000000002 020000000001 0800';
const UDP_PARTIAL = hex(`${ETH} 4500 0022 0001 4000 4011 26c8 0a000001 0a000002 03e8 07d0 000e 1422 68656c6c6f21`);

test('checksum-partial UDP frame gets the full checksum 0x9c24 at csum_start + 6', { skip }, () => {
  const { n, frames, off } = run(vnet(1, 0, 0, 34, 6), UDP_PARTIAL);
  assert.equal(n, 1);
  assert.equal(off[0], HEAD);
  assert.deepEqual(frames[0].subarray(0, 40), UDP_PARTIAL.subarray(0, 40));
  assert.deepEqual(frames[0].subarray(40, 42), hex('9c24'));
  assert.deepEqual(frames[0].subarray(42), UDP_PARTIAL.subarray(42));
  assert.ok(l4ChecksumOk(frames[0]));
});

test('a frame without offload flags is copied byte for byte', { skip }, () => {
  const { n, frames } = run(vnet(0, 0, 0, 0, 0), UDP_PARTIAL);
  assert.equal(n, 1);
  assert.deepEqual(frames[0], UDP_PARTIAL);
});

test('csum_start + csum_offset beyond the frame is dropped as BadCsum', { skip }, () => {
  assert.equal(run(vnet(1, 0, 0, 34, 60), UDP_PARTIAL).n, OffloadResult.BadCsum);
});

/** A TCPv4 super-frame: 40 bytes of headers and `payload` bytes 0,1,2,... */
function tcp4Super(payload: number, flags: number): Uint8Array {
  const f = new Uint8Array(54 + payload);
  f.set(hex(`${ETH} 4500 0000 1000 4000 4006 0000 0a000001 0a000002`), 0);
  f.set(hex('c000 1389 00001000 00002000 5000 ffff 0000 0000'), 34); // ports 49152 -> 5001
  f[47] = flags;
  const ipLen = 40 + payload;
  f[16] = ipLen >> 8;
  f[17] = ipLen & 255;
  for (let i = 0; i < payload; i++) f[54 + i] = i & 255;
  return f;
}

test('TCPv4 super-frame of 3000 bytes, gso_size 1448, becomes 1448+1448+104 with fixed headers', { skip }, () => {
  const sup = tcp4Super(3000, 0x18 | 0x01 | 0x80); // PSH ACK FIN CWR
  const { n, frames } = run(vnet(1, 1, 1448, 34, 16), sup);
  assert.equal(n, 3);
  const sizes = [1448, 1448, 104];
  let seq = 0x1000;
  for (let k = 0; k < 3; k++) {
    const f = frames[k];
    assert.equal(f.length, 54 + sizes[k]);
    assert.deepEqual(f.subarray(0, 16), sup.subarray(0, 16));
    assert.equal((f[16] << 8) | f[17], 40 + sizes[k], 'IPv4 total length');
    assert.equal((f[18] << 8) | f[19], 0x1000 + k, 'IPv4 ID increments per segment');
    assert.equal(sum16(f, 14, 20), 0xffff, 'IPv4 header checksum');
    assert.equal(Buffer.from(f).readUInt32BE(38), seq, 'TCP sequence number');
    const expectFlags = k === 0 ? 0x90 : k === 1 ? 0x10 : 0x19; // CWR first only, PSH/FIN last only
    assert.equal(f[47], expectFlags, `TCP flags of segment ${k}`);
    assert.ok(l4ChecksumOk(f), `TCP checksum of segment ${k}`);
    assert.deepEqual(f.subarray(54), sup.subarray(54 + k * 1448, 54 + k * 1448 + sizes[k]));
    seq += sizes[k];
  }
  // Exact bytes of the first segment's IPv4 header: length 0x05d0 (40 + 1448), ID 0x1000, checksum 0x1126.
  assert.deepEqual(frames[0].subarray(14, 34), hex('4500 05d0 1000 4000 4006 1126 0a000001 0a000002'));
});

test('TCPv6 super-frame is cut with payload length per segment and valid checksums', { skip }, () => {
  const payload = 2500;
  const f = new Uint8Array(74 + payload);
  f.set(hex('020000000002 020000000001 86dd'), 0);
  f.set(hex('60000000 0000 0640 fd000000000000000000000000000001 fd000000000000000000000000000002'), 14);
  f.set(hex('c000 1389 00000001 00000001 5010 ffff 0000 0000'), 54);
  for (let i = 0; i < payload; i++) f[74 + i] = (i * 7) & 255;
  const { n, frames } = run(vnet(1, 4, 1428, 54, 16), f);
  assert.equal(n, 2);
  assert.equal(frames[0].length, 74 + 1428);
  assert.equal(frames[1].length, 74 + 1072);
  assert.equal((frames[0][18] << 8) | frames[0][19], 20 + 1428);
  assert.equal((frames[1][18] << 8) | frames[1][19], 20 + 1072);
  assert.equal(Buffer.from(frames[1]).readUInt32BE(58), 1 + 1428);
  assert.ok(l4ChecksumOk(frames[0]) && l4ChecksumOk(frames[1]));
});

test('UDP_L4 (USO) super-frame becomes datagrams with their own UDP length', { skip }, () => {
  const payload = 2000;
  const f = new Uint8Array(42 + payload);
  f.set(hex(`${ETH} 4500 0000 0007 4000 4011 0000 0a000001 0a000002 03e8 07d0 0000 0000`), 0);
  f[16] = (28 + payload) >> 8;
  f[17] = (28 + payload) & 255;
  const { n, frames } = run(vnet(1, 5, 1200, 34, 6), f);
  assert.equal(n, 2);
  assert.equal((frames[0][38] << 8) | frames[0][39], 1208);
  assert.equal((frames[1][38] << 8) | frames[1][39], 808);
  assert.ok(l4ChecksumOk(frames[0]) && l4ChecksumOk(frames[1]));
});

test('UFO (gso_type UDP) is not supported and is dropped as BadGso', { skip }, () => {
  assert.equal(run(vnet(1, 3, 1000, 34, 6), tcp4Super(3000, 0x10)).n, OffloadResult.BadGso);
});

test('TCPV4 gso_type on an IPv6 frame is dropped as BadGso', { skip }, () => {
  const f = tcp4Super(3000, 0x10);
  f[12] = 0x86;
  f[13] = 0xdd;
  assert.equal(run(vnet(1, 1, 1448, 34, 16), f).n, OffloadResult.BadGso);
});

test('a segment bigger than the slot is dropped as TooBig', { skip }, () => {
  assert.equal(run(vnet(1, 1, 1448, 34, 16), tcp4Super(3000, 0x10), 64, 1024).n, OffloadResult.TooBig);
});

test('when slots run out mid super-frame only maxFrames segments are written', { skip }, () => {
  assert.equal(run(vnet(1, 1, 100, 34, 16), tcp4Super(1000, 0x10), 4).n, 4);
});

test('a missing addon fails with E_NATIVE_MISSING and says how to build it', () => {
  const r = spawnSync(process.execPath, ['-e',
    `try { require(${JSON.stringify(require.resolve('../../src/native/io'))}).packetOpen('lo'); }
     catch (e) { console.log(e.code + '|' + e.message); }`],
    { env: { ...process.env, FLOWD_NATIVE_ADDON: '/nonexistent/flowd_io.node' }, encoding: 'utf8' });
  const [code, msg] = r.stdout.trim().split('|');
  assert.equal(code, 'E_NATIVE_MISSING');
  assert.match(msg, /\/nonexistent\/flowd_io\.node/);
  assert.match(msg, /npm run build:native/);
  assert.match(msg, /scripts\/build-native\.sh/);
});
