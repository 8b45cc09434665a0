/**
 * Keep-whole receive of TCP super-frames through the AF_PACKET copy path, several frames per
 * system call (flowd_io.c packet_recv_copy_batch): two namespaces fn-cba and fn-cbb, each
 * linked by a veth to the root namespace (fn-cba0 <-> fn-cba1, fn-cbb0 <-> fn-cbb1). This
 * test is the switch: it forwards every frame between fn-cba0 and fn-cbb0 through the addon
 * with 64.25 KB slots and vnet headers, as the daemon does, and reads each port only every few
 * milliseconds so that super-frames queue up. It checks what a user sees: the stream arrives
 * intact (sha256), the super-frames crossed whole with their vnet headers, and the addon read
 * them with fewer system calls than frames, nothing dropped or truncated.
 * Root and `ip netns` only; skipped with the reason otherwise.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadNativeIo, packetOpen, NativeHandle } from '../../src/native/io';
import { GSO_SLOT_BYTES, HEADROOM, VNET_HDR_BYTES } from '../../src/netdev/batch';
import { rootSkipReason, cleanup, nsBehindVeth, nsReceiver, nsRun, tcpStream } from './netns';

const skip = rootSkipReason(true);
const NA = 'fn-cba';
const NB = 'fn-cbb';
const IP_A = '10.251.9.1';
const IP_B = '10.251.9.2';
const MAX = 64;
/** Milliseconds between reads of a port: long enough for several super-frames to queue. */
const READ_EVERY_MS = 3;

let ha: NativeHandle | null = null;
let hb: NativeHandle | null = null;
const timers: NodeJS.Timeout[] = [];
/** Largest frame forwarded, and frames that crossed with a GSO vnet header. */
const seen = { maxLen: 0, gso: 0 };

/** Forwards everything from `src` to `dst` in keep-whole mode, reading every READ_EVERY_MS. */
function forward(src: NativeHandle, dst: NativeHandle): void {
  const io = loadNativeIo();
  const buf = new Uint8Array(MAX * GSO_SLOT_BYTES);
  const off = new Uint32Array(MAX);
  const len = new Uint32Array(MAX);
  const vnet = new Uint8Array(MAX * VNET_HDR_BYTES);
  const drain = (): void => {
    for (;;) {
      const n = io.recv(src, buf, GSO_SLOT_BYTES, HEADROOM, MAX, off, len, undefined, undefined, vnet);
      for (let i = 0; i < n; i++) {
        if (len[i] > seen.maxLen) seen.maxLen = len[i];
        if ((vnet[i * VNET_HDR_BYTES + 1] & 0x7f) !== 0) seen.gso++;
      }
      if (n > 0) io.send(dst, buf, off, len, n, undefined, undefined, vnet);
      if (n < MAX) break;
    }
  };
  const t = setInterval(drain, READ_EVERY_MS);
  timers.push(t);
}

before(() => {
  if (skip) return;
  cleanup(['fn-cba0', 'fn-cbb0'], [NA, NB]);
  nsBehindVeth(NA, IP_A);
  nsBehindVeth(NB, IP_B);
  ha = packetOpen('fn-cba0');
  hb = packetOpen('fn-cbb0');
  forward(ha, hb);
  forward(hb, ha);
});

after(() => {
  for (const t of timers) clearInterval(t);
  const io = skip ? null : loadNativeIo();
  if (io && ha) io.close(ha);
  if (io && hb) io.close(hb);
  cleanup(['fn-cba0', 'fn-cbb0'], [NA, NB]);
});

test('queued TCP super-frames are read whole, several per system call, and the stream arrives intact', { skip }, async () => {
  const io = loadNativeIo();
  const MB = 32;
  const { sent, got } = await tcpStream(NA, NB, IP_B, 5201, MB, IP_A, 30);
  assert.equal(got, sent, 'receiver got every byte, in order');
  const st = io.stats(ha as NativeHandle);
  console.log(`# TCP ${MB} MB: super-frames kept whole ${st.rxGsoWhole}, copy path ${st.rxCopyPath} frames in ` +
    `${st.rxCopyCalls} calls, largest frame ${seen.maxLen} B, truncated ${st.rxTruncated}, bad ${st.rxBadOffload}`);
  assert.ok(st.rxGsoWhole > 0 && seen.gso > 0, 'super-frames crossed whole with a GSO vnet header');
  assert.ok(seen.maxLen > 2048, `frames bigger than a ring slot were forwarded (largest ${seen.maxLen} B)`);
  assert.ok(st.rxCopyCalls < st.rxCopyPath, `fewer reads (${st.rxCopyCalls}) than copy-path frames (${st.rxCopyPath})`);
  assert.equal(st.rxTruncated + st.rxBadOffload + st.rxTooBig, 0, 'nothing truncated or dropped');
});

test('UDP GSO frames queued among TCP super-frames end a run, are cut to datagrams, and both streams arrive', { skip }, async () => {
  const io = loadNativeIo();
  const before = io.stats(ha as NativeHandle);
  // 300 sends of 42,000 bytes with UDP_SEGMENT 1400: each leaves fn-cba1 as one UDP GSO frame of
  // 30 datagrams, which the addon cuts (only the underlay keeps UDP GSO frames whole).
  const udpRx = nsReceiver(NB, ['python3', '-c', `
import socket
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,1<<24)
u.bind(('${IP_B}',5301)); print('ready',flush=True); u.settimeout(3); n=bad=0
try:
  while True:
    d=u.recv(2048); n+=1
    if len(d)!=1400 or d!=bytes([d[0]])*1400: bad+=1
except socket.timeout: pass
print(n,bad)`]);
  await udpRx.ready;
  const udpTx = nsRun(NA, ['python3', '-c', `
import socket,time
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.setsockopt(17,103,1400)
for i in range(300):
  u.sendto(b''.join(bytes([(i+k)&255])*1400 for k in range(30)),('${IP_B}',5301))
  if i%20==0: time.sleep(0.005)
print('sent')`]);
  const { sent, got } = await tcpStream(NA, NB, IP_B, 5203, 16, IP_A, 30);
  await udpTx;
  const [n, bad] = (await udpRx.done).trim().split(' ').map(Number);
  const st = io.stats(ha as NativeHandle);
  console.log(`# UDP GSO among TCP: datagrams received ${n} of 9000 (bad ${bad}), UDP GSO frames cut ` +
    `${st.rxSuperFrames - before.rxSuperFrames}, copy path ${st.rxCopyPath - before.rxCopyPath} frames in ` +
    `${st.rxCopyCalls - before.rxCopyCalls} calls`);
  assert.equal(got, sent, 'the TCP stream arrived intact, in order');
  assert.ok(st.rxSuperFrames - before.rxSuperFrames > 0, 'UDP GSO frames were cut to datagrams');
  assert.ok(n > 0, 'datagrams arrived');
  assert.equal(bad, 0, 'every datagram has its 1400 bytes');
  assert.equal(st.rxTruncated + st.rxBadOffload + st.rxTooBig - before.rxTruncated - before.rxBadOffload - before.rxTooBig, 0,
    'nothing truncated or dropped by the addon');
});
