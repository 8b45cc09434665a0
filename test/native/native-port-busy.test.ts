/**
 * Busy polling of NativePort (netdev/native-port.ts) on a veth pair in the root namespace
 * (fn-bz0 <-> fn-bz1): a burst leaves epoll and arrives complete and in order, the port goes back
 * to epoll once idle, and a frame sent after that still wakes it. Root only; skipped otherwise.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeIo, packetOpen } from '../../src/native/io';
import { NativePort } from '../../src/netdev/native-port';
import { PacketBatch } from '../../src/netdev/batch';
import { rootSkipReason, vethPair, cleanup } from './netns';

const skip = rootSkipReason(false) || (process.env.FLOWD_BUSY_POLL === '0' ? 'FLOWD_BUSY_POLL=0' : false);
const A = 'fn-bz0';
const B = 'fn-bz1';
after(() => cleanup([A]));

const SLOT = 2048;
const HEAD = 128;

/** `n` experimental-EtherType frames numbered from `first`, packed for io.send. */
function frames(first: number, n: number) {
  const sb = new Uint8Array(n * SLOT), so = new Uint32Array(n), sl = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * SLOT + HEAD, seq = first + i;
    sb.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5], o);
    sb[o + 14] = seq >>> 24; sb[o + 15] = (seq >>> 16) & 255; sb[o + 16] = (seq >>> 8) & 255; sb[o + 17] = seq & 255;
    so[i] = o;
    sl[i] = 60;
  }
  return { sb, so, sl };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a burst switches the port to busy polling, every frame arrives in order, and it returns to epoll when idle', { skip }, async () => {
  vethPair(A, B);
  const io = loadNativeIo();
  const tx = packetOpen(A);
  const port = NativePort.afpacket(B);
  const batch = new PacketBatch(256);
  const seqs: number[] = [];
  let busySeen = false;
  port.onReadable(() => {
    busySeen ||= port.busyPolling;
    for (;;) {
      const n = port.recv(batch);
      if (n === 0) break;
      for (let i = 0; i < n; i++) {
        const o = batch.off[i];
        if (batch.buf[o + 12] !== 0x88 || batch.buf[o + 13] !== 0xb5) continue;
        seqs.push(((batch.buf[o + 14] << 24) | (batch.buf[o + 15] << 16) | (batch.buf[o + 16] << 8) | batch.buf[o + 17]) >>> 0);
      }
    }
  });
  try {
    const BURST = 3000;
    for (let k = 0; k < BURST; k += 500) {
      const { sb, so, sl } = frames(k, 500);
      assert.equal(io.send(tx, sb, so, sl, 500), 500);
    }
    for (let t = 0; t < 200 && seqs.length < BURST; t++) await sleep(10);
    assert.equal(seqs.length, BURST, 'every frame of the burst arrived');
    assert.deepEqual(seqs, Array.from({ length: BURST }, (_, i) => i), 'in order');
    for (let t = 0; t < 100 && port.busyPolling; t++) await sleep(10);
    assert.equal(port.busyPolling, false, 'back in epoll after the idle time');
    const one = frames(BURST, 1);
    assert.equal(io.send(tx, one.sb, one.so, one.sl, 1), 1);
    for (let t = 0; t < 200 && seqs.length < BURST + 1; t++) await sleep(10);
    assert.deepEqual(seqs.slice(BURST), [BURST], 'a frame after the burst wakes the port through epoll');
    assert.ok(busySeen, 'the burst was read in busy polling');
  } finally {
    port.close();
    io.close(tx);
  }
});
