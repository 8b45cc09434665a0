/**
 * Offloads from real veths with their default settings (tx checksumming and TSO on):
 * two namespaces fn-oa and fn-ob, each linked by a veth to the root namespace
 * (fn-oa0 <-> fn-oa1 in fn-oa, fn-ob0 <-> fn-ob1 in fn-ob). This test is the switch: it
 * forwards every frame between fn-oa0 and fn-ob0 through the addon, and checks what the
 * addon hands JS: UDP with a completed checksum, and a TCP stream whose super-frames come
 * out as frames no bigger than the MTU with valid checksums, with the data intact end to end.
 * Root and `ip netns` only; skipped with the reason otherwise.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeIo, packetOpen, NativeHandle, NativeStats } from '../../src/native/io';
import { rootSkipReason, run, cleanup, ipv4ChecksumsOk, nsBehindVeth, nsReceiver, nsRun, tcpStream } from './netns';

const skip = rootSkipReason(true);
const NA = 'fn-oa';
const NB = 'fn-ob';
const IP_A = '10.251.7.1';
const IP_B = '10.251.7.2';
const SLOT = 2048;
const HEAD = 128;
const MAX = 256;

/** What the switch saw, per direction and overall. */
const seen = { frames: 0, tcp: 0, udp: 0, maxLen: 0, badCsum: 0, udpPayloads: [] as string[] };
let ha: NativeHandle | null = null;
let hb: NativeHandle | null = null;

function inspect(f: Uint8Array, len: number, at: number): void {
  seen.frames++;
  if (len > seen.maxLen) seen.maxLen = len;
  if (f[at + 12] !== 0x08 || f[at + 13] !== 0x00) return;
  const proto = f[at + 23];
  if (proto !== 6 && proto !== 17) return;
  const frame = f.subarray(at, at + len);
  if (!ipv4ChecksumsOk(frame)) seen.badCsum++;
  if (proto === 6) seen.tcp++;
  else {
    seen.udp++;
    const l4 = 14 + (frame[14] & 15) * 4;
    seen.udpPayloads.push(Buffer.from(frame.subarray(l4 + 8)).toString('latin1'));
  }
}

/** Forwards everything from `src` to `dst`, inspecting each frame. */
function forward(src: NativeHandle, dst: NativeHandle): void {
  const io = loadNativeIo();
  const buf = new Uint8Array(MAX * SLOT);
  const off = new Uint32Array(MAX);
  const len = new Uint32Array(MAX);
  io.startPoll(src, () => {
    for (;;) {
      const n = io.recv(src, buf, SLOT, HEAD, MAX, off, len);
      if (n === 0) return;
      for (let i = 0; i < n; i++) inspect(buf, len[i], off[i]);
      io.send(dst, buf, off, len, n);
      if (n < MAX) return;
    }
  });
}

before(() => {
  if (skip) return;
  cleanup(['fn-oa0', 'fn-ob0'], [NA, NB]);
  nsBehindVeth(NA, IP_A);
  nsBehindVeth(NB, IP_B);
  ha = packetOpen('fn-oa0');
  hb = packetOpen('fn-ob0');
  forward(ha, hb);
  forward(hb, ha);
});

after(() => {
  const io = skip ? null : loadNativeIo();
  if (io && ha) io.close(ha);
  if (io && hb) io.close(hb);
  cleanup(['fn-oa0', 'fn-ob0'], [NA, NB]);
});

test('the namespace end of the veth has tx checksumming and TSO on (the default)', { skip }, () => {
  const k = run('ip', 'netns', 'exec', NA, 'ethtool', '-k', `${NA}1`);
  assert.match(k, /tx-checksumming: on/);
  assert.match(k, /tcp-segmentation-offload: on/);
});

test('a UDP datagram sent with CHECKSUM_PARTIAL reaches JS with a valid UDP checksum', { skip }, async () => {
  const io = loadNativeIo();
  const before: NativeStats = io.stats(ha as NativeHandle);
  const rx = nsReceiver(NB, ['python3', '-c', `
import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('${IP_B}',7007)); s.settimeout(10)
print('ready',flush=True); d,a=s.recvfrom(2000); print(d.decode())`]);
  await rx.ready;
  await nsRun(NA, ['python3', '-c', `
import socket,time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
for i in range(3):
  s.sendto(b'flowd-partial-csum-0123456789', ('${IP_B}',7007)); time.sleep(0.05)`]);
  const out = await rx.done;
  assert.match(out, /flowd-partial-csum-0123456789/);
  assert.ok(seen.udpPayloads.includes('flowd-partial-csum-0123456789'));
  assert.equal(seen.badCsum, 0);
  const after = io.stats(ha as NativeHandle);
  assert.ok(after.rxCsumCompleted > before.rxCsumCompleted, 'the kernel handed us partial checksums');
});

test('a 16 MB TCP stream crosses the addon as frames <= 1514 bytes with valid checksums', { skip }, async () => {
  const io = loadNativeIo();
  const MB = 16;
  const { sent, got } = await tcpStream(NA, NB, IP_B, 5201, MB);
  assert.equal(got, sent, 'receiver got every byte, in order');
  const st = io.stats(ha as NativeHandle);
  console.log(`# TCP ${MB} MB: frames ${seen.tcp}, super-frames from fn-oa0 ${st.rxSuperFrames}, ` +
    `copy path ${st.rxCopyPath}, largest frame ${seen.maxLen} B, drops ${st.rxDropped}, truncated ${st.rxTruncated}`);
  assert.ok(st.rxSuperFrames > 0, 'the sender used TSO: super-frames arrived and were segmented');
  assert.ok(seen.maxLen <= 1514, `largest frame ${seen.maxLen}`);
  assert.equal(seen.badCsum, 0, 'every TCP/UDP frame handed to JS has valid checksums');
  assert.equal(st.rxBadOffload + st.rxTooBig, 0);
});
