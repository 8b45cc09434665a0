/**
 * The security-group checks' probes, run inside a VM's namespace as a process of their own
 * (cli/sg-probe.ts), printing JSON lines the checks read (lab/lab-check-sg.ts):
 *
 *   listen PORT...           TCP servers that echo what they receive; prints {"ready":true}
 *                            once listening, then every 50 ms with new bytes
 *                            {"port":P,"tMs":epoch ms,"bytes":total received on P}
 *   connect IP PORT WAIT_MS  one connection: {"connected":bool,"echoed":bool,"ms":n,"error":""}
 *                            (echoed: the 5 bytes sent came back, so return traffic passed)
 *   stream IP PORT SECONDS   writes 1 KB every 10 ms for SECONDS; at the end
 *                            {"sentBytes":n,"echoedBytes":n,"error":""}
 *   send IFNAME HEX...       sends each frame (hex) once out of IFNAME through the project's
 *                            AF_PACKET addon; {"sent":n}
 *
 * Owns its sockets; exits when done (listen runs until killed).
 */
import * as net from 'node:net';
import { loadNativeIo, packetOpen } from '../native/io';

const print = (o: object): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };

export function listen(ports: number[]): void {
  const total = new Map<number, number>();
  const reported = new Map<number, number>();
  let pending = ports.length;
  for (const port of ports) {
    total.set(port, 0);
    reported.set(port, 0);
    const srv = net.createServer((s) => {
      s.on('data', (b: Buffer) => { total.set(port, (total.get(port) ?? 0) + b.length); s.write(b); });
      s.on('error', () => undefined);
    });
    srv.listen(port, '0.0.0.0', () => { if (--pending === 0) print({ ready: true }); });
  }
  setInterval(() => {
    for (const [port, n] of total) {
      if (n === reported.get(port)) continue;
      reported.set(port, n);
      print({ port, tMs: Date.now(), bytes: n });
    }
  }, 50);
}

export function connect(ip: string, port: number, waitMs: number): void {
  const t0 = Date.now();
  let connected = false;
  let echoed = 0;
  const s = net.connect({ host: ip, port });
  const end = (error: string): void => {
    clearTimeout(timer);
    print({ connected, echoed: echoed >= 5, ms: Date.now() - t0, error });
    s.destroy();
    process.exit(0);
  };
  const timer = setTimeout(() => end('timeout'), waitMs);
  s.on('connect', () => { connected = true; s.write('hello'); });
  s.on('data', (b: Buffer) => { echoed += b.length; if (echoed >= 5) end(''); });
  s.on('error', (e: Error) => end(e.message));
}

export function stream(ip: string, port: number, seconds: number): void {
  const chunk = Buffer.alloc(1024, 0x61);
  let sentBytes = 0;
  let echoedBytes = 0;
  let error = '';
  const s = net.connect({ host: ip, port });
  let tick: NodeJS.Timeout | undefined;
  const end = (): void => {
    if (tick !== undefined) clearInterval(tick);
    print({ sentBytes, echoedBytes, error });
    s.destroy();
    process.exit(0);
  };
  s.on('connect', () => {
    tick = setInterval(() => { if (s.writableLength < 64 * 1024) { s.write(chunk); sentBytes += chunk.length; } }, 10);
  });
  s.on('data', (b: Buffer) => { echoedBytes += b.length; });
  s.on('error', (e: Error) => { error = e.message; });
  setTimeout(end, seconds * 1000);
}

export function sendFrames(ifname: string, hex: string[]): void {
  const io = loadNativeIo();
  const h = packetOpen(ifname, { promisc: false, ringFrames: 32 });
  const slot = 2048;
  const buf = new Uint8Array(slot * hex.length);
  const offs = new Uint32Array(hex.length);
  const lens = new Uint32Array(hex.length);
  hex.forEach((x, i) => {
    const f = Buffer.from(x, 'hex');
    if (f.length < 14 || f.length > slot) throw new Error(`frame ${i}: ${f.length} bytes`);
    buf.set(f, i * slot);
    offs[i] = i * slot;
    lens[i] = f.length;
  });
  const sent = io.send(h, buf, offs, lens, hex.length);
  io.close(h);
  print({ sent });
}
