/**
 * burst: a tiny traffic generator and sink on the native addon, for measuring the AF_PACKET
 * path (native-notes/rings.md) and for bench scripts.
 *
 *   node dist/src/native/burst.js send IFNAME SECONDS [FRAME_BYTES] [BATCH]
 *       sendmmsg loop of BATCH (default 256) copies of a UDP/IPv4 frame (default 64 bytes
 *       with FCS, i.e. 60 on the wire here) as fast as the kernel takes them; prints tx pps.
 *   node dist/src/native/burst.js recv IFNAME SECONDS [RING_FRAMES]
 *       poll-driven receive into a 256-slot batch; prints rx pps, ring drops, CPU used.
 *
 * Output: one line of JSON on stdout. Not used by the datapath.
 */
import { loadNativeIo, packetOpen } from './io';

const SLOT = 2048;
const HEAD = 128;

function udpFrame(bytes: number): Uint8Array {
  const f = new Uint8Array(Math.max(bytes, 42));
  f.set([2, 0, 0, 0, 0, 0xb2, 2, 0, 0, 0, 0, 0xb1, 0x08, 0x00], 0);
  const ipLen = f.length - 14;
  f.set([0x45, 0, ipLen >> 8, ipLen & 255, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 251, 9, 1, 10, 251, 9, 2], 14);
  let s = 0;
  for (let i = 14; i < 34; i += 2) s += (f[i] << 8) | f[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  s = ~s & 0xffff;
  f[24] = s >> 8;
  f[25] = s & 255;
  const udpLen = ipLen - 20;
  f.set([0x27, 0x10, 0x27, 0x11, udpLen >> 8, udpLen & 255, 0, 0], 34);
  return f;
}

function send(ifname: string, seconds: number, frameBytes: number, batch: number): void {
  const io = loadNativeIo();
  const h = packetOpen(ifname, { promisc: false, ringFrames: 32 });
  const f = udpFrame(frameBytes);
  const buf = new Uint8Array(batch * SLOT);
  const offs = new Uint32Array(batch);
  const lens = new Uint32Array(batch);
  for (let i = 0; i < batch; i++) {
    buf.set(f, i * SLOT + HEAD);
    offs[i] = i * SLOT + HEAD;
    lens[i] = f.length;
  }
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(seconds * 1e9));
  let sent = 0;
  let now = t0;
  while (now < end) {
    for (let k = 0; k < 16; k++) sent += io.send(h, buf, offs, lens, batch);
    now = process.hrtime.bigint();
  }
  const secs = Number(now - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  const st = io.stats(h);
  io.close(h);
  console.log(JSON.stringify({ role: 'send', ifname, frameBytes: f.length, batch, seconds: secs,
    txPackets: sent, txPps: Math.round(sent / secs), txErrors: st.txErrors,
    cpuPct: Math.round(((cpu.user + cpu.system) / 1e6 / secs) * 100) }));
}

function recv(ifname: string, seconds: number, ringFrames: number): void {
  const io = loadNativeIo();
  const h = packetOpen(ifname, { ringFrames });
  const buf = new Uint8Array(256 * SLOT);
  const off = new Uint32Array(256);
  const len = new Uint32Array(256);
  let got = 0;
  let calls = 0;
  let first = 0n;
  let last = 0n;
  io.startPoll(h, () => {
    calls++;
    for (;;) {
      const n = io.recv(h, buf, SLOT, HEAD, 256, off, len);
      if (n === 0) break;
      if (got === 0) first = process.hrtime.bigint();
      got += n;
      last = process.hrtime.bigint();
      if (n < 256) break;
    }
  });
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  setTimeout(() => {
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(c0);
    const st = io.stats(h);
    io.close(h);
    const active = Number(last - first) / 1e9;
    console.log(JSON.stringify({ role: 'recv', ifname, ringFrames, seconds: secs, rxPackets: got,
      rxPpsWhileActive: active > 0 ? Math.round(got / active) : 0, rxDropped: st.rxDropped,
      pollCallbacks: calls, framesPerCallback: calls ? +(got / calls).toFixed(1) : 0,
      cpuPct: Math.round(((cpu.user + cpu.system) / 1e6 / secs) * 100) }));
  }, seconds * 1000);
}

const [mode, ifname, secs, a3, a4] = process.argv.slice(2);
if (mode === 'send' && ifname) send(ifname, Number(secs ?? 5), Number(a3 ?? 60), Number(a4 ?? 256));
else if (mode === 'recv' && ifname) recv(ifname, Number(secs ?? 5), Number(a3 ?? 4096));
else {
  console.error('usage: burst.js send IFNAME SECONDS [FRAME_BYTES] [BATCH] | recv IFNAME SECONDS [RING_FRAMES]');
  process.exitCode = 2;
}
