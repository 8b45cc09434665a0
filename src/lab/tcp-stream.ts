/**
 * A long-lived TCP stream between two namespaces, for the HA failover runs (issue 14): a
 * server that counts the bytes each connection brought, by the peer's port as the server
 * sees it on its wire (for a client behind SNAT: the external port), and clients that write
 * a chunk every few ms or hold an idle connection open. Both are small Node programs run
 * with `ip netns exec`, reporting on stdout; no tool beyond node is needed.
 * Called by: lab/lab-failover.ts, test/integration/ha-ct-sync.test.ts.
 * Owns: the child processes it starts (stop() ends them by their pid).
 */
import { ChildProcess, spawn } from 'node:child_process';

const SERVER_JS = `
const net = require('net');
const conns = new Map();
net.createServer((c) => {
  const k = c.remoteAddress + ':' + c.remotePort;
  conns.set(k, 0);
  c.on('data', (d) => conns.set(k, conns.get(k) + d.length));
  c.on('error', () => {});
}).listen(Number(process.argv[2]), process.argv[1], () => console.log('listening'));
setInterval(() => console.log(JSON.stringify(Object.fromEntries(conns))), 50);
`;

const CLIENT_JS = `
const net = require('net');
const [host, port, lport, every] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), localPort: Number(lport) }, () => {
  console.log('connected');
  s.setNoDelay(true);
  if (Number(every) === 0) { s.write('x'); return; }
  const chunk = Buffer.alloc(256, 97);
  setInterval(() => s.write(chunk), Number(every));
});
s.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
s.on('close', () => { console.log('closed'); process.exit(0); });
`;

export class TcpStreamServer {
  private readonly child: ChildProcess;
  private last: Record<string, number> = {};
  private buf = '';
  readonly ready: Promise<void>;

  /** Listens on `ip`:`port` in namespace `ns`. */
  constructor(ns: string, ip: string, port: number) {
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER_JS, ip, String(port)], { stdio: ['ignore', 'pipe', 'ignore'] });
    let ok: () => void = () => undefined;
    this.ready = new Promise((r) => { ok = r; });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (c: string) => {
      this.buf += c;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        if (line === 'listening') ok();
        else if (line.startsWith('{')) this.last = JSON.parse(line) as Record<string, number>;
      }
    });
  }

  /** Bytes received per peer "ip:port", as of the server's last report (<= 50 ms old). */
  bytes(): Record<string, number> {
    return { ...this.last };
  }

  stop(): void {
    try { this.child.kill('SIGKILL'); } catch { /* gone */ }
  }
}

export class TcpStreamClient {
  private readonly child: ChildProcess;
  /** 'connecting', 'connected', 'closed' or 'error ...'. */
  state = 'connecting';
  readonly connected: Promise<void>;

  /** Connects from `ns`, local port `localPort`, to `ip`:`port`; writes 256 bytes every `everyMs` (0: one byte, then idle). */
  constructor(ns: string, ip: string, port: number, localPort: number, everyMs: number) {
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENT_JS, ip, String(port), String(localPort), String(everyMs)],
      { stdio: ['ignore', 'pipe', 'ignore'] });
    let ok: () => void = () => undefined;
    let fail: (e: Error) => void = () => undefined;
    this.connected = new Promise((r, j) => { ok = r; fail = j; });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (c: string) => {
      for (const line of c.split('\n')) {
        if (line === '') continue;
        this.state = line;
        if (line === 'connected') ok();
        else fail(new Error(`tcp client ${ns} -> ${ip}:${port}: ${line}`));
      }
    });
    this.child.on('exit', () => { if (this.state === 'connecting') fail(new Error(`tcp client ${ns} -> ${ip}:${port} exited`)); });
  }

  stop(): void {
    try { this.child.kill('SIGKILL'); } catch { /* gone */ }
  }
}
