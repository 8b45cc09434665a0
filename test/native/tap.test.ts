/**
 * TAP through the addon: create (flowd owns it) and attach, one frame each way with exact
 * bytes, and a TCP stream from a namespace whose interface IS the TAP (kernel TSO
 * super-frames and partial checksums arrive through IFF_VNET_HDR and are finished in C),
 * forwarded by this test to a veth into a second namespace and back.
 * Root and `ip netns` only; skipped with the reason otherwise.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeIo, packetOpen, tapOpen, NativeHandle } from '../../src/native/io';
import { rootSkipReason, run, tryRun, cleanup, ipv4ChecksumsOk, tcpStream } from './netns';

const skip = rootSkipReason(true);
const SLOT = 2048;
const HEAD = 128;
const MAX = 256;
const buf = new Uint8Array(MAX * SLOT);
const off = new Uint32Array(MAX);
const len = new Uint32Array(MAX);

after(() => cleanup(['fn-tap0', 'fn-tq0', 'fn-tb0', 'fn-tap1'], ['fn-ta', 'fn-tb']));

function oneFrame(): Uint8Array {
  const f = new Uint8Array(72);
  f.set([2, 0, 0, 0, 0x0a, 2, 2, 0, 0, 0, 0x0a, 1, 0x88, 0xb5], 0);
  for (let i = 14; i < f.length; i++) f[i] = (i * 3) & 255;
  return f;
}

/** Waits for one 0x88b5 frame on `h`. */
function waitFrame(h: NativeHandle, ms: number): Promise<Uint8Array | null> {
  const io = loadNativeIo();
  return new Promise((resolve) => {
    const t = setTimeout(() => { io.stopPoll(h); resolve(null); }, ms);
    io.startPoll(h, () => {
      const n = io.recv(h, buf, SLOT, HEAD, MAX, off, len);
      for (let i = 0; i < n; i++) {
        if (buf[off[i] + 12] === 0x88 && buf[off[i] + 13] === 0xb5) {
          clearTimeout(t);
          io.stopPoll(h);
          resolve(buf.slice(off[i], off[i] + len[i]));
          return;
        }
      }
    });
  });
}

test('a created TAP carries one frame each way with exact bytes and vanishes on close', { skip }, async () => {
  const io = loadNativeIo();
  const tap = tapOpen('fn-tap0', { create: true });
  tryRun('sysctl', '-qw', 'net.ipv6.conf.fn-tap0.disable_ipv6=1');
  assert.match(run('ip', 'link', 'show', 'fn-tap0'), /UP/);
  const spy = packetOpen('fn-tap0');
  try {
    const f = oneFrame();
    const sb = new Uint8Array(SLOT);
    sb.set(f, HEAD);
    // JS -> kernel: the frame we write is received by the fn-tap0 interface.
    let p = waitFrame(spy, 2000);
    assert.equal(io.send(tap, sb, Uint32Array.of(HEAD), Uint32Array.of(f.length), 1), 1);
    assert.deepEqual(await p, f);
    // kernel -> JS: a frame transmitted on fn-tap0 comes out of our read.
    f[14] = 0xee;
    sb.set(f, HEAD);
    p = waitFrame(tap, 2000);
    assert.equal(io.send(spy, sb, Uint32Array.of(HEAD), Uint32Array.of(f.length), 1), 1);
    assert.deepEqual(await p, f);
    assert.equal(io.stats(tap).txPackets, 1);
  } finally {
    io.close(spy);
    io.close(tap);
  }
  await new Promise((r) => setTimeout(r, 50));
  assert.throws(() => run('ip', 'link', 'show', 'fn-tap0'));
});

test('attach opens an existing TAP; attach to a missing one is ENODEV, create of an existing one EEXIST', { skip }, () => {
  const io = loadNativeIo();
  tryRun('ip', 'link', 'del', 'fn-tq0');
  run('ip', 'tuntap', 'add', 'fn-tq0', 'mode', 'tap');
  try {
    const h = tapOpen('fn-tq0', { create: false });
    assert.equal(io.info(h).kind, 'tap');
    io.close(h);
    assert.throws(() => tapOpen('fn-tq0', { create: true }), { code: 'EEXIST', ifname: 'fn-tq0' });
  } finally {
    tryRun('ip', 'link', 'del', 'fn-tq0');
  }
  assert.throws(() => tapOpen('fn-tq0', { create: false }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ENODEV');
    assert.match(e.message, /^tap fn-tq0: attach \(no such interface\) failed: ENODEV/);
    return true;
  });
});

test('TCP from a namespace over a TAP (TSO on) arrives segmented, <= 1514 bytes, checksums valid', { skip }, async () => {
  const io = loadNativeIo();
  cleanup(['fn-tb0'], ['fn-ta', 'fn-tb']);
  run('ip', 'netns', 'add', 'fn-ta');
  run('ip', 'netns', 'add', 'fn-tb');
  const tap = tapOpen('fn-tap1', { create: true, offload: true });
  let veth: NativeHandle | null = null;
  try {
    run('ip', 'link', 'set', 'fn-tap1', 'netns', 'fn-ta');
    run('ip', '-n', 'fn-ta', 'link', 'set', 'fn-tap1', 'up');
    run('ip', '-n', 'fn-ta', 'addr', 'add', '10.251.8.1/24', 'dev', 'fn-tap1');
    run('ip', 'link', 'add', 'fn-tb0', 'type', 'veth', 'peer', 'name', 'fn-tb1', 'netns', 'fn-tb');
    run('sysctl', '-qw', 'net.ipv6.conf.fn-tb0.disable_ipv6=1');
    run('ip', 'link', 'set', 'fn-tb0', 'up');
    run('ip', '-n', 'fn-tb', 'link', 'set', 'fn-tb1', 'up');
    run('ip', '-n', 'fn-tb', 'addr', 'add', '10.251.8.2/24', 'dev', 'fn-tb1');
    const k = run('ip', 'netns', 'exec', 'fn-ta', 'ethtool', '-k', 'fn-tap1');
    assert.match(k, /tcp-segmentation-offload: on/);
    veth = packetOpen('fn-tb0');
    let maxLen = 0;
    let bad = 0;
    const fwd = (src: NativeHandle, dst: NativeHandle, check: boolean) => {
      const b = new Uint8Array(MAX * SLOT);
      const o = new Uint32Array(MAX);
      const l = new Uint32Array(MAX);
      io.startPoll(src, () => {
        const n = io.recv(src, b, SLOT, HEAD, MAX, o, l);
        if (check) {
          for (let i = 0; i < n; i++) {
            if (l[i] > maxLen) maxLen = l[i];
            if (b[o[i] + 12] === 8 && b[o[i] + 13] === 0 && b[o[i] + 23] === 6 &&
                !ipv4ChecksumsOk(b.subarray(o[i], o[i] + l[i]))) bad++;
          }
        }
        io.send(dst, b, o, l, n);
      });
    };
    fwd(tap, veth, true);
    fwd(veth, tap, false);
    const { sent, got } = await tcpStream('fn-ta', 'fn-tb', '10.251.8.2', 5202, 8);
    assert.equal(got, sent);
    const st = io.stats(tap);
    console.log(`# TAP TCP 8 MB: super-frames ${st.rxSuperFrames}, csum completed ${st.rxCsumCompleted}, largest ${maxLen} B`);
    assert.ok(st.rxSuperFrames > 0, 'TSO super-frames came through the TAP');
    assert.ok(maxLen <= 1514);
    assert.equal(bad, 0);
  } finally {
    if (veth) io.close(veth);
    io.close(tap);
    cleanup(['fn-tb0'], ['fn-ta', 'fn-tb']);
  }
});
