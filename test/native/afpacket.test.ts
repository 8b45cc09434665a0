/**
 * AF_PACKET through the addon on a veth pair in the root namespace (fn-p0 <-> fn-p1):
 * exact bytes across, a 1000-frame burst with no loss, VLAN tag re-insertion, latency of
 * one frame at low rate, no CPU while idle, errors at open and after close.
 * Root only; skipped with the reason otherwise.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { loadNativeIo, packetOpen, NativeHandle } from '../../src/native/io';
import { rootSkipReason, vethPair, cleanup, run } from './netns';

const skip = rootSkipReason(false);
const A = 'fn-p0';
const B = 'fn-p1';
const SLOT = 2048;
const HEAD = 128;
const MAX = 256;

let ready = false;
function setup(): void {
  if (!ready) {
    vethPair(A, B);
    ready = true;
  }
}
after(() => cleanup([A]));

const buf = new Uint8Array(MAX * SLOT);
const off = new Uint32Array(MAX);
const len = new Uint32Array(MAX);

/** An experimental-EtherType (0x88b5) frame 02:..:02 <- 02:..:01 with a 4-byte sequence. */
function frame(seq: number, bytes = 60): Uint8Array {
  const f = new Uint8Array(bytes);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5], 0);
  f[14] = seq >>> 24; f[15] = (seq >>> 16) & 255; f[16] = (seq >>> 8) & 255; f[17] = seq & 255;
  for (let i = 18; i < bytes; i++) f[i] = i & 255;
  return f;
}

/** Packs frames into a send batch. */
function batchOf(frames: Uint8Array[]) {
  const sb = new Uint8Array(frames.length * SLOT);
  const so = new Uint32Array(frames.length);
  const sl = new Uint32Array(frames.length);
  frames.forEach((f, i) => { sb.set(f, i * SLOT + HEAD); so[i] = i * SLOT + HEAD; sl[i] = f.length; });
  return { sb, so, sl };
}

/** Polls `h` until `want` test frames (EtherType 0x88b5) arrived or `ms` passed. */
function collect(h: NativeHandle, want: number, ms: number): Promise<Uint8Array[]> {
  const io = loadNativeIo();
  const got: Uint8Array[] = [];
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); io.stopPoll(h); resolve(got); };
    const timer = setTimeout(done, ms);
    io.startPoll(h, () => {
      const n = io.recv(h, buf, SLOT, HEAD, MAX, off, len);
      for (let i = 0; i < n; i++) {
        if (buf[off[i] + 12] === 0x88 && buf[off[i] + 13] === 0xb5) got.push(buf.slice(off[i], off[i] + len[i]));
        else if (buf[off[i] + 12] === 0x81 && buf[off[i] + 16] === 0x88) got.push(buf.slice(off[i], off[i] + len[i]));
      }
      if (got.length >= want) done();
    });
  });
}

test('a frame sent on fn-p0 arrives on fn-p1 with the same bytes, at slot 0 + headroom', { skip }, async () => {
  setup();
  const io = loadNativeIo();
  const a = packetOpen(A);
  const b = packetOpen(B);
  try {
    const f = frame(7, 64);
    const { sb, so, sl } = batchOf([f]);
    const p = collect(b, 1, 2000);
    assert.equal(io.send(a, sb, so, sl, 1), 1);
    const got = await p;
    assert.equal(got.length, 1);
    assert.deepEqual(got[0], f);
    assert.equal(off[0], HEAD);
    const st = io.stats(a);
    assert.equal(st.txPackets, 1);
    assert.equal(st.txBytes, 64);
    assert.equal(st.txErrors, 0);
  } finally {
    io.close(a);
    io.close(b);
  }
});

test('a burst of 1000 frames is received in order with no loss', { skip }, async () => {
  setup();
  const io = loadNativeIo();
  const a = packetOpen(A);
  const b = packetOpen(B, { ringFrames: 2048 });
  try {
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 1000; i++) frames.push(frame(i, 60 + (i % 200)));
    const { sb, so, sl } = batchOf(frames);
    assert.equal(io.info(b).ringFrames, 2048);
    assert.equal(io.info(b).ringBytes, 2048 * 2048);
    const p = collect(b, 1000, 5000);
    assert.equal(io.send(a, sb, so, sl, 1000), 1000);
    const got = await p;
    assert.equal(got.length, 1000);
    for (let i = 0; i < 1000; i++) assert.deepEqual(got[i], frames[i], `frame ${i}`);
    assert.equal(io.stats(b).rxDropped, 0);
  } finally {
    io.close(a);
    io.close(b);
  }
});

test('an 802.1Q frame keeps its tag (vlan 100, pcp 5) although veth moves it out of band', { skip }, async () => {
  setup();
  const io = loadNativeIo();
  const a = packetOpen(A);
  const b = packetOpen(B);
  try {
    const f = Uint8Array.from([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0xa0, 0x64, 0x88, 0xb5,
      ...Array.from({ length: 46 }, (_, i) => i)]);
    const { sb, so, sl } = batchOf([f]);
    const p = collect(b, 1, 2000);
    assert.equal(io.send(a, sb, so, sl, 1), 1);
    const got = await p;
    assert.equal(got.length, 1);
    assert.deepEqual(got[0], f);
  } finally {
    io.close(a);
    io.close(b);
  }
});

test('one frame at a time waits well under a millisecond from send to the poll callback', { skip }, async () => {
  setup();
  const io = loadNativeIo();
  const a = packetOpen(A);
  const b = packetOpen(B);
  const lat: number[] = [];
  try {
    const { sb, so, sl } = batchOf([frame(1)]);
    let t0 = 0n;
    await new Promise<void>((resolve) => {
      io.startPoll(b, () => {
        const n = io.recv(b, buf, SLOT, HEAD, MAX, off, len);
        if (n > 0 && t0 !== 0n) {
          lat.push(Number(process.hrtime.bigint() - t0) / 1000);
          t0 = 0n;
          if (lat.length === 100) { io.stopPoll(b); resolve(); return; }
          setTimeout(() => { t0 = process.hrtime.bigint(); io.send(a, sb, so, sl, 1); }, 2);
        }
      });
      t0 = process.hrtime.bigint();
      io.send(a, sb, so, sl, 1);
    });
    lat.sort((x, y) => x - y);
    const median = lat[50];
    console.log(`# send->poll callback latency: median ${median.toFixed(1)} us, p90 ${lat[90].toFixed(1)} us, max ${lat[99].toFixed(1)} us`);
    assert.ok(median < 500, `median latency ${median} us`);
  } finally {
    io.close(a);
    io.close(b);
  }
});

test('an open, polled, idle port uses no CPU', { skip }, async () => {
  setup();
  const io = loadNativeIo();
  const b = packetOpen(B);
  try {
    io.startPoll(b, () => { io.recv(b, buf, SLOT, HEAD, MAX, off, len); });
    const c0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 1000));
    const c = process.cpuUsage(c0);
    const ms = (c.user + c.system) / 1000;
    console.log(`# idle CPU over 1 s with the poll armed: ${ms.toFixed(1)} ms`);
    assert.ok(ms < 50, `idle CPU ${ms} ms per second`);
  } finally {
    io.close(b);
  }
});

test('opening a missing interface throws ENODEV naming it', { skip }, () => {
  assert.throws(() => packetOpen('fn-nosuch9'), (e: Error & { code?: string; ifname?: string }) => {
    assert.equal(e.code, 'ENODEV');
    assert.equal(e.ifname, 'fn-nosuch9');
    assert.match(e.message, /^afpacket fn-nosuch9: if_nametoindex failed: ENODEV/);
    return true;
  });
});

test('a closed handle throws ERR_CLOSED on recv/send; close twice is harmless', { skip }, () => {
  setup();
  const io = loadNativeIo();
  const a = packetOpen(A);
  io.close(a);
  io.close(a);
  assert.throws(() => io.recv(a, buf, SLOT, HEAD, MAX, off, len), { code: 'ERR_CLOSED' });
  assert.throws(() => io.send(a, buf, off, len, 0), { code: 'ERR_CLOSED' });
  assert.equal(io.info(a).fd, -1);
});

test('a bad descriptor (off + len beyond the buffer) is counted in txErrors, the rest are sent', { skip }, () => {
  setup();
  const io = loadNativeIo();
  const a = packetOpen(A);
  try {
    const { sb, so, sl } = batchOf([frame(1), frame(2), frame(3)]);
    sl[1] = sb.length; // runs past the end
    assert.equal(io.send(a, sb, so, sl, 3), 2);
    assert.equal(io.stats(a).txErrors, 1);
  } finally {
    io.close(a);
  }
});

test('a forgotten handle is closed by the GC finalizer (its fd goes away)', { skip }, () => {
  setup();
  // In a child with --expose-gc, so the GC can be forced.
  const script = `const io=require(${JSON.stringify(require.resolve('../../src/native/io'))});
    const fs=require('fs'); let fd; (()=>{ const h=io.packetOpen('${A}'); fd=io.loadNativeIo().info(h).fd; })();
    for (let i=0;i<5;i++) global.gc(); setTimeout(()=>{ global.gc(); console.log(fs.existsSync('/proc/self/fd/'+fd)?'open':'closed'); }, 50);`;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
  assert.equal(r.stdout.trim(), 'closed', r.stderr);
});

test('deleting the interface under a polled port stops the poll without spinning; send then counts errors', { skip }, async () => {
  const io = loadNativeIo();
  cleanup(['fn-pz0']);
  run('ip', 'link', 'add', 'fn-pz0', 'type', 'veth', 'peer', 'name', 'fn-pz1');
  run('ip', 'link', 'set', 'fn-pz0', 'up');
  run('ip', 'link', 'set', 'fn-pz1', 'up');
  const h = packetOpen('fn-pz1');
  try {
    let calls = 0;
    io.startPoll(h, () => { calls++; io.recv(h, buf, SLOT, HEAD, MAX, off, len); });
    run('ip', 'link', 'del', 'fn-pz0');
    const c0 = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 500));
    const c = process.cpuUsage(c0);
    assert.ok(calls <= 3, `poll callbacks after delete: ${calls}`);
    assert.ok((c.user + c.system) / 1000 < 100, 'no spinning');
    assert.equal(io.info(h).polling, false);
    const { sb, so, sl } = batchOf([frame(1)]);
    assert.equal(io.send(h, sb, so, sl, 1), 0);
    assert.equal(io.stats(h).txErrors, 1);
  } finally {
    io.close(h);
    cleanup(['fn-pz0']);
  }
});

test('without CAP_NET_RAW/CAP_NET_ADMIN opening fails with EPERM naming the call', { skip }, () => {
  const script = `const io=require(${JSON.stringify(require.resolve('../../src/native/io'))}); const out=[];
    for (const f of [() => io.packetOpen('lo'), () => io.tapOpen('fn-pperm0', { create: true }), () => io.greOpen('127.0.0.1')])
      try { f(); out.push('opened'); } catch (e) { out.push(e.code + ' ' + e.message); }
    console.log(out.join('\\n'));`;
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all',
    process.execPath, '-e', script], { encoding: 'utf8' });
  if (r.error) return; // no setpriv here: nothing to show
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], 'EPERM afpacket lo: socket(AF_PACKET) failed: EPERM (Operation not permitted)');
  // EACCES where /dev/net/tun is not world-writable (as here), else EPERM from TUNSETIFF.
  assert.match(lines[1], /^(EACCES tap fn-pperm0: open\(\/dev\/net\/tun\) failed: EACCES|EPERM tap fn-pperm0: ioctl\(TUNSETIFF\) failed: EPERM)/);
  assert.equal(lines[2], 'EPERM gre 127.0.0.1: socket(AF_INET, SOCK_RAW, 47) failed: EPERM (Operation not permitted)');
});
