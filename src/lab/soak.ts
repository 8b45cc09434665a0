/**
 * The soak (`npm run soak`, a short run in the test suite): a live flowd in namespaces takes
 * mutated, truncated and random frames on a VM port and on its underlay, from the project's own
 * generator (lab/soak-gen.ts), while a ping and a TCP stream cross it and its control socket is
 * fuzzed (random bytes, oversized lines, half-open connections, floods of valid commands).
 *
 *   sk-a: sk-a0 10.77.0.1 ── sk-a1 ┐                    (ping and iperf3 client)
 *   sk-b: sk-b0 10.77.0.2 ── sk-b1 ┤ sk-sw: flowd br0   (iperf3 server)
 *   sk-g: sk-g0 ──────────── sk-g1 ┤  NORMAL + a VXLAN  (generator: VM-side frames)
 *   sk-u: sk-u0 10.77.1.2 ── sk-u1 ┘  port on sk-u1     (generator: underlay frames)
 *                                     10.77.1.1
 *
 * It reports crashes (must be 0), per wire the frames sent and how flowd accounted for them
 * (kernel delivery, flowd's receive, drops by reason), pings lost, the TCP stream's throughput
 * before and during, the daemon's RSS at start and end, and the control replies and errors.
 *
 * Called by: cli/soak.ts and test/integration/soak.test.ts. Everything it makes is named sk-*
 * and removed at the end, also on failure; it stops only the processes it started, by PID.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { request } from '../control/client';
import { pingAsync } from './ping';
import { ipIn, newNamespace, nsx, trySh, vethBetween } from './shell';

const PREFIX = 'sk-';
const ROOT = path.resolve(__dirname, '..', '..', '..');
const FLOWD = path.join(ROOT, 'dist', 'src', 'cli', 'flowd.js');
const SOAK_GEN = path.join(ROOT, 'dist', 'src', 'cli', 'soak-gen.js');
const NS = { a: `${PREFIX}a`, b: `${PREFIX}b`, g: `${PREFIX}g`, u: `${PREFIX}u`, sw: `${PREFIX}sw` } as const;
/**
 * The generator's mutations flip bits in source MACs; the ping and TCP hosts' MACs are many bit
 * flips away from the generator's (02:77:00:...), so the flood never teaches NORMAL that a or b
 * moved to the generator's port (which a real switch would then believe, as OVS would).
 */
const MAC = { a: '02:77:aa:aa:00:01', b: '02:77:bb:bb:00:02', g: '02:77:00:00:00:03', u: '02:77:00:00:01:02', sw: '02:77:cc:cc:01:01' };

export interface SoakOptions {
  /** Frames per generator (two generators: the VM wire and the underlay wire). */
  readonly framesPerWire: number;
  readonly ratePps: number;
  readonly seed: number;
  /** Seconds of iperf3 before and during the flood. */
  readonly tcpSeconds: number;
  readonly print: (line: string) => void;
}

/** How flowd accounted for the frames of one wire. */
export interface WireAccount {
  readonly wire: string;
  readonly generated: number;
  /** What the kernel delivered to flowd's end of the wire (sysfs rx_packets) and dropped there. */
  readonly kernelRx: number;
  readonly kernelDropped: number;
  /** flowd's own view of that interface: received, and refused by reason. */
  readonly flowdRx: number;
  readonly flowdRxDropReasons: Record<string, number>;
  /** flowd's received + refused frames, once the wire is quiet. */
  readonly accounted: number;
  /** For a datapath port: how its received frames ended (forwarded, dropped by reason). */
  readonly datapathEnds: { forwarded: number; dropped: Record<string, number> } | null;
  /**
   * kernelRx - kernelDropped <= accounted <= kernelRx: every frame the kernel handed to packet
   * sockets is accounted for. (The kernel's rx_dropped counts frames it dropped before packet
   * sockets saw them, e.g. a VLAN TPID without a whole tag, and some after: hence a bracket.)
   */
  readonly matches: boolean;
}

export interface SoakReport {
  readonly crashes: number;
  readonly wires: WireAccount[];
  readonly datapathDrops: Record<string, number>;
  /** The ping beside the flood (every 10 ms): rings that overflow lose some of it too. */
  readonly pingsSent: number;
  readonly pingsLost: number;
  /** A ping after the flood (and the control fuzz) stopped: forwarding is back, nothing lost. */
  readonly pingsAfterSent: number;
  readonly pingsAfterLost: number;
  readonly tcpBpsBefore: number;
  readonly tcpBpsDuring: number;
  readonly rssStartBytes: number;
  readonly rssEndBytes: number;
  readonly control: ControlFuzzCounts;
  readonly seconds: number;
}

export interface ControlFuzzCounts {
  requests: number;
  okReplies: number;
  errorReplies: number;
  garbageLines: number;
  oversizedLines: number;
  halfOpen: number;
  /** Requests that got no reply before their connection closed (must be 0 for valid ones). */
  unanswered: number;
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function sysCounter(ns: string, dev: string, name: string): number {
  return Number(nsx(ns, 'cat', `/sys/class/net/${dev}/statistics/${name}`).trim());
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** Runs `cmd` in `ns` to completion; resolves with its stdout (rejects on a non-zero exit). */
function runIn(ns: string, cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    c.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(out); else reject(new Error(`${cmd} ${args.join(' ')} in ${ns}: exit ${code}: ${err.trim()}`));
    });
  });
}

async function iperf(seconds: number): Promise<number> {
  const out = await runIn(NS.a, 'iperf3', ['-c', '10.77.0.2', '-p', '5277', '-t', String(seconds), '-J'], (seconds + 20) * 1000);
  const j = JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } } };
  return j.end?.sum_received?.bits_per_second ?? 0;
}

/** Builds the namespaces and links; returns the config text for flowd. */
function plumb(): string {
  for (const ns of Object.values(NS)) newNamespace(ns);
  const v = (ns: string, a: string, b: string, mac: string): void =>
    vethBetween(ns, a, NS.sw, b, { macA: mac });
  v(NS.a, `${PREFIX}a0`, `${PREFIX}a1`, MAC.a);
  v(NS.b, `${PREFIX}b0`, `${PREFIX}b1`, MAC.b);
  v(NS.g, `${PREFIX}g0`, `${PREFIX}g1`, MAC.g);
  v(NS.u, `${PREFIX}u0`, `${PREFIX}u1`, MAC.u);
  ipIn(NS.sw, 'link', 'set', `${PREFIX}u1`, 'address', MAC.sw);
  ipIn(NS.a, 'addr', 'add', '10.77.0.1/24', 'dev', `${PREFIX}a0`);
  ipIn(NS.b, 'addr', 'add', '10.77.0.2/24', 'dev', `${PREFIX}b0`);
  ipIn(NS.u, 'addr', 'add', '10.77.1.2/24', 'dev', `${PREFIX}u0`);
  ipIn(NS.sw, 'addr', 'add', '10.77.1.1/24', 'dev', `${PREFIX}u1`);
  // The generator's wire has no IP stack traffic of its own: static neighbours, no ARP chatter.
  ipIn(NS.u, 'neigh', 'add', '10.77.1.1', 'lladdr', MAC.sw, 'dev', `${PREFIX}u0`);
  return [
    'node: soak',
    'bridges:',
    '  - name: br0',
    '    ports:',
    `      - { name: ${PREFIX}a1, ofport: 1 }`,
    `      - { name: ${PREFIX}b1, ofport: 2 }`,
    `      - { name: ${PREFIX}g1, ofport: 3 }`,
    `      - { name: ${PREFIX}vx, ofport: 4, type: vxlan, remote_ip: 10.77.1.2, local_ip: 10.77.1.1, key: flow }`,
    '    flows:',
    '      - "priority=10,in_port=4,tun_id=1001,actions=output:3"',
    '      - "priority=0,actions=NORMAL"',
    '',
  ].join('\n');
}

/** Removes everything the soak made; never throws. */
export function soakCleanup(): void {
  for (const ns of Object.values(NS)) trySh('ip', 'netns', 'del', ns);
}

/**
 * Fuzzes the control socket until `stop()`: each round opens connections that send random
 * bytes, an oversized line, a half-open request (kept open, never finished), and a flood of
 * valid commands whose replies are counted.
 */
function fuzzControl(socket: string, seed: number): { stop: () => Promise<ControlFuzzCounts> } {
  const c: ControlFuzzCounts = { requests: 0, okReplies: 0, errorReplies: 0, garbageLines: 0, oversizedLines: 0, halfOpen: 0, unanswered: 0 };
  let running = true;
  let s = seed >>> 0 || 1;
  const rnd = (): number => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
  const halfOpen: net.Socket[] = [];
  const valid = ['show', 'stats', 'dump-ports', 'dump-flows', 'dump-cache', 'conntrack'];
  const round = (): Promise<void> => new Promise((resolve) => {
    const sock = net.createConnection(socket);
    let pending = 0;
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const r = JSON.parse(line) as { ok?: boolean };
          if (r.ok === true) c.okReplies++; else c.errorReplies++;
        } catch {
          c.errorReplies++;
        }
        pending--;
      }
      if (pending <= 0) sock.end();
    });
    sock.on('error', () => { /* counted by what is unanswered */ });
    // A round that gets no complete answer within 10 s counts what is missing and moves on.
    const giveUp = setTimeout(() => sock.destroy(), 10_000);
    sock.on('close', () => { clearTimeout(giveUp); c.unanswered += Math.max(0, pending); resolve(); });
    sock.on('connect', () => {
      const lines: string[] = [];
      for (let k = 0; k < 8; k++) {
        const bytes = Buffer.alloc(1 + (rnd() % 200));
        for (let i = 0; i < bytes.length; i++) bytes[i] = rnd() & 0xff;
        // A line of only whitespace is no request at all (the server skips it, no reply): start
        // every garbage line with a visible character.
        lines.push(`~${bytes.toString('latin1').replace(/\n/g, ' ')}`);
        c.garbageLines++;
      }
      for (let k = 0; k < 40; k++) {
        const cmd = valid[rnd() % valid.length];
        const args = cmd === 'dump-flows' || cmd === 'dump-ports' ? { bridge: 'br0' } : {};
        lines.push(JSON.stringify({ id: k, cmd, args }));
        c.requests++;
      }
      pending = lines.length;
      sock.write(`${lines.join('\n')}\n`);
    });
  });
  const oversized = (): Promise<void> => new Promise((resolve) => {
    // One line longer than the server's limit: an error reply, then the connection goes on.
    const sock = net.createConnection(socket);
    sock.setEncoding('utf8');
    let got = '';
    sock.on('data', (d: string) => { got += d; if (got.includes('\n')) sock.end(); });
    sock.on('error', () => { /* closed by the server is fine */ });
    sock.on('close', () => { if (got.includes('"ok":false')) c.errorReplies++; resolve(); });
    sock.on('connect', () => { c.oversizedLines++; sock.write('x'.repeat(17 * 1024 * 1024)); });
  });
  // Three loops at once: floods of short requests, oversized lines, half-open connections.
  const rounds = (async (): Promise<void> => { while (running) await round(); })();
  const big = (async (): Promise<void> => { while (running) { await oversized(); await sleepMs(1000); } })();
  const half = (async (): Promise<void> => {
    while (running && halfOpen.length < 64) {
      const h = net.createConnection(socket);
      h.on('error', () => { /* ignore */ });
      h.on('connect', () => h.write('{"id":1,"cmd":"show"'));
      halfOpen.push(h);
      c.halfOpen++;
      await sleepMs(200);
    }
  })();
  const loop = Promise.all([rounds, big, half]);
  return {
    stop: async () => {
      running = false;
      await loop;
      for (const h of halfOpen) h.destroy();
      return c;
    },
  };
}

function startGen(ns: string, dev: string, o: SoakOptions, seed: number, addrs: string[]): Promise<string> {
  return runIn(ns, process.execPath, [SOAK_GEN, dev, String(o.framesPerWire), String(seed), String(o.ratePps), ...addrs],
    // A loaded machine may not reach the rate: allow down to 10 kpps before calling it stuck.
    60_000 + (o.framesPerWire / 10_000) * 1000);
}

interface PortRow {
  port: string; rx_pkts: number; rx_drop: number; rx_errs: number; rx_forwarded: number;
  rx_port_drop_reasons: Record<string, number>; rx_datapath_drop_reasons: Record<string, number>;
}
interface UnderlayRow { device: string; rx_pkts: number; rx_drop: number; rx_drop_reasons: Record<string, number> }

/** Runs the soak; throws only when the set-up itself fails (crashes are reported, not thrown). */
export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const t0 = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flowd-soak-'));
  const socket = path.join(dir, 'soak.sock');
  let daemon: ChildProcess | null = null;
  let exited = false;
  try {
    soakCleanup();
    const cfg = path.join(dir, 'soak.yaml');
    fs.writeFileSync(cfg, plumb());
    const log = fs.openSync(path.join(dir, 'flowd.log'), 'w');
    const nodeArgs = (process.env.SOAK_FLOWD_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    daemon = spawn('ip', ['netns', 'exec', NS.sw, process.execPath, ...nodeArgs, FLOWD, '--config', cfg, '--socket', socket],
      { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    daemon.on('exit', () => { exited = true; });
    for (let k = 0; ; k++) {
      try { await request(socket, 'show', {}, 1000); break; } catch { /* not yet */ }
      if (exited || k > 100) throw new Error(`flowd did not start: ${fs.readFileSync(path.join(dir, 'flowd.log'), 'utf8')}`);
      await sleepMs(100);
    }
    // flowd runs under `ip netns exec`: its own pid is the child's (exec replaces the process).
    const pid = daemon.pid as number;
    const iperfSrv = spawn('ip', ['netns', 'exec', NS.b, 'iperf3', '-s', '-p', '5277'], { stdio: 'ignore' });
    try {
      const first = await pingAsync(NS.a, '10.77.0.2', 3);
      if (first.received !== first.sent) throw new Error(`soak: a cannot ping b through flowd (${first.received}/${first.sent} replies)`);
      const rssStart = rssBytes(pid);
      const tcpBefore = await iperf(o.tcpSeconds);
      o.print(`soak: TCP before the flood ${(tcpBefore / 1e9).toFixed(2)} Gbit/s; RSS ${(rssStart / 1e6).toFixed(1)} MB`);
      const before = await counters(socket);
      const fuzz = fuzzControl(socket, o.seed);
      const pingDone = runIn(NS.a, 'ping', ['-i', '0.01', '-w', String(Math.max(8, o.tcpSeconds + 6)), '-q', '10.77.0.2'], 120_000)
        .catch((e: Error) => e.message);
      const gens = Promise.all([
        // TEST-NET addresses, many bit flips from a's and b's: no garbage ARP re-points their caches.
        startGen(NS.g, `${PREFIX}g0`, o, o.seed, [MAC.g, MAC.b, '192.0.2.3', '192.0.2.2']),
        startGen(NS.u, `${PREFIX}u0`, o, o.seed + 1, [MAC.u, MAC.sw, '10.77.1.2', '10.77.1.1']),
      ]);
      const tcpDuring = await iperf(o.tcpSeconds).catch((e: Error) => { o.print(`soak: TCP during the flood failed: ${e.message}`); return 0; });
      const genOut = await gens;
      const pingOut = await pingDone;
      const fuzzCounts = await fuzz.stop();
      const pingAfter = await runIn(NS.a, 'ping', ['-c', '20', '-i', '0.05', '-W', '2', '-q', '10.77.0.2'], 30_000)
        .catch((e: Error) => e.message);
      const ma = /(\d+) packets transmitted, (\d+) received/.exec(pingAfter);
      // The last frames leave the rings: wait until flowd's counters stop moving.
      let after = await counters(socket);
      for (let k = 0; k < 20; k++) {
        await sleepMs(250);
        const again = await counters(socket);
        const moved = JSON.stringify(again.ports) !== JSON.stringify(after.ports) || again.underlay.rx_pkts !== after.underlay.rx_pkts;
        after = again;
        if (!moved && k >= 1) break;
      }
      const rssEnd = exited ? 0 : rssBytes(pid);
      if (process.env.SOAK_DEBUG === '1') o.print(String(await request(socket, 'stats', {}, 5000)));
      const gen = genOut.map((t) => JSON.parse(t.trim().split('\n').pop() ?? '{}') as { sent: number; ifname: string });
      const m = /(\d+) packets transmitted, (\d+) received/.exec(pingOut);
      const wires: WireAccount[] = [];
      const vm = (k: string, sysName: string): number => sysCounter(NS.sw, `${PREFIX}g1`, sysName) - before.sys[k];
      const vmRow = after.ports.find((p) => p.port === `${PREFIX}g1`) as PortRow;
      const vmRow0 = before.ports.find((p) => p.port === `${PREFIX}g1`) as PortRow;
      wires.push(account('VM port sk-g1', gen[0].sent, vm('gRx', 'rx_packets'), vm('gDrop', 'rx_dropped'),
        vmRow.rx_pkts - vmRow0.rx_pkts, { ...diff(vmRow.rx_port_drop_reasons, vmRow0.rx_port_drop_reasons),
          ...(vmRow.rx_errs > vmRow0.rx_errs ? { rx_error: vmRow.rx_errs - vmRow0.rx_errs } : {}) },
        false, { forwarded: vmRow.rx_forwarded - vmRow0.rx_forwarded,
          dropped: diff(vmRow.rx_datapath_drop_reasons, vmRow0.rx_datapath_drop_reasons) }));
      const ul = (k: string, sysName: string): number => sysCounter(NS.sw, `${PREFIX}u1`, sysName) - before.sys[k];
      const u1 = after.underlay, u0 = before.underlay;
      wires.push(account('underlay sk-u1', gen[1].sent, ul('uRx', 'rx_packets'), ul('uDrop', 'rx_dropped'),
        u1.rx_pkts - u0.rx_pkts, diff(u1.rx_drop_reasons, u0.rx_drop_reasons), true));
      return {
        crashes: exited ? 1 : 0,
        wires,
        datapathDrops: diff(after.drops, before.drops),
        pingsSent: m === null ? 0 : Number(m[1]),
        pingsLost: m === null ? -1 : Number(m[1]) - Number(m[2]),
        pingsAfterSent: ma === null ? 0 : Number(ma[1]),
        pingsAfterLost: ma === null ? -1 : Number(ma[1]) - Number(ma[2]),
        tcpBpsBefore: tcpBefore,
        tcpBpsDuring: tcpDuring,
        rssStartBytes: rssStart,
        rssEndBytes: rssEnd,
        control: fuzzCounts,
        seconds: (Date.now() - t0) / 1000,
      };
    } finally {
      if (iperfSrv.pid !== undefined) try { process.kill(iperfSrv.pid, 'SIGTERM'); } catch { /* gone */ }
    }
  } finally {
    if (daemon !== null && !exited && daemon.pid !== undefined) {
      const gone = new Promise<void>((r) => (daemon as ChildProcess).once('exit', () => r()));
      try { process.kill(daemon.pid, 'SIGTERM'); } catch { /* gone */ }
      await Promise.race([gone, sleepMs(5000)]);
      if (!exited) try { process.kill(daemon.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    soakCleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

interface Counters {
  ports: PortRow[];
  underlay: UnderlayRow;
  drops: Record<string, number>;
  sys: Record<string, number>;
}

async function counters(socket: string): Promise<Counters> {
  const ports = (await request(socket, 'dump-ports', { bridge: 'br0', format: 'json' }, 5000)) as unknown as PortRow[];
  const st = (await request(socket, 'stats', { format: 'json' }, 5000)) as unknown as { drops: Record<string, number>; underlays: UnderlayRow[] };
  return {
    ports, underlay: st.underlays[0], drops: st.drops,
    sys: {
      gRx: sysCounter(NS.sw, `${PREFIX}g1`, 'rx_packets'), gDrop: sysCounter(NS.sw, `${PREFIX}g1`, 'rx_dropped'),
      uRx: sysCounter(NS.sw, `${PREFIX}u1`, 'rx_packets'), uDrop: sysCounter(NS.sw, `${PREFIX}u1`, 'rx_dropped'),
    },
  };
}

function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(a)) if (v - (b[k] ?? 0) !== 0) out[k] = v - (b[k] ?? 0);
  return out;
}

function sumOf(r: Record<string, number>): number {
  return Object.values(r).reduce((x, y) => x + y, 0);
}

function account(wire: string, generated: number, kernelRx: number, kernelDropped: number, flowdRx: number,
                 reasons: Record<string, number>, rxIncludesRefused = false,
                 ends: { forwarded: number; dropped: Record<string, number> } | null = null): WireAccount {
  // A VM port's rx_pkts counts frames that entered the datapath; its drops (ring full, ...) come
  // on top. The underlay's rx counts every frame it read, refused ones included; only frames the
  // ring had no room for (ring_full) come on top.
  const accounted = flowdRx + (rxIncludesRefused ? reasons.ring_full ?? 0 : sumOf(reasons));
  // And every frame that entered the datapath ended: forwarded, or dropped by reason.
  const endsOk = ends === null || ends.forwarded + sumOf(ends.dropped) === flowdRx;
  return {
    wire, generated, kernelRx, kernelDropped, flowdRx, flowdRxDropReasons: reasons, accounted,
    datapathEnds: ends,
    matches: kernelRx - kernelDropped <= accounted && accounted <= kernelRx && endsOk,
  };
}

/** The report as a person reads it. */
export function formatSoakReport(r: SoakReport): string {
  const lines = [
    `crashes: ${r.crashes}`,
    ...r.wires.map((w) => `${w.wire}: generated ${w.generated}, kernel delivered ${w.kernelRx} (dropped ${w.kernelDropped}), ` +
      `flowd received ${w.flowdRx}, refused ${JSON.stringify(w.flowdRxDropReasons)} = ${w.accounted} accounted` +
      (w.datapathEnds === null ? '' : `; of those received ${w.datapathEnds.forwarded} forwarded, ` +
        `dropped ${JSON.stringify(w.datapathEnds.dropped)}`) + `: ${w.matches ? 'all accounted' : 'MISMATCH'}`),
    `datapath drops by reason: ${JSON.stringify(r.datapathDrops)}`,
    `pings: ${r.pingsSent} sent, ${r.pingsLost} lost during the flood; ${r.pingsAfterSent} sent, ${r.pingsAfterLost} lost after it`,
    `TCP: ${(r.tcpBpsBefore / 1e9).toFixed(2)} Gbit/s before, ${(r.tcpBpsDuring / 1e9).toFixed(2)} Gbit/s during`,
    `RSS: ${(r.rssStartBytes / 1e6).toFixed(1)} MB at start, ${(r.rssEndBytes / 1e6).toFixed(1)} MB at end`,
    `control: ${r.control.requests} valid requests, ${r.control.okReplies} ok replies, ${r.control.errorReplies} error replies ` +
      `(${r.control.garbageLines} garbage lines, ${r.control.oversizedLines} oversized lines, ${r.control.halfOpen} half-open connections), ` +
      `${r.control.unanswered} unanswered`,
    `took ${r.seconds.toFixed(1)} s`,
  ];
  return `${lines.join('\n')}\n`;
}
