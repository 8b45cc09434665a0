/**
 * The tunnel underlay sockets: batched UDP (VXLAN) on 127.0.0.1 with per-datagram source and
 * destination, and the raw IPv4 protocol-47 socket (GRE) that receives whole IPv4 packets and
 * sends with the kernel building the IP header. UDP needs no privilege; GRE needs CAP_NET_RAW.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeIo, udpOpen, greOpen, nativeAvailable, nativeLoadError, NativeHandle } from '../../src/native/io';
import { rootSkipReason } from './netns';

const noAddon = nativeAvailable() ? false : `native addon not built: ${nativeLoadError()}`;
const skipRoot = rootSkipReason(false);
const SLOT = 2048;
const HEAD = 128;
const LOOP = 0x7f000001;

/** Receives until `want` frames or `ms`; returns [payload, srcIp, srcPort] triples. */
function collect(h: NativeHandle, want: number, ms: number, withPort: boolean): Promise<Array<[Uint8Array, number, number]>> {
  const io = loadNativeIo();
  const buf = new Uint8Array(256 * SLOT);
  const off = new Uint32Array(256);
  const len = new Uint32Array(256);
  const ip = new Uint32Array(256);
  const port = new Uint32Array(256);
  const got: Array<[Uint8Array, number, number]> = [];
  return new Promise((resolve) => {
    const done = () => { clearTimeout(t); io.stopPoll(h); resolve(got); };
    const t = setTimeout(done, ms);
    io.startPoll(h, () => {
      const n = withPort ? io.recv(h, buf, SLOT, HEAD, 256, off, len, ip, port) : io.recv(h, buf, SLOT, HEAD, 256, off, len, ip);
      for (let i = 0; i < n; i++) {
        assert.equal(off[i], i * SLOT + HEAD, 'frame i sits in slot i');
        got.push([buf.slice(off[i], off[i] + len[i]), ip[i], withPort ? port[i] : 0]);
      }
      if (got.length >= want) done();
    });
  });
}

test('256 UDP datagrams in one sendmmsg arrive with their bytes, source IP and port', { skip: noAddon }, async () => {
  const io = loadNativeIo();
  const rx = udpOpen('127.0.0.1', 0);
  const tx = udpOpen('127.0.0.1', 0);
  try {
    const rxPort = io.info(rx).localPort;
    const txPort = io.info(tx).localPort;
    assert.ok(rxPort > 0 && txPort > 0);
    const n = 256;
    const sb = new Uint8Array(n * SLOT);
    const so = new Uint32Array(n);
    const sl = new Uint32Array(n);
    const dIp = new Uint32Array(n).fill(LOOP);
    const dPort = new Uint32Array(n).fill(rxPort);
    for (let i = 0; i < n; i++) {
      // A VXLAN header (flags 0x08, VNI i) and a short inner payload.
      const d = Uint8Array.of(0x08, 0, 0, 0, 0, (i >> 8) & 255, i & 255, 0, 0xde, 0xad, i & 255);
      sb.set(d, i * SLOT + HEAD);
      so[i] = i * SLOT + HEAD;
      sl[i] = d.length;
    }
    const p = collect(rx, n, 3000, true);
    assert.equal(io.send(tx, sb, so, sl, n, dIp, dPort), n);
    const got = await p;
    assert.equal(got.length, n);
    for (let i = 0; i < n; i++) {
      assert.deepEqual(got[i][0], Uint8Array.of(0x08, 0, 0, 0, 0, (i >> 8) & 255, i & 255, 0, 0xde, 0xad, i & 255));
      assert.equal(got[i][1], LOOP);
      assert.equal(got[i][2], txPort);
    }
    assert.equal(io.stats(rx).rxPackets, n);
    assert.equal(io.stats(tx).txPackets, n);
  } finally {
    io.close(rx);
    io.close(tx);
  }
});

test('binding UDP to an address this host does not have throws EADDRNOTAVAIL naming ip:port', { skip: noAddon }, () => {
  assert.throws(() => udpOpen('192.0.2.123', 4789), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'EADDRNOTAVAIL');
    assert.match(e.message, /^udp 192\.0\.2\.123:4789: bind failed: EADDRNOTAVAIL/);
    return true;
  });
});

test('udp send without destinations is a TypeError, not a crash', { skip: noAddon }, () => {
  const io = loadNativeIo();
  const h = udpOpen('127.0.0.1', 0);
  try {
    assert.throws(() => io.send(h, new Uint8Array(64), Uint32Array.of(0), Uint32Array.of(10), 1), TypeError);
  } finally {
    io.close(h);
  }
});

test('a GRE packet sent on the raw socket to 127.0.0.1 comes back as a whole IPv4 packet', { skip: skipRoot }, async () => {
  const io = loadNativeIo();
  const g = greOpen('127.0.0.1');
  try {
    // GRE (RFC 2890) with the key bit: flags 0x2000, protocol 0x6558 (TEB), key 0x00001234,
    // then a 14-byte inner Ethernet header.
    const gre = Uint8Array.of(0x20, 0x00, 0x65, 0x58, 0x00, 0x00, 0x12, 0x34,
      2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5);
    const sb = new Uint8Array(SLOT);
    sb.set(gre, HEAD);
    const p = collect(g, 1, 2000, false);
    assert.equal(io.send(g, sb, Uint32Array.of(HEAD), Uint32Array.of(gre.length), 1, Uint32Array.of(LOOP)), 1);
    const got = await p;
    assert.ok(got.length >= 1);
    const pkt = got[0][0];
    assert.equal(pkt[0], 0x45, 'IPv4, IHL 5: the kernel built the header');
    assert.equal((pkt[2] << 8) | pkt[3], 20 + gre.length, 'total length');
    assert.equal(pkt[9], 47, 'protocol GRE');
    assert.deepEqual(pkt.subarray(12, 20), Uint8Array.of(127, 0, 0, 1, 127, 0, 0, 1));
    assert.deepEqual(pkt.subarray(20), gre);
    assert.equal(got[0][1], LOOP);
  } finally {
    io.close(g);
  }
});

test('a datagram bigger than a slot is dropped as rxTooBig and the next one moves down to its slot', { skip: noAddon }, async () => {
  const io = loadNativeIo();
  const rx = udpOpen('127.0.0.1', 0);
  const tx = udpOpen('127.0.0.1', 0);
  try {
    const port = io.info(rx).localPort;
    const sizes = [100, 3000, 101];
    const sb = new Uint8Array(3 * 4096);
    const so = Uint32Array.of(0, 4096, 8192);
    const sl = Uint32Array.from(sizes);
    for (let i = 0; i < 3; i++) sb.fill(0x10 + i, so[i], so[i] + sizes[i]);
    assert.equal(io.send(tx, sb, so, sl, 3, new Uint32Array(3).fill(LOOP), new Uint32Array(3).fill(port)), 3);
    await new Promise((r) => setTimeout(r, 50));
    const buf = new Uint8Array(4 * SLOT);
    const off = new Uint32Array(4);
    const len = new Uint32Array(4);
    const n = io.recv(rx, buf, SLOT, HEAD, 4, off, len);
    assert.equal(n, 2);
    assert.deepEqual([off[0], len[0], off[1], len[1]], [HEAD, 100, SLOT + HEAD, 101]);
    assert.deepEqual(buf.subarray(off[1], off[1] + 101), new Uint8Array(101).fill(0x12));
    assert.equal(io.stats(rx).rxTooBig, 1);
  } finally {
    io.close(rx);
    io.close(tx);
  }
});

test('a worker thread that exits with a polled handle still open does not crash the process', { skip: noAddon }, async () => {
  const { Worker } = await import('node:worker_threads');
  const ioPath = JSON.stringify(require.resolve('../../src/native/io'));
  for (const closeFirst of [false, true]) {
    const w = new Worker(`const io = require(${ioPath}); const n = io.loadNativeIo();
      const h = io.udpOpen('127.0.0.1', 0); n.startPoll(h, () => {});
      setTimeout(() => { if (${closeFirst}) n.close(h); process.exit(0); }, 20);`, { eval: true });
    const code = await new Promise<number>((resolve) => w.on('exit', resolve));
    assert.equal(code, 0);
  }
});
