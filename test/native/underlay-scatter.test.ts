/**
 * The underlay's scattered read on a real veth (root): a 64 KB TCP super-frame sent as the two
 * VXLAN UDP GSO frames tunnelEmit makes reaches Underlay.recv as one super-frame built where
 * the read put it (its output slot, no payload copied: flowd_io.c sc_note/sc_iovecs and
 * tunnel-offload.c coalesce with place/split), byte for byte the sent one; two flows back to
 * back give two, each in its own slot; a caller batch of one slot still gets both (the second
 * is read into the underlay's own batch and copied); with FLOWD_TUNNEL_GRO=0 nothing is placed.
 * Namespace fi-sa (this file's own name), removed also on failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { cleanup, rootSkipReason, run } from './netns';

const skip = rootSkipReason(true) || (spawnSync('tc', ['-V']).status !== 0 ? 'tc (iproute2) missing' : false);
const NS = 'fi-sa';
const ROOT = path.resolve(__dirname, '..', '..', '..');
const mod = (p: string): string => JSON.stringify(path.join(ROOT, 'dist', 'src', p));

/** Runs in NS: sends super-frames on fi-sva, reads them with an Underlay on fi-svb, prints JSON. */
const CHILD = `
const io = require(${mod('native/io.js')}).loadNativeIo();
const { Underlay } = require(${mod('netdev/underlay.js')});
const { PacketBatch, GSO_SLOT_BYTES, HEADROOM } = require(${mod('netdev/batch.js')});
const { buildTunnelHeader } = require(${mod('dpif/tunnel-header.js')});
const fs = require('node:fs');
const mac = (n) => parseInt(fs.readFileSync('/sys/class/net/' + n + '/address', 'utf8').trim().replace(/:/g, ''), 16);
const u = new Underlay('fi-svb', '10.97.0.2');
u.addPort('vx', 'vxlan', '10.97.0.1').dpPort = 5;
const tx = io.packetOpen('fi-sva', 64, false);
const MSS = 1398;
function sum16(b, off, len, init) { let s = init; for (let i = 0; i + 1 < len; i += 2) s += (b[off + i] << 8) | b[off + i + 1]; if (len & 1) s += b[off + len - 1] << 8; while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); return s; }
function superFrame(payload, port, salt) {
  const f = new Uint8Array(66 + payload);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
  f.set([0x45, 0, (52 + payload) >> 8, (52 + payload) & 0xff, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 1, 10, 10, 0, 2, 20], 14);
  f.set([port >> 8, port & 0xff, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0x20, 0, 0x80, 0x18, 1, 0xf5, 0, 0, 0, 0, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], 34);
  for (let i = 0; i < payload; i++) f[66 + i] = (i * 7 + salt) & 0xff;
  const ih = 0xffff - sum16(f, 14, 20, 0); f[24] = ih >> 8; f[25] = ih & 0xff;
  const ps = sum16(f, 26, 8, 6 + 32 + payload); const fo = (ps & 0xffff) + (ps >>> 16); f[50] = fo >> 8; f[51] = fo & 0xff;
  const vh = new Uint8Array(10); vh[0] = 1; vh[1] = 1; vh[4] = MSS & 0xff; vh[5] = MSS >> 8; vh[6] = 34; vh[8] = 16;
  return { f, vh };
}
const tmpl = Uint8Array.from(buildTunnelHeader({ kind: 'vxlan', localIp: 0x0a610001, remoteIp: 0x0a610002,
  srcMac: mac('fi-sva'), nextHopMac: mac('fi-svb'), dstPort: 4789, ttl: 64, tos: 0 }, 1001).bytes);
const S = GSO_SLOT_BYTES;
function send(frames) {
  const b = new Uint8Array(8 * S), off = new Uint32Array(8), len = new Uint32Array(8), vn = new Uint8Array(80), st = new Uint32Array(1);
  let n = 0;
  for (const { f, vh } of frames) n += io.tunnelEmit(vh, f, tmpl, 1, 1, 1500, b, S, 128, n, 8, off, len, vn, st);
  if (io.send(tx, b, off, len, n, undefined, undefined, vn) !== n) throw new Error('send');
  // Let every frame reach the socket first: one recv call sees them all (one coalesce).
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  return n;
}
function receive(batch) {
  const out = [];
  for (let tries = 0; tries < 50 && out.length < want.length; tries++) {
    const n = u.recv(batch);
    for (let k = 0; k < n; k++) {
      const slot = Math.floor(batch.off[k] / S);
      out.push({ slot, at: batch.off[k] - slot * S, len: batch.len[k], gso: batch.vnet[k * 10 + 1],
        same: Buffer.compare(Buffer.from(batch.buf.subarray(batch.off[k], batch.off[k] + batch.len[k])), Buffer.from(want[out.length] ? want[out.length].f : [])) === 0 });
    }
    if (n === 0) { const t = Date.now() + 5; while (Date.now() < t); }
  }
  return out;
}
const r = {};
let want = [superFrame(46 * MSS, 40000, 3)];
r.emitted = send(want);
r.one = receive(new PacketBatch(8, S, true));
want = [superFrame(46 * MSS, 40001, 5), superFrame(30 * MSS + 77, 40002, 9)];
send(want);
r.two = receive(new PacketBatch(8, S, true));
send(want);
r.small = receive(new PacketBatch(1, S, true));
r.scattered = io.stats(u.h).rxScattered;
r.headroom = HEADROOM;
process.stdout.write(JSON.stringify(r) + '\\n');
u.close();
io.close(tx);
`;

function child(env: Record<string, string> = {}): {
  emitted: number; scattered: number; headroom: number;
  one: { slot: number; at: number; len: number; gso: number; same: boolean }[];
  two: { slot: number; at: number; len: number; gso: number; same: boolean }[];
  small: { slot: number; at: number; len: number; gso: number; same: boolean }[];
} {
  const p = spawnSync('ip', ['netns', 'exec', NS, process.execPath, '-e', CHILD],
    { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30000 });
  const lines = p.stdout.trim().split('\n');
  assert.ok(lines[lines.length - 1].startsWith('{'), `child: ${p.stdout} ${p.stderr}`);
  return JSON.parse(lines[lines.length - 1]);
}

test('underlay: VXLAN UDP GSO frames read scattered into their output slot become the super-frame there', { skip }, () => {
  cleanup([], [NS]);
  try {
    run('ip', 'netns', 'add', NS);
    run('ip', '-n', NS, 'link', 'add', 'fi-sva', 'type', 'veth', 'peer', 'name', 'fi-svb');
    run('ip', '-n', NS, 'addr', 'add', '10.97.0.1/24', 'dev', 'fi-sva');
    run('ip', '-n', NS, 'addr', 'add', '10.97.0.2/24', 'dev', 'fi-svb');
    for (const d of ['lo', 'fi-sva', 'fi-svb']) run('ip', '-n', NS, 'link', 'set', d, 'up');
    const r = child();
    assert.equal(r.emitted, 2, 'a 64 KB super-frame is two UDP GSO frames');
    const inPlace = r.headroom + 50;                        // after the outer headers it came with
    assert.deepEqual(r.one, [{ slot: 0, at: inPlace, len: 66 + 46 * 1398, gso: 1, same: true }]);
    assert.deepEqual(r.two, [
      { slot: 0, at: inPlace, len: 66 + 46 * 1398, gso: 1, same: true },
      { slot: 1, at: inPlace, len: 66 + 30 * 1398 + 77, gso: 1, same: true },
    ]);
    // One slot per call: the second super-frame (no slot left for it) is read into the underlay's
    // own batch and copied out in the next call.
    assert.deepEqual(r.small.map((o) => [o.slot, o.len, o.same]), [[0, 66 + 46 * 1398, true], [0, 66 + 30 * 1398 + 77, true]]);
    assert.equal(r.scattered, 4, 'the first UDP GSO frame of each super-frame that had a slot was placed');
    const off = child({ FLOWD_TUNNEL_GRO: '0' });
    assert.equal(off.scattered, 0);
  } finally {
    cleanup([], [NS]);
  }
});
