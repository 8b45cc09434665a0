/**
 * netdev/underlay.ts stats() on a real interface (root): frames the underlay's AF_PACKET socket
 * loses are counted on the underlay by reason. A frame bigger than a ring slot reaches flowd only
 * as a copy queued on the socket; while that queue is over the socket's receive buffer (the
 * daemon fell behind) the kernel queues no copy and leaves a truncated ring slot, which the addon
 * drops (flowd_io.c rxTruncated). The lab lost one 64 KB UDP GSO frame (a whole super-frame) this
 * way now and then, counted nowhere (native-notes/tunnel-gso.md, p14c). Here 2000 frames of
 * 8000 bytes are sent to the underlay's interface without reading it (8 MB of receive buffer
 * holds a few hundred), then read: every frame sent is either received or in rx_drop_reasons.
 * Namespace fn-us (this file's own name), removed also on failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { cleanup, rootSkipReason, run } from './netns';

const skip = rootSkipReason(true) || (spawnSync('tc', ['-V']).status !== 0 ? 'tc (iproute2) missing' : false);
const NS = 'fn-us';
const ROOT = path.resolve(__dirname, '..', '..', '..');
const SENT = 2000;

test('underlay stats: frames truncated for a full socket queue are counted (truncated)', { skip }, () => {
  cleanup([], [NS]);
  try {
    run('ip', 'netns', 'add', NS);
    run('ip', '-n', NS, 'link', 'add', 'fn-usa', 'mtu', '9000', 'type', 'veth', 'peer', 'name', 'fn-usb', 'mtu', '9000');
    for (const l of ['fn-usa', 'fn-usb']) {
      run('ip', 'netns', 'exec', NS, 'sysctl', '-qw', `net.ipv6.conf.${l}.disable_ipv6=1`);
      run('ip', '-n', NS, 'link', 'set', l, 'up');
    }
    run('ip', '-n', NS, 'addr', 'add', '10.99.8.1/24', 'dev', 'fn-usa');
    // The child (in NS) opens the underlay on fn-usa, sends from fn-usb before reading, then
    // reads until nothing is left and prints the underlay's counters.
    const child = `
      const io = require(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'native', 'io.js'))});
      const { Underlay } = require(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'netdev', 'underlay.js'))});
      const { PacketBatch, GSO_SLOT_BYTES } = require(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'netdev', 'batch.js'))});
      const { NetdevStats } = require(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'netdev', 'netdev.js'))});
      const nio = io.loadNativeIo();
      const u = new Underlay('fn-usa', '10.99.8.1');
      const tx = io.packetOpen('fn-usb', { promisc: false });
      const LEN = 8000, N = 64;
      const buf = new Uint8Array(N * LEN), off = new Uint32Array(N), len = new Uint32Array(N);
      for (let i = 0; i < N; i++) {
        off[i] = i * LEN; len[i] = LEN;
        buf.fill(0xff, off[i], off[i] + 6);               // broadcast
        buf[off[i] + 6] = 2; buf[off[i] + 11] = 1;         // a local source MAC
        buf[off[i] + 12] = 0x88; buf[off[i] + 13] = 0xb5;  // local experimental EtherType
      }
      let sent = 0;
      for (let left = ${SENT}; left > 0; left -= N) sent += nio.send(tx, buf, off, len, Math.min(N, left));
      const b = new PacketBatch(64, GSO_SLOT_BYTES, true);
      // recv returns only tunnel frames (none here): read until the counters stop moving.
      const s = new NetdevStats();
      for (let seen = -1, idle = 0; idle < 3;) {
        u.recv(b);
        u.stats(s);
        if (s.rxPackets + s.rxDropped === seen) idle++;
        else { seen = s.rxPackets + s.rxDropped; idle = 0; }
      }
      process.stdout.write(JSON.stringify({ sent, rx: s.rxPackets, drop: s.rxDropped, reasons: s.rxDropReasons }) + '\\n');
      nio.close(tx);
      u.close();`;
    const proc = spawnSync('ip', ['netns', 'exec', NS, process.execPath, '-e', child], { encoding: 'utf8', timeout: 30000 });
    const lines = proc.stdout.trim().split('\n');
    const r = JSON.parse(lines[lines.length - 1] || '{}') as
      { sent: number; rx: number; drop: number; reasons: Record<string, number> };
    assert.equal(r.sent, SENT, proc.stderr);
    assert.ok((r.reasons.truncated ?? 0) > 0, `some frames truncated for the full queue: ${JSON.stringify(r)}`);
    assert.equal(r.rx + r.drop, SENT, `every frame received or counted as a drop: ${JSON.stringify(r)}`);
  } finally {
    cleanup([], [NS]);
  }
});
